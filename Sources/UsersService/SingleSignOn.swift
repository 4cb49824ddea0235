import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldOIDC
import HeraldSecurity
import HeraldStorage

/// Turns a provider's verified claims into a Herald user of the organization, the same way for an OpenID
/// Connect sign-in and for a provider's session token.
///
/// A provider identity already linked names its user. Otherwise the provider must vouch for the email address
/// (`email_verified`): a new address becomes an account (without a password) and a member with the connection's
/// default role; an address of an existing account is linked only when that account is already a member. An
/// organization's provider cannot take over an account that belongs to someone outside the organization.
struct SingleSignOnLinker: Sendable {
    let accounts: AccountStore
    let organizations: OrganizationStore
    let store: SingleSignOnStore
    let audit: AuditLogStore

    /// The stored marker of an account without a password: bcrypt never matches it.
    static let noPassword = "!sso"

    func user(
        for claims: VerifiedClaims, connection: SSOConnection, meta: RequestMeta, now: Date, in tx: any SQLExecutor
    ) async throws -> UUID {
        let organizationId = connection.organizationId
        if let linked = try await store.user(issuer: claims.issuer, subject: claims.subject, organizationId: organizationId, in: tx) {
            guard try await organizations.role(of: linked, in: organizationId, tx: tx) != nil else {
                throw HeraldError.forbidden(
                    "Your account is no longer a member of this organization. Ask an administrator of the organization to add you again.")
            }
            try await store.touch(issuer: claims.issuer, subject: claims.subject, organizationId: organizationId, now: now, in: tx)
            return linked
        }
        guard let rawEmail = claims.email, claims.emailVerified, EmailAddress.isPlausible(EmailAddress.normalize(rawEmail)) else {
            throw HeraldError(
                status: 403, slug: "sso-email-unverified", title: "Forbidden",
                detail: "The identity provider did not vouch for an email address (email and email_verified). Ask its administrator "
                    + "to release a verified email to Herald.")
        }
        let email = EmailAddress.normalize(rawEmail)
        let userId: UUID
        if let account = try await accounts.find(email: email, in: tx) {
            guard try await organizations.role(of: account.id, in: organizationId, tx: tx) != nil else {
                throw HeraldError(
                    status: 403, slug: "sso-account-exists", title: "Forbidden",
                    detail: "A Herald account with this email exists and is not a member of this organization. Sign in with its "
                        + "password and ask an administrator to invite it; single sign-on links it from then on.")
            }
            userId = account.id
        } else {
            let providedName = claims.name?.trimmingCharacters(in: .whitespacesAndNewlines).filter { !$0.isNewline && $0 != "\u{0}" } ?? ""
            let name = providedName.isEmpty ? String(email.prefix { $0 != "@" }) : String(providedName.prefix(100))
            let account = Account(
                id: .v7(at: now), email: email, name: name, passwordHash: Self.noPassword, createdAt: now, updatedAt: now)
            try await accounts.insert(account, in: tx)
            try await organizations.addMember(account.id, to: organizationId, role: connection.defaultRole, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "sso.user_provisioned", organizationId: organizationId, subjectUserId: account.id, targetType: "user",
                    targetId: account.id.lowercased, details: ["role": connection.defaultRole.rawValue, "issuer": claims.issuer], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(UserCreated(userId: account.id), organizationId: nil, in: tx)
            try await Outbox.append(
                MemberJoined(organizationId: organizationId, userId: account.id, role: connection.defaultRole, via: "sso"),
                organizationId: organizationId,
                in: tx
            )
            userId = account.id
        }
        try await store.link(issuer: claims.issuer, subject: claims.subject, to: userId, organizationId: organizationId, now: now, in: tx)
        try await audit.append(
            AuditEntry(
                action: "sso.identity_linked", organizationId: organizationId, subjectUserId: userId, targetType: "user",
                targetId: userId.lowercased, details: ["issuer": claims.issuer], meta: meta),
            now: now,
            in: tx
        )
        return userId
    }
}

/// Accepts an organization's provider session tokens (Clerk's short-lived RS256 JWTs) as access tokens.
///
/// The token's issuer names the one organization that accepts it; the token is checked against that provider's
/// keys (refetched on an unknown key id), issuer, expiry, the configured audience and authorized parties. Each
/// provider session is mirrored by a Herald session limited to the organization, created on first sight: ending it
/// (or removing the member) refuses the provider's later tokens too.
struct ExternalSessionTokens: Sendable {
    let database: any Database
    let sessions: SessionStore
    let store: SingleSignOnStore
    let linker: SingleSignOnLinker
    let audit: AuditLogStore
    let oidc: OIDCClient

