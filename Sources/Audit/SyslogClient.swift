import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Sends syslog records to an ``AuditRepository``: one octet-counted frame per record on a
/// TCP or TLS connection (RFC 5425, RFC 6587), one datagram per record over UDP (RFC 5426).
///
/// `send` completes once the record is written and flushed to the socket; a failed send
/// closes the connection and the next one reconnects. Used by one sender at a time.
public final class SyslogClient: Sendable {
    public let repository: AuditRepository
    private let group: any EventLoopGroup
    private let sslContext: NIOSSLContext?
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)
    private let connectTimeout: TimeAmount
    /// UDP: the repository's address, looked up once per connection.
    private let datagramAddress = NIOLockedValueBox<SocketAddress?>(nil)

    /// Loads the TLS material at once, so a bad file fails at start, not at the first event.
    public init(repository: AuditRepository, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                connectTimeout: TimeAmount = .seconds(10)) throws {
        self.repository = repository
        self.group = group
        self.connectTimeout = connectTimeout
        if repository.transport == .tls {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let ca = repository.caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            }
            if let certificate = repository.certificateFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            }
            if let key = repository.privateKeyFile {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
            sslContext = try NIOSSLContext(configuration: tls)
        } else {
            sslContext = nil
        }
    }

    /// Writes one record; throws when it could not be handed to the socket.
    public func send(_ message: SyslogMessage) async throws {
        let channel = try await connectedChannel()
        do {
            switch repository.transport {
            case .udp:
                guard let address = datagramAddress.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                let buffer = channel.allocator.buffer(bytes: message.bytes)
                try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
            case .tcp, .tls:
                try await channel.writeAndFlush(channel.allocator.buffer(bytes: message.octetCountedFrame))
            }
        } catch {
            self.channel.withLockedValue { if $0 === channel { $0 = nil } }
            try? await channel.close()
            throw error
        }
    }

    /// Closes the connection (the next send opens a new one).
    public func close() async {
        let channel = self.channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }

    private func connectedChannel() async throws -> any Channel {
        if let channel = channel.withLockedValue({ $0 }), channel.isActive { return channel }
        await close()
        let channel: any Channel
        switch repository.transport {
        case .udp:
            // A blocking lookup, once per socket (the repository is an address or a name in /etc/hosts in practice).
            let address = try SocketAddress.makeAddressResolvingHost(repository.host, port: repository.port)
            datagramAddress.withLockedValue { $0 = address }
            let bind = address.protocol == .inet6 ? "::" : "0.0.0.0"
            channel = try await DatagramBootstrap(group: group).bind(host: bind, port: 0).get()
        case .tcp, .tls:
            let sslContext = self.sslContext
            let host = repository.host
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            // No SNI for an address (RFC 6066 §3); the certificate is still checked against it.
                            let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
                            let handler = try NIOSSLClientHandler(context: sslContext,
                                                                  serverHostname: isAddress ? nil : host)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                        // The repository sends nothing back (RFC 5425 §4.3); an EOF or an error closes the channel.
                        try channel.pipeline.syncOperations.addHandler(DiscardInbound())
                    }
                }
                .connect(host: repository.host, port: repository.port).get()
        }
        self.channel.withLockedValue { $0 = channel }
        return channel
    }
}

/// Drops whatever the repository sends and closes on errors, so a dead peer is noticed
/// (`isActive` false) before the next record is written.
private final class DiscardInbound: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
