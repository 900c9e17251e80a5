package import Foundation

/// The upstream data sets in `shared/corpus/` beside the repository (or under `$CUSTODY_CORPUS`), read in place and
/// never copied: the path of one set, or nil on a machine that does not have it.
package enum SharedCorpus {
    package static func path(_ set: String) -> String? {
        if let root = ProcessInfo.processInfo.environment["CUSTODY_CORPUS"] { return root + "/" + set }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("shared/corpus/" + set).path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
