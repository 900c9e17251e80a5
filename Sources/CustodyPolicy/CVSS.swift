package import CustodyCore
import Foundation

/// Severity levels, ordered; a CVSS score maps onto them by the CVSS v3.x qualitative scale.
package enum Severity: String, Codable, Sendable, DeclarationOrdered {
    /// No score or level was given (OSV makes severity optional): below every level, so `max_severity` never catches
    /// it; a policy's `advisories.unscored` says what it means.
    case unknown
    case none, low, medium, high, critical

    package init(score: Double) {
        switch score {
        case ..<0.1: self = .none
        case ..<4.0: self = .low
        case ..<7.0: self = .medium
        case ..<9.0: self = .high
        default: self = .critical
        }
    }

    package init?(level: String) {
        switch level.lowercased() {
        case "none": self = .none
        case "low": self = .low
        case "medium", "moderate": self = .medium
        case "high", "important": self = .high
        case "critical": self = .critical
        default: return nil
        }
    }
}

/// The CVSS v3.0/v3.1 base score of a vector (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`), per the
/// specification's equations and its Roundup function.
package enum CVSS3 {
    package struct Invalid: Error, CustomStringConvertible {
        package let description: String
    }

    package static func baseScore(_ vector: String) throws(Invalid) -> Double {
        let parts = vector.split(separator: "/").map(String.init)
        guard let prefix = parts.first, prefix == "CVSS:3.1" || prefix == "CVSS:3.0" else {
            throw Invalid(description: "'\(vector)' is not a CVSS v3.0/v3.1 vector (it must start with CVSS:3.1/ or CVSS:3.0/)")
        }
        var metrics: [String: String] = [:]
        for part in parts.dropFirst() {
            let pair = part.split(separator: ":", maxSplits: 1).map(String.init)
            guard pair.count == 2, metrics[pair[0]] == nil else { throw Invalid(description: "'\(part)' in '\(vector)' is malformed or repeated") }
            metrics[pair[0]] = pair[1]
        }
        func value(_ name: String, _ table: [String: Double]) throws(Invalid) -> Double {
            guard let letter = metrics[name] else { throw Invalid(description: "'\(vector)' lacks the base metric \(name)") }
            guard let number = table[letter] else { throw Invalid(description: "'\(vector)': \(name):\(letter) is not a valid value") }
            return number
        }
        guard let scope = metrics["S"], scope == "U" || scope == "C" else {
            throw Invalid(description: "'\(vector)' lacks a valid scope (S:U or S:C)")
        }
        let changed = scope == "C"
        let av = try value("AV", ["N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2])
        let ac = try value("AC", ["L": 0.77, "H": 0.44])
        let pr = try value("PR", ["N": 0.85, "L": changed ? 0.68 : 0.62, "H": changed ? 0.5 : 0.27])
        let ui = try value("UI", ["N": 0.85, "R": 0.62])
        let impactValues = ["H": 0.56, "L": 0.22, "N": 0.0]
        let c = try value("C", impactValues)
        let i = try value("I", impactValues)
        let a = try value("A", impactValues)
        let iss = 1 - (1 - c) * (1 - i) * (1 - a)
        let impact = changed ? 7.52 * (iss - 0.029) - 3.25 * pow(iss - 0.02, 15) : 6.42 * iss
        let exploitability = 8.22 * av * ac * pr * ui
        guard impact > 0 else { return 0 }
        return roundUp(min(changed ? 1.08 * (impact + exploitability) : impact + exploitability, 10))
    }

    /// CVSS v3.1's Roundup: the smallest one-decimal number not below the input, computed on integers so that
    /// floating-point noise cannot push 4.0 to 4.1.
    static func roundUp(_ input: Double) -> Double {
        let scaled = Int((input * 100_000).rounded())
        return scaled % 10_000 == 0 ? Double(scaled) / 100_000 : (Double(scaled / 10_000) + 1) / 10
    }
}
