import CustodyCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A blob `PUT` over plain HTTP whose body goes from the page cache to the socket with sendfile(2): no read into
/// user memory and one copy fewer per byte than a buffered upload. HTTPS uploads cannot use it (TLS encrypts in user
/// space) and go through the HTTP client instead.
enum SendfileUpload {
    struct Response {
        let status: Int
        let reason: String
        let body: [UInt8]
    }

    /// The size of one file region handed to the channel; progress is reported as each completes.
    static let regionSize: UInt64 = 64 << 20

    static func put(
        host: String, port: Int, path: String, headers: [(String, String)], file: String, range: Range<UInt64>,
        progress: (@Sendable (Int) -> Void)?
    ) async throws(CustodyError) -> Response {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(file, "open", errno: errno) }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        defer { try? handle.close() }
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw CustodyError(.remote, "cannot reach the registry at \(host):\(port): \(error)")
        }
        do {
            var head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: path)
            head.headers.add(name: "Host", value: "\(host):\(port)")
            head.headers.add(name: "Content-Length", value: String(range.count))
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            try await channel.writeAndFlush(HTTPClientRequestPart.head(head))
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + regionSize, range.upperBound)
                let region = FileRegion(fileHandle: handle, readerIndex: Int(start), endIndex: Int(end))
                // One region in flight at a time keeps the file handle's use ordered and memory flat.
                try await channel.writeAndFlush(HTTPClientRequestPart.body(.fileRegion(region)))
                progress?(Int(end - start))
                start = end
            }
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        } catch {
            // The registry may answer before reading the whole body (the blob is already stored, the offset is
            // wrong, a concurrent upload holds it) and close the connection, failing the rest of the write: its
            // answer is what counts. Closing completes the promise either way.
            try? await channel.close()
            if let response = try? await promise.futureResult.get() { return response }
            throw CustodyError(.remote, "uploading \(file) was interrupted: \(error)")
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            throw CustodyError(.remote, "the registry closed the connection before answering the upload of \(file)")
        }
    }

    /// Collects the response and completes the promise once, closing the connection.
    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var done = false

        init(promise: EventLoopPromise<Response>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body(let buffer): if body.count < 1 << 20 { body += buffer.readableBytesView }
            case .end:
                guard let head, !done else { return }
                done = true
                promise.succeed(Response(status: Int(head.status.code), reason: head.status.reasonPhrase, body: body))
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            finish(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(ChannelError.eof)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            finish(ChannelError.ioOnClosedChannel)
        }

        private func finish(_ error: any Error) {
            guard !done else { return }
            done = true
            promise.fail(error)
        }
    }
}
