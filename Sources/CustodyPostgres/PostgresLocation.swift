package import CustodyCore
import Foundation
import NIOSSL
package import PostgresNIO

/// Where the metadata lives: `postgres://user@host[:port]/database[?sslmode=disable|prefer|require]`. The password
/// comes from elsewhere (the credentials file or the environment), so that configuration files and logs never hold
/// it; one written in the URL is accepted for a quick trial and never printed.
package struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    package enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    package var host: String
    package var port: Int
    package var user: String
    package var database: String
    package var tls: TLSMode
    package var password: String?

    package init(host: String, port: Int = 5432, user: String, database: String, tls: TLSMode = .prefer, password: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.tls = tls
        self.password = password
    }

    /// Parses a `postgres://` (or `postgresql://`) URL; the error names what is wrong and never repeats a password.
    package init(parsing text: String) throws(CustodyError) {
        let shown = Self.redacted(text)
        guard let components = URLComponents(string: text), components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else { throw CustodyError(.invalidArgument, "'\(shown)' is not a postgres://user@host[:port]/database URL") }
        guard let user = components.user, !user.isEmpty else {
            throw CustodyError(.invalidArgument, "'\(shown)' names no user (postgres://user@host/database)")
        }
        let database = components.path.split(separator: "/").joined(separator: "/")
        guard !database.isEmpty, !database.contains("/") else {
            throw CustodyError(.invalidArgument, "'\(shown)' names no database (postgres://user@host/database)")
        }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw CustodyError(.invalidArgument, "'\(shown)': sslmode must be disable, prefer or require")
                }
                tls = mode
            default:
                throw CustodyError(.invalidArgument, "'\(shown)': unknown parameter '\(item.name)' (only sslmode)")
            }
        }
        self.init(
            host: host, port: components.port ?? 5432, user: user, database: database, tls: tls,
            password: components.password.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The URL without its password.
    package var description: String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)" }

    /// `text` with any password in it replaced.
    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "(a postgres URL)"
    }

    /// The client configuration; TLS as asked (certificates verified against the system's roots when used).
    package var clientConfiguration: PostgresClient.Configuration {
        let mode: PostgresClient.Configuration.TLS =
            switch tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        return PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
    }

    /// The same, for a connection outside the pool (``PostgresLog`` opens one when the pool has none to give).
    package var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            let mode: PostgresConnection.Configuration.TLS =
                switch tls {
                case .disable: .disable
                case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
                case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                }
            return PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
        }
    }
}
