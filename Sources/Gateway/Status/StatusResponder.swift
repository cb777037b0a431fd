import Foundation
import Prometheus
import Spool

/// Answers status-socket requests from the live gateway state. Blocking (database
/// reads): the status server calls it on a thread pool.
public struct StatusResponder: Sendable {
    let configuration: GatewayConfiguration
    let spool: Spool
    let startedAt: Date
    let activeAssociations: @Sendable () -> Int
    let listeningPort: Int
    let registry: PrometheusCollectorRegistry?

    public init(configuration: GatewayConfiguration, spool: Spool, startedAt: Date, listeningPort: Int,
                registry: PrometheusCollectorRegistry?, activeAssociations: @escaping @Sendable () -> Int) {
        self.configuration = configuration
        self.spool = spool
        self.startedAt = startedAt
        self.listeningPort = listeningPort
        self.registry = registry
        self.activeAssociations = activeAssociations
    }

    /// One response line (without the newline) for one request line.
    public func respond(to line: String) -> String {
        do {
            let request = try StatusRequest.parse(line)
            return try Self.encode(ok: true, result: respond(to: request))
        } catch let error as StatusError {
            return (try? Self.encode(ok: false, error: error)) ?? #"{"ok":false}"#
        } catch {
            let failure = StatusError(code: "internal", message: "\(error)")
            return (try? Self.encode(ok: false, error: failure)) ?? #"{"ok":false}"#
        }
    }

    private func respond(to request: StatusRequest) throws -> AnyEncodable {
        switch request {
        case .status:
            return AnyEncodable(try status())
        case .queue:
            return AnyEncodable(try spool.database.studySummaries())
        case .metrics:
            return AnyEncodable(["text": try metricsText()])
        case .retry, .pause, .resume:
            // No uploader yet: say so rather than pretend.
            throw StatusError(code: "no_destination",
                              message: "no upload destination is active in this version: studies wait in the spool")
        }
    }

    public func status() throws -> StatusReport {
        let totals = try spool.database.totalsByRevisionState()
        let studies = try spool.database.counts().studies
        let disk = try spool.files.diskSpace()
        var states: [String: StatusReport.Totals] = [:]
        for (state, value) in totals {
            states[state == "current" ? "queued" : state] = .init(instances: value.instances, bytes: value.bytes)
        }
        return StatusReport(
            version: PasserelleVersion.current,
            startedAt: startedAt,
            uptimeSeconds: Int(Date().timeIntervalSince(startedAt)),
            listening: [.init(aeTitle: configuration.dicom.aeTitle, bind: configuration.dicom.bind, port: listeningPort)],
            associations: .init(active: activeAssociations(), maximum: configuration.dicom.maxAssociations),
            spool: .init(path: spool.files.root, studies: studies, states: states, freeBytes: disk.available,
                         minimumFreeBytes: spool.minimumFreeBytes, belowMinimumFree: disk.available < spool.minimumFreeBytes),
            destinations: [])
    }

    private func metricsText() throws -> String {
        guard let registry else { return "" }
        let report = try status()
        registry.makeGauge(name: "passerelle_associations_active").set(Int64(report.associations.active))
        registry.makeGauge(name: "passerelle_spool_free_bytes").set(Int64(clamping: report.spool.freeBytes))
        for (state, totals) in report.spool.states {
            registry.makeGauge(name: "passerelle_spool_instances", labels: [("state", state)]).set(Int64(totals.instances))
            registry.makeGauge(name: "passerelle_spool_bytes", labels: [("state", state)]).set(Int64(totals.bytes))
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    static func encode(ok: Bool, result: AnyEncodable? = nil, error: StatusError? = nil) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(StatusResponse(ok: ok, result: result, error: error))
        return String(decoding: data, as: UTF8.self)
    }
}

struct StatusResponse: Encodable {
    var ok: Bool
    var result: AnyEncodable?
    var error: StatusError?
}

struct AnyEncodable: Encodable {
    let encodeValue: (any Encoder) throws -> Void
    init(_ value: some Encodable) { encodeValue = value.encode(to:) }
    func encode(to encoder: any Encoder) throws { try encodeValue(encoder) }
}
