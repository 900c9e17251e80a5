import Crypto
import CustodyCore
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A blob `GET` over plain HTTP that hashes and writes each chunk on the event loop as it arrives, in reads of up to
/// 1 MiB: no hop through an async sequence per 64 KiB chunk, as the general HTTP client needs. HTTPS downloads go
/// through the HTTP client.
enum DirectDownload {
    struct Outcome: Sendable {
        var status: Int
        var reason: String
        /// The body of an error answer (problem+json), at most 1 MiB.
        var errorBody: [UInt8]
        /// The offset after the last byte written.
        var end: UInt64
        var hasher: SHA256
    }

    static func get(
        host: String, port: Int, path: String, headers: [(String, String)], fd: Int32, file: String, offset: UInt64,
        size: UInt64, hasher: SHA256, progress: (@Sendable (Int) -> Void)?
    ) async throws(CustodyError) -> Outcome {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Outcome.self)
        let writer = BodyWriter(fd: fd, file: file, offset: offset, size: size, hasher: hasher, progress: progress, promise: promise)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelOption(
                    ChannelOptions.recvAllocator,
                    value: AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 256 << 10, maximum: 1 << 20)
                )
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(writer)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw CustodyError(.remote, "cannot reach the registry at \(host):\(port): \(error)")
        }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.head(head))
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        } catch {
            try? await channel.close()
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as CustodyError {
            throw error
        } catch {
            throw CustodyError(.remote, "downloading \(path) was interrupted after \(writer.endOffset) of \(size) bytes: \(error)")
        }
    }

    /// Writes the body of a 200/206 answer to the file as it arrives; collects any other answer's body.
    private final class BodyWriter: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        let fd: Int32
        let file: String
        let size: UInt64
        let progress: (@Sendable (Int) -> Void)?
        let promise: EventLoopPromise<Outcome>
        var hasher: SHA256
        var offset: UInt64
        var writeback: EagerWriteback
        var head: HTTPResponseHead?
        var errorBody: [UInt8] = []
        var done = false

        /// Read after the promise completed (it is only written on the event loop before that).
        var endOffset: UInt64 { offset }

        init(fd: Int32, file: String, offset: UInt64, size: UInt64, hasher: SHA256, progress: (@Sendable (Int) -> Void)?, promise: EventLoopPromise<Outcome>) {
            self.fd = fd
            self.file = file
            self.offset = offset
            self.size = size
            self.hasher = hasher
            self.progress = progress
            self.promise = promise
            self.writeback = EagerWriteback(fd: fd, from: offset)
        }

        private var writing: Bool { head.map { $0.status == .ok || $0.status == .partialContent } ?? false }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !done else { return }
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body(let buffer):
                guard writing else {
                    if errorBody.count < 1 << 20 { errorBody += buffer.readableBytesView }
                    return
                }
                guard offset + UInt64(buffer.readableBytes) <= size else {
                    fail(CustodyError(.verificationFailed, "the registry sent more than \(size) bytes for \(file)"), context)
                    return
                }
                do {
                    try buffer.withUnsafeReadableBytes { bytes in
                        hasher.update(bufferPointer: bytes)
                        try FileIO.pwriteAll(bytes, to: fd, at: offset, path: file)
                    }
                } catch {
                    fail(error, context)
                    return
                }
                offset += UInt64(buffer.readableBytes)
                writeback.written(upTo: offset)
                progress?(buffer.readableBytes)
            case .end:
                guard let head else { return }
                done = true
                promise.succeed(Outcome(
                    status: Int(head.status.code), reason: head.status.reasonPhrase, errorBody: errorBody, end: offset, hasher: hasher))
                context.close(promise: nil)
            }
        }

        private func fail(_ error: any Error, _ context: ChannelHandlerContext) {
            guard !done else { return }
            done = true
            promise.fail(error)
            context.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(error, context)
        }

        func channelInactive(context: ChannelHandlerContext) {
            guard !done else { return }
            done = true
            promise.fail(ChannelError.eof)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            guard !done else { return }
            done = true
            promise.fail(ChannelError.ioOnClosedChannel)
        }
    }
}
