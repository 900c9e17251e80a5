import CustodyTestSupport
import Foundation
import Testing

/// The picklescan project's fixtures (MIT), read in place from the shared corpus and never copied or unpickled.
enum Corpus {
    static var picklescan: String? {
        SharedCorpus.path("picklescan").flatMap { FileManager.default.fileExists(atPath: $0 + "/expectations.tsv") ? $0 : nil }
    }
}

@Suite("Scanner against the picklescan corpus")
struct ScanCorpusTests {
    struct Expectation {
        let verdict: String
        let globals: [String]
    }

    struct Report: Decodable {
        struct File: Decodable {
            struct Finding: Decodable {
                let verdict: String
                let subject: String
            }
            let path: String
            let format: String
            let verdict: String
            let invalid: String?
            let findings: [Finding]
        }
        let files: [File]
    }

    /// Files whose expectation says "clean" but which hold a member Custody cannot read: the issue's rule is that
    /// an unreadable member is "could not scan", never "clean".
    static let unreadableByDesign: Set<String> = ["data/benign_password_protected.zip"]

    @Test("custody inspect over every corpus file: nothing expected dangerous comes out clean", .enabled(if: Corpus.picklescan != nil))
    func corpus() throws {
        let root = try #require(Corpus.picklescan)
        var expected: [String: Expectation] = [:]
        for line in try String(contentsOfFile: root + "/expectations.tsv", encoding: .utf8).split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 3 else { continue }
            expected[fields[0]] = Expectation(verdict: fields[1], globals: fields[2].split(separator: ",").map(String.init))
        }
        #expect(expected.count > 100)

        var actual: [String: Report.File] = [:]
        for directory in ["data", "data2"] {
            let result = try Tools.custody("inspect", "--json", root + "/" + directory)
            #expect(result.status == 1, "some corpus files are dangerous, so inspect exits 1: \(result.stderr)")
            let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
            for file in report.files { actual[directory + "/" + file.path] = file }
        }
        #expect(Set(actual.keys) == Set(expected.keys), "every corpus file is reported, and only those")

        var confusion: [String: [String: Int]] = [:]
        for (path, expectation) in expected.sorted(by: { $0.key < $1.key }) {
            let file = try #require(actual[path], "\(path) was not reported")
            confusion[expectation.verdict, default: [:]][file.verdict, default: 0] += 1
            let dangerous = Set(file.findings.filter { $0.verdict == "dangerous" }.map(\.subject))
            switch expectation.verdict {
            case "dangerous":
                #expect(file.verdict == "dangerous", "\(path): expected dangerous, got \(file.verdict)")
                for global in expectation.globals {
                    #expect(dangerous.contains(global), "\(path): \(global) is not reported dangerous (got \(dangerous.sorted()))")
                }
            case "clean":
                if Self.unreadableByDesign.contains(path) {
                    #expect(file.verdict == "unscannable", "\(path)")
                } else {
                    #expect(file.verdict == "clean", "\(path): expected clean, got \(file.verdict) \(file.findings.map(\.subject))")
                    #expect(file.invalid == nil, "\(path): \(file.invalid ?? "")")
                }
            case "error":
                #expect(file.verdict != "clean" && file.invalid != nil, "\(path): an unreadable file must not pass as clean")
            default:
                Issue.record("\(path): unknown expectation \(expectation.verdict)")
            }
        }
        let columns = ["clean", "suspicious", "unscannable", "dangerous"]
        var table = "expected \\ custody   " + columns.map { $0.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined() + "\n"
        for row in ["clean", "dangerous", "error"] {
            table +=
                row.padding(toLength: 21, withPad: " ", startingAt: 0)
                + columns.map { String(confusion[row]?[$0] ?? 0).padding(toLength: 12, withPad: " ", startingAt: 0) }.joined() + "\n"
        }
        print("picklescan corpus, \(expected.count) files:\n" + table)
    }
}
