import CustodyCore
import CustodyRegistry
import Foundation
import Hummingbird

/// Upkeep an administrator starts: garbage collection of unreferenced blobs.
struct MaintenanceController {
    let collector: BlobCollector
    let grace: Duration
    let access: Access
    let bodies: JSONBodies

    struct CollectRequest: Decodable {
        /// List what would go, delete nothing.
        var dryRun: Bool?
        /// Overrides `gc.grace` (`30m`, `24h`, `7d`; at least `1s`, the resolution of the records' times).
        var grace: String?
    }

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.post("/v1/gc") { request, context in try await collect(request, context) }
        return routes
    }

    func collect(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [])
        let asked = try await bodies.decode(request, as: CollectRequest.self, what: "a garbage collection request")
        let grace = try asked.grace.map { text throws(CustodyError) in try RegistryConfiguration.gracePeriod(text, source: "grace") } ?? grace
        let report = try await collector.run(grace: grace, dryRun: asked.dryRun ?? false, now: Date(), actor: context.actor)
        return try .json(report)
    }
}
