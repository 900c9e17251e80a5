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
    router.add(middleware: OCIMiddleware(scheme: services.configuration.tlsCertificate == nil ? "http" : "https"))
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: BodyLimitMiddleware(limit: services.configuration.maxRequestSize))
    router.add(middleware: AuthenticationMiddleware(services: services))

    router.addRoutes(OperationsController(services: services).routes)
    addModelRoutes(to: router, services)
    addGateRoutes(to: router, services)
    addHubRoutes(to: router, services)
    router.addRoutes(
        OCIController(
            artifacts: services.ociArtifacts, pulls: services.pulls, owners: services.ociUploads,
            sender: BlobSender(services), access: services.access,
            metrics: services.metrics
        ).routes)
    return router
}

/// The `/v1` routes of blobs, models, tokens and trusted keys, each controller given only what it calls.
private func addModelRoutes(to router: Router<RegistryContext>, _ services: RegistryServices) {
    let (access, bodies, logger) = (services.access, services.bodies, services.logger)
    let sender = BlobSender(services)
    let pullGate = PullGate(pulls: services.pulls, access: access)
    router.addRoutes(
        BlobController(uploads: services.uploads, sender: sender, gate: pullGate, access: access, bodies: bodies, metrics: services.metrics).routes)
    router.addRoutes(
        ModelController(
            catalog: services.catalog, publishing: services.publishing, gate: pullGate, sender: sender, access: access, bodies: bodies,
            logger: logger
        ).routes)
    router.addRoutes(TokenController(tokens: services.tokenAdmin, access: access, bodies: bodies, logger: logger).routes)
    router.addRoutes(TrustController(trust: services.trust, access: access, bodies: bodies, logger: logger).routes)
}

/// The `/v1` routes of the gate (verify, policies, advisories, status, admission) and of audit.
private func addGateRoutes(to router: Router<RegistryContext>, _ services: RegistryServices) {
    let configuration = services.configuration
    router.addRoutes(
        GateController(
            gate: services.gate, curation: services.curation, policySet: services.policies, access: services.access, bodies: services.bodies,
            metrics: services.metrics,
            admission: AdmissionMapping(namespaces: configuration.admissionNamespaces, defaultEnvironment: configuration.admissionDefaultEnvironment),
            images: OCIImageReferences(hosts: configuration.ociHosts, artifacts: services.ociArtifacts),
            reloadPolicies: { actor throws(CustodyError) in try await services.reloadPolicies(actor: actor) }
        ).routes)
    router.addRoutes(AuditController(audit: services.audit, access: services.access).routes)
    router.addRoutes(
        MaintenanceController(
            collector: BlobCollector(index: services.database, blobs: services.blobs, log: services.database),
            grace: services.configuration.gcGrace, access: services.access, bodies: services.bodies
        ).routes)
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

/// The Hugging Face Hub–compatible routes (`/api/…`, `/{ns}/{name}/resolve/…`), over the same use cases.
private func addHubRoutes(to router: Router<RegistryContext>, _ services: RegistryServices) {
    let sender = BlobSender(services)
    let hub = HubRepository(catalog: services.catalog, pulls: services.pulls)
    let scheme = services.configuration.tlsCertificate == nil ? "http" : "https"
    router.addRoutes(
        HubController(
            hub: hub, sessions: services.pullSessions, sender: sender,
            access: services.access, bodies: services.bodies, scheme: scheme
        ).routes)
    router.addRoutes(
        HubUploadController(
            hub: hub, publishing: services.publishing, uploads: services.uploads, capabilities: services.uploadCapabilities,
            policies: services.policies, access: services.access, bodies: services.bodies, scheme: scheme, logger: services.logger,
            partSize: services.configuration.hubPartSize
        ).routes)
}
