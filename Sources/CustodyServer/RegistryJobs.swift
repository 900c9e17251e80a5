import CustodyRegistry
import CustodyStorage
import CustodyStore
import ServiceLifecycle
import UnixSignals

/// A background job of the running registry, as a service-lifecycle `Service`: it works until graceful shutdown
/// (or cancellation), then finishes. The application runs the server after its jobs and shuts services down in reverse
/// order, so stopping is: the server (requests drain), then each job's finish from the last to the first.
struct RegistryJob: Service, CustomStringConvertible {
    let description: String
    /// Runs until cancelled; a job with nothing to do returns at once and waits for the shutdown.
    let work: @Sendable () async -> Void
    /// Runs once, after `work` stopped.
    let finish: @Sendable () async -> Void

    init(_ name: String, work: @escaping @Sendable () async -> Void, finish: @escaping @Sendable () async -> Void = {}) {
        self.description = name
        self.work = work
        self.finish = finish
    }

    func run() async throws {
        // A service that returns early ends the whole group: one with no work left waits for the shutdown instead.
        await cancelWhenGracefulShutdown { [work] in
            await work()
            try? await gracefulShutdown()
        }
        await finish()
    }
}

extension RegistryServices {
    /// The registry's jobs in start order; shutdown runs them down in reverse: the SIGHUP reloader and the upload
    /// janitor stop, the event recorder writes the repeats it still counts, the checkpoint signer signs the last
    /// checkpoint (over those events), and the WAL checkpointer stops last.
    var jobs: [any Service] {
        let backend = backend
        let log = log
        let recorder = gate.recorder
        let janitor = uploadJanitor
        return [
            // The database's own upkeep; stopped last, and for PostgreSQL the connection pool with it.
            RegistryJob(
                "metadata backend", work: { await backend.sqlite?.runCheckpoints() },
                finish: { backend.close() }),
            RegistryJob("checkpoint signer", work: { await log.run() }, finish: { await log.finish() }),
            RegistryJob("event recorder", work: { await recorder.run() }, finish: { try? await recorder.writeRepeats(all: true) }),
            RegistryJob("upload janitor", work: { await janitor.run() }),
            RegistryJob(
                "policy reloader",
                work: { [self] in
                    // SIGHUP reloads the policies; requests keep being answered with the set in force meanwhile.
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        _ = try? await self.reloadPolicies(actor: "SIGHUP")
                    }
                }),
        ]
    }
}
