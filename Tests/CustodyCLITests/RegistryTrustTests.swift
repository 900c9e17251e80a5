import CustodyTestSupport
import Foundation
import Testing

/// Publisher signatures against the registry's trusted keys, and HTTPS.
@Suite struct RegistryTrustTests {
    @Test func publisherSignaturesMustComeFromTrustedKeys() throws {
        let scratch = try Scratch()
        let trusted = scratch.path + "/pipeline"
        let stranger = scratch.path + "/stranger"
        try #require(try Tools.custody("keys", "generate", "--out", trusted).status == 0)
        try #require(try Tools.custody("keys", "generate", "--out", stranger, "--curve", "p384").status == 0)
        try FileManager.default.createDirectory(atPath: scratch.path + "/Keys/trusted", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: trusted + ".pub", toPath: scratch.path + "/Keys/trusted/pipeline.pub")
        let registry = try RegistryProcess(scratch: scratch)
        let model = try makeAwkwardModel(in: scratch)

        let signed = try registry.custody("publish", model, "--name", "acme/signed", "--version", "1", "--sign-key", trusted + ".key", "--quiet")
        #expect(signed.status == 0, "\(signed.stderr)")
        let shown = try registry.custody("show", "acme/signed@1")
        #expect(shown.stdout.contains("publisher: verified (pipeline)"), "\(shown.stdout)")

        let refused = try registry.custody("publish", model, "--name", "acme/signed", "--version", "2", "--sign-key", stranger + ".key", "--quiet")
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("not trusted"), "\(refused.stderr)")
        #expect(!(try registry.custody("show", "acme/signed").stdout.contains("2  sha256:")), "the refused version was not stored")
    }

    @Test func servesHTTPSWithTheGivenCertificate() throws {
        let scratch = try Scratch()
        let made = try run(
            "/usr/bin/env",
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                "-subj", "/CN=custody-test", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", scratch.path + "/tls.key", "-out", scratch.path + "/tls.crt",
            ])
        try #require(made.status == 0, "openssl: \(made.stderr)")
        let registry = try RegistryProcess(
            scratch: scratch, extraArguments: ["--tls-cert", scratch.path + "/tls.crt", "--tls-key", scratch.path + "/tls.key"])
        #expect(registry.url.hasPrefix("https://"))
        let trusting = try registry.custody("show", "acme/none", "--ca-cert", scratch.path + "/tls.crt")
        #expect(trusting.stderr.contains("not in the registry"), "TLS handshake and request succeeded: \(trusting.stderr)")
        let untrusting = try registry.custody("show", "acme/none")
        #expect(untrusting.stderr.contains("cannot reach the registry"), "an unknown certificate is refused: \(untrusting.stderr)")
    }
}
