import Crypto
import CustodyCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A blob `GET` over plain HTTP read the way curl reads it: one blocking socket on a thread of its own, 1 MiB
/// `recv(MSG_WAITALL)`s hashed and written with one `pwrite` each, write-back started every 32 MiB
/// (``EagerWriteback``) so that the pull's final sync waits for the last few MiB only. Through the HTTP client the same body arrives as
/// 64 KiB buffers, each a hop between the event loop and the task that hashes and writes it; for multi-gigabyte
/// weights those hops, not hashing or the disk, were what limited a pull. HTTPS goes through the HTTP client.
enum SocketDownload {
    /// What the registry answered when it was not a body this reader takes (a refusal, a redirect, a chunked body).
    struct Refusal {
        let status: Int
        let reason: String
        let body: [UInt8]
        let chunked: Bool
    }

    static let blockSize = 1 << 20
    /// Blobs with less than this left to fetch go through the HTTP client, whose connections are kept.
    static let minimumSize: UInt64 = 8 << 20
    /// A registry that sends nothing for this long is given up on (the pull can resume).
    static let idleTimeout = 120

    enum Outcome {
        /// The whole rest of the blob is in the file.
        case complete
        case refused(Refusal)
    }

    /// Fetches `path` from `offset` into `fd` at `offset`, hashing into `hasher`. Bytes are
    /// written only in whole blocks (and the last): after a failure the file holds a prefix of the blob, which a
    /// retry rehashes and continues.
    static func fetch(
        host: String, port: Int, path: String, headers: [(String, String)], offset: UInt64, size: UInt64, into fd: Int32,
        file: String, hasher: inout SHA256, progress: (@Sendable (Int) -> Void)?
    ) throws(CustodyError) -> Outcome {
        let socket = try connect(host: host, port: port)
        defer { close(socket) }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        if offset > 0 { request += "Range: bytes=\(offset)-\r\n" }
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        try sendAll(Array((request + "\r\n").utf8), on: socket)

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        let head = try readHead(socket, into: buffer)
        if head.status != (offset > 0 ? 206 : 200) || head.chunked || head.length != size - offset {
            return .refused(refusal(head, socket: socket, buffer: buffer))
        }
        var position = offset
        var filled = head.extra
        // The pull syncs the file system before the model appears: written pages start for the disk as they arrive.
        var writeback = EagerWriteback(fd: fd, from: offset)
        while position < size {
            let want = Int(min(UInt64(blockSize), size - position))
            while filled < want {
                let got = recv(socket, buffer.baseAddress! + filled, want - filled, Int32(MSG_WAITALL))
                if got > 0 {
                    filled += got
                    continue
                }
                let reason = got == 0 ? "the registry closed the connection" : String(cString: strerror(errno))
                throw CustodyError(.remote, "downloading \(path) was interrupted after \(position + UInt64(filled)) of \(size) bytes: \(reason)")
            }
            let block = UnsafeRawBufferPointer(rebasing: buffer[0..<want])
            hasher.update(bufferPointer: block)
            try PosixFile.pwriteAll(block, to: fd, at: position, path: file)
            position += UInt64(want)
            writeback.written(upTo: position)
            filled = 0
            progress?(want)
        }
        return .complete
    }

    // MARK: the wire

    private struct Head {
        var status: Int
        var reason: String
        var length: UInt64?
        var chunked: Bool
        /// Body bytes read with the head, at the start of the buffer.
        var extra: Int
    }

    private static func connect(host: String, port: Int) throws(CustodyError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw CustodyError(.remote, "cannot resolve the registry's host \(host)")
        }
        defer { freeaddrinfo(list) }
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        var lastError = ECONNREFUSED
        while let address = candidate {
            let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd >= 0 {
                if Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 {
                    var timeout = timeval(tv_sec: idleTimeout, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    return fd
                }
                lastError = errno
                close(fd)
            }
            candidate = address.pointee.ai_next
        }
        throw CustodyError(.remote, "cannot reach the registry at \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    private static func sendAll(_ bytes: [UInt8], on socket: Int32) throws(CustodyError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(socket, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw CustodyError(.remote, "cannot send a request to the registry: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// Reads up to the end of the response head (at most 64 KiB of it), leaving any body bytes read with it at the
    /// start of `buffer`.
    private static func readHead(_ socket: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(CustodyError) -> Head {
        var filled = 0
        let limit = 64 << 10
        let terminator: [UInt8] = [13, 10, 13, 10]
        while true {
            let got = recv(socket, buffer.baseAddress! + filled, limit - filled, 0)
            guard got > 0 else { throw CustodyError(.remote, "the registry closed the connection before answering") }
            filled += got
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<filled])
            if let end = bytes.firstRange(of: terminator)?.upperBound {
                var head = try parse(Array(bytes[0..<end]))
                head.extra = filled - end
                if head.extra > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + end, head.extra) }
                return head
            }
            guard filled < limit else { throw CustodyError(.remote, "the registry's response head is over 64 KiB") }
        }
    }

    private static func parse(_ bytes: [UInt8]) throws(CustodyError) -> Head {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: true)
        let statusLine = lines.first.map { $0.split(separator: " ", maxSplits: 2) } ?? []
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw CustodyError(.remote, "the registry's answer is not HTTP/1.1")
        }
        var head = Head(status: status, reason: statusLine.count > 2 ? String(statusLine[2]) : "", length: nil, chunked: false, extra: 0)
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { head.length = UInt64(value) }
            if name == "transfer-encoding" { head.chunked = value.lowercased().contains("chunked") }
        }
        return head
    }

    /// The answer that was not the expected body, read (up to 1 MiB, when its length is known) so that the caller can
    /// report the registry's own problem document.
    private static func refusal(
        _ head: Head, socket: Int32, buffer: UnsafeMutableRawBufferPointer
    ) -> Refusal {
        var body = Array(UnsafeRawBufferPointer(rebasing: buffer[0..<head.extra]))
        if !head.chunked, let length = head.length, head.status >= 300 {
            let wanted = Int(min(length, 1 << 20))
            while body.count < wanted {
                let got = recv(socket, buffer.baseAddress!, min(buffer.count, wanted - body.count), 0)
                guard got > 0 else { break }
                body += UnsafeRawBufferPointer(rebasing: buffer[0..<got])
            }
        }
        return Refusal(status: head.status, reason: head.reason, body: body, chunked: head.chunked)
    }
}
