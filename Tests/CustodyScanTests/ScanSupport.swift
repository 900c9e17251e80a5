import CustodyCore
import CustodyTestSupport

@testable import CustodyScan

func scan(_ bytes: [UInt8], name: String = "file") -> FileReport {
    bytes.withUnsafeBytes { ModelScanner().scan($0, name: name).report }
}

func dangerousSubjects(_ report: FileReport) -> Set<String> {
    Set(report.findings.filter { $0.verdict == .dangerous }.map(\.subject))
}
