import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

struct Invitation: Sendable {
    var id: UUID
    var organizationId: UUID
    var email: String
    var role: Role
    var invitedBy: UUID
    var createdAt: Date
    var expiresAt: Date
    var acceptedAt: Date?
    var revokedAt: Date?

    func status(now: Date) -> String {
        if acceptedAt != nil { return "accepted" }
        if revokedAt != nil { return "revoked" }
        if expiresAt <= now { return "expired" }
        return "pending"
    }
}

/// Invitations to join an organization. The token is a secret shown once; its hash routes an acceptance to the
/// right organization before the tenant is known.
struct InvitationStore: Sendable {
    let cipher: FieldCipher
    typealias T = UsersTables

    func emailIndex(_ email: String) -> [UInt8] {
        cipher.blindIndex(EmailAddress.normalize(email), purpose: "account-email")
    }

    func insert(_ invitation: Invitation, token: String, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.invitations) (id, organization_id, email_index, email_encrypted, role, invited_by, created_at, expires_at)
            VALUES (\(invitation.id), \(invitation.organizationId), \(emailIndex(invitation.email)),
                    \(try cipher.encrypt(invitation.email, context: "users.invitations.email:\(invitation.id.lowercased)")),
                    \(invitation.role.rawValue), \(invitation.invitedBy), \(invitation.createdAt), \(invitation.expiresAt))
            """
        )
        try await tx.execute(
            """
            INSERT INTO \(T.invitationTokens) (token_hash, invitation_id, organization_id)
            VALUES (\(SecretToken.hash(token)), \(invitation.id), \(invitation.organizationId))
            """
        )
    }

    /// Resolves a token to its invitation's id and organization (a routing lookup, outside any tenant).
    func route(token: String, in tx: any SQLExecutor) async throws -> (invitationId: UUID, organizationId: UUID)? {
        guard
            let row = try await tx.queryFirst(
                "SELECT invitation_id, organization_id FROM \(T.invitationTokens) WHERE token_hash = \(SecretToken.hash(token))"
            )
        else { return nil }
        return (try row.get("invitation_id"), try row.get("organization_id"))
    }

    func find(_ id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> Invitation? {
        try await tx.queryFirst(
            "SELECT * FROM \(T.invitations) WHERE id = \(id) AND organization_id = \(organizationId)"
        ).map(decode)
    }

    func list(organizationId: UUID, in tx: any SQLExecutor) async throws -> [Invitation] {
        try await tx.query(
            "SELECT * FROM \(T.invitations) WHERE organization_id = \(organizationId) ORDER BY created_at DESC LIMIT 500"
        ).map(decode)
    }

    func hasPending(email: String, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        let row = try await tx.queryFirst(
            """
            SELECT id FROM \(T.invitations)
            WHERE organization_id = \(organizationId) AND email_index = \(emailIndex(email))
              AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > \(now)
            """
        )
        return row != nil
    }

    func markAccepted(_ id: UUID, by userId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.invitations) SET accepted_at = \(now), accepted_by = \(userId) WHERE id = \(id)")
    }

    func revoke(_ id: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.invitations) SET revoked_at = \(now) WHERE id = \(id)")
    }

    func matchesEmail(_ invitationId: UUID, email: String, in tx: any SQLExecutor) async throws -> Bool {
        let row = try await tx.queryFirst("SELECT email_index FROM \(T.invitations) WHERE id = \(invitationId)")
        guard let stored: [UInt8] = try row?.get("email_index") else { return false }
        return SecretToken.constantTimeEquals(stored, emailIndex(email))
    }

    func decode(_ row: SQLRow) throws -> Invitation {
        let id: UUID = try row.get("id")
        let roleText: String = try row.get("role")
        return Invitation(
            id: id,
            organizationId: try row.get("organization_id"),
            email: try cipher.decrypt(try row.get("email_encrypted"), context: "users.invitations.email:\(id.lowercased)"),
            role: Role(rawValue: roleText) ?? .viewer,
            invitedBy: try row.get("invited_by"),
            createdAt: try row.get("created_at"),
            expiresAt: try row.get("expires_at"),
            acceptedAt: try row.get("accepted_at"),
            revokedAt: try row.get("revoked_at")
        )
    }
}
