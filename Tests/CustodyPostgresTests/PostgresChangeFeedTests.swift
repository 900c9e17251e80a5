import CustodyCore
import CustodyStorage
import CustodyTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

@testable import CustodyPostgres

/// Two daemons' change feeds on one PostgreSQL: what one announces, the other applies in order; one that was not
/// listening while changes were announced is told that anything may have changed when it listens again.
@Suite(.serialized) struct PostgresChangeFeedTests {
    @Test func announcementsReachTheOtherDaemonAndAMissedOneIsNeverSilent() async throws {
        let logger = Logger(label: "test")
        try await PostgresLogTests.withClients(2) { clients, _ in
            let feedA = PostgresChangeFeed(client: clients[0], logger: logger)
            let feedB = PostgresChangeFeed(client: clients[1], logger: logger)
            try await feedA.migrate()
            try await feedB.migrate()
            let (heardByA, toA) = AsyncStream.makeStream(of: RegistryChange.self)
            let (heardByB, toB) = AsyncStream.makeStream(of: RegistryChange.self)
            let (listening, listeningNow) = AsyncStream.makeStream(of: Void.self)
            feedA.subscribe { change in toA.yield(change) }
            feedB.subscribe { change in toB.yield(change) }
            var a = heardByA.makeAsyncIterator()
            var b = heardByB.makeAsyncIterator()
            var ready = listening.makeAsyncIterator()

            let listener = Task { await feedB.run(onListening: { listeningNow.yield() }) }
            _ = await ready.next()
            let model = try ModelName(parsing: "acme/llama")
            try await feedA.announce(.published(model))
            try await feedA.announce(.status(model, version: "1.0"))
            #expect(await a.next() == .published(model), "applied in the announcing daemon before announce returned")
            #expect(await a.next() == .status(model, version: "1.0"))
            #expect(await b.next() == .published(model))
            #expect(await b.next() == .status(model, version: "1.0"))

            // B stops listening (its connection dropped); A yanks and records an advisory meanwhile.
            listener.cancel()
            await listener.value
            try await feedA.announce(.status(model, version: "2.0"))
            try await feedA.announce(.advisories)
            let again = Task { await feedB.run(onListening: { listeningNow.yield() }) }
            _ = await ready.next()
            #expect(await b.next() == .unknown, "a reconnected daemon drops everything it keeps")
            try await feedA.announce(.trust)
            #expect(await b.next() == .trust)
            #expect(try await feedB.generation() == 5)
            again.cancel()
            await again.value
        }
    }

    @Test func changesKeepTheirMeaningOnTheWire() throws {
        let model = try ModelName(parsing: "acme/llama")
        for change in [RegistryChange.published(model), .status(model, version: "1.0-rc.1"), .advisories, .trust, .unknown] {
            #expect(RegistryChange(encoded: change.encoded) == change)
        }
        #expect(RegistryChange(encoded: "something-new acme/x") == .unknown)
        #expect(RegistryChange(encoded: "status acme/x") == .unknown)
    }
}

/// The checkpoint signer's lease: one daemon at a time, renewed by its holder, taken over when the holder stops.
@Suite(.serialized) struct PostgresLeaseTests {
    final class Clock: @unchecked Sendable {
        var seconds: Double = 1_000_000
        var now: Date { Date(timeIntervalSince1970: seconds) }
    }

    @Test func oneHolderAtATimeAndTakeoverAfterExpiry() async throws {
        let logger = Logger(label: "test")
        let clock = Clock()
        try await PostgresLogTests.withClients(1) { clients, _ in
            let client = clients[0]
            let a = PostgresLease(client: client, name: "checkpoints", holder: "daemon-a", duration: .seconds(10), logger: logger) { clock.now }
            let b = PostgresLease(client: client, name: "checkpoints", holder: "daemon-b", duration: .seconds(10), logger: logger) { clock.now }
            try await a.migrate()
            try await b.migrate()
            #expect(try await a.acquire())
            clock.seconds += 5
            #expect(try await !b.acquire(), "held by A")
            clock.seconds += 3
            #expect(try await a.acquire(), "A renews")
            clock.seconds += 7
            #expect(try await !b.acquire(), "A's renewal runs to t+18")
            clock.seconds += 4  // A was killed and stopped renewing: its lease ran out at t+18.
            #expect(try await b.acquire(), "signing moves to B")
            #expect(try await !a.acquire(), "A, back, finds B holding it")
            try await b.release()
            #expect(try await a.acquire(), "released: A takes it at once")
        }
    }
}
