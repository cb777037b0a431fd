import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the configuration file on SIGHUP (`systemctl reload passerelle`): what can change
/// without dropping associations is applied, the rest is named in the log as needing a restart.
/// An invalid file is reported with file:line and the running configuration is kept.
public struct ConfigurationReloadService: Service {
    let gateway: GatewayRuntime
    let path: String
    let logger: Logger
    let reloading: @Sendable (_ finished: Bool) -> Void

    /// `reloading(false)` when a reload starts and `reloading(true)` when it is over
    /// (systemd's RELOADING=1 and READY=1).
    public init(gateway: GatewayRuntime, path: String, logger: Logger,
                reloading: @escaping @Sendable (_ finished: Bool) -> Void = { _ in }) {
        self.gateway = gateway
        self.path = path
        self.logger = logger
        self.reloading = reloading
    }

    public func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reloading(false)
            defer { reloading(true) }
            do {
                let configuration = try ConfigurationLoader.load(path: path)
                gateway.apply(configuration)
            } catch {
                logger.error("configuration not reloaded, the running one is kept", metadata: ["error": "\(error)"])
            }
        }
    }
}

extension GatewayConfiguration {
    /// The settings that only take effect at the next start, named as in the file.
    func restartRequiredChanges(from running: GatewayConfiguration) -> [String] {
        var changed: [String] = []
        if dicom.port != running.dicom.port { changed.append("dicom.port") }
        if dicom.tls != running.dicom.tls { changed.append("dicom.tls") }
        if dicom.bind != running.dicom.bind { changed.append("dicom.bind") }
        if dicom.maxPDULength != running.dicom.maxPDULength { changed.append("dicom.max_pdu_length") }
        if dicom.idleTimeout != running.dicom.idleTimeout { changed.append("dicom.idle_timeout") }
        if spool != running.spool { changed.append("spool") }
        if status != running.status { changed.append("status.socket") }
        if site != running.site { changed.append("site") }
        if communities != running.communities { changed.append("community") }
        if knownAEs != running.knownAEs { changed.append("ae") }
        if siteDirectory != running.siteDirectory { changed.append("site_directory") }
        if audit != running.audit { changed.append("audit") }
        if hl7 != running.hl7 { changed.append("hl7") }
        return changed
    }

    /// The settings a reload applies at once, named as in the file.
    func liveChanges(from running: GatewayConfiguration) -> [String] {
        var changed: [String] = []
        if dicom.aeTitle != running.dicom.aeTitle { changed.append("dicom.ae_title") }
        if dicom.allowedCallingAETitles != running.dicom.allowedCallingAETitles { changed.append("dicom.allowed_calling_aets") }
        if dicom.maxAssociations != running.dicom.maxAssociations { changed.append("dicom.max_associations") }
        if dicom.checkCallingHost != running.dicom.checkCallingHost { changed.append("dicom.check_calling_host") }
        if upload != running.upload { changed.append("upload") }
        for name in Set(destinations.map(\.name) + running.destinations.map(\.name)).sorted()
        where destinations.first(where: { $0.name == name }) != running.destinations.first(where: { $0.name == name }) {
            changed.append("destinations.\(name)")
        }
        if consent != running.consent { changed.append("consent") }
        if backfill != running.backfill { changed.append("backfill") }
        return changed
    }
}
