import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// An organization's OpenID Connect provider and what Herald does with it.
struct SSOConnection: Sendable {
    var organizationId: UUID
    var issuer: String
    var clientId: String
    var clientSecret: String?
    /// The role of a member created on first sign-in.
    var defaultRole: Role
    var enabled: Bool
    /// Whether the API accepts the provider's own session tokens (Clerk's) as access tokens.
    var acceptSessionTokens: Bool
    var sessionTokenAudience: String?
    var authorizedParties: [String]
    var createdAt: Date
    var updatedAt: Date
}

/// Short-lived single sign-on secrets, stored as hashes: a sign-in waiting for the provider's answer, the
/// hand-off code a browser trades for tokens, and the Herald session standing for a provider's session.
enum SSOTransientKind: String, Sendable {
    case signIn = "sign_in"
    case handoff
    case externalSession = "external_session"
}

/// Connections, linked identities and sign-in state. The connection lives in the organization's scope; the
/// transients and the issuer routing table hold only hashes and identifiers, so a callback can find its sign-in
/// before the organization is known.
struct SingleSignOnStore: Sendable {
    let cipher: FieldCipher
    typealias T = UsersTables

    private func secretContext(_ organizationId: UUID) -> String { "users.sso_connections.client_secret:\(organizationId.lowercased)" }

