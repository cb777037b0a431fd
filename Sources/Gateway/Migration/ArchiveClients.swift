import DICOMweb
import Foundation
import Logging

/// The archive's DICOMweb client, shared by retrievals and surveys; made again when its
/// settings change.
actor ArchiveClients {
    private var entry: (settings: DestinationSettings, client: DICOMwebClient)?

    /// The destination called `archive`, else the first non-shared one the site uploads to.
    static func archive(in configuration: GatewayConfiguration) -> DestinationSettings? {
        configuration.destinations.first { $0.name == "archive" && $0.upload }
            ?? configuration.destinations.first { $0.upload && !$0.shared }
    }

    func client(for configuration: GatewayConfiguration, logger: Logger) async throws -> DICOMwebClient? {
        guard let settings = Self.archive(in: configuration) else { return nil }
        if let entry, entry.settings == settings { return entry.client }
        if let old = entry?.client { try? await old.shutdown() }
        let client = try settings.makeClient(upload: configuration.upload, logger: logger)
        entry = (settings, client)
        return client
    }

    func shutdown() async {
        try? await entry?.client.shutdown()
        entry = nil
    }
}
