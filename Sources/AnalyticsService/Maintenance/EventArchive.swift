import CompressNIO
import Foundation
import HeraldCore
import HeraldObjectStore
import HeraldStorage
import Logging
import NIOCore

/// Moves raw events past their retention into compressed NDJSON files in an object store (a directory or an
/// S3-compatible bucket, possibly in an archive storage class), one file per organization and UTC day, and brings
/// them back on request. A day's rows are deleted only after its file is stored, so a failure in between leaves
/// the rows in place and the next run writes the file again.
public struct EventArchive: Sendable {
    let database: any Database
    let store: any ObjectStore
    let logger: Logger
    let raw = RawEventStore()
    let retention = RetentionStore()
    let shipping = ShippingStore()
    /// ClickHouse is configured: a day is archived (and dropped from the store) only once all its rows were shipped.
    var keepUnshipped = false
    static let pageSize = 10_000

    public init(database: any Database, store: any ObjectStore, logger: Logger) {
        self.database = database
        self.store = store
        self.logger = logger
    }

    /// `events/day=2026-09-01/org=<id>/part-<first seq>.ndjson.gz`: days first, so a range of days is one prefix
    /// listing; a part is named by its first row, so writing it again after a crash replaces it rather than adding one.
    static func key(day: Int, organizationId: UUID, firstSeq: Int64) -> String {
        "events/day=\(LocalTime.isoDate(dayKey: day))/org=\(organizationId.lowercased)/part-\(firstSeq).ndjson.gz"
    }

    /// Rows per archive file: bounds the memory an archive run takes (about 50 MB of text per part).
    static let rowsPerPart = 100_000

    /// Archives and drops an organization's raw events of UTC days before `cutoffDay`; returns the rows moved.
    func archive(organizationId: UUID, before cutoffDay: Int, now: Date) async throws -> Int {
        let scope = TenantScope.organization(organizationId)
        guard let cutoff = LocalTime.days(dayKey: cutoffDay) else { return 0 }
        var moved = 0
        while let oldest = try await database.transaction(scope, { try await raw.oldest(organizationId: organizationId, restored: false, in: $0) }) {
            let day = Int(oldest >= 0 ? oldest / 86_400_000 : (oldest - 86_399_999) / 86_400_000)
            guard day < cutoff else { break }
            let millis = Int64(day) * 86_400_000..<Int64(day + 1) * 86_400_000
            let dayKey = LocalTime.dayKey(days: day)
            if keepUnshipped, try await !isShipped(organizationId: organizationId, millis: millis) {
                logger.info(
                    "raw events not archived yet: ClickHouse does not have them all",
                    metadata: ["organization": "\(organizationId.lowercased)", "day": "\(LocalTime.isoDate(dayKey: dayKey))"]
                )
                break
            }
            // Part by part: each stored file and the deletion of its rows commit together, so a row is always either
            // in the table or in exactly one recorded file, whatever fails in between.
            var rows = 0
            var after: Int64 = 0
            while true {
                var text = ""
                var partRows = 0
                var firstSeq: Int64?
                var lastSeq: Int64 = after
                while partRows < Self.rowsPerPart {
                    let page = try await database.transaction(scope) {
                        try await raw.page(
                            organizationId: organizationId, millis: millis, after: lastSeq, limit: min(Self.pageSize, Self.rowsPerPart - partRows),
                            in: $0)
                    }
                    for stored in page {
                        text += stored.event.jsonLine(organizationId: organizationId)
                        text += "\n"
                    }
                    firstSeq = firstSeq ?? page.first?.seq
                    partRows += page.count
                    lastSeq = page.last?.seq ?? lastSeq
                    if page.isEmpty { break }
                }
                guard let first = firstSeq else { break }
                let compressed = try Self.gzip(Array(text.utf8))
                let key = Self.key(day: dayKey, organizationId: organizationId, firstSeq: first)
                try await store.put(key: key, bytes: compressed, contentType: "application/gzip")
                let through = lastSeq
                try await database.transaction(scope) { tx in
                    try await retention.recordArchive(
                        day: dayKey, organizationId: organizationId, location: key, rows: partRows, bytes: compressed.count, at: now, in: tx)
                    try await raw.delete(organizationId: organizationId, millis: millis, restored: false, throughSeq: through, in: tx)
                }
                rows += partRows
                after = lastSeq
            }
            logger.info(
                "archived raw events",
                metadata: ["organization": "\(organizationId.lowercased)", "day": "\(LocalTime.isoDate(dayKey: dayKey))", "rows": "\(rows)"]
            )
            moved += rows
        }
        return moved
    }

