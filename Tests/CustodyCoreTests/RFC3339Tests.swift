import CustodyCore
import Foundation
import Testing

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
}
