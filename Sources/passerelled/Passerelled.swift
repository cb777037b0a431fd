import ArgumentParser
import Foundation
import Gateway
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

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
        let level = logLevel
        LoggingSystem.bootstrap { label in
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
        let gateway = GatewayService(configuration: configuration, logger: logger, registry: registry)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: gateway)]
        if let config {
            services.append(.init(service: ConfigurationReloadService(gateway: gateway, path: config, logger: logger)))
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
