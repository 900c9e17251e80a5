/// The one rule that turns a selector into a version of a model, given its versions in publish order (oldest
/// first): a tag names that version; a bundle digest names the newest version published with it (the same content
/// may be published under several tags); no selector names the newest version.
public enum VersionOrder {
    /// The version a selector names among `versions`: by tag, by bundle digest, or the newest when nil.
    public static func resolve(
        _ selector: ModelReference.Selector?, in order: [(version: String, digest: ContentDigest)]
    ) -> (version: String, digest: ContentDigest)? {
        switch selector {
        case .version(let tag)?: order.last { $0.version == tag }
        case .digest(let digest)?: order.last { $0.digest == digest }
        case nil: order.last
        }
    }
}
