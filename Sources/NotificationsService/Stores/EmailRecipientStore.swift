import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// Someone who opted in to a site's notifications by email.
struct EmailRecipient: Sendable {
    var id: UUID
    var siteId: UUID
    var email: String
    /// `subscribed`, `unsubscribed` (they left through the link in an email) or `bounced` (their server refused mail).
    var status: String
    var statusReason: String?
    var createdAt: Date
    var updatedAt: Date
}

/// The email channel's recipients (their deliveries: ``ChannelDeliveryStore/email``).
struct EmailRecipientStore: Sendable {
    typealias T = NotificationsTables
    let cipher: FieldCipher

    // MARK: Recipients

    func emailIndex(_ email: String, siteId: UUID) -> [UInt8] {
        cipher.blindIndex("\(siteId.lowercased):\(EmailAddress.normalize(email))", purpose: "email-recipient")
    }

    func findRecipient(email: String, siteId: UUID, in tx: any SQLExecutor) async throws -> EmailRecipient? {
        try await tx.queryFirst(
            "SELECT * FROM \(T.emailRecipients) WHERE site_id = \(siteId) AND email_index = \(emailIndex(email, siteId: siteId))"
        ).map(decodeRecipient)
    }

    func findRecipient(_ id: UUID, siteId: UUID? = nil, in tx: any SQLExecutor) async throws -> EmailRecipient? {
        let site: SQL = siteId.map { " AND site_id = \($0)" } ?? ""
        return try await tx.queryFirst("SELECT * FROM \(T.emailRecipients) WHERE id = \(id)\(site)").map(decodeRecipient)
    }

    func insertRecipient(id: UUID, email: String, siteId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.emailRecipients) (id, site_id, organization_id, email_index, email_encrypted, status, created_at, updated_at)
            VALUES (\(id), \(siteId), \(organizationId), \(emailIndex(email, siteId: siteId)),
                \(try cipher.encrypt(email, context: Self.emailContext(id))), 'subscribed', \(now), \(now))
            """
        )
    }

    func listRecipients(siteId: UUID, before: TimeCursor?, limit: Int, in tx: any SQLExecutor) async throws -> [EmailRecipient] {
        let cursor: SQL = before.map { "AND (created_at, id) < (\($0.date), \($0.id))" } ?? ""
        return try await tx.query(
            "SELECT * FROM \(T.emailRecipients) WHERE site_id = \(siteId) \(cursor) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        ).map(decodeRecipient)
    }

    func countSubscribed(siteId: UUID, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst("SELECT COUNT(*) AS n FROM \(T.emailRecipients) WHERE site_id = \(siteId) AND status = 'subscribed'")?
            .get("n") ?? 0
    }

    func subscribedRecipientIds(siteId: UUID, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query("SELECT id FROM \(T.emailRecipients) WHERE site_id = \(siteId) AND status = 'subscribed' ORDER BY id")
            .map { try $0.get("id") }
    }

    /// Sets a recipient's status; false when there is no such recipient.
    func setRecipientStatus(_ id: UUID, status: String, reason: String?, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query(
            """
            UPDATE \(T.emailRecipients) SET status = \(status), status_reason = \(reason), updated_at = \(now)
            WHERE id = \(id) RETURNING id
            """
        ).isEmpty
    }

    func deleteRecipient(_ id: UUID, siteId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query("DELETE FROM \(T.emailRecipients) WHERE id = \(id) AND site_id = \(siteId) RETURNING id").isEmpty
    }

    static func emailContext(_ id: UUID) -> String { "notifications.email_recipients.email:\(id.lowercased)" }

    func decodeRecipient(_ row: SQLRow) throws -> EmailRecipient {
        let id: UUID = try row.get("id")
        return EmailRecipient(
            id: id, siteId: try row.get("site_id"), email: try cipher.decrypt(try row.get("email_encrypted"), context: Self.emailContext(id)),
            status: try row.get("status"), statusReason: try row.get("status_reason"), createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }
}
