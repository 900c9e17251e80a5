package import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

extension RegistryDatabase {
    /// Events matching every given filter, oldest first.
    package func events(_ filter: EventFilter) async throws(CustodyError) -> [API.Event] {
        var clauses = ["id > ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [filter.after]
        if let model = filter.model {
            clauses.append("model = ?")
            arguments.append(model)
        }
        if let version = filter.version {
            clauses.append("version = ?")
            arguments.append(version)
        }
        if !filter.types.isEmpty {
            clauses.append("type IN (\(filter.types.map { _ in "?" }.joined(separator: ", ")))")
            arguments += filter.types.map { $0 as (any DatabaseValueConvertible)? }
        }
        if let actor = filter.actor {
            clauses.append("actor LIKE ? ESCAPE '\\'")
            arguments.append("%" + Self.escapeLike(actor) + "%")
        }
        if let environment = filter.environment {
            clauses.append("environment = ?")
            arguments.append(environment)
        }
        if let since = filter.since {
            clauses.append("at >= ?")
            arguments.append(since)
        }
        if let until = filter.until {
            clauses.append("at <= ?")
            arguments.append(until)
        }
        let sql = "SELECT * FROM events WHERE \(clauses.joined(separator: " AND ")) ORDER BY id LIMIT \(max(1, min(filter.limit, 10_000)))"
        let bound = StatementArguments(arguments)
        return try await read { db in try EventRow.fetchAll(db, sql: sql, arguments: bound).map(\.event) }
    }

    static func escapeLike(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    /// Versions whose provenance names a base model containing one of `names` (compared without ASCII case): the
    /// candidates the caller resolves (a registry name, or the Hub id a registry model was published from).
    package func derivatives(naming names: [String]) async throws(CustodyError) -> [(model: String, version: String, baseModels: [String])] {
        let needles = names.filter { !$0.isEmpty }
        guard !needles.isEmpty else { return [] }
        let condition = Array(repeating: "p.base_models LIKE ? ESCAPE '\\'", count: needles.count).joined(separator: " OR ")
        let rows: [[String]] = try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT m.namespace || '/' || m.name AS model, v.version AS version, p.base_models AS bases
                    FROM provenance p JOIN versions v ON v.id = p.version_id JOIN models m ON m.id = v.model_id
                    WHERE \(condition) ORDER BY v.id
                    """,
                arguments: StatementArguments(needles.map { "%" + Self.escapeLike($0) + "%" })
            ).map { [$0["model"], $0["version"], $0["bases"]] }
        }
        var out: [(model: String, version: String, baseModels: [String])] = []
        for row in rows {
            let bases: [String] = (try? JSONDecoder().decode([String].self, from: Data(row[2].utf8))) ?? []
            out.append((row[0], row[1], bases))
        }
        return out
    }

    /// Streams every event in id order, in pages, to `body` (export).
    package func forEachEvent(after id: Int64 = 0, page: Int = 5000, _ body: ([API.Event]) async throws -> Void) async throws {
        var cursor = id
        while true {
            var filter = EventFilter()
            filter.after = cursor
            filter.limit = page
            let events = try await events(filter)
            if events.isEmpty { return }
            try await body(events)
            cursor = events.last!.id
        }
    }
}
