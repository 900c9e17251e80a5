import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A one-line transfer display on a terminal: bytes done, rate and time left, redrawn at most five times a second.
/// Silent when standard error is not a terminal or when asked to be quiet.
package final class TransferProgress: Sendable {
    private struct State {
        var done: Int64 = 0
        var lastDraw: ContinuousClock.Instant?
    }

    private let label: String
    private let total: Int64
    private let enabled: Bool
    private let start = ContinuousClock.now
    private let state = Mutex(State())

    package init(label: String, total: Int64, quiet: Bool) {
        self.label = label
        self.total = total
        enabled = !quiet && isatty(STDERR_FILENO) == 1
    }

    /// Counts `bytes` more as done.
    package func advance(_ bytes: Int) {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            state.done += Int64(bytes)
            let now = ContinuousClock.now
            if let last = state.lastDraw, now - last < .milliseconds(200), state.done < total { return nil }
            state.lastDraw = now
            return render(state.done, elapsed: now - start)
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    /// Ends the display line.
    package func finish() {
        guard enabled else { return }
        let line = state.withLock { render($0.done, elapsed: ContinuousClock.now - start) }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private func render(_ done: Int64, elapsed: Duration) -> String {
        let seconds = max(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, 0.001)
        let rate = Double(done) / seconds
        let left = rate > 0 ? Double(total - done) / rate : 0
        return "\r\u{1B}[2K\(label) \(Self.bytes(done)) / \(Self.bytes(total))  \(Self.bytes(Int64(rate)))/s  ETA \(Int(left.rounded()))s"
    }

    /// `count` bytes in binary units (`1.5 GiB`).
    package static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}
