import Foundation
import HeraldCore
import HeraldStorage

struct TrialExtensionRecord: Sendable, Equatable {
    var id: UUID
    var organizationId: UUID
    var siteId: UUID
    var requestedBy: UUID?
    var days: Int
    var reason: String
    /// `pending`, `approved` or `refused`.
    var status: String
    var decidedBy: String?
    var decisionNote: String?
    var createdAt: Date
    var decidedAt: Date?
}

/// Requests for a longer trial, which an operator approves or refuses.
struct TrialExtensionStore: Sendable {
    typealias T = BillingTables

    func insert(_ record: TrialExtensionRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.trialExtensions) (id, organization_id, site_id, requested_by, days, reason, status, created_at)
            VALUES (\(record.id), \(record.organizationId), \(record.siteId), \(record.requestedBy), \(record.days), \(record.reason),
                \(record.status), \(record.createdAt))
            """
        )
    }

    func pending(organizationId: UUID, in tx: any SQLExecutor) async throws -> TrialExtensionRecord? {
        try await tx.queryFirst(
            "SELECT * FROM \(T.trialExtensions) WHERE organization_id = \(organizationId) AND status = 'pending'"
        ).map(Self.record)
    }

    func list(organizationId: UUID, in tx: any SQLExecutor) async throws -> [TrialExtensionRecord] {
        try await tx.query(
            "SELECT * FROM \(T.trialExtensions) WHERE organization_id = \(organizationId) ORDER BY created_at DESC LIMIT 50"
        ).map(Self.record)
    }

    /// Every request in a status, across organizations (the operator's queue; system scope).
    func list(status: String, limit: Int, in tx: any SQLExecutor) async throws -> [TrialExtensionRecord] {
        try await tx.query(
            "SELECT * FROM \(T.trialExtensions) WHERE status = \(status) ORDER BY created_at LIMIT \(limit)"
        ).map(Self.record)
    }

    func find(_ id: UUID, in tx: any SQLExecutor) async throws -> TrialExtensionRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.trialExtensions) WHERE id = \(id)").map(Self.record)
    }

    /// Decides a pending request; false when it was already decided.
    func decide(_ id: UUID, status: String, by operatorName: String, note: String?, at: Date, in tx: any SQLExecutor) async throws -> Bool {
        !(try await tx.query(
            """
            UPDATE \(T.trialExtensions) SET status = \(status), decided_by = \(operatorName), decision_note = \(note), decided_at = \(at)
            WHERE id = \(id) AND status = 'pending' RETURNING id
            """
        )).isEmpty
    }

    static func record(_ row: SQLRow) throws -> TrialExtensionRecord {
        TrialExtensionRecord(
            id: try row.get("id"), organizationId: try row.get("organization_id"), siteId: try row.get("site_id"),
            requestedBy: try row.get("requested_by"), days: try row.get("days"), reason: try row.get("reason"), status: try row.get("status"),
            decidedBy: try row.get("decided_by"), decisionNote: try row.get("decision_note"), createdAt: try row.get("created_at"),
            decidedAt: try row.get("decided_at")
        )
    }
}
