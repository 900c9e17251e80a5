import CustodyCore
import Hummingbird
import Prometheus

/// The registry's Prometheus metrics, kept in one collector registry per application (so that tests can build many
/// applications in one process) and served at `/metrics`.
final class RegistryMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let bytesIn: Counter
    let bytesOut: Counter
    let publishes: Counter
    let pulls: Counter
    let blobUploads: Counter
    let allowedDecisions: Counter
    let deniedDecisions: Counter
    let freeBytes: Gauge
    let openConnections: Gauge

    init() {
        bytesIn = registry.makeCounter(name: "custody_bytes_received_total", help: "Blob bytes received in uploads")
        bytesOut = registry.makeCounter(name: "custody_bytes_sent_total", help: "Blob bytes sent in downloads")
        publishes = registry.makeCounter(name: "custody_publishes_total", help: "Versions created")
        pulls = registry.makeCounter(name: "custody_pulls_total", help: "Pulls started (registry signature fetched)")
        blobUploads = registry.makeCounter(name: "custody_blob_uploads_total", help: "Blobs committed")
        allowedDecisions = registry.makeCounter(
            name: "custody_decisions_total", labels: [("result", "allowed")], help: "Gate decisions by result")
        deniedDecisions = registry.makeCounter(
            name: "custody_decisions_total", labels: [("result", "denied")], help: "Gate decisions by result")
        freeBytes = registry.makeGauge(name: "custody_free_bytes", help: "Free bytes on the file system of the data directory")
        openConnections = registry.makeGauge(name: "custody_open_connections", help: "Open client connections")
    }

    func requests(method: String, status: Int) -> Counter {
        registry.makeCounter(
            name: "custody_http_requests_total", labels: [("method", method), ("status", String(status))],
            help: "HTTP requests by method and status")
    }

    func scans(_ verdict: Verdict) -> Counter {
        registry.makeCounter(
            name: "custody_scans_total", labels: [("verdict", verdict.rawValue)], help: "Bundles scanned at publish, by verdict")
    }

    func latency(method: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            name: "custody_http_request_duration_seconds", labels: [("method", method)],
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
                .seconds(60),
            ],
            help: "HTTP request latency by method")
    }

    func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

/// Counts requests by method and status and records their latency.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: RegistryMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let method = request.method.rawValue
        do {
            let response = try await next(request, context)
            metrics.requests(method: method, status: response.status.code).increment()
            metrics.latency(method: method).record(ContinuousClock.now - start)
            return response
        } catch let error as any HTTPResponseError {
            metrics.requests(method: method, status: error.status.code).increment()
            metrics.latency(method: method).record(ContinuousClock.now - start)
            throw error
        }
    }
}
