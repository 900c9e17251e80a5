import CustodyCore
import CustodyStore
import Hummingbird
import Prometheus

/// Pulls by consumer tokens pass through their environments' policies; admin, publisher and security tokens carry no
/// environment, so their pulls are not gated and are recorded as ungated.
extension RegistryServices {
    enum PullGrant {
        case ungated
        case allowed(API.Decision)
    }

    /// Decides a pull of `model@version` for the request's token, throwing 403 problem+json (with every
    /// environment's decision and rollback target) when no environment allows it. A denial is always recorded.
    func gatePull(_ model: ModelName, version: String, context: RegistryContext) async throws -> PullGrant {
        guard let token = context.token, token.role == .consumer else { return .ungated }
        guard !token.environments.isEmpty else {
            throw Problem(.forbidden, "consumer token \(token.id) is bound to no environment, so no policy can allow a pull")
        }
        var decisions: [API.Decision] = []
        for environment in token.environments {
            let decision = try await gate.decide(model, .version(version), environment: environment)
            if decision.allowed { return .allowed(decision) }
            decisions.append(decision)
        }
        for decision in decisions {
            try await gate.record(decision, type: .pullDenied, actor: context.actor, client: context.clientAddress)
        }
        metrics.decisions(allowed: false).increment()
        let reasons = decisions.map { decision in
            "\(decision.environment): " + decision.reasons.joined(separator: "; ")
                + (decision.rollback.map { "; rollback target \(model)@\($0.version)" } ?? "")
        }
        var problem = Problem(.forbidden, "\(model)@\(version) may not be pulled: " + reasons.joined(separator: " | "))
        problem.decisions = decisions
        throw problem
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
