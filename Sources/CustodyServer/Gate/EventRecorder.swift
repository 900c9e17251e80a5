import CustodyCore
import CustodyStore
import Synchronization

/// Records decision and pull events with group commit: callers wait until their event is in the database, and
/// events that arrive while a transaction is committing go together into the next one. Under load one SQLite
/// transaction carries many decisions instead of one each. Callers do not hop to another executor to queue.
final class EventRecorder: Sendable {
    private let database: any MetadataStore
    private let state = Mutex(State())

    private struct State {
        var pending: [NewEvent] = []
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var flushing = false
    }

    init(database: any MetadataStore) {
        self.database = database
    }

    func record(_ event: NewEvent) async throws(CustodyError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let start = state.withLock { state in
                    state.pending.append(event)
                    state.waiters.append(continuation)
                    defer { state.flushing = true }
                    return !state.flushing
                }
                if start { Task { await self.flush() } }
            }
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "cannot record the event: \(error)")
        }
    }

    private func flush() async {
        while true {
            let next: ([NewEvent], [CheckedContinuation<Void, any Error>])? = state.withLock { state in
                if state.pending.isEmpty {
                    state.flushing = false
                    return nil
                }
                defer { (state.pending, state.waiters) = ([], []) }
                return (state.pending, state.waiters)
            }
            guard let (batch, waiters) = next else { return }
            do {
                try await database.recordEvents(batch)
                for waiter in waiters { waiter.resume() }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
    }
}
