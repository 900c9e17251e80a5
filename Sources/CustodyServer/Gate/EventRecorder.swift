import CustodyCore
import CustodyStore
import Dispatch
import Synchronization

/// Records decision and pull events with group commit: callers wait until their event is in the database, and
/// events that arrive while a transaction is committing go together into the next one. Under load one SQLite
/// transaction carries many decisions instead of one each.
///
/// The writing runs on a dispatch queue of its own, blocking there: its turn never waits behind request tasks in the
/// task pool, and callers queue under a lock without hopping to another executor.
final class EventRecorder: Sendable {
    private let database: RegistryDatabase
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "custody.events")

    private struct State {
        var pending: [NewEvent] = []
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var writing = false
    }

    init(database: RegistryDatabase) {
        self.database = database
    }

    func record(_ event: NewEvent) async throws(CustodyError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let start = state.withLock { state in
                    state.pending.append(event)
                    state.waiters.append(continuation)
                    defer { state.writing = true }
                    return !state.writing
                }
                if start { queue.async { self.drain() } }
            }
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "cannot record the event: \(error)")
        }
    }

    /// Writes batch after batch until nothing is pending.
    private func drain() {
        while true {
            let next: ([NewEvent], [CheckedContinuation<Void, any Error>])? = state.withLock { state in
                if state.pending.isEmpty {
                    state.writing = false
                    return nil
                }
                defer { (state.pending, state.waiters) = ([], []) }
                return (state.pending, state.waiters)
            }
            guard let (batch, waiters) = next else { return }
            do {
                try database.recordEventsBlocking(batch)
                for waiter in waiters { waiter.resume() }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
    }
}
