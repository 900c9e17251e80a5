package import CustodyCore
package import CustodyStorage
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The free space of the file system that holds the registry's data, and the floor kept for the database.
///
/// Blobs and the database share one file system, so blobs are refused before the database would be: an upload is
/// admitted only while what it still needs leaves `limits.minFreeSpace` free, and the registry reports itself not
/// ready below that floor. Events (refusals among them) keep being recorded when blobs have filled the disk.
package struct DiskSpace: Sendable {
    package struct Reading: Sendable, Equatable {
        /// Bytes an unprivileged writer may still use.
        package var free: UInt64
        package var total: UInt64

        package init(free: UInt64, total: UInt64) {
            self.free = free
            self.total = total
        }
    }

    package let path: String
    package let floor: FreeSpace
    /// Reads the file system; injectable so that tests can stand in a full disk.
    package let probe: @Sendable (String) -> Reading?

    package init(path: String, floor: FreeSpace, probe: @escaping @Sendable (String) -> Reading? = DiskSpace.statfs) {
        self.path = path
        self.floor = floor
        self.probe = probe
    }

    package static func statfs(_ path: String) -> Reading? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let block = UInt64(info.f_frsize)
        return Reading(free: UInt64(info.f_bavail) * block, total: UInt64(info.f_blocks) * block)
    }

    /// The current reading and the floor it implies; nil when the file system cannot be read.
    package func reading() -> (reading: Reading, reserve: UInt64)? {
        guard let reading = probe(path) else { return nil }
        return (reading, floor.floor(total: reading.total))
    }

    /// Whether the free space is at or above the floor.
    package var isAboveFloor: Bool {
        guard let (reading, reserve) = reading() else { return false }
        return reading.free >= reserve
    }

    /// Refuses (507) when writing `bytes` more would take the file system below the floor. `what` names the write.
    package func admit(_ bytes: UInt64, for what: String) throws(CustodyError) {
        guard let (reading, reserve) = reading() else { return }
        guard reading.free >= reserve, reading.free - reserve >= bytes else {
            throw CustodyError(
                .insufficientStorage,
                "the registry has \(reading.free) bytes free and keeps \(reserve) of them for its database (limits.minFreeSpace); "
                    + "\(what) needs \(bytes) more")
        }
    }
}

/// A free-space floor: a size, a share of the file system, or the smaller of both (the default: 1 GiB or 1 %,
/// whichever is less, so that a small volume is not "full" from the start).
package struct FreeSpace: Sendable, Equatable {
    package var bytes: UInt64?
    package var percent: Double?

    package init(bytes: UInt64?, percent: Double?) {
        self.bytes = bytes
        self.percent = percent
    }

    package static let `default` = FreeSpace(bytes: 1 << 30, percent: 1)

    /// The floor in bytes on a file system of `total` bytes.
    package func floor(total: UInt64) -> UInt64 {
        let share = percent.map { UInt64(Double(total) * $0 / 100) }
        switch (bytes, share) {
        case (let bytes?, let share?): return min(bytes, share)
        case (let bytes?, nil): return bytes
        case (nil, let share?): return share
        case (nil, nil): return 0
        }
    }
}
