package import CustodyCore
package import CustodyPolicy
package import CustodyStorage
package import Foundation
import Synchronization

/// The environments' policies (`policies/ENV.yaml`) and the licence table, swapped atomically on reload: requests
/// in flight keep the set they started with, a reload that fails keeps the old set and says why.
package final class PolicySet: Sendable {
    package struct Snapshot: Sendable {
        package var policies: [String: Policy]
        package var licences: LicenceTable
        /// Different for every load, so that what was decided under one set is never taken for the next one's.
        package var generation: UInt64
    }

    private static let loads = Atomic<UInt64>(0)

    package let directory: String
    package let licencePath: String
    private let current: Mutex<Snapshot>

    package init(directory: String, licencePath: String) throws(CustodyError) {
        self.directory = directory
        self.licencePath = licencePath
        self.current = Mutex(try Self.load(directory: directory, licencePath: licencePath))
    }

    package var snapshot: Snapshot { current.withLock { $0 } }

    /// Re-reads every file; on any error the current set stays and the error names the file, line and field.
    @discardableResult
    package func reload() throws(CustodyError) -> Snapshot {
        let fresh = try Self.load(directory: directory, licencePath: licencePath)
        current.withLock { $0 = fresh }
        return fresh
    }

    package static func load(directory: String, licencePath: String) throws(CustodyError) -> Snapshot {
        var policies: [String: Policy] = [:]
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
        for file in names {
            let environment = String(file[..<file.lastIndex(of: ".")!])
            guard ModelName.isValidComponent(environment) else {
                throw CustodyError(
                    .invalidArgument,
                    "\(directory)/\(file): '\(environment)' is not a valid environment name (lowercase letters, digits, '-', '_', '.')")
            }
            guard policies[environment] == nil else {
                throw CustodyError(.invalidArgument, "\(directory)/\(file): a second policy for environment \(environment)")
            }
            let path = directory + "/" + file
            let text = String(decoding: try PosixFile.contents(of: path, limit: 1 << 20), as: UTF8.self)
            do {
                policies[environment] = try Policy(name: environment, yaml: text, source: path)
            } catch {
                throw CustodyError(.invalidArgument, error.description)
            }
        }
        var licences = LicenceTable.defaults
        if FileManager.default.fileExists(atPath: licencePath) {
            let text = String(decoding: try PosixFile.contents(of: licencePath, limit: 1 << 20), as: UTF8.self)
            do {
                licences = licences.merging(try LicenceTableFile.parse(text, source: licencePath))
            } catch {
                throw CustodyError(.invalidArgument, error.description)
            }
        }
        return Snapshot(policies: policies, licences: licences, generation: loads.add(1, ordering: .relaxed).newValue)
    }
}