    /// Whether every (not restored) raw event of the organization in `millis` was shipped to ClickHouse, by the
    /// position the shipper recorded (which trails what ClickHouse holds, never leads it).
    func isShipped(organizationId: UUID, millis: Range<Int64>) async throws -> Bool {
        let last = try await database.transaction(.organization(organizationId)) {
            try await shipping.lastSeq(millis: millis, organizationId: organizationId, in: $0)
        }
        guard let last else { return true }
        let shipped = try await database.transaction(.system) { try await shipping.shipped(organizationId: organizationId, in: $0) }
        return last <= shipped
    }

    /// What a restore did for one archived day.
    public struct RestoredDay: Sendable {
        public var day: String
        public var organizationId: UUID
        /// `restored`, `already restored`, `restore requested` (an archive storage class: run again later) or `missing`.
        public var outcome: String
        public var rows: Int
    }

    /// Brings archived days back into the raw events table (marked restored; dropped again after `keepDays`).
    public func restore(from: String, to: String, organizationId: UUID?, now: Date = Date()) async throws -> [RestoredDay] {
        guard let fromDay = LocalTime.dayKey(isoDate: from), let toDay = LocalTime.dayKey(isoDate: to), fromDay <= toDay else {
            throw HeraldError.badRequest("give --from and --to as dates like 2026-09-01, from no later than to")
        }
        let archives = try await database.transaction(.system) {
            try await retention.archives(days: fromDay...toDay, organizationId: organizationId, in: $0)
        }
        var results: [RestoredDay] = []
        for archive in archives {
            let day = LocalTime.isoDate(dayKey: archive.day)
            if archive.restoredAt != nil {
                results.append(RestoredDay(day: day, organizationId: archive.organizationId, outcome: "already restored", rows: 0))
                continue
            }
            let compressed: [UInt8]
            do {
                compressed = try await store.get(key: archive.location)
            } catch ObjectStoreError.archived {
                try await store.requestRestore(key: archive.location, days: 7)
                results.append(RestoredDay(day: day, organizationId: archive.organizationId, outcome: "restore requested", rows: 0))
                continue
            } catch ObjectStoreError.notFound {
                results.append(RestoredDay(day: day, organizationId: archive.organizationId, outcome: "missing", rows: 0))
                continue
            }
            let bytes = try Self.gunzip(compressed)
            let decoder = JSONDecoder()
            var events: [RawEvent] = []
            for line in bytes.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                events.append(try decoder.decode(RawEvent.self, from: Data(line)))
            }
            let scope = TenantScope.organization(archive.organizationId)
            for start in stride(from: 0, to: events.count, by: 2000) {
                let slice = Array(events[start..<min(events.count, start + 2000)])
                try await database.transaction(scope) { tx in
                    try await IngestStore().insertRaw(slice, organizationId: archive.organizationId, restored: true, in: tx)
                }
            }
            try await database.transaction(scope) { tx in
                try await retention.markRestored(
                    day: archive.day, organizationId: archive.organizationId, location: archive.location, rows: events.count, at: now, in: tx)
            }
            results.append(RestoredDay(day: day, organizationId: archive.organizationId, outcome: "restored", rows: events.count))
        }
        return results
    }

    /// Drops restored rows again once they have been kept `keepDays`.
    func dropExpiredRestorations(keepDays: Int, now: Date) async throws {
        let expired = try await database.transaction(.system) {
            try await retention.expiredRestorations(before: now.addingTimeInterval(-Double(keepDays) * 86_400), in: $0)
        }
        for (day, organizationId) in expired {
            guard let days = LocalTime.days(dayKey: day) else { continue }
            let millis = Int64(days) * 86_400_000..<Int64(days + 1) * 86_400_000
            try await database.transaction(.organization(organizationId)) { tx in
                try await raw.delete(organizationId: organizationId, millis: millis, restored: true, in: tx)
                try await retention.clearRestoration(day: day, organizationId: organizationId, in: tx)
            }
        }
    }

    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var buffer = ByteBuffer(bytes: bytes)
        var compressed = try buffer.compress(with: .gzip)
        return compressed.readBytes(length: compressed.readableBytes) ?? []
    }

    static func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
        var buffer = ByteBuffer(bytes: bytes)
        var plain = try buffer.decompress(with: .gzip)
        return plain.readBytes(length: plain.readableBytes) ?? []
    }
}

/// Stands in when no archive is configured: raw events past their retention are kept rather than dropped.
struct NoArchiveStore: ObjectStore {
    var describe: String { "no archive" }
    func fail() -> ObjectStoreError { .invalidConfiguration("no archive is configured: set HERALD_ANALYTICS_ARCHIVE_URL") }
    func put(key: String, bytes: [UInt8], contentType: String) async throws { throw fail() }
    func get(key: String) async throws -> [UInt8] { throw fail() }
    func list(prefix: String) async throws -> [ObjectInfo] { throw fail() }
    func delete(key: String) async throws { throw fail() }
    func requestRestore(key: String, days: Int) async throws { throw fail() }
}
