package import CustodyCore

// What a catalog write records in the log, and when a publish conflicts with what is stored: one definition for every
// metadata backend, so that the same write reads the same in any registry's log.

extension NewVersion {
    /// The unsigned publisher signature a version published without one records.
    package var publisherOrUnsigned: SignatureRecord {
        publisherSignature ?? SignatureRecord(status: .unsigned, keyName: nil, keyHint: nil, bundle: nil)
    }

    /// The `publish` event, and the `scan` event when the version comes with a scan.
    package var events: [NewEvent] {
        let publisher = publisherOrUnsigned
        let detail =
            "bundle \(bundleDigest), \(files.count) files, publisher signature \(publisher.status.rawValue)"
            + (publisher.keyName.map { " by \($0)" } ?? "")
        var events = [NewEvent(type: .publish, actor: publishedBy, model: model.description, version: version, detail: detail)]
        if let scan {
            events.append(NewEvent(type: .scan, actor: "registry", model: model.description, version: version, detail: scan.eventSummary))
        }
        return events
    }

    /// Why this version cannot be published over `existing` (versions are immutable); nil when it is the same one.
    package func conflict(with existing: API.VersionDetail) -> CustodyError? {
        guard existing.bundleDigest == bundleDigest else {
            return CustodyError(
                .conflict,
                "\(model)@\(version) already exists with bundle digest \(existing.bundleDigest); versions are immutable, publish a new version")
        }
        guard existing.license == license, existing.provenance == provenance else {
            return CustodyError(
                .conflict, "\(model)@\(version) already exists with the same files but other licence or provenance; versions are immutable")
        }
        return nil
    }
}

extension NewEvent {
    /// The event of a version's status change.
    package static func statusChange(_ model: ModelName, version: String, _ status: API.VersionStatus) -> NewEvent {
        NewEvent(type: EventKind(statusChangeTo: status.state), actor: status.by, model: model.description, version: version, detail: status.reason)
    }

    /// The event of a publisher signature attached after the publish (an OCI referrer).
    package static func signatureAttached(_ model: ModelName, version: String, _ signature: SignatureRecord, actor: String?) -> NewEvent {
        NewEvent(
            type: .signatureAttached, actor: actor, model: model.description, version: version,
            detail: "publisher signature \(signature.status.rawValue)" + (signature.keyName.map { " by \($0)" } ?? "")
                + " attached as an OCI referrer")
    }
}

extension BundleReport {
    /// One line for the event log: the verdict, and the files and imports that decided it.
    package var eventSummary: String {
        var parts = ["verdict \(verdict.rawValue)"]
        for verdict in [Verdict.dangerous, .unscannable, .suspicious] {
            let matching = files.filter { $0.verdict == verdict }
            guard !matching.isEmpty else { continue }
            let named = matching.prefix(5).map { file in
                let subjects = Set(file.findings.filter { $0.verdict == verdict }.map(\.subject)).sorted().prefix(3)
                return "\(file.path) (\(subjects.joined(separator: ", ")))"
            }
            parts.append("\(matching.count) \(verdict.rawValue): \(named.joined(separator: "; "))\(matching.count > 5 ? "; …" : "")")
        }
        let invalid = invalidFiles
        if !invalid.isEmpty { parts.append("\(invalid.count) invalid: \(invalid.prefix(5).map(\.path).joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }
}
