package import CustodyCore
package import CustodyStorage
import Dispatch
import Synchronization

/// Records events with group commit: callers wait until their event is in the database, and events that arrive while a
/// transaction is committing go together into the next one. Under load one SQLite transaction carries many events
/// instead of one each. The writing runs on a dispatch queue of its own, blocking there: its turn never waits behind
/// request tasks in the task pool, and callers queue under a lock without hopping to another executor.
///
/// Gate decisions repeat: a deployment gate or an admission webhook asks the same question again and again; so do a
/// token's uses and a misconfigured or hostile client's refusals. A *repeatable* event identical in every field (or in
/// the fields of its series) to one already recorded is counted instead of written: the first is in
/// the database before its caller is answered, and the repeats of each `repeatWindow` become one event carrying their
/// count when the window closes (at the latest a quarter window later, and when the daemon stops); the next window
/// starts then. A window without repeats ends the series: the next identical event is a first again. A repeat window
/// of zero records every decision on its own.
package final class EventRecorder: Sendable {
    private let log: any EventLog
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "custody.events")
    package let repeatWindow: Duration
    private let now: @Sendable () -> ContinuousClock.Instant

    private struct State {
        var pending: [NewEvent] = []
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var writing = false
        /// Repeatable events recorded within the window, by their content.
        var open: [NewEvent: Repeats] = [:]
        /// Repeats whose window closed, to be written.
        var closed: [NewEvent] = []
    }

    private struct Repeats {
        var opened: ContinuousClock.Instant
        var count: Int64 = 0
    }

    package init(log: any EventLog, repeatWindow: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.log = log
        self.repeatWindow = repeatWindow
        self.now = now
    }

    /// Records an event; returns once it is in the database.
    package func record(_ event: NewEvent) async throws(CustodyError) {
        try await write([event])
    }

    /// Records a repeatable event (a gate decision, a token's use, a refused request): written at once if nothing
    /// with the same identity was recorded within the window, counted (and the caller answered at once) otherwise.
    ///
    /// The identity is the event itself unless `series` names a coarser one: a refusal is counted per client, actor
    /// and reason whatever path it was for, so the first is written as it happened (`event`, with its path) and the
    /// repeats of each window become one `series` event with their count. Returns whether `event` was written (a
    /// first) rather than counted, so that callers log firsts only.
    @discardableResult
    package func record(repeatable event: NewEvent, series: NewEvent? = nil) async throws(CustodyError) -> Bool {
        guard repeatWindow > .zero else {
            try await record(event)
            return true
        }
        let key = series ?? event
        let now = now()
        let counted = state.withLock { state -> Bool in
            if let repeats = state.open[key] {
                if now - repeats.opened < repeatWindow {
                    state.open[key]!.count += 1
                    return true
                }
                if repeats.count > 0 {
                    // The window closed with repeats, not yet written: they are now, and this one opens the next.
                    Self.close(key, repeats, into: &state)
                    state.open[key] = Repeats(opened: now, count: 1)
                    return true
                }
            }
            state.open[key] = Repeats(opened: now)
            return false
        }
        if counted { return false }
        do {
            try await record(event)
            // The window runs from when the first is on record.
            let recorded = self.now()
            state.withLock { $0.open[key]?.opened = recorded }
            return true
        } catch {
            // Nothing of this series is in the database: the next one must be written, not counted.
            state.withLock { state in
                if let repeats = state.open.removeValue(forKey: key), repeats.count > 0 { Self.close(key, repeats, into: &state) }
            }
            throw error
        }
    }

    private static func close(_ event: NewEvent, _ repeats: Repeats, into state: inout State) {
        state.open.removeValue(forKey: event)
        guard repeats.count > 0 else { return }
        var summary = event
        summary.count = repeats.count
        state.closed.append(summary)
    }

    /// Writes the repeats of every window that has closed and opens the next, or writes every window's repeats when
    /// `all` (the daemon is stopping).
    package func writeRepeats(all: Bool = false) async throws(CustodyError) {
        let now = now()
        let summaries = state.withLock { state -> [NewEvent] in
            for (event, repeats) in state.open where all || now - repeats.opened >= repeatWindow {
                Self.close(event, repeats, into: &state)
                if !all, repeats.count > 0 { state.open[event] = Repeats(opened: now) }
            }
            defer { state.closed = [] }
            return state.closed
        }
        guard !summaries.isEmpty else { return }
        do {
            try await write(summaries)
        } catch {
            state.withLock { $0.closed += summaries }  // kept for the next round
            throw error
        }
    }

    /// Writes closed windows' repeats every quarter window until cancelled.
    package func run() async {
        guard repeatWindow > .zero else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: repeatWindow / 4)
            try? await writeRepeats()
        }
    }

    private func write(_ events: [NewEvent]) async throws(CustodyError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let start = state.withLock { state in
                    state.pending += events
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
                try log.recordEventsBlocking(batch)
                for waiter in waiters { waiter.resume() }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
    }
}
