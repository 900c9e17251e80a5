import CustodyCore
import CustodyRegistry
import CustodyStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Response {
    /// A JSON answer with sorted keys, as every endpoint writes them.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        json(ByteBuffer(bytes: try encoder().encode(value)), status: status)
    }

    /// A JSON answer with further headers.
    static func json(_ value: some Encodable, headers: HTTPFields, status: HTTPResponse.Status = .ok) throws -> Response {
        var response = json(ByteBuffer(bytes: try encoder().encode(value)), status: status)
        for field in headers { response.headers[field.name] = field.value }
        return response
    }

    /// A JSON answer already encoded.
    static func json(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }

    /// The encoder behind every JSON answer.
    static func encoder() -> JSONEncoder { API.encoder() }
}

extension Ruling {
    /// The kept decision's JSON answer given at `time`: two copies, no encoding.
    func body(at time: String) -> ByteBuffer {
        let (prefix, suffix) = answer
        var buffer = ByteBuffer()
        buffer.reserveCapacity(prefix.count + time.utf8.count + suffix.count)
        buffer.writeBytes(prefix)
        buffer.writeString(time)
        buffer.writeBytes(suffix)
        return buffer
    }
}
