import CustodyCore
import CustodyRegistry
import CustodyStorage
import Hummingbird

/// Pulls by consumer tokens pass through their environments' policies (``Pulls``); admin, publisher and security
/// tokens carry no environment, so their pulls are not gated and are recorded as ungated.
extension RegistryServices {
    var pulls: Pulls { Pulls(gate: gate, catalog: database, metrics: metrics) }
}

/// ``Pulls`` for a request of the `/v1` API: refusals answered as problem+json.
struct PullGate: Sendable {
    let pulls: Pulls
    let access: Access

    /// Grants the pull of `model@version` for the request's token (recording it), answering a refusal as 403
    /// problem+json with every environment's decision and rollback target.
    func grant(_ model: ModelName, version: String, fetching: String, context: RegistryContext) async throws -> Pulls.Grant {
        do {
            return try await pulls.grant(
                model, version: version, fetching: fetching, token: context.token, actor: context.actor, client: context.clientAddress)
        } catch let denied as Pulls.Denied {
            var problem = ProblemResponse(.forbidden, denied.message)
            problem.decisions = denied.decisions
            throw problem
        }
    }

    /// A blob may be fetched by a consumer when it belongs to a version one of its environments allows.
    func mayFetch(_ digest: ContentDigest, request: Request, context: RegistryContext) async throws {
        guard let token = context.token, try await !pulls.mayFetch(blob: digest, token: token) else { return }
        throw await access.deny(
            .forbidden,
            "blob \(digest) is not part of any version allowed in \(token.environments.joined(separator: ", "))",
            request: request, context: context)
    }
}
