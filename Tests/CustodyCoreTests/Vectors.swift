import Foundation
import Testing

/// A test vector shipped with this test target (`Vectors/`).
func vector(_ name: String) throws -> [UInt8] {
    let url = try #require(Bundle.module.url(forResource: "Vectors/" + name, withExtension: nil))
    return Array(try Data(contentsOf: url))
}
