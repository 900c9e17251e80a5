package import AsyncHTTPClient
package import CustodyCore
import Foundation
import NIOCore
import NIOFoundationCompat
package import NIOHTTP1
import NIOSSL

/// A connection to a Custody registry: JSON calls and blob transfers, errors turned into ``CustodyError``s that
/// carry the registry's problem detail.
package final class RegistryClient: Sendable {
    package let baseURL: String
    let token: String?
    let http: HTTPClient

    /// - Parameters:
    ///   - baseURL: `http://127.0.0.1:8080` or `https://…`.
    ///   - token: the bearer secret; never logged.
    ///   - caCertificate: a PEM file of CA certificates to trust for HTTPS instead of the system's.
    package init(baseURL: String, token: String?, caCertificate: String? = nil) throws(CustodyError) {
        guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw CustodyError(.invalidArgument, "registry URL '\(baseURL)' must be http(s)://HOST[:PORT]")
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        configuration.decompression = .disabled
        if let caCertificate {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caCertificate)
            configuration.tlsConfiguration = tls
        }
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    package func shutdown() async {
        try? await http.shutdown()
    }

    func request(_ path: String, method: HTTPMethod = .GET) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// Runs a request; a non-success status becomes an error naming the registry's reason.
    func execute(
        _ request: HTTPClientRequest, timeout: TimeAmount = .seconds(300), accept: Set<Int> = []
    ) async throws(CustodyError)
        -> HTTPClientResponse
    {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw CustodyError(.remote, "cannot reach the registry at \(baseURL): \(Self.describe(error))")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) || accept.contains(status) else {
            throw await Self.failure(response, method: request.method.rawValue, url: request.url)
        }
        return response
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return error.shortDescription }
        return "\(error)"
    }

    static func failure(_ response: HTTPClientResponse, method: String, url: String) async -> CustodyError {
        let body = try? await response.body.collect(upTo: 1 << 20)
        return failure(
            status: Int(response.status.code), reason: response.status.reasonPhrase, body: body.map { Array(buffer: $0) } ?? [],
            method: method, path: URL(string: url)?.path ?? url)
    }

    /// The error for a refused request: the registry's problem detail when it sent one, coded by status.
    static func failure(status: Int, reason: String, body: [UInt8], method: String, path: String) -> CustodyError {
        var detail = "\(status) \(reason)"
        if let problem = try? JSONDecoder().decode(API.Problem.self, from: Data(body)) {
            detail = problem.detail
        }
        let code: CustodyError.Code =
            switch status {
            case 401: .unauthorized
            case 403: .forbidden
            case 404: .notFound
            case 409: .conflict
            case 413: .tooLarge
            case 422: .verificationFailed
            case 507: .insufficientStorage
            case 503: .unavailable
            case 400..<500: .invalidArgument
            default: .remote
            }
        return CustodyError(code, "registry refused \(method) \(path): \(detail)")
    }

    /// GET a JSON document.
    package func get<T: Decodable>(_ path: String, as type: T.Type = T.self) async throws(CustodyError) -> T {
        let response = try await execute(request(path))
        return try await decode(response, as: T.self)
    }

    /// Sends a JSON body and decodes the JSON answer.
    package func send<T: Decodable>(
        _ method: HTTPMethod, _ path: String, body: some Encodable, as type: T.Type = T.self
    ) async throws(CustodyError)
        -> T
    {
        var request = request(path, method: method)
        request.headers.add(name: "Content-Type", value: "application/json")
        do {
            request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        } catch {
            throw CustodyError(.invalidArgument, "cannot encode the request: \(error)")
        }
        return try await decode(try await execute(request), as: T.self)
    }

    /// POSTs a JSON body and decodes the JSON answer.
    package func post<T: Decodable>(_ path: String, body: some Encodable, as type: T.Type = T.self) async throws(CustodyError) -> T {
        try await send(.POST, path, body: body)
    }

    /// POSTs raw JSON bytes (a document the client passes through, such as an OSV advisory) and decodes the answer.
    package func post<T: Decodable>(_ path: String, json bytes: [UInt8], as type: T.Type = T.self) async throws(CustodyError) -> T {
        var request = request(path, method: .POST)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        return try await decode(try await execute(request), as: T.self)
    }

    package func delete(_ path: String) async throws(CustodyError) {
        _ = try await execute(request(path, method: .DELETE))
    }

    func decode<T: Decodable>(_ response: HTTPClientResponse, as type: T.Type) async throws(CustodyError) -> T {
        do {
            let body = try await response.body.collect(upTo: 256 << 20)
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw CustodyError(.remote, "the registry's answer is not the expected JSON: \(error)")
        }
    }

    /// Streams the body of a GET to `body`, chunk by chunk.
    package func stream(_ path: String, _ body: ([UInt8]) throws -> Void) async throws(CustodyError) {
        let response = try await execute(request(path), timeout: .hours(24))
        do {
            for try await buffer in response.body { try body(Array(buffer.readableBytesView)) }
        } catch {
            throw CustodyError(.remote, "streaming \(path) was interrupted: \(error)")
        }
    }

    /// The raw body of a GET.
    package func bytes(_ path: String, limit: Int = 256 << 20) async throws(CustodyError) -> [UInt8] {
        let response = try await execute(request(path))
        do {
            return Array(buffer: try await response.body.collect(upTo: limit))
        } catch {
            throw CustodyError(.remote, "cannot read \(path) from the registry: \(error)")
        }
    }
}

extension HTTPClientError {
    var shortDescription: String {
        switch self {
        case .connectTimeout: "connection timed out"
        case .remoteConnectionClosed: "the registry closed the connection"
        case .readTimeout: "read timed out"
        default: "\(self)"
        }
    }
}
