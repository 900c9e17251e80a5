public import Crypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension PosixFile {
    /// Writes all of `bytes` at `position`, retrying short writes and interruptions.
    public static func pwriteAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32, at position: UInt64, path: String) throws(CustodyError) {
        var done = 0
        while done < bytes.count {
            let count = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(path, "write", errno: errno)
            }
            done += count
        }
    }

    /// Feeds the first `length` bytes of an open file into `hasher`: how an interrupted transfer's hash state is
    /// recovered from the bytes already on disk before it resumes.
    public static func hash(_ fd: Int32, path: String, length: UInt64, into hasher: inout SHA256) throws(CustodyError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position: UInt64 = 0
        while position < length {
            let want = Int(min(UInt64(buffer.count), length - position))
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { throw .io(path, "read", errno: got == 0 ? EIO : errno) }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
            position += UInt64(got)
        }
    }
}
