import Crypto
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One unit of hashing work: the bytes `range` of the file at `path`.
public struct HashJob: Sendable, Hashable {
    /// The file to read.
    public let path: String
    /// The byte range to hash.
    public let range: Range<UInt64>

    /// A job hashing `range` of the file at `path`.
    public init(path: String, range: Range<UInt64>) {
        self.path = path
        self.range = range
    }
}

/// Hashes many files (or byte ranges of files) with SHA-256 on every core.
///
/// Jobs are handed out largest first to a fixed pool of workers (one per core by default), so that a few big files
/// do not end up queued behind each other on one core. Large ranges are hashed straight from the page cache through
/// short-lived memory mappings (no copy into a user buffer, which would cost ~20 % of the hashing rate here); small
/// files are read with `pread` into one reusable buffer per worker. Memory stays bounded whatever the model size:
/// at most one mapping window per worker is resident at a time.
public struct FileHasher: Sendable {
    /// How many jobs run at once.
    public var workers: Int
    /// Ranges at least this long are hashed through memory mappings.
    public var mappingThreshold: UInt64 = 1 << 20
    /// The size of one memory-mapping window.
    public var windowSize: UInt64 = 32 << 20

    /// A hasher with `workers` threads, one per active core by default.
    public init(workers: Int? = nil) {
        self.workers = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The SHA-256 digest of every job, in the order of `jobs`.
    public func digests(of jobs: [HashJob]) throws(CustodyError) -> [ContentDigest] {
        guard !jobs.isEmpty else { return [] }
        let order = jobs.indices.sorted { jobs[$0].range.count > jobs[$1].range.count }
        let next = Atomic<Int>(0)
        let results = Mutex<[ContentDigest?]>(Array(repeating: nil, count: jobs.count))
        let failure = Mutex<CustodyError?>(nil)
        let workerCount = min(workers, jobs.count)
        DispatchQueue.concurrentPerform(iterations: workerCount) { _ in
            var buffer = [UInt8](repeating: 0, count: Int(mappingThreshold))
            while failure.withLock({ $0 == nil }) {
                let slot = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard slot < order.count else { return }
                let index = order[slot]
                do throws(CustodyError) {
                    let digest = try hash(jobs[index], buffer: &buffer)
                    results.withLock { $0[index] = digest }
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return results.withLock { $0.map { $0! } }
    }

    private func hash(_ job: HashJob, buffer: inout [UInt8]) throws(CustodyError) -> ContentDigest {
        let fd = open(job.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(job.path, "open", errno: errno) }
        defer { close(fd) }
        var hasher = SHA256()
        if UInt64(job.range.count) >= mappingThreshold, try hashMapped(fd, job, into: &hasher) {
            return ContentDigest(hasher.finalize())
        }
        try hashRead(fd, job, into: &hasher, buffer: &buffer)
        return ContentDigest(hasher.finalize())
    }

    /// Hashes through mmap windows; returns false (having hashed nothing) when the file cannot be mapped.
    private func hashMapped(_ fd: Int32, _ job: HashJob, into hasher: inout SHA256) throws(CustodyError) -> Bool {
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        var offset = job.range.lowerBound
        while offset < job.range.upperBound {
            let length = min(windowSize, job.range.upperBound - offset)
            let mapStart = offset - offset % pageSize
            let mapLength = Int(offset - mapStart + length)
            guard let base = mmap(nil, mapLength, PROT_READ, MAP_PRIVATE | Self.populate, fd, off_t(mapStart)),
                base != MAP_FAILED
            else {
                if offset == job.range.lowerBound { return false }
                throw .io(job.path, "map", errno: errno)
            }
            defer { munmap(base, mapLength) }
            try checkSize(fd, job)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(start: base + Int(offset - mapStart), count: Int(length)))
            offset += length
        }
        return true
    }

    private func hashRead(_ fd: Int32, _ job: HashJob, into hasher: inout SHA256, buffer: inout [UInt8]) throws(CustodyError) {
        var offset = job.range.lowerBound
        while offset < job.range.upperBound {
            let wanted = Int(min(UInt64(buffer.count), job.range.upperBound - offset))
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(offset)) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(job.path, "read", errno: errno)
            }
            if got == 0 { throw Self.shrunk(job) }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
            offset += UInt64(got)
        }
    }

    /// A mapping past the end of a file faults with SIGBUS instead of failing, so a file that shrank since it was
    /// listed must be caught before its pages are touched.
    private func checkSize(_ fd: Int32, _ job: HashJob) throws(CustodyError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(job.path, "stat", errno: errno) }
        if UInt64(info.st_size) < job.range.upperBound { throw Self.shrunk(job) }
    }

    private static func shrunk(_ job: HashJob) -> CustodyError {
        CustodyError(.io, "\(job.path): file shrank while it was being hashed")
    }

    #if os(Linux)
        private static let populate = MAP_POPULATE
    #else
        private static let populate: Int32 = 0
    #endif
}
