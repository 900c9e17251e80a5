import Dispatch
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

#if canImport(Glibc)
    /// glibc's `malloc_trim(3)`, which Swift's Glibc module does not export.
    @_silgen_name("malloc_trim")
    private func malloc_trim(_ pad: Int) -> Int32
#endif

/// What a connection may cost before and between requests: a receive buffer that starts small and grows only for
/// bodies that fill it, and the arrival of bytes made known to the header deadline (``HeaderDeadlineHandler``).
///
/// A connection that has sent half a header holds its receive buffer until the header completes, so the buffer's
/// first size is what thousands of idle or slow clients cost: it starts at 2 KiB (a request header fits) and doubles
/// with every read that fills it, up to 1 MiB, so blob uploads still read 1 MiB at a time after a few reads.
struct GuardedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 1 << 10, initial: 2 << 10, maximum: 1 << 20)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.setOption(ChannelOptions.recvAllocator, value: Self.receiveAllocator).flatMapThrowing {
            try channel.pipeline.syncOperations.addHandler(ArrivalHandler())
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Tells the HTTP handlers that bytes arrived, before the HTTP decoder sees them: the first bytes of a request start
/// its header deadline. Sits first in the pipeline (after TLS, when there is TLS).
final class ArrivalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The user event fired ahead of every read.
    struct BytesArrived {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireUserInboundEventTriggered(BytesArrived())
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension ArrivalHandler: Sendable {}

/// Closes a connection that does not deliver a complete request header within `timeout` of opening, or of the
/// first bytes of its next request (slowloris clients, half-open sockets), and one whose answer carried
/// `Connection: close` once that answer is written. A keep-alive connection that sends nothing between requests is the
/// idle timeout's (Hummingbird's, on the same pipeline), and so is silence within a body: a slow upload that keeps
/// sending is never cut off, however long it takes.
final class HeaderDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var headsRead = 0
    private var answersWritten = 0
    /// Between a request's head and its end.
    private var readingRequest = false
    /// Bytes arrived since the last request was read to its end: the next request has begun.
    private var nextBegun = false
    private var closeAfterAnswer = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)  // the first header is due from the moment the connection opens
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ArrivalHandler.BytesArrived {
            if !readingRequest, headsRead > 0 {
                nextBegun = true
                armIfWaitingForHeader(context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            headsRead += 1
            readingRequest = true
            nextBegun = false
            disarm()
        case .body:
            break
        case .end:
            readingRequest = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            if head.headerFields[.connection]?.lowercased() == "close" { closeAfterAnswer = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            answersWritten += 1
            if closeAfterAnswer {
                let written = promise ?? context.eventLoop.makePromise()
                written.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
                context.writeAndFlush(data, promise: written)
            } else {
                context.write(data, promise: promise)
                armIfWaitingForHeader(context)
            }
        }
    }

    /// Arms the deadline when a next request has begun arriving and nothing is being read or answered.
    private func armIfWaitingForHeader(_ context: ChannelHandlerContext) {
        if nextBegun, !readingRequest, answersWritten >= headsRead { arm(context) }
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timeout > .zero, deadline == nil else { return }
        deadline = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: timeout) { [weak self] in
            self?.deadline = nil
            context.close(promise: nil)
        }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}

@available(*, unavailable)
extension HeaderDeadlineHandler: Sendable {}

/// Counts open connections, caps them at `maximum` (further ones wait in the listen backlog), and gives memory back
/// to the system after a burst of connections has closed: glibc keeps freed heap pages in its arenas otherwise,
/// and a daemon that once held thousands of connections would keep their memory for good.
struct ConnectionLimit: AvailableConnectionsDelegate {
    let maximum: Int
    let state: ConnectionCounts

    mutating func connectionOpened() { state.opened() }
    mutating func connectionClosed() { state.closed() }
    func isAcceptingNewConnections() -> Bool { state.open < maximum }
}

final class ConnectionCounts: Sendable {
    private let counts = Mutex((open: 0, peak: 0))
    /// Memory is trimmed once this many connections have closed since the peak.
    static let trimAfter = 256

    var open: Int { counts.withLock { $0.open } }

    func opened() {
        counts.withLock { counts in
            counts.open += 1
            counts.peak = max(counts.peak, counts.open)
        }
    }

    func closed() {
        let trim = counts.withLock { counts -> Bool in
            counts.open -= 1
            // After a burst: every `trimAfter` closes, and once a burst of at least a quarter of that has all gone.
            guard counts.peak - counts.open >= Self.trimAfter || (counts.open == 0 && counts.peak >= Self.trimAfter / 4) else { return false }
            counts.peak = counts.open
            return true
        }
        #if canImport(Glibc)
            // Off the event loop: trimming walks every arena.
            if trim { DispatchQueue.global(qos: .utility).async { _ = malloc_trim(0) } }
        #endif
    }
}
