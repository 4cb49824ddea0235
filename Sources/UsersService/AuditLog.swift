import Crypto
import Foundation
import HeraldCore
import HeraldHTTP
import HeraldStorage

/// A security event to record.
struct AuditEntry: Sendable {
    var action: String
    /// The organization the event belongs to; nil for events about a user's account (sign-in, sign-up).
    var organizationId: UUID?
    /// The account an account-level event is about (also who can see it, through their organizations).
    var subjectUserId: UUID?
    var actorUserId: UUID?
    var targetType: String?
    var targetId: String?
    var details: [String: String] = [:]
    var meta: RequestMeta
}

/// A recorded event as returned by the API.
struct AuditRecord: Sendable, Encodable {
    var id: UUID
    var sequence: Int64
    var chain: String
    var chainSequence: Int64
    var action: String
    var organizationId: UUID?
    var subjectUserId: UUID?
    var actorUserId: UUID?
    var targetType: String?
    var targetId: String?
    var ip: String?
    var userAgent: String?
    var requestId: String?
    var details: [String: String]
    var occurredAt: Date
    var previousHash: String
    var hash: String
    var occurredAtMicros: Int64
}

/// The append-only audit log. Records form hash chains, one per organization (`org:<id>`), one per account
/// for account-level events (`user:<id>`) and one for events with neither (`system`): each record's hash
/// covers its content and the previous record's hash, so editing, deleting or reordering a record breaks
/// every later link. Triggers refuse UPDATE and DELETE; the chain catches what bypasses them.
struct AuditLog: Sendable {
    typealias T = UsersTables

    static func chain(for entry: AuditEntry) -> String {
        if let organizationId = entry.organizationId { return "org:\(organizationId.lowercased)" }
        if let subject = entry.subjectUserId { return "user:\(subject.lowercased)" }
        return "system"
    }

    func append(_ entry: AuditEntry, now: Date = Date(), in tx: any SQLExecutor) async throws {
        let chain = Self.chain(for: entry)
        // Taking the chain head with an UPDATE locks it in PostgreSQL, so concurrent appends to one chain queue up.
        try await tx.execute(
            "INSERT INTO \(T.auditChains) (chain, last_seq, last_hash) VALUES (\(chain), 0, '') ON CONFLICT (chain) DO NOTHING"
        )
        guard
            let head = try await tx.queryFirst(
                "UPDATE \(T.auditChains) SET last_seq = last_seq + 1 WHERE chain = \(chain) RETURNING last_seq, last_hash"
            )
        else { throw StorageError.other("audit chain head missing") }
        var record = AuditRecord(
            id: .v7(at: now),
            sequence: 0,
            chain: chain,
            chainSequence: try head.get("last_seq"),
            action: entry.action,
            organizationId: entry.organizationId,
            subjectUserId: entry.subjectUserId,
            actorUserId: entry.actorUserId,
            targetType: entry.targetType,
            targetId: entry.targetId,
            ip: entry.meta.ip.isEmpty ? nil : entry.meta.ip,
            userAgent: entry.meta.userAgent.isEmpty ? nil : entry.meta.userAgent,
            requestId: entry.meta.requestId.isEmpty ? nil : entry.meta.requestId,
            details: entry.details,
            occurredAt: now,
            previousHash: try head.get("last_hash"),
            hash: "",
            occurredAtMicros: Int64((now.timeIntervalSince1970 * 1_000_000).rounded())
        )
        record.hash = Self.hash(of: record)
        try await tx.execute(
            """
            INSERT INTO \(T.auditLogs) (id, chain, chain_seq, organization_id, subject_user_id, actor_user_id, action,
                target_type, target_id, ip, user_agent, request_id, details, occurred_at_us, prev_hash, hash)
            VALUES (\(record.id), \(chain), \(record.chainSequence), \(record.organizationId), \(record.subjectUserId),
                \(record.actorUserId), \(record.action), \(record.targetType), \(record.targetId), \(record.ip),
                \(record.userAgent), \(record.requestId), \(try SQLJSON(encoding: record.details)), \(record.occurredAtMicros),
                \(record.previousHash), \(record.hash))
            """
        )
        try await tx.execute("UPDATE \(T.auditChains) SET last_hash = \(record.hash) WHERE chain = \(chain)")
    }

