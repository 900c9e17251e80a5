import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@testable import CustodyServer

/// The header deadline on an embedded channel whose event loop's clock the test moves: no real time passes. The
/// arrival of bytes (what `ArrivalHandler` reports ahead of the HTTP decoder) is fired by hand.
@Suite struct ConnectionGuardTests {
    static func channel(timeout: TimeAmount = .seconds(30)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HeaderDeadlineHandler(timeout: timeout))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static let head = HTTPRequestPart.head(HTTPRequest(method: .get, scheme: nil, authority: "x", path: "/healthz"))

    static func answer(_ channel: EmbeddedChannel, headers: HTTPFields = [:]) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: headers)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        while try channel.readOutbound(as: HTTPResponsePart.self) != nil {}
    }

    @Test func aConnectionThatSendsNoCompleteHeaderIsClosed() throws {
        let channel = try Self.channel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed 30 s after it opened without a header")
    }

    @Test func anIdleKeepAliveConnectionIsLeftToTheIdleTimeout() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.head)
        try channel.writeInbound(HTTPRequestPart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "answering takes as long as it takes")
        try Self.answer(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(90))
        #expect(channel.isActive, "silence between requests is not a slow header")
        // The next request's first bytes start its header deadline.
        channel.pipeline.fireUserInboundEventTriggered(ArrivalHandler.BytesArrived())
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "half of the next header for 30 s: closed")
    }

    @Test func aSlowBodyIsNotAHeader() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.head)
        for _ in 0..<10 {
            channel.pipeline.fireUserInboundEventTriggered(ArrivalHandler.BytesArrived())
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "slow")))
            channel.embeddedEventLoop.advanceTime(by: .seconds(100))
        }
        #expect(channel.isActive, "1,000 s of a slow body")
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try Self.answer(channel)
        #expect(channel.isActive)
    }

    @Test func anAnswerThatSaysCloseClosesOnceWritten() throws {
        let channel = try Self.channel()
        try channel.writeInbound(Self.head)
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try Self.answer(channel, headers: [.connection: "close"])
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}
