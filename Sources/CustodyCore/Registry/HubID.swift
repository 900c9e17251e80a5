/// Hugging Face Hub repository ids (`owner/name`) as model cards, weight files and provenance write them: bare, as a
/// Hub URL or with the `hf://` scheme. One list of prefixes for every reader.
public enum HubID {
    /// The prefixes a repository id is written with, lower case, longest form of each host first.
    public static let prefixes = [
        "https://huggingface.co/", "http://huggingface.co/", "https://hf.co/", "http://hf.co/", "huggingface.co/", "hf.co/", "hf://",
    ]

    /// `text` without its leading Hub prefix (compared without case), or nil when it has none.
    public static func removingPrefix(_ text: String) -> String? {
        let lower = text.lowercased()
        guard let prefix = prefixes.first(where: { lower.hasPrefix($0) }) else { return nil }
        return String(text.dropFirst(prefix.count))
    }
}
