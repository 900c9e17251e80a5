import CustodyTestSupport
import Foundation
import Testing

/// Base models named as Hugging Face ids (mixed case, dots) resolve to the registry's copies: by recorded source,
/// or by name ignoring case; an id that matches several registry models is refused, naming them.
@Suite struct BaseModelResolutionTests {
    @Test func hubIdsResolveThroughSourceAndNameAndAmbiguityIsRefused() throws {
        let (registry, _) = try GateTests.registry()
        let hub = "meta-llama/Llama-3.1-8B-Instruct"
        let base = try GateTests.model(registry, "base", salt: "b")
        let published = try registry.custody(
            "publish", base, "--name", "acme/llama-base", "--version", "1", "--license", "cc-by-nc-4.0",
            "--source", "https://huggingface.co/" + hub, "--source-revision", "0e9e39f249a16976918f6564b8830bc894c89659", "--quiet")
        #expect(published.status == 0, "\(published.stderr)")

        // The card names the base as the Hub does; the derivative inherits the base's research-only class.
        let tune = try GateTests.model(registry, "tune", salt: "t")
        #expect(
            try registry.custody(
                "publish", tune, "--name", "acme/tune", "--version", "1", "--license", "apache-2.0", "--base-model", hub,
                "--source", "https://example.com/tune", "--quiet"
            ).status == 0)
        let check = try GateTests.decision(try registry.custody("check", "acme/tune@1", "--env", "production", "--json"))
        let licence = try #require(check["licence"] as? [String: Any])
        #expect(licence["class"] as? String == "research", "\(licence)")
        #expect((licence["basis"] as? String)?.contains("inherited from base model acme/llama-base@1") == true, "\(licence)")
        let shown = try registry.custody("show", "acme/tune@1")
        #expect(shown.stdout.contains("base models    \(hub) → acme/llama-base@1 (by source)"), "\(shown.stdout)")
        let lineage = try registry.custody("audit", "lineage", "acme/tune@1")
        #expect(lineage.stdout.contains("↑ acme/llama-base@1 (cc-by-nc-4.0)  [named \(hub), resolved by source]"), "\(lineage.stdout)")

        // Pinned to a revision the registry's copy was made from; another revision is another model.
        let pinned = try GateTests.model(registry, "pinned", salt: "p")
        #expect(
            try registry.custody(
                "publish", pinned, "--name", "acme/pinned", "--version", "1", "--license", "apache-2.0", "--base-model", hub + "@0e9e39f",
                "--quiet"
            ).status == 0)
        #expect(try registry.custody("audit", "lineage", "acme/pinned@1").stdout.contains("acme/llama-base@1"))
        let other = try GateTests.model(registry, "other-rev", salt: "o")
        #expect(
            try registry.custody(
                "publish", other, "--name", "acme/other-rev", "--version", "1", "--license", "apache-2.0", "--base-model", hub + "@ffffff1",
                "--quiet"
            ).status == 0)
        #expect(try registry.custody("audit", "lineage", "acme/other-rev@1").stdout.contains("[not in this registry]"))
        #expect(try registry.custody("show", "acme/other-rev@1").stdout.contains("base models    \(hub)@ffffff1 (not in this registry)"))

        // Downstream is the inverse: the base's lineage lists the derivatives that name it by its Hub id.
        let downstream = try registry.custody("audit", "lineage", "acme/llama-base@1").stdout
        #expect(downstream.contains("↓ acme/tune@1 (apache-2.0)  [named \(hub), resolved by source]"), "\(downstream)")
        #expect(downstream.contains("↓ acme/pinned@1 (apache-2.0)  [named \(hub)@0e9e39f, resolved by source]"), "\(downstream)")
        #expect(!downstream.contains("acme/other-rev"), "\(downstream)")

        // A registry model named like the Hub id, ignoring case.
        let named = try GateTests.model(registry, "named", salt: "n")
        #expect(
            try registry.custody("publish", named, "--name", "mistralai/mistral-7b-v0.3", "--version", "1", "--license", "apache-2.0", "--quiet")
                .status == 0)
        let derived = try GateTests.model(registry, "derived", salt: "d")
        #expect(
            try registry.custody(
                "publish", derived, "--name", "acme/derived", "--version", "1", "--license", "apache-2.0", "--base-model",
                "mistralai/Mistral-7B-v0.3",
                "--quiet"
            ).status == 0)
        #expect(
            try registry.custody("audit", "lineage", "acme/derived@1").stdout.contains(
                "↑ mistralai/mistral-7b-v0.3@1 (apache-2.0)  [named mistralai/Mistral-7B-v0.3, resolved by name, ignoring case]"))
        #expect(
            try registry.custody("audit", "lineage", "mistralai/mistral-7b-v0.3@1").stdout.contains(
                "↓ acme/derived@1 (apache-2.0)  [named mistralai/Mistral-7B-v0.3, resolved by name, ignoring case]"))

        // A second registry copy recorded from the same Hub repository makes the id ambiguous: refused, both named.
        let copy = try GateTests.model(registry, "copy", salt: "c")
        #expect(
            try registry.custody(
                "publish", copy, "--name", "mirror/llama", "--version", "1", "--license", "llama3.1", "--source", "https://huggingface.co/" + hub,
                "--quiet"
            ).status == 0)
        let ambiguous = try GateTests.model(registry, "ambiguous", salt: "a")
        let refused = try registry.custody(
            "publish", ambiguous, "--name", "acme/ambiguous", "--version", "1", "--license", "apache-2.0", "--base-model", hub, "--quiet")
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("matches several registry models (acme/llama-base, mirror/llama)"), "\(refused.stderr)")
    }
}
