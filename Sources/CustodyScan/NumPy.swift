import CustodyCore

/// NumPy `.npy`: `\x93NUMPY`, version, a Python-literal header dict, then the array data — which is a pickle
/// when the dtype holds objects.
enum NumPy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    struct Header {
        var dataOffset: Int
        var holdsObjects: Bool
    }

    struct Invalid: Error {
        let reason: String
    }

    static func looksLike(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 6 && zip(bytes.prefix(6), magic).allSatisfy { $0 == $1 }
    }

    static func header(_ bytes: UnsafeRawBufferPointer) -> Result<Header, Invalid> {
        guard bytes.count >= 10 else { return .failure(Invalid(reason: "truncated .npy preamble")) }
        let major = bytes[6]
        let lengthWidth: Int
        switch major {
        case 1: lengthWidth = 2
        case 2, 3: lengthWidth = 4
        default: return .failure(Invalid(reason: ".npy format version \(major) is not supported"))
        }
        guard bytes.count >= 8 + lengthWidth else { return .failure(Invalid(reason: "truncated .npy preamble")) }
        var length = 0
        for index in (0..<lengthWidth).reversed() { length = length << 8 | Int(bytes[8 + index]) }
        let start = 8 + lengthWidth
        guard length <= bytes.count - start else {
            return .failure(Invalid(reason: "the .npy header claims \(length) bytes but the file is shorter"))
        }
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]), as: UTF8.self),
            let descrStart = text.firstRange(of: "'descr'")
        else { return .failure(Invalid(reason: "the .npy header has no 'descr'")) }
        let afterDescr = text[descrStart.upperBound...]
        let descr = afterDescr.firstRange(of: "'fortran_order'").map { String(afterDescr[..<$0.lowerBound]) } ?? String(afterDescr)
        // Object fields are written 'O', '|O', '<O8' and so on, alone or inside a structured dtype's list.
        let holdsObjects = descr.contains(/['"][<>|=]?O\d*['"]/)
        return .success(Header(dataOffset: start + length, holdsObjects: holdsObjects))
    }
}