    func session(for token: String, now: Date = Date()) async throws -> ExternalSession? {
        do {
            return try await verifiedSession(for: token, now: now)
        } catch StorageError.uniqueViolation {
            // Two first requests of one provider session raced; the other one's session now exists.
            return try await verifiedSession(for: token, now: now)
        }
    }

    private func verifiedSession(for token: String, now: Date) async throws -> ExternalSession? {
        guard let issuer = JWTParts.unverifiedIssuer(of: token), issuer.utf8.count <= 500 else { return nil }
        guard let organizationId = try await database.transaction(.system, { try await store.organization(acceptingTokensFrom: issuer, in: $0) }),
            let connection = try await database.transaction(
                .organization(organizationId), { try await store.connection(of: organizationId, in: $0) }),
            connection.enabled, connection.acceptSessionTokens
        else { return nil }
        let claims: VerifiedClaims
        do {
            let metadata = try await oidc.metadata(issuer: issuer, now: now)
            claims = try await oidc.verify(
                token, jwksURI: metadata.jwksURI,
                expecting: TokenExpectations(
                    issuer: issuer, audience: connection.sessionTokenAudience, authorizedParties: connection.authorizedParties),
                now: now)
        } catch {
            throw HeraldError.unauthorized("The session token was refused: \(error).")
        }
        let mirrorKey = "\(issuer)\n\(claims.sessionId ?? claims.subject)"
        let meta = RequestMeta(ip: "", userAgent: "session token", requestId: "")
        return try await database.transaction(.organization(organizationId)) { tx -> ExternalSession in
            if let mirror = try await store.peek(.externalSession, secret: mirrorKey, now: now, in: tx) {
                let parts = mirror.payload.split(separator: " ")
                if parts.count == 2, let userId = UUID(text: String(parts[0])), let sessionId = UUID(text: String(parts[1])) {
                    guard let session = try await sessions.find(sessionId: sessionId, in: tx), sessions.isLive(session, now: now),
                        session.userId == userId
                    else {
                        throw HeraldError.unauthorized("The session has ended. Sign in again through your organization's provider.")
                    }
                    return ExternalSession(userId: userId, sessionId: sessionId, organizationId: organizationId)
                }
            }
            let userId: UUID
            do {
                userId = try await linker.user(for: claims, connection: connection, meta: meta, now: now, in: tx)
            } catch let error as HeraldError {
                // A credential that names no member is a refused credential: 401, with the reason.
                throw HeraldError.unauthorized("The session token names no member of the organization: \(error.detail)")
            }
            let (session, _) = try await sessions.create(userId: userId, meta: meta, now: now, limitedTo: organizationId, in: tx)
            try await store.put(
                .externalSession, secret: mirrorKey, organizationId: organizationId,
                payload: "\(userId.lowercased) \(session.id.lowercased)", expiresAt: session.absoluteExpiresAt, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "auth.session_token.accepted", organizationId: organizationId, subjectUserId: userId, actorUserId: userId,
                    targetType: "session", targetId: session.id.lowercased, details: ["issuer": issuer], meta: meta),
                now: now,
                in: tx
            )
            return ExternalSession(userId: userId, sessionId: session.id, organizationId: organizationId)
        }
    }
}
