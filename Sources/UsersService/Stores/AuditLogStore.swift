import Foundation
import HeraldCore
import HeraldHTTP
import HeraldStorage

/// The append-only audit log's rows: appending a record to its chain (``AuditChain``), listing an organization's
/// records, and reading chains back to verify them. Triggers refuse UPDATE and DELETE; the chain catches what
/// bypasses them.
struct AuditLogStore: Sendable {
    typealias T = UsersTables

    /// Appends a record to its chain. `id` is the record's id when the change chose it (an audited event's).
    func append(_ entry: AuditEntry, id: UUID? = nil, now: Date = Date(), in tx: any SQLExecutor) async throws {
        let chain = AuditChain.chain(for: entry)
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
            id: id ?? .v7(at: now),
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
        record.hash = AuditChain.hash(of: record)
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

    /// Recomputes every hash of the organization's chain and of its current members' account chains.
    func verify(organizationId: UUID, in tx: any SQLExecutor) async throws -> AuditChain.Verification {
        let memberRows = try await tx.query("SELECT user_id FROM \(T.memberships) WHERE organization_id = \(organizationId)")
        var chains = ["org:\(organizationId.lowercased)"]
        for row in memberRows {
            let userId: UUID = try row.get("user_id")
            chains.append("user:\(userId.lowercased)")
        }
        var results: [AuditChain.ChainResult] = []
        var total = 0
        for chain in chains {
            let records = try await tx.query("SELECT * FROM \(T.auditLogs) WHERE chain = \(chain) ORDER BY chain_seq").map(decode)
            let head = try await tx.queryFirst("SELECT last_seq, last_hash FROM \(T.auditChains) WHERE chain = \(chain)").map {
                (lastSeq: try $0.get("last_seq", as: Int64.self), lastHash: try $0.get("last_hash", as: String.self))
            }
            total += records.count
            results.append(AuditChain.check(chain: chain, records: records, head: head))
        }
        return AuditChain.Verification(valid: results.allSatisfy(\.valid), checkedRecords: total, chains: results)
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
