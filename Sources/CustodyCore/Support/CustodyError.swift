/// An error raised by Custody: a stable code plus a message that names the value or path at fault.
///
/// The code decides how a caller reacts (the CLI maps ``Code/verificationFailed`` to exit status 1 and everything
/// else to 2); the message is for people and is printed as one line.
public struct CustodyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem: what decides the exit code of the CLI and the HTTP status of an answer.
    public enum Code: String, Hashable, Sendable {
        /// Reading or writing a file failed.
        case io
        /// Caller input is malformed: a bad digest string, an unknown option value.
        case invalidArgument
        /// A key file cannot be used for the requested purpose.
        case invalidKey
        /// A model directory cannot be serialized (symlink, special file, unreadable path).
        case invalidModel
        /// A signature file is not a well-formed OMS bundle.
        case malformedSignature
        /// The signature is well-formed but does not vouch for these bytes with this key.
        case verificationFailed
        /// The named model, version, blob or token does not exist.
        case notFound
        /// The request contradicts what is recorded (an immutable version with other content).
        case conflict
        /// Bytes offered at an offset other than where a resumable upload stands.
        case outOfOrder
        /// No credentials, or credentials that are unknown, expired or revoked.
        case unauthorized
        /// Valid credentials that do not allow this action.
        case forbidden
        /// A body or archive beyond a configured limit.
        case tooLarge
        /// The registry's storage has no room for this (a full disk or its reserve): retrying will not help until
        /// space is freed.
        case insufficientStorage
        /// A remote registry answered with an error or could not be reached.
        case remote
        /// A service the registry stores in (its PostgreSQL database) does not answer now: retry later.
        case unavailable
    }

    /// The kind of problem.
    public let code: Code
    /// What went wrong, naming the input at fault.
    public let message: String
    /// Further lines, one fact each (for example every file that differs from a signature).
    public let details: [String]

    /// An error of `code`, with `message` and further detail lines.
    public init(_ code: Code, _ message: String, details: [String] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    /// The message.
    public var description: String { message }
}

extension CustodyError {
    /// An I/O failure on `path`, worded from `errno`.
    /// A full file system (`ENOSPC`, `EDQUOT`) is ``Code/insufficientStorage``: the caller's answer is 507, not 500.
    public static func io(_ path: String, _ operation: String, errno code: Int32) -> CustodyError {
        let full = code == ENOSPC || code == EDQUOT
        return CustodyError(full ? .insufficientStorage : .io, "\(path): cannot \(operation): \(String(cString: strerror(code)))")
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
