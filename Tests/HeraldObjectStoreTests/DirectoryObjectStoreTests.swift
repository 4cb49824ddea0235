import Foundation
import Testing

@testable import HeraldObjectStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite struct DirectoryObjectStoreTests {
    /// A fresh directory under the system's temporary directory, removed by the caller.
    static func temporaryRoot() -> String {
        NSTemporaryDirectory() + "herald-objectstore-\(UUID().uuidString)"
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : nil
    }

    @Test func roundTripListAndDelete() async throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = DirectoryObjectStore(root: root + "/archive/")
        #expect(store.root == root + "/archive")
        #expect(store.describe == "directory \(root)/archive")

        let day1 = Array("{\"a\":1}\n".utf8)
        let day2 = [UInt8](repeating: 7, count: 200_000)
        try await store.put(key: "events/site-a/2024-01-01.ndjson.gz", bytes: day1, contentType: "application/gzip")
        try await store.put(key: "events/site-a/2024-01-02.ndjson.gz", bytes: day2, contentType: "application/gzip")
        try await store.put(key: "events/site-b/2024-01-01.ndjson.gz", bytes: [], contentType: "application/gzip")
        try await store.put(key: "other.txt", bytes: [1], contentType: "text/plain")

        #expect(try await store.get(key: "events/site-a/2024-01-01.ndjson.gz") == day1)
        #expect(try await store.get(key: "events/site-a/2024-01-02.ndjson.gz") == day2)
        #expect(try await store.get(key: "events/site-b/2024-01-01.ndjson.gz") == [])

        // Overwrite replaces the whole file.
        try await store.put(key: "events/site-a/2024-01-01.ndjson.gz", bytes: [9, 9], contentType: "application/gzip")
        #expect(try await store.get(key: "events/site-a/2024-01-01.ndjson.gz") == [9, 9])

        let all = try await store.list(prefix: "")
        #expect(
            all.map(\.key) == [
                "events/site-a/2024-01-01.ndjson.gz", "events/site-a/2024-01-02.ndjson.gz", "events/site-b/2024-01-01.ndjson.gz",
                "other.txt",
            ]
        )
        #expect(all.map(\.size) == [2, 200_000, 0, 1])
        #expect(all.allSatisfy { $0.storageClass == .standard && abs($0.lastModified.timeIntervalSinceNow) < 120 })
        #expect(try await store.list(prefix: "events/site-a/").map(\.key).count == 2)
        // A prefix is a string prefix, not a directory: it may end inside a name.
        #expect(try await store.list(prefix: "events/site-").map(\.key).count == 3)
        #expect(try await store.list(prefix: "events/site-a/2024-01-02").map(\.key) == ["events/site-a/2024-01-02.ndjson.gz"])
        #expect(try await store.list(prefix: "nothing/here/").isEmpty)

        // Directories are private; files too; no temporary file is left behind.
        #expect(Self.mode(root + "/archive") == 0o700)
        #expect(Self.mode(root + "/archive/events/site-a") == 0o700)
        #expect(Self.mode(root + "/archive/other.txt") == 0o600)
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: root).filter { $0.contains(".herald-tmp-") }
        #expect(leftovers.isEmpty)

        try await store.requestRestore(key: "other.txt", days: 3)
        await #expect(throws: ObjectStoreError.notFound(key: "missing.txt")) { try await store.requestRestore(key: "missing.txt", days: 3) }

        try await store.delete(key: "events/site-b/2024-01-01.ndjson.gz")
        await #expect(throws: ObjectStoreError.notFound(key: "events/site-b/2024-01-01.ndjson.gz")) {
            try await store.get(key: "events/site-b/2024-01-01.ndjson.gz")
        }
        // Deleting again is fine, and the emptied directory is gone.
        try await store.delete(key: "events/site-b/2024-01-01.ndjson.gz")
        #expect(!FileManager.default.fileExists(atPath: root + "/archive/events/site-b"))
        #expect(FileManager.default.fileExists(atPath: root + "/archive/events/site-a"))
        #expect(try await store.list(prefix: "").count == 3)
    }

    @Test func missingObjectsAndDirectories() async throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = DirectoryObjectStore(root: root)
        // Nothing written yet: the root does not exist.
        #expect(try await store.list(prefix: "").isEmpty)
        await #expect(throws: ObjectStoreError.notFound(key: "a")) { try await store.get(key: "a") }
        try await store.put(key: "a/b", bytes: [1], contentType: "application/octet-stream")
        // A directory is not an object, and a path through a file is not one either.
        await #expect(throws: ObjectStoreError.notFound(key: "a")) { try await store.get(key: "a") }
        await #expect(throws: ObjectStoreError.notFound(key: "a/b/c")) { try await store.get(key: "a/b/c") }
        // A file in the way of a directory.
        await #expect(throws: ObjectStoreError.self) { try await store.put(key: "a/b/c", bytes: [1], contentType: "x") }
    }

    @Test(arguments: [
        "", "/etc/passwd", "../escape", "a/../../escape", "a/..", "./a", "a/./b", "a//b", "a/", "a\u{0}b", "a\nb", "a\u{7F}b",
        ".herald-tmp-x", "a/.herald-tmp-1234", String(repeating: "x", count: 256),
        Array(repeating: String(repeating: "x", count: 200), count: 6).joined(separator: "/"),
    ])
    func refusesUnsafeKeys(key: String) async throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = DirectoryObjectStore(root: root)
        await #expect(throws: ObjectStoreError.self) { try await store.put(key: key, bytes: [1], contentType: "x") }
        await #expect(throws: ObjectStoreError.self) { try await store.get(key: key) }
        await #expect(throws: ObjectStoreError.self) { try await store.delete(key: key) }
        await #expect(throws: ObjectStoreError.self) { try await store.requestRestore(key: key, days: 1) }
        #expect(!FileManager.default.fileExists(atPath: root))
        do {
            try ObjectKey.validate(key)
            Issue.record("accepted \(key.debugDescription)")
        } catch let error as ObjectStoreError {
            guard case .invalidKey = error else { throw error }
            #expect(!error.description.contains("\u{0}"))
        }
    }

    @Test(arguments: [
        "events/site a/ü+$&=.gz", "..x", "a/..b/.c", "x.ndjson.gz",
        Array(repeating: String(repeating: "y", count: 255), count: 4).joined(separator: "/"),
    ])
    func acceptsOrdinaryKeys(key: String) async throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = DirectoryObjectStore(root: root)
        try await store.put(key: key, bytes: Array(key.utf8), contentType: "x")
        #expect(try await store.get(key: key) == Array(key.utf8))
        #expect(try await store.list(prefix: "").map(\.key) == [key])
    }

    @Test func refusesUnsafePrefixes() async throws {
        let store = DirectoryObjectStore(root: Self.temporaryRoot())
        for prefix in ["/abs", "../x", "a/../", "a//", "a\u{0}"] {
            await #expect(throws: ObjectStoreError.self, "\(prefix.debugDescription)") { try await store.list(prefix: prefix) }
        }
        // A partial last segment may look like anything a key could start with.
        #expect(try await store.list(prefix: "a/..").isEmpty)
        #expect(try await store.list(prefix: "a/").isEmpty)
    }

    @Test func concurrentWritersLeaveOneWholeFile() async throws {
        let root = Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = DirectoryObjectStore(root: root)
        let versions = (0..<8).map { [UInt8](repeating: UInt8($0), count: 100_000) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for version in versions {
                group.addTask { try await store.put(key: "same/key", bytes: version, contentType: "x") }
            }
            try await group.waitForAll()
        }
        let read = try await store.get(key: "same/key")
        #expect(versions.contains(read))
        #expect(try await store.list(prefix: "").map(\.key) == ["same/key"])
    }
}
