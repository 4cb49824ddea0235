import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Objects as files under a root directory: the key is the path relative to the root.
///
/// Writes are atomic (a temporary file in the target directory, `fsync`, `rename`, then an `fsync` of the directory), so
/// a crash leaves the old file or the new one. Directories are created `0700` and files `0600`: archives hold raw events.
/// Symbolic links are not followed when listing.
public struct DirectoryObjectStore: ObjectStore {
    /// The absolute root directory.
    public let root: String

    /// A store under `root`; a relative root is taken from the current directory. The directory is created on first write.
    public init(root: String) {
        var path = root
        if !path.hasPrefix("/") {
            path = FileManager.default.currentDirectoryPath + "/" + path
        }
        while path.count > 1 && path.hasSuffix("/") {
            path.removeLast()
        }
        self.root = path
    }

    public var describe: String { "directory \(root)" }

    public func put(key: String, bytes: [UInt8], contentType: String) async throws {
        try ObjectKey.validate(key)
        let root = root
        try await Self.blocking {
            let path = root + "/" + key
            let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
            try Self.makeDirectories(directory, under: root)
            try Self.writeAtomically(bytes, to: path, in: directory)
        }
    }

    public func get(key: String) async throws -> [UInt8] {
        try ObjectKey.validate(key)
        let path = root + "/" + key
        return try await Self.blocking {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT || errno == ENOTDIR { throw ObjectStoreError.notFound(key: key) }
                throw Self.failure("open", path)
            }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw Self.failure("stat", path) }
            // A key naming a directory is not an object.
            guard info.st_mode & S_IFMT == S_IFREG else { throw ObjectStoreError.notFound(key: key) }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(info.st_size))
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw Self.failure("read", path)
                }
                if count == 0 { break }
                bytes += chunk[0..<count]
            }
            return bytes
        }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        try ObjectKey.validatePrefix(prefix)
        let root = root
        return try await Self.blocking {
            // Start the walk at the deepest directory that the prefix names in full.
            let base = prefix.lastIndex(of: "/").map { String(prefix[..<$0]) } ?? ""
            var found: [ObjectInfo] = []
            try Self.walk(root: root, relative: base, prefix: prefix, into: &found)
            // S3 lists in UTF-8 byte order.
            return found.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }
    }

    public func delete(key: String) async throws {
        try ObjectKey.validate(key)
        let root = root
        try await Self.blocking {
            let path = root + "/" + key
            if unlink(path) != 0 {
                if errno == ENOENT || errno == ENOTDIR { return }
                throw Self.failure("unlink", path)
            }
            // Drop directories the delete left empty, so that old days do not leave a tree of empty folders.
            var directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
            while directory.count > root.count, rmdir(directory) == 0 {
                directory = String(directory[..<(directory.lastIndex(of: "/") ?? directory.endIndex)])
            }
        }
    }

    public func requestRestore(key: String, days: Int) async throws {
        try ObjectKey.validate(key)
        let path = root + "/" + key
        try await Self.blocking {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw ObjectStoreError.notFound(key: key) }
        }
    }

    // MARK: File system work

    /// Runs blocking file system calls off the cooperative thread pool.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work() })
            }
        }
    }

    static func failure(_ operation: String, _ path: String, _ code: Int32 = errno) -> ObjectStoreError {
        .fileSystem(operation: operation, path: path, reason: String(cString: strerror(code)))
    }

    /// Creates `directory` and its missing parents, root included, with mode 0700.
    static func makeDirectories(_ directory: String, under root: String) throws {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw ObjectStoreError.fileSystem(operation: "mkdir", path: directory, reason: "a file is in the way")
            }
            return
        }
        let parent = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
        if !parent.isEmpty {
            try makeDirectories(parent, under: root)
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw failure("mkdir", directory)
        }
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String, in directory: String) throws {
        let temporary = directory + "/" + ObjectKey.temporaryMarker + UUID().uuidString
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("open", temporary) }
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", temporary)
                }
                offset += written
            }
            guard fsync(fd) == 0 else { throw failure("fsync", temporary) }
        }
        guard rename(temporary, path) == 0 else { throw failure("rename", path) }
        renamed = true
        // The rename is durable only once the directory entry is.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Adds the regular files under `root/relative` whose key starts with `prefix`.
    static func walk(root: String, relative: String, prefix: String, into found: inout [ObjectInfo]) throws {
        let directory = relative.isEmpty ? root : root + "/" + relative
        guard let handle = opendir(directory) else {
            if errno == ENOENT || errno == ENOTDIR { return }
            throw failure("opendir", directory)
        }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." || name.hasPrefix(ObjectKey.temporaryMarker) { continue }
            names.append(name)
        }
        for name in names {
            let key = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(root + "/" + key, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                // Descend only where a key could still match the prefix.
                let directoryKey = key + "/"
                if directoryKey.utf8.starts(with: prefix.utf8) || prefix.utf8.starts(with: directoryKey.utf8) {
                    try walk(root: root, relative: key, prefix: prefix, into: &found)
                }
            case S_IFREG where key.utf8.starts(with: prefix.utf8):
                #if canImport(Darwin)
                    let time = info.st_mtimespec
                #else
                    let time = info.st_mtim
                #endif
                let modified = Date(timeIntervalSince1970: TimeInterval(time.tv_sec) + TimeInterval(time.tv_nsec) / 1e9)
                found.append(ObjectInfo(key: key, size: Int64(info.st_size), storageClass: .standard, lastModified: modified))
            default:
                continue
            }
        }
    }
}
