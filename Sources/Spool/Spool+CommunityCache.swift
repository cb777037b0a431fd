import Crypto
import Foundation

/// Admission of retrieved foreign instances into `cache/` (never `store/`, never uploaded):
/// file names come from hashes, never from UIDs taken off the wire.
extension Spool {
    /// `cache/<community>/<study hash>/<instance hash>.dcm`, relative to the spool root.
    public static func cachePath(community: String, studyInstanceUID: String, sopInstanceUID: String) -> String {
        func hash(_ text: String, _ length: Int) -> String {
            String(SHA256.hash(data: Data(text.utf8)).hexString.prefix(length))
        }
        return "\(cacheDirectoryName)/\(hash(community, 8))/\(hash(studyInstanceUID, 16))/\(hash(sopInstanceUID, 32)).dcm"
    }

    /// Where streamed retrievals land before admission (same file system: admission is a rename).
    public var cacheStagingDirectory: String { cacheDirectory + "/.incoming" }

    /// The absolute path an instance is cached at, its directories created.
    public func cacheFile(for instance: CachedInstance) throws -> String {
        let absolute = files.absolutePath(instance.filePath)
        try FileManager.default.createDirectory(atPath: (absolute as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        return absolute
    }

    /// Moves a retrieved file into the cache and records it (blocking). Returns its absolute
    /// path. On failure the file is removed.
    public func admitToCache(fileAt path: String, _ instance: CachedInstance) throws -> String {
        do {
            let absolute = try cacheFile(for: instance)
            guard rename(path, absolute) == 0 else {
                throw CacheAdmissionError(description: "cannot move \(path): \(String(cString: strerror(errno)))")
            }
            try database.recordCached(instance)
            return absolute
        } catch {
            unlink(path)
            throw error
        }
    }
}

public struct CacheAdmissionError: Error, CustomStringConvertible {
    public var description: String
}

extension CachedInstance {
    /// An instance of `community`'s hub, filed under its hashed cache path.
    public init(community: String, studyInstanceUID: String, seriesInstanceUID: String, sopInstanceUID: String,
                sopClassUID: String, size: Int64) {
        self.init(community: community, studyInstanceUID: studyInstanceUID, seriesInstanceUID: seriesInstanceUID,
                  sopInstanceUID: sopInstanceUID, sopClassUID: sopClassUID,
                  filePath: Spool.cachePath(community: community, studyInstanceUID: studyInstanceUID,
                                            sopInstanceUID: sopInstanceUID),
                  size: size)
    }
}
