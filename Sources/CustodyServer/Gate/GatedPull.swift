import CustodyCore
import CustodyStore
import Hummingbird
import Prometheus

/// Pulls by consumer tokens pass through their environments' policies (``Pulls``); admin, publisher and security
/// tokens carry no environment, so their pulls are not gated and are recorded as ungated.
extension RegistryServices {
    var pulls: Pulls { Pulls(gate: gate, metrics: metrics) }

    /// Grants the pull of `model@version` for the request's token (recording it), answering a refusal as 403
    /// problem+json with every environment's decision and rollback target.
    func gatePull(_ model: ModelName, version: String, fetching: String, context: RegistryContext) async throws -> Pulls.Grant {
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
    func gateBlob(_ digest: ContentDigest, request: Request, context: RegistryContext) async throws {
        guard let token = context.token, token.role == .consumer else { return }
        let holders = try await database.versions(holding: digest)
        for holder in holders {
            guard let model = try? ModelName(parsing: holder.model) else { continue }
            for environment in token.environments {
                if try await gate.decide(model, .version(holder.version), environment: environment).allowed { return }
            }
        }
        throw await deny(
            .forbidden,
            "blob \(digest) is not part of any version allowed in \(token.environments.joined(separator: ", "))",
            request: request, context: context)
    }
}
