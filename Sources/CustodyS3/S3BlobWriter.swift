import Crypto
package import CustodyCore

/// Writes one blob into S3 under its final key while hashing it: bytes are sent as parts of a multipart upload as they
/// arrive (nothing is staged on local disk), and the upload is completed — with `If-None-Match: *`, so that two
/// daemons writing the same blob end with one object — only when the bytes are the expected digest; otherwise it is
/// aborted and nothing becomes visible. A blob smaller than one part is one conditional `PutObject`. Up to
/// `partsInFlight` parts are sent at once (S3 stores each on its own), so that one part's round trip overlaps the next
/// parts' instead of the stream waiting for each.
package actor S3BlobWriter {
    package let client: S3Client
    package let name: String
    package let partSize: Int
    package let partsInFlight: Int
    private var hasher = SHA256()
    /// The next part, filled up to `partSize` and then sent as it is (never copied again).
    private var buffer: [UInt8] = []
    private var uploadID: String?
    /// ETags of the parts sent and answered, in order; then the parts still in flight, in order.
    private var etags: [String] = []
    private var inFlight: [Task<String, any Error>] = []
    private var written: UInt64 = 0
    private var ended = false

    /// `partSize` is at least 5 MiB (S3's smallest part but the last); 8 MiB by default, so that 10,000 parts hold
    /// 78 GiB; larger blobs need larger parts. `partsInFlight` (at least 1) bounds the memory to that many parts.
    package init(client: S3Client, name: String, partSize: Int = 8 << 20, partsInFlight: Int = 4) {
        self.client = client
        self.name = name
        self.partSize = max(partSize, 5 << 20)
        self.partsInFlight = max(partsInFlight, 1)
    }

    /// The digest of the bytes appended so far (nil once ended).
    package var digest: ContentDigest? {
        guard !ended else { return nil }
        return try? ContentDigest(bytes: Array(hasher.finalize()))
    }

    /// The multipart upload's id once the first part went out (for the janitor's records).
    package var multipartUploadID: String? { uploadID }
    package var received: UInt64 { written }

    /// Hashes and buffers `bytes`, sending every full part.
    package func append(_ bytes: [UInt8]) async throws(S3Error) {
        guard !ended else { throw S3Error(status: 0, code: "UploadEnded", message: "the upload of \(name) has ended") }
        hasher.update(data: bytes)
        written += UInt64(bytes.count)
        if buffer.isEmpty && bytes.count == partSize {
            try await send(bytes)
            return
        }
        var start = 0
        while start < bytes.count {
            if buffer.isEmpty { buffer.reserveCapacity(partSize) }
            let taken = min(partSize - buffer.count, bytes.count - start)
            buffer.append(contentsOf: bytes[start..<(start + taken)])
            start += taken
            if buffer.count == partSize {
                let part = buffer
                buffer = []
                try await send(part)
            }
        }
    }

    /// Completes the upload when the bytes hash to `expected` (any digest when nil): `.created`, or `.alreadyThere`
    /// when another writer stored the key first (the same bytes, since the key is their digest). A mismatch aborts the
    /// upload and throws, naming both digests. A blob that is one `PutObject` (smaller than a part) goes to
    /// `small(digest)` when given instead of ``name`` (its multipart upload never began, so its key is still free to
    /// choose); `name` in the answer is where the bytes went.
    package func complete(
        expecting expected: ContentDigest?, small: (@Sendable (ContentDigest) -> String)? = nil
    ) async throws(S3Error) -> (digest: ContentDigest, size: UInt64, written: S3Client.Written, name: String) {
        guard !ended else { throw S3Error(status: 0, code: "UploadEnded", message: "the upload of \(name) has ended") }
        ended = true
        let digest: ContentDigest
        do throws(CustodyError) { digest = try ContentDigest(bytes: Array(hasher.finalize())) } catch {
            throw S3Error(status: 0, code: "Digest", message: error.message)
        }
        if let expected, expected != digest {
            await abortQuietly()
            throw S3Error(
                status: 0, code: "BadDigest", message: "the uploaded bytes hash to \(digest), not \(expected); nothing was kept")
        }
        do throws(S3Error) {
            guard let uploadID else {
                let target = small?(digest) ?? name
                return (digest, written, try await client.put(target, buffer), target)
            }
            if !buffer.isEmpty { try await send(buffer) }
            buffer = []
            while !inFlight.isEmpty { try await collectOldest() }
            let outcome = try await client.completeMultipartUpload(name, uploadID: uploadID, parts: etags)
            if outcome == .alreadyThere { try? await client.abortMultipartUpload(name, uploadID: uploadID) }
            return (digest, written, outcome, name)
        } catch {
            await abortQuietly()
            throw error
        }
    }

    /// Stops and discards what was sent.
    package func abort() async {
        ended = true
        await abortQuietly()
    }

    /// Sends `part` as the next part, after waiting for the oldest one in flight when the window is full.
    private func send(_ part: [UInt8]) async throws(S3Error) {
        if uploadID == nil { uploadID = try await client.createMultipartUpload(name) }
        while inFlight.count >= partsInFlight { try await collectOldest() }
        let (client, name, uploadID, number) = (client, name, uploadID!, etags.count + inFlight.count + 1)
        inFlight.append(Task { try await client.uploadPart(name, uploadID: uploadID, number: number, part) })
    }

    private func collectOldest() async throws(S3Error) {
        let part = inFlight.removeFirst()
        do {
            etags.append(try await part.value)
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error(status: 0, code: "UploadPart", message: "part \(etags.count + 1) of \(name): \(error)")
        }
    }

    private func abortQuietly() async {
        buffer = []
        // Parts still arriving after the abort could outlive it: they are stopped and waited for first.
        for part in inFlight { part.cancel() }
        for part in inFlight { _ = try? await part.value }
        inFlight = []
        guard let uploadID else { return }
        try? await client.abortMultipartUpload(name, uploadID: uploadID)
    }
}
