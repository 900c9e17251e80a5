import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Hummingbird
import NIOCore
import Prometheus

/// What operators and clients ask before anything else: liveness, readiness, metrics and the registry's public key.
struct OperationsController {
    let services: RegistryServices

    var routes: RouteCollection<RegistryContext> {
        let routes = RouteCollection(context: RegistryContext.self)
        routes.get("/healthz") { _, _ in "ok\n" }
        routes.get("/readyz") { _, _ in await readiness() }
        routes.get("/metrics") { _, _ in metrics() }
        // The registry's public signing key, for clients that pin it on first use. Public by nature: no token needed.
        routes.get("/v1/registry") { _, _ -> Response in
            try .json(API.RegistryInfo(publicKey: services.registryKey.publicKey.pemRepresentation, keyHint: services.registryKey.publicKey.hint))
        }
        return routes
    }

    /// Ready when the database answers, uploads can be staged and the disk is above its floor. A database that
    /// refuses connections is reported once the pool's wait for one runs out (``PostgresLog/connectionWait``); a busy
    /// one is waited for, so that a loaded host is not taken out of rotation for being slow.
    func readiness() async -> Response {
        var problems: [String] = []
        do {
            _ = try await services.database.tokenCount()
        } catch {
            problems.append("the database does not answer: \(error.message)")
        }
        if let problem = await services.blobs.unavailability() { problems.append(problem) }
        if let (reading, reserve) = services.disk.reading() {
            if reading.free < reserve {
                problems.append("\(reading.free) bytes free, below the \(reserve)-byte floor (limits.minFreeSpace)")
            }
        } else {
            problems.append("the data directory's file system cannot be read")
        }
        let text = problems.isEmpty ? "ready\n" : "not ready: " + problems.joined(separator: "; ") + "\n"
        return Response(status: problems.isEmpty ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func metrics() -> Response {
        if let (reading, _) = services.disk.reading() { services.metrics.freeBytes.record(Int64(reading.free)) }
        services.metrics.openConnections.record(Int64(services.connections.open))
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(bytes: services.metrics.exposition())))
    }
}
