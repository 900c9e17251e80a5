import CustodyCore
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
struct DiskSpace: Sendable {
    struct Reading: Sendable, Equatable {
        /// Bytes an unprivileged writer may still use.
        var free: UInt64
        var total: UInt64
    }

    let path: String
    let floor: FreeSpace
    /// Reads the file system; injectable so that tests can stand in a full disk.
    let probe: @Sendable (String) -> Reading?

    init(path: String, floor: FreeSpace, probe: @escaping @Sendable (String) -> Reading? = DiskSpace.statfs) {
        self.path = path
        self.floor = floor
        self.probe = probe
    }

    static func statfs(_ path: String) -> Reading? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let block = UInt64(info.f_frsize)
        return Reading(free: UInt64(info.f_bavail) * block, total: UInt64(info.f_blocks) * block)
    }

    /// The current reading and the floor it implies; nil when the file system cannot be read.
    func reading() -> (reading: Reading, reserve: UInt64)? {
        guard let reading = probe(path) else { return nil }
        return (reading, floor.floor(total: reading.total))
    }

    /// Whether the free space is at or above the floor.
    var isAboveFloor: Bool {
        guard let (reading, reserve) = reading() else { return false }
        return reading.free >= reserve
    }

    /// Refuses (507) when writing `bytes` more would take the file system below the floor. `what` names the write.
    func admit(_ bytes: UInt64, for what: String) throws(CustodyError) {
        guard let (reading, reserve) = reading() else { return }
        guard reading.free >= reserve, reading.free - reserve >= bytes else {
            throw CustodyError(
                .insufficientStorage,
                "the registry has \(reading.free) bytes free and keeps \(reserve) of them for its database (limits.minFreeSpace); "
                    + "\(what) needs \(bytes) more")
        }
    }
}
