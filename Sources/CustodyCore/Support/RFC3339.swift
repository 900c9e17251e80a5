public import Foundation
import Synchronization

/// RFC 3339 timestamps as Custody writes and reads them (with or without fractional seconds).
public enum RFC3339 {
    /// The instant a timestamp names. The form Custody writes (`2026-11-29T17:12:09Z`) is read by hand: the gate
    /// parses several timestamps per evaluation, and building an `ISO8601DateFormatter` costs far more than the
    /// evaluation. Every other form (fractions, offsets) goes to Foundation's parser; the tests hold both to the same
    /// answers.
    public static func date(_ text: String) -> Date? {
        if let seconds = wholeSecondsUTC(text) { return Date(timeIntervalSince1970: Double(seconds)) }
        return foundation.withLock { formatters in
            formatters.fractional.date(from: text) ?? formatters.whole.date(from: text)
        }
    }

    private struct Formatters: @unchecked Sendable {
        // Only ever used under the lock.
        let fractional: ISO8601DateFormatter = {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter
        }()
        let whole: ISO8601DateFormatter = {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            return formatter
        }()
    }

    private static let foundation = Mutex(Formatters())

    /// `YYYY-MM-DDTHH:MM:SSZ` with every field in range, as seconds since the epoch; nil for anything else.
    static func wholeSecondsUTC(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x54, bytes[13] == 0x3A, bytes[16] == 0x3A,
            bytes[19] == 0x5A
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), year >= 1, (1...12).contains(month), hour < 24,
            minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day >= 1, day <= lengths[Int(month) - 1] else { return nil }
        // Civil date to days since the epoch (Howard Hinnant's algorithm), the inverse of `format`.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    /// `2026-11-29T17:12:09Z`: UTC, whole seconds — what `Date.formatted(.iso8601)` writes, without its cost on hot
    /// paths (the text of the current second is kept).
    public static func string(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        if let cached = lastSecond.withLock({ $0 }), cached.seconds == seconds { return cached.text }
        let text = format(seconds)
        lastSecond.withLock { $0 = (seconds, text) }
        return text
    }

    private static let lastSecond = Mutex<(seconds: Int64, text: String)?>(nil)

    static func format(_ seconds: Int64) -> String {
        // Days since the epoch to a civil date (Howard Hinnant's algorithm), valid far beyond any registry's life.
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else { return Date(timeIntervalSince1970: Double(seconds)).formatted(.iso8601) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(month, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(day, 2)
        bytes.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
