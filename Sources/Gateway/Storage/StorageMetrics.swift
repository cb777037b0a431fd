import Metrics

/// The storage SCP's counters (swift-metrics; Prometheus text on the status socket).
/// Made when the provider is, so after the daemon bootstraps the metrics system.
struct StorageMetrics: Sendable {
    let associationsAccepted = Counter(label: "passerelle_associations_total", dimensions: [("outcome", "accepted")])
    let associationsRejected = Counter(label: "passerelle_associations_total", dimensions: [("outcome", "rejected")])
    let associationsAborted = Counter(label: "passerelle_associations_aborted_total")
    let instancesStored = Counter(label: "passerelle_instances_received_total", dimensions: [("outcome", "stored")])
    let instancesDuplicate = Counter(label: "passerelle_instances_received_total", dimensions: [("outcome", "duplicate")])
    let instancesRevised = Counter(label: "passerelle_instances_received_total", dimensions: [("outcome", "revised")])
    let instancesRefused = Counter(label: "passerelle_instances_received_total", dimensions: [("outcome", "refused")])
    let bytesStored = Counter(label: "passerelle_received_bytes_total")
    let storeDuration = Timer(label: "passerelle_store_durability_seconds")
}
