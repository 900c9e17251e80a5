package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

/// What `custody migrate` reads: the registry's metadata as ``RegistrySnapshot`` rows and ``StoredVersion``s.
extension RegistryDatabase {
    /// Up to `limit` rows of `table` after the row whose key is `after` (from the first when nil), in key order,
    /// with that key.
    package func exportRows(
        _ table: RegistrySnapshot.Table, after: SnapshotValue?, limit: Int
    ) async throws(CustodyError) -> [(key: SnapshotValue, row: [SnapshotValue])] {
        let columns = table.columns.joined(separator: ", ")
        let sql =
            after == nil
            ? "SELECT \(columns), \(table.key) AS export_key FROM \(table.name) ORDER BY export_key LIMIT \(limit)"
            : "SELECT \(columns), \(table.key) AS export_key FROM \(table.name) WHERE export_key > ? ORDER BY export_key LIMIT \(limit)"
        let arguments = after.map { StatementArguments([Self.databaseValue($0)]) } ?? StatementArguments()
        let count = table.columns.count
        return try await read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let values = (0...count).map { Self.snapshotValue(row[$0] as DatabaseValue) }
                return (values[count], Array(values[..<count]))
            }
        }
    }

    /// Every version of every model, oldest first, with its signature bundles.
    package func exportVersions() async throws(CustodyError) -> [StoredVersion] {
        var out: [StoredVersion] = []
        for name in try await models() {
            let model = try ModelName(parsing: name)
            let created = try await read { db in
                try String.fetchOne(
                    db, sql: "SELECT created_at FROM models WHERE namespace = ? AND name = ?", arguments: [model.namespace, model.name])
            }
            let bundles: [String: [UInt8]] = try await read { db in
                var found: [String: [UInt8]] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT v.version AS version, s.kind AS kind, s.bundle AS bundle FROM signatures s JOIN versions v ON v.id = s.version_id
                        JOIN models m ON m.id = v.model_id WHERE m.namespace = ? AND m.name = ? AND s.bundle IS NOT NULL
                        """, arguments: [model.namespace, model.name])
                {
                    let bundle: Data = row["bundle"]
                    found[(row["kind"] as String) + " " + (row["version"] as String)] = Array(bundle)
                }
                return found
            }
            for detail in try await versionDetails(model) {
                out.append(
                    StoredVersion(
                        detail: detail, modelCreatedAt: created ?? detail.createdAt, publisherBundle: bundles["publisher " + detail.version],
                        registryBundle: bundles["registry " + detail.version]))
            }
        }
        // In publish order across models, as the version ids have it.
        let order: [String] = try await read { db in
            try String.fetchAll(
                db, sql: "SELECT m.namespace || '/' || m.name || '@' || v.version FROM versions v JOIN models m ON m.id = v.model_id ORDER BY v.id")
        }
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element, $0.offset) })
        return out.sorted {
            rank["\($0.detail.model)@\($0.detail.version)", default: 0] < rank["\($1.detail.model)@\($1.detail.version)", default: 0]
        }
    }

    static func snapshotValue(_ value: DatabaseValue) -> SnapshotValue {
        switch value.storage {
        case .null: .null
        case .int64(let integer): .integer(integer)
        case .double(let real): .real(real)
        case .string(let text): .text(text)
        case .blob(let data): .blob(Array(data))
        }
    }

    static func databaseValue(_ value: SnapshotValue) -> DatabaseValue {
        switch value {
        case .null: .null
        case .integer(let integer): integer.databaseValue
        case .real(let real): real.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let bytes): Data(bytes).databaseValue
        }
    }
}
