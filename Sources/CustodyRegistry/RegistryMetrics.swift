package import CustodyCore
package import CustodyStorage
package import Prometheus

/// The registry's Prometheus metrics, kept in one collector registry per application (so that tests can build many
/// applications in one process) and served at `/metrics`.
package final class RegistryMetrics: Sendable {
    package let registry = PrometheusCollectorRegistry()
    package let bytesIn: Counter
    package let bytesOut: Counter
    package let publishes: Counter
    package let pulls: Counter
    package let blobUploads: Counter
    package let redirects: Counter
    package let allowedDecisions: Counter
    package let deniedDecisions: Counter
    package let freeBytes: Gauge
    package let openConnections: Gauge

    package init() {
        bytesIn = registry.makeCounter(name: "custody_bytes_received_total", help: "Blob bytes received in uploads")
        bytesOut = registry.makeCounter(name: "custody_bytes_sent_total", help: "Blob bytes sent in downloads")
        publishes = registry.makeCounter(name: "custody_publishes_total", help: "Versions created")
        pulls = registry.makeCounter(name: "custody_pulls_total", help: "Pulls started (registry signature fetched)")
        blobUploads = registry.makeCounter(name: "custody_blob_uploads_total", help: "Blobs committed")
        redirects = registry.makeCounter(
            name: "custody_blob_redirects_total", help: "Blob reads answered with a presigned redirect to the blob store")
        allowedDecisions = registry.makeCounter(
            name: "custody_decisions_total", labels: [("result", "allowed")], help: "Gate decisions by result")
        deniedDecisions = registry.makeCounter(
            name: "custody_decisions_total", labels: [("result", "denied")], help: "Gate decisions by result")
        freeBytes = registry.makeGauge(name: "custody_free_bytes", help: "Free bytes on the file system of the data directory")
        openConnections = registry.makeGauge(name: "custody_open_connections", help: "Open client connections")
    }

    package func requests(method: String, status: Int) -> Counter {
        registry.makeCounter(
            name: "custody_http_requests_total", labels: [("method", method), ("status", String(status))],
            help: "HTTP requests by method and status")
    }

    package func decisions(allowed: Bool) -> Counter {
        allowed ? allowedDecisions : deniedDecisions
    }

    package func scans(_ verdict: Verdict) -> Counter {
        registry.makeCounter(
            name: "custody_scans_total", labels: [("verdict", verdict.rawValue)], help: "Bundles scanned at publish, by verdict")
    }

    package func latency(method: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            name: "custody_http_request_duration_seconds", labels: [("method", method)],
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
                .seconds(60),
            ],
            help: "HTTP request latency by method")
    }

    package func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
