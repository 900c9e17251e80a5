import CustodyTestSupport
import Foundation
import Testing

/// `custody advisory import` over a directory and an OSV export zip: good, invalid, foreign and repeated records.
@Suite struct AdvisoryImportTests {
    static func record(_ id: String, modified: String = "2026-11-01T00:00:00Z", ecosystem: String = "Custody", severity: Bool = true) -> String {
        let score = severity ? #""severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}], "# : ""
        return
            #"{"id": "\#(id)", "modified": "\#(modified)", \#(score)"affected": [{"package": {"ecosystem": "\#(ecosystem)", "name": "acme/m"}, "versions": ["1"]}]}"#
    }

    @Test func aDirectoryAndAZipImportRecordByRecord() throws {
        let registry = try RegistryProcess()
        let model = try GateTests.model(registry, "m", salt: "1")
        #expect(try registry.custody("publish", model, "--name", "acme/m", "--version", "1", "--quiet").status == 0)
        let feed = registry.scratch.path + "/feed"
        try registry.scratch.write("feed/a-good.json", Self.record("x_CUSTODY-2026-0101"))
        try registry.scratch.write("feed/b-unscored.json", Self.record("x_CUSTODY-2026-0102", severity: false))
        try registry.scratch.write("feed/c-foreign.json", Self.record("PYSEC-2026-1", ecosystem: "PyPI"))
        try registry.scratch.write("feed/d-bad.json", #"{"id": "x_BAD", "affected": []}"#)
        try registry.scratch.write("feed/e-case.json", Self.record("x_CUSTODY-2026-0103", ecosystem: "custody"))
        try registry.scratch.write("feed/nested/f-good.json", Self.record("x_CUSTODY-2026-0104"))
        try registry.scratch.write("feed/notes.txt", "not a record")

        let first = try registry.custody("advisory", "import", feed)
        #expect(first.status == 1, "some records are invalid: \(first.stdout) \(first.stderr)")
        #expect(
            first.stdout.contains("6 records: 3 recorded, 0 updated, 0 unchanged, 1 skipped (no Custody model or digest), 2 invalid"),
            "\(first.stdout)")
        #expect(first.stderr.contains("d-bad.json: modified"), "\(first.stderr)")
        #expect(first.stderr.contains("e-case.json: affected[0].package.ecosystem: 'custody' differs only in case"), "\(first.stderr)")
        #expect(first.stdout.contains("recorded x_CUSTODY-2026-0101: critical"), "the exposure of what was recorded: \(first.stdout)")
        #expect(first.stdout.contains("acme/m@1"), "\(first.stdout)")
        let listed = try registry.custody("advisory", "list")
        #expect(listed.stdout.contains("x_CUSTODY-2026-0102  unknown"), "\(listed.stdout)")
        #expect(!listed.stdout.contains("x_BAD") && !listed.stdout.contains("PYSEC"), "nothing invalid or foreign recorded")

        // Again: nothing changes. A later 'modified' updates; an older one with other content is refused.
        let again = try registry.custody("advisory", "import", feed + "/a-good.json")
        #expect(again.status == 0 && again.stdout.contains("1 records: 0 recorded, 0 updated, 1 unchanged"), "\(again.stdout) \(again.stderr)")
        try registry.scratch.write("export/x_CUSTODY-2026-0101.json", Self.record("x_CUSTODY-2026-0101", modified: "2026-11-02T00:00:00Z"))
        try registry.scratch.write(
            "export/x_CUSTODY-2026-0104.json", Self.record("x_CUSTODY-2026-0104", modified: "2026-10-01T00:00:00Z", severity: false))
        try registry.scratch.write("export/PYSEC-2026-2.json", Self.record("PYSEC-2026-2", ecosystem: "PyPI"))
        let zip = registry.scratch.path + "/custody-osv.zip"
        let zipped = try Tools.python(
            "import zipfile, sys, os\nz = zipfile.ZipFile(sys.argv[1], 'w')\nfor n in sorted(os.listdir(sys.argv[2])): z.write(os.path.join(sys.argv[2], n), n)\nz.close()",
            zip, registry.scratch.path + "/export")
        try #require(zipped.status == 0, "\(zipped.stderr)")
        let fromZip = try registry.custody("advisory", "import", zip)
        #expect(fromZip.status == 1, "\(fromZip.stdout) \(fromZip.stderr)")
        #expect(
            fromZip.stdout.contains("3 records: 0 recorded, 1 updated, 0 unchanged, 1 skipped (no Custody model or digest), 1 invalid"),
            "\(fromZip.stdout)")
        #expect(fromZip.stderr.contains("x_CUSTODY-2026-0104.json"), "\(fromZip.stderr)")
        #expect(try registry.custody("advisory", "import", registry.scratch.path + "/none").status == 2)
    }
}
