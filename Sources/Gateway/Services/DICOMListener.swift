import DICOMNetwork
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Spool

/// The site's DICOM ports as a `Service`: the clear one and/or the TLS one (`[dicom.tls]`),
/// same provider and policy. Binds both (READY once both are bound), accepts associations
/// until a graceful stop is asked, then stops accepting on both and lets running transfers
/// end within the grace period (the rest get an A-ABORT: nothing unfinished is ever
/// acknowledged).
final class DICOMListener: Service, Sendable {
    private let clear: DICOMServer?
    private let secure: DICOMServer?
    private let configuration: GatewayConfiguration
    private let spool: Spool
    /// Bound with the clear port, or the TLS port when there is no clear one.
    private let listening: ListeningSignal
    /// Bound with the TLS port.
    private let tlsListening: ListeningSignal
    /// How long running transfers may continue after a stop is asked.
    private let gracePeriod: Duration
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void
    private let onStopping: @Sendable () -> Void
    /// Other listeners that must be bound before READY (the HL7 port).
    private let others: [ListeningSignal]

    init(clear: DICOMServer?, secure: DICOMServer?, configuration: GatewayConfiguration, spool: Spool,
         listening: ListeningSignal, tlsListening: ListeningSignal, gracePeriod: Duration, logger: Logger,
         others: [ListeningSignal] = [],
         onListening: @escaping @Sendable (Int) -> Void, onStopping: @escaping @Sendable () -> Void) {
        precondition(clear != nil || secure != nil, "the configuration guarantees a port to listen on")
        self.others = others
        self.clear = clear
        self.secure = secure
        self.configuration = configuration
        self.spool = spool
        self.listening = listening
        self.tlsListening = tlsListening
        self.gracePeriod = gracePeriod
        self.logger = logger
        self.onListening = onListening
        self.onStopping = onStopping
    }

    func run() async throws {
        let dicom = configuration.dicom
        var clearPort: Int?
        var tlsPort: Int?
        do {
            clearPort = try await clear?.start()
        } catch {
            end()
            throw GatewayError.cannotListen(host: dicom.bind, port: dicom.port, error)
        }
        do {
            tlsPort = try await secure?.start()
        } catch {
            await clear?.shutdown(gracePeriod: .zero)
            end()
            throw GatewayError.cannotListen(host: dicom.bind, port: dicom.tls?.port ?? 0, error)
        }
        for other in others { _ = await other.wait() }
        let spooled = (try? spool.database.counts().instances) ?? 0
        logger.info("listening", metadata: [
            "ae_title": "\(dicom.aeTitle)", "community_ae_titles": "\(configuration.communities.map(\.aeTitle))",
            "bind": "\(dicom.bind)", "port": "\(clearPort.map(String.init) ?? "off")",
            "tls_port": "\(tlsPort.map(String.init) ?? "off")",
            "tls_client_certificate": "\(dicom.tls.map { $0.listener.requireClientCertificate ? "required" : "not asked" } ?? "-")",
            "spool": "\(configuration.spool.path)",
            "spooled_instances": "\(spooled)", "status_socket": "\(configuration.statusSocketPath)",
        ])
        if let tlsPort { tlsListening.bound(port: tlsPort) }
        // The precondition of init: one of them is bound.
        let port = clearPort ?? tlsPort ?? 0
        onListening(port)
        listening.bound(port: port)
        try? await gracefulShutdown()
        onStopping()
        logger.info("stopping: no new associations, waiting for running transfers")
        await withTaskGroup(of: Void.self) { stopping in
            for server in [clear, secure].compactMap({ $0 }) {
                stopping.addTask { [gracePeriod] in await server.shutdown(gracePeriod: gracePeriod) }
            }
        }
        end()
    }

    private func end() {
        listening.end()
        tlsListening.end()
    }
}

/// Tells who waits for it (the watchdog, systemd's status line, the status socket) once the
/// DICOM port is bound, and on which port; waiters get nil if it never will be.
final class ListeningSignal: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Int?, Never>])
        case bound(Int)
        case ended(Int?)
    }

    private let state = NIOLockedValueBox(State.waiting([]))

    /// The bound port, nil before (or if it never was).
    var port: Int? {
        switch state.withLockedValue({ $0 }) {
        case .waiting: nil
        case .bound(let port): port
        case .ended(let port): port
        }
    }

    func bound(port: Int) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Int?, Never>] in
            guard case .waiting(let waiters) = state else { return [] }
            state = .bound(port)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    /// The listener is gone (stopped, or never bound).
    func end() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Int?, Never>] in
            switch state {
            case .waiting(let waiters):
                state = .ended(nil)
                return waiters
            case .bound(let port):
                state = .ended(port)
                return []
            case .ended:
                return []
            }
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// Returns the port once bound; nil if the listener ended first.
    func wait() async -> Int? {
        await withCheckedContinuation { continuation in
            let immediate: Int?? = state.withLockedValue { state in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                case .bound(let port): return .some(port)
                case .ended(let port): return .some(port)
                }
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }
}
