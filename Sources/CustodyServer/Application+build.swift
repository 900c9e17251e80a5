import CustodyCore
import CustodyStore
import Foundation
public import Hummingbird
import UnixSignals
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// The registry's routes and middleware.
public func buildRouter(_ services: RegistryServices) -> Router<RegistryContext> {
    let router = Router(context: RegistryContext.self)
    router.add(middleware: MetricsMiddleware(metrics: services.metrics))
    router.add(middleware: LogRequestsMiddleware(.debug))
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: AuthenticationMiddleware(services: services))

    router.get("/healthz") { _, _ in "ok\n" }
    router.get("/readyz") { _, _ -> Response in
        // Ready when the database answers and uploads can be staged.
        let ready = (try? await services.database.tokenCount()) != nil
            && FileManager.default.isWritableFile(atPath: services.blobs.stagingDirectory)
        return Response(status: ready ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: ready ? "ready\n" : "not ready\n")))
    }
    router.get("/metrics") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(bytes: services.metrics.exposition())))
    }
    // The registry's public signing key, for clients that pin it on first use. Public by nature: no token needed.
    router.get("/v1/registry") { _, _ -> Response in
        try .json(API.RegistryInfo(publicKey: services.registryKey.publicKey.pemRepresentation, keyHint: services.registryKey.publicKey.hint))
    }
    BlobController(services: services).register(on: router)
    ModelController(services: services).register(on: router)
    TokenController(services: services).register(on: router)
    GateController(services: services).register(on: router)
    AuditController(services: services).register(on: router)
    return router
}

/// The registry application: HTTP/1.1, or HTTPS when the configuration names a certificate and key.
/// `onRunning` receives the bound port (useful with port 0).
public func buildApplication(
    _ services: RegistryServices, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let configuration = services.configuration
    var server = HTTPServerBuilder { responder in LargeReadChannel(base: HTTP1Channel(responder: responder)) }
    switch (configuration.tlsCertificate, configuration.tlsKey) {
    case (nil, nil):
        break
    case (let certificate?, let key?):
        let chain: [NIOSSLCertificateSource]
        let privateKey: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
        } catch {
            throw CustodyError(.invalidArgument, "\(certificate): not a PEM certificate chain (\(error))")
        }
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw CustodyError(.invalidArgument, "\(key): not a PEM private key (\(error))")
        }
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        server = HTTPServerBuilder { responder in
            try TLSChannel(LargeReadChannel(base: HTTP1Channel(responder: responder)), tlsConfiguration: tls)
        }
    default:
        throw CustodyError(.invalidArgument, "TLS needs both a certificate and a key (--tls-cert and --tls-key)")
    }
    return Application(
        router: buildRouter(services),
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "custody"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
        logger: services.logger)
}

/// Builds the application and runs it until SIGTERM or SIGINT, finishing in-flight requests first.
public func runRegistry(_ services: RegistryServices, onRunning: @escaping @Sendable (Int) async -> Void) async throws {
    let application = try buildApplication(services, onRunning: onRunning)
    try await withThrowingTaskGroup(of: Void.self) { group in
        // SIGHUP reloads the policies; requests keep being answered with the set in force meanwhile.
        group.addTask {
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                _ = try? await services.reloadPolicies(actor: "SIGHUP")
            }
        }
        group.addTask { await services.log.run() }
        group.addTask { await services.database.runCheckpoints() }
        group.addTask { await services.gate.recorder.run() }
        try await application.runService()
        try? await services.gate.recorder.writeRepeats(all: true)
        try? await services.log.checkpoint()
        group.cancelAll()
    }
}
