package import CustodyCore
package import CustodyStorage
package import Prometheus

/// Pulls, for every front door: a consumer token's environments decide whether a version may be pulled, and every
/// pull is recorded — a `pull` event when it goes ahead (gated or not), a `pull.denied` event per environment when it
/// does not — so that exposure reports cover every way weights leave the registry. No HTTP here: an adapter maps
/// ``Denied`` to its protocol's refusal.
package struct Pulls: Sendable {
    package let gate: GateService
    package let catalog: any ModelCatalog
    package let metrics: RegistryMetrics

    package init(gate: GateService, catalog: any ModelCatalog, metrics: RegistryMetrics) {
        self.gate = gate
        self.catalog = catalog
        self.metrics = metrics
    }

    package enum Grant: Sendable {
        /// The token carries no environment (admin, publisher, security; nil for none): nothing to decide.
        case ungated(role: Role?)
        case allowed(API.Decision)
    }

    /// No environment of the token allows the version; `decisions` has each environment's, with its rollback target.
    package struct Denied: Error, Sendable {
        package let message: String
        package let decisions: [API.Decision]
    }

    /// What the gate made of a pull, before anything is recorded.
    package enum Outcome: Sendable {
        case granted(Grant)
        case denied(Denied)
    }

    /// Decides the pull of `model@version` by `token` and records it. `fetching` says what starts the pull, for the
    /// record of an ungated one (`bundle sha256:…`, `file config.json`).
    package func grant(
        _ model: ModelName, version: String, fetching: String, token: TokenRecord?, actor: String, client: String?
    ) async throws -> Grant {
        let outcome = try await decide(model, version: version, token: token)
        try await record(outcome, model, version: version, fetching: fetching, actor: actor, client: client)
        switch outcome {
        case .granted(let grant): return grant
        case .denied(let denied): throw denied
        }
    }

    /// Decides the pull of `model@version` by `token` without recording it: the first environment of the token that
    /// allows it grants it; when none does, every environment's decision is in the refusal. A consumer token bound to
    /// no environment is refused (`forbidden`).
    package func decide(_ model: ModelName, version: String, token: TokenRecord?) async throws -> Outcome {
        guard let token, token.role == .consumer else { return .granted(.ungated(role: token?.role)) }
        guard !token.environments.isEmpty else {
            throw CustodyError(.forbidden, "consumer token \(token.id) is bound to no environment, so no policy can allow a pull")
        }
        var decisions: [API.Decision] = []
        for environment in token.environments {
            let decision = try await gate.decide(model, .version(version), environment: environment)
            if decision.allowed { return .granted(.allowed(decision)) }
            decisions.append(decision)
        }
        let reasons = decisions.map { decision in
            "\(decision.environment): " + decision.reasons.joined(separator: "; ")
                + (decision.rollback.map { "; rollback target \(model)@\($0.version)" } ?? "")
        }
        return .denied(Denied(message: "\(model)@\(version) may not be pulled: " + reasons.joined(separator: " | "), decisions: decisions))
    }

    /// Records a decided pull: a `pull` event when it went ahead (gated or not), a `pull.denied` event per
    /// environment when it did not. `via` names the front door and client, appended to the event's detail.
    package func record(
        _ outcome: Outcome, _ model: ModelName, version: String, fetching: String, actor: String, client: String?, via: String? = nil
    ) async throws {
        let suffix = via.map { "; \($0)" } ?? ""
        switch outcome {
        case .granted(.ungated(let role)):
            try await gate.recorder.record(
                NewEvent(
                    type: .pull, actor: actor, model: model.description, version: version,
                    detail: "\(fetching), ungated (role \(role?.rawValue ?? "none"))\(suffix)", client: client))
            metrics.pulls.increment()
        case .granted(.allowed(let decision)):
            try await gate.record(decision, type: .pull, actor: actor, client: client, via: via)
            metrics.decisions(allowed: true).increment()
            metrics.pulls.increment()
        case .denied(let denied):
            for decision in denied.decisions {
                try await gate.record(decision, type: .pullDenied, actor: actor, client: client, via: via)
            }
            metrics.decisions(allowed: false).increment()
        }
    }

    /// Whether `token` may fetch a blob by digest: always unless it is a consumer's, whose environments must allow a
    /// version holding it (so that a denied version's weights cannot be fetched by digest).
    package func mayFetch(blob digest: ContentDigest, token: TokenRecord?) async throws -> Bool {
        guard let token, token.role == .consumer else { return true }
        for holder in try await catalog.versions(holding: digest) {
            guard let model = try? ModelName(parsing: holder.model) else { continue }
            for environment in token.environments {
                if try await gate.decide(model, .version(holder.version), environment: environment).allowed { return true }
            }
        }
        return false
    }
}
