import Foundation
import HeraldCore
import HeraldStorage

/// What the ClickHouse shipper reads and records in the store: an organization's raw events after a position, how
/// far each organization was shipped (`analytics.shipping`, for visibility and for archiving, which keeps days that
/// were not shipped yet), and the lock that lets one instance ship at a time.
///
/// Rows of `analytics.shipping`: `clickhouse` (the highest `seq` shipped), `clickhouse:<organization>` (every raw
/// event of the organization up to `last_seq` is in ClickHouse), `clickhouse-shipper` (`last_seq` is the token of the
/// instance that shipped last: another instance that takes over reads ClickHouse's positions again).
struct ShippingStore: Sendable {
    typealias T = AnalyticsTables

    static let target = "clickhouse"
    static let shipperTarget = "clickhouse-shipper"
    static func target(_ organizationId: UUID) -> String { "clickhouse:" + organizationId.lowercased }

    /// The organization's raw events after `seq`, in `seq` order (restored rows are not shipped again: they were
    /// shipped before they were archived). The explicit organization makes the read the same on SQLite, which has no
    /// row-level security, as on PostgreSQL, where it also runs in the organization's scope.
    func pending(organizationId: UUID, after seq: Int64, limit: Int, in tx: any SQLExecutor) async throws -> [StoredRawEvent] {
        try await tx.query(
            """
            SELECT \(unsafeRaw: RawEventStore.columns) FROM \(T.events)
            WHERE organization_id = \(organizationId) AND seq > \(seq) AND restored = 0 ORDER BY seq LIMIT \(limit)
            """
        ).map(RawEventStore.decode)
    }

    /// The highest `seq` of the transaction's organization's (not restored) events in `millis`, for the archive guard.
    func lastSeq(millis: Range<Int64>, organizationId: UUID, in tx: any SQLExecutor) async throws -> Int64? {
        try await tx.queryFirst(
            """
            SELECT MAX(seq) AS seq FROM \(T.events)
            WHERE organization_id = \(organizationId) AND at_ms >= \(millis.lowerBound) AND at_ms < \(millis.upperBound) AND restored = 0
            """
        )?.get("seq")
    }

    /// How far an organization's events were shipped (0: nothing yet).
    func shipped(organizationId: UUID, in tx: any SQLExecutor) async throws -> Int64 {
        try await tx.queryFirst("SELECT last_seq FROM \(T.shipping) WHERE target = \(Self.target(organizationId))")?.get("last_seq") ?? 0
    }

    /// Records positions (`target` → `last_seq`), replacing what was there.
    func record(_ positions: [(target: String, seq: Int64)], at now: Date, in tx: any SQLExecutor) async throws {
        guard !positions.isEmpty else { return }
        for statement in SQL.insert(
            into: T.shipping, columns: ["target", "last_seq", "updated_at"],
            rows: positions.map { [.text($0.target), .int($0.seq), .date(now)] },
            suffix: " ON CONFLICT (target) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at"
        ) {
            try await tx.execute(statement)
        }
    }

    /// PostgreSQL: takes the shippers' lock for the rest of the transaction, or answers false when another instance
    /// holds it. It goes with the transaction (or the holder's connection, when an instance dies). SQLite is one
    /// process: always true.
    func lock(in tx: any SQLExecutor) async throws -> Bool {
        guard tx.dialect == .postgres else { return true }
        let row = try await tx.queryFirst(
            "SELECT CASE WHEN pg_try_advisory_xact_lock(\(Self.lockKey)) THEN 1 ELSE 0 END AS locked"
        )
        return try row?.get("locked", as: Int64.self) == 1
    }

    /// The advisory lock's key: "herald.c" in ASCII.
    static let lockKey: Int64 = 0x6865_7261_6C64_2E63

    /// The token of the instance that shipped last (nil: none yet).
    func lastShipper(in tx: any SQLExecutor) async throws -> Int64? {
        try await tx.queryFirst("SELECT last_seq FROM \(T.shipping) WHERE target = \(Self.shipperTarget)")?.get("last_seq")
    }

    /// Records that this instance ships now.
    func claim(token: Int64, at now: Date, in tx: any SQLExecutor) async throws {
        try await record([(Self.shipperTarget, token)], at: now, in: tx)
    }
}
