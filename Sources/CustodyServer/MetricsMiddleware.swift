import CustodyRegistry
import Hummingbird
import Prometheus

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
