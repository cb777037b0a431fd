import DICOMCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// A DICOM upper-layer requestor (SCU): opens associations with a called AE.
///
/// ```swift
/// let association = try await DICOMClient.connect(
///     host: "pacs", port: 104, callingAETitle: "PASSERELLE", calledAETitle: "PACS",
///     presentationContexts: try DICOMClient.presentationContexts(forFiles: paths),
///     group: MultiThreadedEventLoopGroup.singleton, logger: logger)
/// for path in paths { _ = try await association.store(fileAt: path) }
/// try await association.release()
/// ```
public struct DICOMClient: Sendable {
    /// How long each phase may take; an expiry aborts the association.
    public struct Timeouts: Sendable, Hashable {
        /// Opening the TCP connection.
        public var connect: TimeAmount
        /// Waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP, and (as ARTIM, PS3.8 §9.1.5) for
        /// the peer to close after our A-ABORT.
        public var association: TimeAmount
        /// Waiting for a DIMSE response, and for progress while sending a data set.
        public var dimse: TimeAmount

        public init(connect: TimeAmount = .seconds(10), association: TimeAmount = .seconds(30),
                    dimse: TimeAmount = .seconds(60)) {
            self.connect = connect
            self.association = association
            self.dimse = dimse
        }
    }

    /// Which wait timed out (``DICOMNetworkError/timeout``).
    public enum TimeoutKind: Sendable, Hashable {
        case connect
        /// A-ASSOCIATE-AC/RJ.
        case association
        /// A-RELEASE-RP.
        case release
        /// DIMSE response (or data set progress).
        case dimse

        var explanation: String {
            switch self {
            case .connect: "connecting"
            case .association: "waiting for the association answer (A-ASSOCIATE-AC/RJ)"
            case .release: "waiting for the release answer (A-RELEASE-RP)"
            case .dimse: "waiting for the DIMSE response"
            }
        }
    }

    /// The largest number of presentation contexts one A-ASSOCIATE-RQ carries (odd IDs 1…255).
    public static let maximumPresentationContexts = 128

    /// Connects, proposes `presentationContexts` (and `roleSelections`, SCP/SCU Role Selection
    /// sub-items, PS3.7 §D.3.3.4: e.g. the SCP role for the storage classes of a C-GET, see
    /// ``proposals(forGetting:queryRetrieve:)``) and waits for the association. The roles the
    /// peer accepted are in `association.associateAC.userInformation.roleSelections`.
    ///
    /// With `tls` (a client context: versions, trusted CAs, our certificate), the association
    /// runs over TLS (PS3.15 Annex B); the peer's certificate must name `host` (its SAN IP
    /// address when `host` is one).
    ///
    /// Throws ``DICOMNetworkError``: `.associationRejected` with the peer's ``AssociateRJ``,
    /// `.aborted` with its ``AAbort``, `.timeout`, `.connectionFailed`, `.connectionClosed`,
    /// `.tlsHandshakeFailed`.
    public static func connect(
        host: String, port: Int, callingAETitle: String, calledAETitle: String,
        presentationContexts: [PresentationContextProposal], roleSelections: [RoleSelection] = [],
        maximumPDULength: UInt32 = 262144, tls: NIOSSLContext? = nil,
        timeouts: Timeouts = Timeouts(), group: any EventLoopGroup,
        threadPool: NIOThreadPool = .singleton, logger: Logger
    ) async throws(DICOMNetworkError) -> DICOMAssociation {
        for (role, title) in [("calling", callingAETitle), ("called", calledAETitle)] where !isValidAETitle(title) {
            throw DICOMNetworkError(code: .invalidAETitle,
                                   message: "invalid \(role) AE title \"\(title)\": 1 to 16 printable ASCII characters, no backslash")
        }
        guard presentationContexts.count <= maximumPresentationContexts else {
            throw DICOMNetworkError(code: .tooManyPresentationContexts,
                                   message: "\(presentationContexts.count) presentation contexts proposed; "
                                       + "an association carries at most \(maximumPresentationContexts)")
        }
        var userInformation = UserInformation()
        userInformation.maximumLength = maximumPDULength
        userInformation.implementationClassUID = Implementation.classUID
        userInformation.implementationVersionName = Implementation.versionName
        userInformation.roleSelections = roleSelections
        let request = AssociateRQ(
            calledAETitle: calledAETitle, callingAETitle: callingAETitle,
            presentationContexts: presentationContexts, userInformation: userInformation)

        var logger = logger
        logger[metadataKey: "peer"] = "\(host):\(port)"
        logger[metadataKey: "called_ae"] = "\(calledAETitle)"
        let eventLoop = group.next()
        let established = eventLoop.makePromise(of: RequestorHandler.Negotiated.self)
        let ended = eventLoop.makePromise(of: DICOMNetworkError.self)
        let handlerLogger = logger
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeouts.connect)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var handlers: [any ChannelHandler] = []
                    if let tls {
                        // SNI takes a name only; an address is checked against the SAN by NIOSSL.
                        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
                        handlers.append(try NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : host))
                    }
                    handlers += [
                        ByteToMessageHandler(PDUDecoder(maximumPDULength: maximumPDULength)),
                        MessageToByteHandler(PDUEncoder()),
                        RequestorHandler(request: request, timeouts: timeouts, established: established,
                                         ended: ended, threadPool: threadPool, logger: handlerLogger),
                    ]
                    try channel.pipeline.syncOperations.addHandlers(handlers)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            let failure: DICOMNetworkError = if case ChannelError.connectTimeout = error {
                .timedOut(.connect)
            } else {
                DICOMNetworkError(code: .connectionFailed, message: "cannot connect to \(host):\(port): \(error)")
            }
            established.fail(failure)
            ended.succeed(failure)
            throw failure
        }
        let negotiated: RequestorHandler.Negotiated
        do {
            negotiated = try await established.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error as? DICOMNetworkError
                ?? DICOMNetworkError(code: .connectionClosed, message: "association failed: \(error)")
        }
        logger.debug("association established", metadata: [
            "accepted_contexts": "\(negotiated.acceptedContexts.count)/\(presentationContexts.count)",
            "peer_max_pdu": "\(negotiated.associateAC.userInformation.maximumLength)",
        ])
        return DICOMAssociation(
            channel: channel, negotiated: negotiated, ended: ended.futureResult, callingAETitle: callingAETitle,
            calledAETitle: calledAETitle, timeouts: timeouts, threadPool: threadPool, logger: logger)
    }

    /// PS3.5 §6.2, VR AE: up to 16 characters of the default repertoire without backslash or
    /// control characters; leading and trailing spaces are not significant, so not all spaces.
    static func isValidAETitle(_ title: String) -> Bool {
        let bytes = Array(title.utf8)
        return (1...16).contains(bytes.count) && bytes.allSatisfy { (0x20...0x7E).contains($0) && $0 != 0x5C }
            && bytes.contains { $0 != 0x20 }
    }
}