    /// The hash of a record: SHA-256 over its fields, each length-prefixed so no two records share an encoding.
    static func hash(of record: AuditRecord) -> String {
        var hasher = SHA256()
        func field(_ value: String?) {
            let bytes = Array((value ?? "\u{0}").utf8)
            var length = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        field(record.previousHash)
        field(record.id.lowercased)
        field(record.chain)
        field(String(record.chainSequence))
        field(record.action)
        field(record.organizationId?.lowercased)
        field(record.subjectUserId?.lowercased)
        field(record.actorUserId?.lowercased)
        field(record.targetType)
        field(record.targetId)
        field(record.ip)
        field(record.userAgent)
        field(record.requestId)
        for key in record.details.keys.sorted() {
            field(key)
            field(record.details[key])
        }
        field(String(record.occurredAtMicros))
        return hasher.finalize().hexString
    }

    /// Records visible to an organization (its own and its members' account events), newest first.
    func list(organizationId: UUID, before: Int64?, limit: Int, in tx: any SQLExecutor) async throws -> [AuditRecord] {
        let cursor: SQL = before.map { "AND seq < \($0)" } ?? ""
        return try await tx.query(
            """
            SELECT * FROM \(T.auditLogs)
            WHERE (organization_id = \(organizationId)
                OR (organization_id IS NULL AND subject_user_id IN
                    (SELECT user_id FROM \(T.memberships) WHERE organization_id = \(organizationId)))) \(cursor)
            ORDER BY seq DESC LIMIT \(limit)
            """
        ).map(decode)
    }

    /// The result of checking chains end to end.
    struct Verification: Sendable, Encodable {
        var valid: Bool
        var checkedRecords: Int
        var chains: [ChainResult]
    }

    struct ChainResult: Sendable, Encodable {
        var chain: String
        var records: Int
        var valid: Bool
        /// The first record whose hash or link does not match, when the chain is broken.
        var brokenAtChainSequence: Int64?
        var reason: String?
    }

    /// Recomputes every hash of the organization's chain and of its current members' account chains.
    func verify(organizationId: UUID, in tx: any SQLExecutor) async throws -> Verification {
        let memberRows = try await tx.query("SELECT user_id FROM \(T.memberships) WHERE organization_id = \(organizationId)")
        var chains = ["org:\(organizationId.lowercased)"]
        for row in memberRows {
            let userId: UUID = try row.get("user_id")
            chains.append("user:\(userId.lowercased)")
        }
        var results: [ChainResult] = []
        var total = 0
        for chain in chains {
            let records = try await tx.query("SELECT * FROM \(T.auditLogs) WHERE chain = \(chain) ORDER BY chain_seq").map(decode)
            let head = try await tx.queryFirst("SELECT last_seq, last_hash FROM \(T.auditChains) WHERE chain = \(chain)")
            total += records.count
            results.append(try Self.check(chain: chain, records: records, head: head))
        }
        return Verification(valid: results.allSatisfy(\.valid), checkedRecords: total, chains: results)
    }

    static func check(chain: String, records: [AuditRecord], head: SQLRow?) throws -> ChainResult {
        var previous = ""
        for (index, record) in records.enumerated() {
            let expectedSequence = Int64(index + 1)
            if record.chainSequence != expectedSequence {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: expectedSequence,
                    reason: "record \(expectedSequence) is missing"
                )
            }
            if record.previousHash != previous {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: record.chainSequence,
                    reason: "the link to the previous record does not match"
                )
            }
            if hash(of: record) != record.hash {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: record.chainSequence,
                    reason: "the record's content does not match its hash"
                )
            }
            previous = record.hash
        }
        if let head {
            let lastSeq: Int64 = try head.get("last_seq")
            let lastHash: String = try head.get("last_hash")
            if lastSeq != Int64(records.count) || lastHash != previous {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: Int64(records.count + 1),
                    reason: "records at the end of the chain are missing"
                )
            }
        }
        return ChainResult(chain: chain, records: records.count, valid: true, brokenAtChainSequence: nil, reason: nil)
    }

    func decode(_ row: SQLRow) throws -> AuditRecord {
        let detailsText: String = try row.get("details")
        let details = (try? JSONDecoder().decode([String: String].self, from: Data(detailsText.utf8))) ?? [:]
        let micros: Int64 = try row.get("occurred_at_us")
        return AuditRecord(
            id: try row.get("id"),
            sequence: try row.get("seq"),
            chain: try row.get("chain"),
            chainSequence: try row.get("chain_seq"),
            action: try row.get("action"),
            organizationId: try row.get("organization_id"),
            subjectUserId: try row.get("subject_user_id"),
            actorUserId: try row.get("actor_user_id"),
            targetType: try row.get("target_type"),
            targetId: try row.get("target_id"),
            ip: try row.get("ip"),
            userAgent: try row.get("user_agent"),
            requestId: try row.get("request_id"),
            details: details,
            occurredAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000),
            previousHash: try row.get("prev_hash"),
            hash: try row.get("hash"),
            occurredAtMicros: micros
        )
    }
}
