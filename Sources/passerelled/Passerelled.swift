import ArgumentParser
import Foundation
import Gateway
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Systemd

@main
struct Passerelled: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passerelled",
        abstract: "Passerelle, the site gateway of a regional medical-imaging network.",
        version: PasserelleVersion.current)

    @Option(help: "Configuration file (without it: the embedded default, AE PASSERELLE on port 11112, spool ./passerelle-data).")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        ProcessMemory.limitMallocArenas()
        let level = logLevel
        // Under systemd, stderr is the journal: send structured entries (PASSERELLE_* fields).
        let toJournal = JournalLogHandler.shouldUseJournal()
        LoggingSystem.bootstrap { label in
            if toJournal {
                var handler = JournalLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "passerelled")
        let configuration: GatewayConfiguration
        do {
            configuration = try config.map { try ConfigurationLoader.load(path: $0) } ?? .embeddedDefault
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("passerelled: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        if config == nil {
            logger.notice("no --config given: running on the embedded default configuration")
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let notifier = SystemdNotifier(logger: logger)
        let gateway: GatewayRuntime
        do {
            gateway = try GatewayRuntime(
                configuration: configuration, logger: logger, registry: registry,
                onListening: { port in
                    let dicom = configuration.dicom
                    let tls = dicom.tls.map { " and TLS port \($0.port)" } ?? ""
                    notifier.ready(status: dicom.clearListener ? "listening as \(dicom.aeTitle) on port \(port)\(tls)"
                                   : "listening as \(dicom.aeTitle) on TLS port \(port)")
                },
                onStopping: { notifier.stopping(status: "stopping: finishing running transfers") })
        } catch {
            logger.critical("passerelled cannot run: \(error)")
            FileHandle.standardError.write(Data("passerelled: \(error)\n".utf8))
            throw ExitCode.failure
        }
        // Started in this order and stopped in reverse: the watchdog first, so that it is
        // stopped last and keeps pinging while the gateway drains.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let watchdog = WatchdogPinger(gateway: gateway, group: .singleton, logger: logger) {
            services.append(.init(service: watchdog))
        }
        services += gateway.services.map { .init(service: $0) }
        if notifier.isEnabled {
            services.append(.init(service: StatusLineService(gateway: gateway, notifier: notifier)))
        }
        if let config {
            services.append(.init(service: ConfigurationReloadService(
                gateway: gateway, path: config, logger: logger,
                reloading: { finished in
                    if finished { notifier.ready() } else { notifier.reloading(status: "reloading the configuration") }
                })))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("passerelled cannot run: \(error)")
            FileHandle.standardError.write(Data("passerelled: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
