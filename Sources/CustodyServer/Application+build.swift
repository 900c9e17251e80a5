import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
package import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Prometheus
package import ServiceLifecycle

/// The registry's routes and middleware.
package func buildRouter(_ services: RegistryServices) -> Router<RegistryContext> {
    let router = Router(context: RegistryContext.self)
    router.add(middleware: MetricsMiddleware(metrics: services.metrics))
    router.add(middleware: LogRequestsMiddleware(.debug))
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: BodyLimitMiddleware(limit: services.configuration.maxRequestSize))
    router.add(middleware: AuthenticationMiddleware(services: services))

    router.addRoutes(OperationsController(services: services).routes)
    router.addRoutes(BlobController(services: services).routes)
    router.addRoutes(ModelController(services: services).routes)
    router.addRoutes(TokenController(services: services).routes)
    router.addRoutes(TrustController(services: services).routes)
    router.addRoutes(GateController(services: services).routes)
    router.addRoutes(AuditController(audit: services.audit, access: services.access).routes)
    return router
}

/// The registry application: HTTP/1.1, or HTTPS when the configuration names a certificate and key.
/// `onRunning` receives the bound port (useful with port 0).
package func buildApplication(
    _ services: RegistryServices, jobs: [any Service] = [], onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let configuration = services.configuration
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [HeaderDeadlineHandler(timeout: .init(configuration.headerTimeout))],
        idleTimeout: .init(configuration.idleTimeout))
    var server = HTTPServerBuilder { responder in GuardedChannel(base: HTTP1Channel(responder: responder, configuration: http1)) }
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
            try TLSChannel(GuardedChannel(base: HTTP1Channel(responder: responder, configuration: http1)), tlsConfiguration: tls)
        }
    default:
        throw CustodyError(.invalidArgument, "TLS needs both a certificate and a key (--tls-cert and --tls-key)")
    }
    return Application(
        router: buildRouter(services),
        server: server,
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "custody",
            availableConnectionsDelegate: ConnectionLimit(maximum: configuration.maxConnections, state: services.connections)),
        services: jobs,
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
        logger: services.logger)
}

/// Builds the application with the registry's jobs and runs it until SIGTERM or SIGINT, finishing in-flight requests
/// first; the jobs then finish in reverse order (see ``RegistryServices/jobs``).
package func runRegistry(_ services: RegistryServices, onRunning: @escaping @Sendable (Int) async -> Void) async throws {
    try await buildApplication(services, jobs: services.jobs, onRunning: onRunning).runService()
}