    func connection(of organizationId: UUID, in tx: any SQLExecutor) async throws -> SSOConnection? {
        guard let row = try await tx.queryFirst("SELECT * FROM \(T.ssoConnections) WHERE organization_id = \(organizationId)") else {
            return nil
        }
        let secret: [UInt8]? = try row.get("client_secret_encrypted")
        let parties: String = try row.get("authorized_parties")
        return SSOConnection(
            organizationId: organizationId,
            issuer: try row.get("issuer"),
            clientId: try row.get("client_id"),
            clientSecret: try secret.map { try cipher.decrypt($0, context: secretContext(organizationId)) },
            defaultRole: Role(rawValue: try row.get("default_role")) ?? .member,
            enabled: try row.get("enabled"),
            acceptSessionTokens: try row.get("accept_session_tokens"),
            sessionTokenAudience: try row.get("session_token_audience"),
            authorizedParties: (try? JSONDecoder().decode([String].self, from: Data(parties.utf8))) ?? [],
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }

    /// Writes the connection and the issuer routing for session tokens. Another organization already accepting
    /// the same issuer's session tokens is a conflict: a token must name exactly one organization.
    func save(_ connection: SSOConnection, in tx: any SQLExecutor) async throws {
        let secret = try connection.clientSecret.map { try cipher.encrypt($0, context: secretContext(connection.organizationId)) }
        let parties = String(decoding: try JSONEncoder().encode(connection.authorizedParties), as: UTF8.self)
        try await tx.execute("DELETE FROM \(T.ssoConnections) WHERE organization_id = \(connection.organizationId)")
        try await tx.execute(
            """
            INSERT INTO \(T.ssoConnections)
                (organization_id, issuer, client_id, client_secret_encrypted, default_role, enabled, accept_session_tokens,
                 session_token_audience, authorized_parties, created_at, updated_at)
            VALUES (\(connection.organizationId), \(connection.issuer), \(connection.clientId), \(secret), \(connection.defaultRole.rawValue),
                    \(connection.enabled), \(connection.acceptSessionTokens), \(connection.sessionTokenAudience), \(parties),
                    \(connection.createdAt), \(connection.updatedAt))
            """
        )
        try await tx.execute("DELETE FROM \(T.ssoIssuers) WHERE organization_id = \(connection.organizationId)")
        if connection.enabled && connection.acceptSessionTokens {
            do {
                try await tx.execute(
                    "INSERT INTO \(T.ssoIssuers) (issuer, organization_id) VALUES (\(connection.issuer), \(connection.organizationId))")
            } catch StorageError.uniqueViolation {
                throw HeraldError.conflict(
                    "Another organization already accepts session tokens from \(connection.issuer). Each provider's session tokens can "
                        + "sign in to one organization; give this organization its own provider instance.",
                    slug: "sso-issuer-taken")
            }
        }
    }

    func delete(of organizationId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        try await tx.execute("DELETE FROM \(T.ssoIssuers) WHERE organization_id = \(organizationId)")
        try await tx.execute("DELETE FROM \(T.ssoIdentities) WHERE organization_id = \(organizationId)")
        let rows = try await tx.query("DELETE FROM \(T.ssoConnections) WHERE organization_id = \(organizationId) RETURNING organization_id")
        return !rows.isEmpty
    }

    /// The organization that accepts session tokens from an issuer.
    func organization(acceptingTokensFrom issuer: String, in tx: any SQLExecutor) async throws -> UUID? {
        try await tx.queryFirst("SELECT organization_id FROM \(T.ssoIssuers) WHERE issuer = \(issuer)").map { try $0.get("organization_id") }
    }

    // MARK: Identities

    func user(issuer: String, subject: String, organizationId: UUID, in tx: any SQLExecutor) async throws -> UUID? {
        try await tx.queryFirst(
            """
            SELECT user_id FROM \(T.ssoIdentities)
            WHERE organization_id = \(organizationId) AND issuer = \(issuer) AND subject = \(subject)
            """
        ).map { try $0.get("user_id") }
    }

    func link(issuer: String, subject: String, to userId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.ssoIdentities) (organization_id, issuer, subject, user_id, created_at, last_sign_in_at)
            VALUES (\(organizationId), \(issuer), \(subject), \(userId), \(now), \(now))
            """
        )
    }

    func touch(issuer: String, subject: String, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.ssoIdentities) SET last_sign_in_at = \(now)
            WHERE organization_id = \(organizationId) AND issuer = \(issuer) AND subject = \(subject)
            """
        )
    }

    func identityCount(of organizationId: UUID, in tx: any SQLExecutor) async throws -> Int {
        let row = try await tx.queryFirst("SELECT COUNT(*) AS n FROM \(T.ssoIdentities) WHERE organization_id = \(organizationId)")
        return try row?.get("n") ?? 0
    }

    // MARK: Transients

    func put(_ kind: SSOTransientKind, secret: String, organizationId: UUID, payload: String, expiresAt: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.ssoTransients) (token_hash, kind, organization_id, payload, expires_at)
            VALUES (\(SecretToken.hash(secret)), \(kind.rawValue), \(organizationId), \(payload), \(expiresAt))
            """
        )
    }

    /// Takes a transient once: it is deleted as it is read, so a code or a state works a single time.
    func take(_ kind: SSOTransientKind, secret: String, now: Date, in tx: any SQLExecutor) async throws -> (organizationId: UUID, payload: String)? {
        guard
            let row = try await tx.queryFirst(
                """
                DELETE FROM \(T.ssoTransients) WHERE token_hash = \(SecretToken.hash(secret)) AND kind = \(kind.rawValue)
                RETURNING organization_id, payload, expires_at
                """
            )
        else { return nil }
        let expiresAt: Date = try row.get("expires_at")
        guard expiresAt > now else { return nil }
        return (try row.get("organization_id"), try row.get("payload"))
    }

    /// Reads a transient without using it up (the session standing for a provider's session).
    func peek(_ kind: SSOTransientKind, secret: String, now: Date, in tx: any SQLExecutor) async throws -> (organizationId: UUID, payload: String)? {
        guard
            let row = try await tx.queryFirst(
                """
                SELECT organization_id, payload FROM \(T.ssoTransients)
                WHERE token_hash = \(SecretToken.hash(secret)) AND kind = \(kind.rawValue) AND expires_at > \(now)
                """
            )
        else { return nil }
        return (try row.get("organization_id"), try row.get("payload"))
    }

    /// Forgets expired transients; called on each sign-in, so the table stays small without a timer.
    func sweep(now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.ssoTransients) WHERE expires_at <= \(now)")
    }
}
