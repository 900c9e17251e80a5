import HummingbirdCore
import Logging
import NIOCore

/// HTTP/1.1 with reads of up to 1 MiB instead of NIO's default 64 KiB ceiling. Blob uploads are large sequential
/// bodies: fewer, larger reads mean fewer event-loop hops, hashing calls and `pwrite`s per gigabyte.
struct LargeReadChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 256 << 10, maximum: 1 << 20)
        return channel.setOption(ChannelOptions.recvAllocator, value: allocator).flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
