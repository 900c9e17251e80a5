import CustodyCore
import CustodyRegistry
import CustodyStorage
import CustodyStore
import Foundation
import Synchronization
import Testing

@testable import CustodyServer

/// Group commit and repeat counting against a real SQLite file.
@Suite struct EventRecorderTests {
    static func database() throws -> (RegistryDatabase, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("custody-recorder-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (try RegistryDatabase(path: directory + "/custody.sqlite"), directory)
    }

    static func decision(_ actor: String, detail: String = "allowed by policy production sha256:00") -> NewEvent {
        NewEvent(type: .decision, actor: actor, model: "acme/m", version: "1.0", detail: detail, environment: "production", client: "127.0.0.1")
    }

    static func decisions(_ database: RegistryDatabase) async throws -> [API.Event] {
        var filter = EventFilter()
        filter.types = ["decision"]
        return try await database.events(filter)
    }

    @Test func repeatsAreCountedIntoOneEvent() async throws {
        let (database, directory) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The window is measured on a clock the test moves: however slow the machine, nothing closes by itself.
        let clock = Clock()
        let recorder = EventRecorder(log: database, repeatWindow: .seconds(30), now: { clock.now() })

        // The first is in the database when record returns; the next four identical ones are only counted.
        try await recorder.record(repeatable: Self.decision("token:ci"))
        #expect(try await Self.decisions(database).count == 1)
        for _ in 0..<4 { try await recorder.record(repeatable: Self.decision("token:ci")) }
        // A different caller or a different answer is an event of its own.
        try await recorder.record(repeatable: Self.decision("token:other"))
        try await recorder.record(repeatable: Self.decision("token:ci", detail: "denied by policy production sha256:00: licence: …"))
        #expect(try await Self.decisions(database).count == 3)

        // A window still open is not written yet; once the clock passes its end it is.
        clock.advance(by: .seconds(29))
        try await recorder.writeRepeats()
        #expect(try await Self.decisions(database).count == 3)
        clock.advance(by: .seconds(2))
        try await recorder.writeRepeats()
        let events = try await Self.decisions(database)
        #expect(events.count == 4)
        #expect(events.last?.actor == "token:ci" && events.last?.count == 4)
        #expect(events.last?.detail == Self.decision("token:ci").detail)
        #expect(events.dropLast().allSatisfy { $0.count == nil })

        // Exposure adds the counts: five decisions by token:ci that allowed the version, and apart from them the one
        // that denied it.
        let uses = try await database.uses(of: [("acme/m", "1.0")]).filter { $0.use.actor == "token:ci" }
        #expect(uses.map(\.use.allowed) == [true, false])
        #expect(uses.map(\.use.count) == [5, 1])
        // The counted event is a leaf like any other: the log's root is the tree of every row's canonical JSON.
        var tree = MemoryMerkleTree()
        for event in try await database.events(EventFilter()) { tree.append(leafHash: Merkle.leafHash(EventLeaf.canonicalJSON(event))) }
        #expect(try await database.logSize() == tree.size)
        #expect(try await database.logRoot(size: tree.size) == (try Merkle.root(size: tree.size, tree)))
        #expect(String(decoding: EventLeaf.canonicalJSON(events.last!), as: UTF8.self).contains(#""client":"127.0.0.1","count":4,"detail":"#))
    }

    /// A clock the test moves by hand.
    final class Clock: Sendable {
        private let instant = Mutex(ContinuousClock.now)
        func now() -> ContinuousClock.Instant { instant.withLock { $0 } }
        func advance(by duration: Duration) { instant.withLock { $0 = $0.advanced(by: duration) } }
    }

    @Test func aSeriesGoesOnWindowAfterWindowUntilOneHasNoRepeats() async throws {
        let (database, directory) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = Clock()
        let recorder = EventRecorder(log: database, repeatWindow: .seconds(1), now: { clock.now() })
        try await recorder.record(repeatable: Self.decision("token:ci"))
        try await recorder.record(repeatable: Self.decision("token:ci"))
        clock.advance(by: .milliseconds(1_100))
        // Past the window: the decision is on record already, so this one is counted into the next window.
        try await recorder.record(repeatable: Self.decision("token:ci"))
        #expect(try await Self.decisions(database).count == 1)
        try await recorder.writeRepeats()
        #expect(try await Self.decisions(database).map { $0.count ?? 1 } == [1, 1])
        clock.advance(by: .milliseconds(1_100))
        try await recorder.writeRepeats()  // writes the second window (one repeat); the third opens
        clock.advance(by: .milliseconds(1_100))
        try await recorder.writeRepeats()  // the third had none: the series ends
        #expect(try await Self.decisions(database).count == 3)
        // A first again: written before record returns.
        try await recorder.record(repeatable: Self.decision("token:ci"))
        #expect(try await Self.decisions(database).count == 4)
        try await recorder.writeRepeats(all: true)
        #expect(try await Self.decisions(database).count == 4)
    }

    @Test func aZeroWindowRecordsEveryDecision() async throws {
        let (database, directory) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let recorder = EventRecorder(log: database, repeatWindow: .zero)
        for _ in 0..<3 { try await recorder.record(repeatable: Self.decision("token:ci")) }
        #expect(try await Self.decisions(database).count == 3)
    }

    @Test func repeatWindowsParse() throws {
        #expect(try RegistryConfiguration.duration("1s", source: "t") == .seconds(1))
        #expect(try RegistryConfiguration.duration("250ms", source: "t") == .milliseconds(250))
        #expect(try RegistryConfiguration.duration("0", source: "t") == .zero)
        #expect(throws: CustodyError.self) { try RegistryConfiguration.duration("2m", source: "t") }
        #expect(throws: CustodyError.self) { try RegistryConfiguration.duration("-1s", source: "t") }
    }

    /// A verify that denied is a use of another kind than one that allowed: exposure counts them apart.
    @Test func exposureTellsAllowedFromDeniedDecisions() async throws {
        let (database, directory) = try Self.database()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try database.recordEventsBlocking([
            Self.decision("token:ci"), Self.decision("token:ci"),
            Self.decision("token:ci", detail: "denied by policy production sha256:00: the version is yanked"),
        ])
        let uses = try await database.uses(of: [("acme/m", "1.0")]).map(\.use)
        #expect(uses.map(\.allowed) == [true, false])
        #expect(uses.map(\.count) == [2, 1])
    }
}
