import Foundation
import Testing

@testable import CustodyCore

@Suite struct RFC3339Tests {
    @Test func formatsLikeFoundation() {
        var generator = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, 59, 86_399, 86_400, 951_782_400, 951_868_799, 4_107_542_400, 1_798_761_599, 253_402_300_799, 253_402_300_800]
        for _ in 0..<20_000 { samples.append(Int64.random(in: 0...7_258_118_400, using: &generator)) }
        for seconds in samples {
            let date = Date(timeIntervalSince1970: Double(seconds) + 0.75)
            #expect(RFC3339.string(date) == date.formatted(.iso8601), "at \(seconds)")
        }
    }

    @Test func readsWhatItWrites() {
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        #expect(RFC3339.date(RFC3339.string(date)) == date)
    }

    /// The hand-written reader of Custody's own form against Foundation's parser, over random instants and the
    /// edges of the calendar; anything else is Foundation's answer itself.
    @Test func readsLikeFoundation() {
        let foundation = ISO8601DateFormatter()
        foundation.formatOptions = [.withInternetDateTime]
        var generator = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, 59, 86_399, 951_782_400, 951_868_799, 4_107_542_400, 253_402_300_799, 1_709_164_800, 1_709_251_199]
        for _ in 0..<20_000 { samples.append(Int64.random(in: 0...7_258_118_400, using: &generator)) }
        for seconds in samples {
            let text = RFC3339.string(Date(timeIntervalSince1970: Double(seconds)))
            #expect(RFC3339.wholeSecondsUTC(text) == seconds, "\(text)")
            #expect(RFC3339.date(text) == foundation.date(from: text), "\(text)")
        }
        for text in [
            "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2024-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z", "2026-1-01T00:00:00Z",
            "2026-01-01T00:00:00+02:00", "2026-01-01T00:00:00.250Z", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00z", "0000-01-01T00:00:00Z",
        ] {
            let fast = RFC3339.wholeSecondsUTC(text)
            if let fast { #expect(foundation.date(from: text) == Date(timeIntervalSince1970: Double(fast)), "\(text)") }
            let fractional = ISO8601DateFormatter()
            fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            #expect(RFC3339.date(text) == (fractional.date(from: text) ?? foundation.date(from: text)), "\(text)")
        }
    }
}
