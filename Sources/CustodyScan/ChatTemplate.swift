package import CustodyCore

/// Checks a Jinja chat template (GGUF `tokenizer.chat_template`, `tokenizer_config.json` `chat_template`) for
/// constructs beyond plain templating. Runtimes that render templates without a sandbox execute whatever the
/// template reaches: `cycler.__init__.__globals__.os.popen(…)` is a one-line shell.
package enum ChatTemplate {
    /// `inStrings`: the rule also looks inside string literals (identifier rules do not: `'system'` is a role name).
    private static let rules: [(pattern: String, inStrings: Bool, verdict: Verdict, reason: String)] = [
        (#"__"#, true, .dangerous, "reaches interpreter internals through a dunder name"),
        (#"\|\s*attr\b|\battr\s*\("#, false, .dangerous, "reads attributes by name with the attr filter (a way around dunder checks)"),
        (#"\\x5[fF]|\\u005[fF]|\\137|\\N\{LOW LINE\}"#, true, .dangerous, "spells an underscore with an escape sequence"),
        (
            #"\b(cycler|joiner|lipsum|namespace|self|config|request|url_for|get_flashed_messages|range|dict)\s*(\.|\[)"#,
            false, .dangerous, "reads attributes of a Jinja global object"
        ),
        (
            #"\b(mro|subclasses|globals|builtins|popen|subprocess|eval|exec|getattr|import_module)\b"#,
            false, .dangerous, "names a Python internal used for code execution"
        ),
        (#"\b(os|sys)\s*\."#, false, .dangerous, "reaches the os or sys module"),
        (#"^\s*-?\s*(import|from|include|extends)\b"#, false, .suspicious, "loads another template"),
    ]

    // Regex values are immutable once built; the type is simply not marked Sendable yet.
    nonisolated(unsafe) private static let compiled: [(regex: Regex<AnyRegexOutput>, inStrings: Bool, verdict: Verdict, reason: String)] =
        rules.map { (try! Regex($0.pattern), $0.inStrings, $0.verdict, $0.reason) }

    /// Findings for every rule one of the template's `{{ … }}` / `{% … %}` blocks breaks (one per rule).
    package static func check(_ template: String, member: String? = nil) -> [Finding] {
        var findings: [Finding] = []
        var seen = Set<String>()
        for block in blocks(of: template) {
            let code = withoutStrings(block)
            for rule in compiled where !seen.contains(rule.reason) {
                let subject = rule.inStrings ? block : code[...]
                if let match = subject.firstMatch(of: rule.regex) {
                    seen.insert(rule.reason)
                    let excerpt = String(block.prefix(120)).replacingOccurrences(of: "\n", with: " ")
                    findings.append(
                        Finding(
                            .code, rule.verdict, subject: "chat_template",
                            reason: "\(rule.reason): \"\(String(subject[match.range]))\" in {\(excerpt)}", member: member))
                }
            }
        }
        return findings
    }

    /// The block with every quoted string literal emptied.
    static func withoutStrings(_ block: Substring) -> String {
        var out = ""
        var quote: Character?
        var escaped = false
        for character in block {
            if let open = quote {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == open {
                    quote = nil
                    out.append(character)
                }
                continue
            }
            if character == "'" || character == "\"" { quote = character }
            out.append(character)
        }
        return out
    }

    /// The code inside every `{{ }}`, `{% %}` block (comments `{# #}` are ignored).
    static func blocks(of template: String) -> [Substring] {
        var blocks: [Substring] = []
        var rest = template[...]
        while let open = rest.firstRange(of: "{") {
            let after = rest[open.upperBound...]
            guard let kind = after.first, kind == "{" || kind == "%" else {
                rest = after
                continue
            }
            let closer = kind == "{" ? "}}" : "%}"
            let body = after.dropFirst()
            guard let close = body.firstRange(of: closer) else {
                blocks.append(body)
                break
            }
            blocks.append(body[..<close.lowerBound])
            rest = body[close.upperBound...]
        }
        return blocks
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
