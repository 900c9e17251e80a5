import CustodyCore
import CustodyRegistry
package import CustodyStorage
package import CustodyStore
package import Hummingbird
package import NIOCore

/// The per-request context: Hummingbird's core storage, the caller's token once authenticated, and the peer.
package struct RegistryContext: RequestContext, RemoteAddressRequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The authenticated token, or nil for an anonymous request.
    package var token: TokenRecord?
    package let remoteAddress: SocketAddress?

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's address for audit records (`127.0.0.1`, `::1`).
    var clientAddress: String? { remoteAddress?.ipAddress }

    /// The caller's actor string for events and logs: never the secret.
    var actor: String { token?.actor ?? "anonymous" }
}

/// The path parameters of `/v1/models/:ns/:name[/versions/:version]`, parsed once for every route; a malformed one is
/// a 400 naming it (``CustodyError/Code/invalidArgument``).
extension RegistryContext {
    // Not inlined: in an optimised build, inlining these (untyped throws around typed-throwing initialisers) into an
    // async handler crashes Swift 6.3's coroutine splitting (`emitSetAndGetSwiftErrorValueAround`).
    @inline(never)
    func modelName() throws -> ModelName {
        try ModelName(namespace: try parameters.require("ns"), name: try parameters.require("name"))
    }

    /// `:version` as a version tag or a `sha256:<hex>` bundle digest.
    @inline(never)
    func selector() throws -> ModelReference.Selector {
        try ModelReference.Selector(parsing: try parameters.require("version"))
    }

    /// `:version` as a version tag only.
    @inline(never)
    func versionTag() throws -> String {
        let version = try parameters.require("version")
        try VersionTag.validate(version)
        return version
    }
}
