package import CustodyCore
package import CustodyStorage
package import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The publisher keys the registry trusts: one `Keys/trusted/NAME.pub` (SPKI PEM) each, kept live.
///
/// The directory is the source of truth and the transparency log records every change to it: a key added or removed
/// through the admin API or `custody trust --home` is a `trust.add` / `trust.remove` event naming the key, its hint and
/// who made the change. A file put in or taken out by hand is noticed on the next use (the directory's modification
/// time is looked at before every use), on SIGHUP and on `policy reload`, and recorded then as the registry's own
/// change. What was last recorded is folded from those events, so a change is recorded exactly once whichever way
/// it was made, and a registry that starts with keys it has no events for records them on its first start.
package final class TrustStore: Sendable {
    /// A publisher key the registry trusts: `Keys/trusted/NAME.pub`.
    package struct TrustedKey: Sendable, Equatable {
        package let name: String
        package let key: PublicVerifyingKey

        package static func == (lhs: TrustedKey, rhs: TrustedKey) -> Bool {
            lhs.name == rhs.name && lhs.key.hint == rhs.key.hint
        }
    }

    package let directory: String
    private let log: any EventLog
    private let recorder: EventRecorder
    private let state = Mutex(State())
    /// Called after the trusted set changed (the gate drops what it decided with the old set).
    private let observers = Mutex<[@Sendable () -> Void]>([])

    private struct State {
        var keys: [TrustedKey] = []
        var stamp: Stamp?
        /// The reload under way: callers that find the directory changed meanwhile wait for it instead of recording
        /// the same change again.
        var reloading: Task<[TrustedKey], any Error>?
    }

    /// The directory's modification time, to notice edits by hand.
    private struct Stamp: Equatable {
        var seconds: Int
        var nanoseconds: Int
    }

    /// Trust kept in `directory`, its changes recorded through `recorder` and read back from `log`.
    package init(directory: String, log: any EventLog, recorder: EventRecorder) {
        self.directory = directory
        self.log = log
        self.recorder = recorder
    }

    /// Trust kept in `directory`, its changes written straight to `log` (tools that open a registry home).
    package convenience init(directory: String, log: any EventLog) {
        self.init(directory: directory, log: log, recorder: EventRecorder(log: log, repeatWindow: .zero))
    }

    /// Calls `observer` after every change of the trusted set.
    package func onChange(_ observer: @escaping @Sendable () -> Void) {
        observers.withLock { $0.append(observer) }
    }

    private func changed() {
        for observer in observers.withLock({ $0 }) { observer() }
    }

    /// The keys trusted now, re-read first when the directory changed since it was last read.
    package func keys() async throws(CustodyError) -> [TrustedKey] {
        let (current, stamp) = state.withLock { ($0.keys, $0.stamp) }
        if stamp != nil, stamp == Self.stamp(directory) { return current }
        return try await reload(actor: "registry")
    }

    /// The keys as last read, without looking at the directory (for evaluations that must not wait).
    package var loaded: [TrustedKey] { state.withLock { $0.keys } }

    /// Re-reads the directory and records what changed since the last recorded state. A file that is not a usable
    /// key stops the reload with an error naming it; the set in force stays.
    @discardableResult
    package func reload(actor: String) async throws(CustodyError) -> [TrustedKey] {
        let task = state.withLock { state in
            if let running = state.reloading { return running }
            let task = Task { try await self.read(actor: actor) }
            state.reloading = task
            return task
        }
        defer { state.withLock { if $0.reloading == task { $0.reloading = nil } } }
        do {
            return try await task.value
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.io, "cannot reload the trusted keys: \(error)")
        }
    }

    private func read(actor: String) async throws(CustodyError) -> [TrustedKey] {
        let stamp = Self.stamp(directory)
        let keys = try Self.read(directory)
        let recorded = try await Self.recorded(log)
        for key in keys where recorded[key.key.hint] != key.name {
            if let old = recorded[key.key.hint] {
                try await recorder.record(
                    Self.event(.trustRemoved, TrustedKey(name: old, key: key.key), actor: actor, note: "renamed to \(key.name)"))
            }
            try await recorder.record(Self.event(.trustAdded, key, actor: actor, note: "found in the trusted keys directory"))
        }
        let hints = Set(keys.map(\.key.hint))
        for (hint, name) in recorded.sorted(by: { $0.value < $1.value }) where !hints.contains(hint) {
            try await recorder.record(
                NewEvent(type: .trustRemoved, actor: actor, detail: "\(name) key \(hint) (no longer in the trusted keys directory)"))
        }
        let changed = state.withLock { state -> Bool in
            defer { (state.keys, state.stamp) = (keys, stamp) }
            return state.keys != keys
        }
        if changed { self.changed() }
        return keys
    }

    /// Trusts `pem` under `name`: validates both, writes `NAME.pub`, records `trust.add`. Refuses a name in use and a
    /// key already trusted under another name.
    @discardableResult
    package func add(name: String, pem: String, actor: String) async throws(CustodyError) -> TrustedKey {
        let key = try Self.validate(name: name, pem: pem)
        let existing = try await keys()
        if let same = existing.first(where: { $0.name == name }) {
            throw CustodyError(.conflict, "a trusted key is already named '\(name)' (key hint \(same.key.hint)); remove it first")
        }
        if let same = existing.first(where: { $0.key.hint == key.key.hint }) {
            throw CustodyError(.conflict, "this key is already trusted as '\(same.name)'")
        }
        try PosixFile.writeAtomically(Array(key.key.pemRepresentation.utf8), to: path(name), mode: 0o644, exclusive: true)
        try await recorder.record(Self.event(.trustAdded, key, actor: actor, note: nil))
        state.withLock { state in
            state.keys = (state.keys + [key]).sorted { $0.name < $1.name }
            state.stamp = Self.stamp(directory)
        }
        changed()
        return key
    }

    /// Stops trusting the key named `name`: deletes `NAME.pub`, records `trust.remove`. New publishes signed by it
    /// are refused from now on; versions already published keep the verdict recorded at publish.
    @discardableResult
    package func remove(name: String, actor: String) async throws(CustodyError) -> TrustedKey {
        guard let key = try await keys().first(where: { $0.name == name }) else {
            let known = loaded.map(\.name).joined(separator: ", ")
            throw CustodyError(.notFound, "no trusted key is named '\(name)' (trusted: \(known.isEmpty ? "none" : known))")
        }
        guard unlink(path(name)) == 0 || errno == ENOENT else { throw .io(path(name), "delete", errno: errno) }
        try await recorder.record(Self.event(.trustRemoved, key, actor: actor, note: nil))
        state.withLock { state in
            state.keys.removeAll { $0.name == name }
            state.stamp = Self.stamp(directory)
        }
        changed()
        return key
    }

    package func path(_ name: String) -> String { directory + "/" + name + ".pub" }

    package static func event(_ type: EventKind, _ key: TrustedKey, actor: String, note: String?) -> NewEvent {
        NewEvent(type: type, actor: actor, detail: "\(key.name) key \(key.key.hint)" + (note.map { " (\($0))" } ?? ""))
    }

    /// A key name is a file name: lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit.
    package static func validate(name: String, pem: String) throws(CustodyError) -> TrustedKey {
        let allowed = name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, name.first != ".", name.first != "-", name.first != "_" else {
            throw CustodyError(
                .invalidArgument, "key name '\(name)' must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        return TrustedKey(name: name, key: try PublicVerifyingKey(pem: pem, source: "the public key for '\(name)'"))
    }

    /// Every `*.pub` in the directory, by name.
    package static func read(_ directory: String) throws(CustodyError) -> [TrustedKey] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".pub") }.sorted()
        var keys: [TrustedKey] = []
        for name in names {
            keys.append(TrustedKey(name: String(name.dropLast(4)), key: try PublicVerifyingKey(contentsOf: directory + "/" + name)))
        }
        return keys
    }

    /// The trusted set as the log has it: hint → name, folded from every `trust.add` and `trust.remove`.
    package static func recorded(_ log: any EventLog) async throws(CustodyError) -> [String: String] {
        var filter = EventFilter()
        filter.types = [EventKind.trustAdded.rawValue, EventKind.trustRemoved.rawValue]
        filter.limit = 10_000
        var trusted: [String: String] = [:]
        while true {
            let page = try await log.events(filter)
            for event in page {
                guard let detail = event.detail, let range = detail.range(of: " key ") else { continue }
                let name = String(detail[..<range.lowerBound])
                let hint = String(detail[range.upperBound...].prefix { $0 != " " })
                if event.type == EventKind.trustAdded.rawValue { trusted[hint] = name } else { trusted.removeValue(forKey: hint) }
            }
            guard page.count == filter.limit, let last = page.last else { return trusted }
            filter.after = last.id
        }
    }

    /// The directory's modification time, or nil while it is too recent to tell changes apart: file systems stamp
    /// times from a coarse clock, so a change within the same tick as the last read would carry the same time. A nil
    /// stamp makes the next use read the directory again.
    private static func stamp(_ directory: String) -> Stamp? {
        var info = stat()
        guard stat(directory, &info) == 0 else { return nil }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let age = Double(now.tv_sec - info.st_mtim.tv_sec) + Double(now.tv_nsec - info.st_mtim.tv_nsec) / 1e9
        guard age > 0.05 else { return nil }
        return Stamp(seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
    }
}
