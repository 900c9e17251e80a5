import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import Hummingbird
import NIOCore
import Prometheus

/// Kubernetes admission (formats.md §8) and the Gatekeeper external-data provider: both ask the same evaluator.
/// Which deployment environment decides an admission review from a Kubernetes namespace (`admission` in custody.yaml).
struct AdmissionMapping: Sendable {
    let namespaces: [String: String]
    let defaultEnvironment: String?

    func environment(forNamespace namespace: String) -> String? { namespaces[namespace] ?? defaultEnvironment }
}

extension GateController {
    /// Annotations naming models: `custody.dev/model` and `custody.dev/model.<anything>`, each holding one or more
    /// references separated by commas or whitespace.
    static let annotation = "custody.dev/model"

    /// The model references a pod (or a workload's pod template) declares.
    static func modelReferences(in object: [String: Any]) -> [String] {
        var annotations: [[String: Any]] = []
        if let metadata = object["metadata"] as? [String: Any], let found = metadata["annotations"] as? [String: Any] {
            annotations.append(found)
        }
        if let spec = object["spec"] as? [String: Any], let template = spec["template"] as? [String: Any],
            let metadata = template["metadata"] as? [String: Any], let found = metadata["annotations"] as? [String: Any]
        {
            annotations.append(found)
        }
        var references: [String] = []
        for map in annotations {
            for (key, value) in map.sorted(by: { $0.key < $1.key }) where key == annotation || key.hasPrefix(annotation + ".") {
                guard let text = value as? String else { continue }
                for part in text.split(whereSeparator: { $0 == "," || $0.isWhitespace }) where !references.contains(String(part)) {
                    references.append(String(part))
                }
            }
        }
        return references
    }

    /// The images of a pod (or a workload's pod template) that this registry serves: model cars mounted as containers,
    /// init containers or image volumes (`spec.volumes[].image.reference`), as KServe does for `storageUri: oci://…`.
    static func imageReferences(in object: [String: Any], hosts: Set<String>) -> [String] {
        var specs: [[String: Any]] = []
        if let spec = object["spec"] as? [String: Any] {
            specs.append(spec)
            if let template = spec["template"] as? [String: Any], let inner = template["spec"] as? [String: Any] { specs.append(inner) }
        }
        var images: [String] = []
        for spec in specs {
            for key in ["initContainers", "containers", "ephemeralContainers"] {
                for container in spec[key] as? [[String: Any]] ?? [] { if let image = container["image"] as? String { images.append(image) } }
            }
            for volume in spec["volumes"] as? [[String: Any]] ?? [] {
                if let image = (volume["image"] as? [String: Any])?["reference"] as? String { images.append(image) }
            }
        }
        var seen = Set<String>()
        return images.filter { image in
            guard let host = OCIImageReferences.host(of: image), hosts.contains(host.lowercased()) else { return false }
            return seen.insert(image).inserted
        }
    }

    func admission(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.gate])
        let bytes = try await bodies.collect(request)
        guard let review = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
            let body = review["request"] as? [String: Any], let uid = body["uid"] as? String
        else { throw ProblemResponse(.badRequest, "not an AdmissionReview: a JSON object with request.uid is required") }
        let apiVersion = review["apiVersion"] as? String ?? "admission.k8s.io/v1"
        let namespace = body["namespace"] as? String ?? ""
        let object = body["object"] as? [String: Any] ?? [:]
        let annotated = Self.modelReferences(in: object)
        let references = annotated + Self.imageReferences(in: object, hosts: images.hosts).filter { !annotated.contains($0) }
        let user = ((body["userInfo"] as? [String: Any])?["username"] as? String).map { " for \($0)" } ?? ""

        let (allowed, messages, warnings) = try await verdict(
            on: references, namespace: namespace, actor: context.actor + user, client: context.clientAddress)
        var response: [String: Any] = ["uid": uid, "allowed": allowed]
        if !allowed {
            response["status"] = ["code": 403, "message": "custody: " + messages.joined(separator: " | ")]
        }
        if !warnings.isEmpty { response["warnings"] = Array(warnings.prefix(10)) }
        let answer: [String: Any] = ["apiVersion": apiVersion, "kind": "AdmissionReview", "response": response]
        let data = try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The gate's decision on every model a pod names, in the environment its namespace maps to: allowed when every
    /// one is; the refusals and the warnings as Kubernetes shows them. Each decision is recorded as an admission.
    private func verdict(
        on references: [String], namespace: String, actor: String, client: String?
    ) async throws -> (allowed: Bool, messages: [String], warnings: [String]) {
        guard !references.isEmpty else { return (true, [], []) }
        guard let environment = admission.environment(forNamespace: namespace) else {
            return (false, ["namespace \(namespace) is not mapped to a deployment environment (admission.namespaces in custody.yaml)"], [])
        }
        var (allowed, messages, warnings) = (true, [String](), [String]())
        for text in references {
            do throws(CustodyError) {
                let reference = try await images.reference(text)
                let decision = try await gate.decide(reference.model, reference.selector, environment: environment)
                try await gate.record(decision, type: .admission, actor: actor, client: client)
                metrics.decisions(allowed: decision.allowed).increment()
                if !decision.allowed {
                    allowed = false
                    let rollback = decision.rollback.map { "; rollback target \(decision.model)@\($0.version)" } ?? ""
                    messages.append("\(text) is denied in \(environment): \(decision.reasons.joined(separator: "; "))\(rollback)")
                }
                for warning in decision.warnings { warnings.append(Self.clip("\(text): \(warning)")) }
            } catch {
                allowed = false
                messages.append("\(text): \(error.message)")
            }
        }
        return (allowed, messages, warnings)
    }

    /// Kubernetes shows at most 120 characters of a warning.
    static func clip(_ text: String) -> String {
        text.count <= 120 ? text : String(text.prefix(119)) + "…"
    }

    /// Gatekeeper external data: `?environment=ENV`, keys are model references; each item's value is the decision
    /// summary, its error set when the key cannot be decided.
    func gatekeeper(_ request: Request, _ context: RegistryContext) async throws -> Response {
        try await access.authorize(request, context, roles: [.gate])
        guard let environment = request.uri.queryParameters["environment"].map(String.init) else {
            throw ProblemResponse(.badRequest, "name the environment: POST /v1/gatekeeper?environment=ENV")
        }
        let bytes = try await bodies.collect(request)
        guard let ask = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
            let body = ask["request"] as? [String: Any], let keys = body["keys"] as? [String]
        else { throw ProblemResponse(.badRequest, "not a Gatekeeper ProviderRequest: request.keys is required") }
        var items: [[String: Any]] = []
        for key in keys {
            do throws(CustodyError) {
                let reference = try await images.reference(key)
                let decision = try await gate.decide(reference.model, reference.selector, environment: environment)
                try await gate.record(decision, type: .admission, actor: context.actor + " (gatekeeper)", client: context.clientAddress)
                var value: [String: Any] = ["allowed": decision.allowed, "policyDigest": decision.policy.digest]
                if !decision.allowed { value["reasons"] = decision.reasons }
                if let rollback = decision.rollback { value["rollback"] = rollback.version }
                items.append(["key": key, "value": value])
            } catch {
                items.append(["key": key, "error": error.message])
            }
        }
        let answer: [String: Any] = [
            "apiVersion": ask["apiVersion"] as? String ?? "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse",
            "response": ["idempotent": true, "items": items, "systemError": ""],
        ]
        let data = try JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
