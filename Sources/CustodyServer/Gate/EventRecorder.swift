import CustodyCore
import CustodyStore

/// Records decision and pull events with group commit: callers wait until their event is in the database, and
/// events that arrive while a transaction is committing go together into the next one. Under load one SQLite
/// transaction carries many decisions instead of one each.
actor EventRecorder {
    private let database: any MetadataStore
    private var pending: [NewEvent] = []
    private var waiters: [CheckedContinuation<Void, any Error>] = []
    private var flushing = false

    init(database: any MetadataStore) {
        self.database = database
    }

    func record(_ event: NewEvent) async throws(CustodyError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                pending.append(event)
                waiters.append(continuation)
                if !flushing {
                    flushing = true
                    Task { await self.flush() }
                }
            }
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "cannot record the event: \(error)")
        }
    }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            let batchWaiters = waiters
            pending = []
            waiters = []
            do {
                try await database.recordEvents(batch)
                for waiter in batchWaiters { waiter.resume() }
            } catch {
                for waiter in batchWaiters { waiter.resume(throwing: error) }
            }
        }
        flushing = false
    }
}
