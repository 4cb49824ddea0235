import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage

/// How long sign-ins last. Access tokens are short; refresh tokens keep a session alive while it is used.
public struct SessionPolicy: Sendable {
    /// Lifetime of an access token (JWT). Default 15 minutes.
    public var accessTokenLifetime: TimeInterval
    /// A session ends when its refresh token has not been used for this long. Default 3 days.
    public var idleTimeout: TimeInterval
    /// A session ends this long after sign-in, however active. Default 30 days.
    public var absoluteTimeout: TimeInterval

    public init(accessTokenLifetime: TimeInterval = 900, idleTimeout: TimeInterval = 3 * 86_400, absoluteTimeout: TimeInterval = 30 * 86_400) {
        self.accessTokenLifetime = accessTokenLifetime
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
    }
}

struct SessionInfo: Sendable {
    var id: UUID
    var userId: UUID
    var createdAt: Date
    var lastUsedAt: Date
    var idleExpiresAt: Date
    var absoluteExpiresAt: Date
    var revokedAt: Date?
    var ip: String
    var userAgent: String
    /// The only organization the session may act in, for sessions opened through an organization's single
    /// sign-on: that provider vouches for the user there and nowhere else.
    var organizationId: UUID? = nil
}

/// The outcome of presenting a refresh token.
enum RefreshOutcome: Sendable {
    case rotated(session: SessionInfo, refreshToken: String)
    /// The token was already used: someone holds a copy. The whole session has been revoked.
    case reused(sessionId: UUID, userId: UUID)
    case invalid
}

/// Sessions and their rotating refresh tokens. Tokens are stored as SHA-256 hashes; each can be used once.
struct SessionStore: Sendable {
    let policy: SessionPolicy
    typealias T = UsersTables

    func create(
        userId: UUID, meta: RequestMeta, now: Date, limitedTo organizationId: UUID? = nil, lifetime: TimeInterval? = nil, in tx: any SQLExecutor
    ) async throws -> (SessionInfo, String) {
        let session = SessionInfo(
            id: .v7(at: now),
            userId: userId,
            createdAt: now,
            lastUsedAt: now,
            idleExpiresAt: now.addingTimeInterval(min(policy.idleTimeout, lifetime ?? policy.idleTimeout)),
            absoluteExpiresAt: now.addingTimeInterval(min(lifetime ?? policy.absoluteTimeout, policy.absoluteTimeout)),
            revokedAt: nil,
            ip: meta.ip,
            userAgent: meta.userAgent,
            organizationId: organizationId
        )
        try await tx.execute(
            """
            INSERT INTO \(T.sessions)
                (id, user_id, created_at, last_used_at, idle_expires_at, absolute_expires_at, ip, user_agent, organization_id)
            VALUES (\(session.id), \(userId), \(now), \(now), \(session.idleExpiresAt), \(session.absoluteExpiresAt), \(meta.ip),
                    \(meta.userAgent), \(organizationId))
            """
        )
        let token = try await issueRefreshToken(sessionId: session.id, now: now, in: tx)
        return (session, token)
    }

    private func issueRefreshToken(sessionId: UUID, now: Date, in tx: any SQLExecutor) async throws -> String {
        let token = SecretToken.make(prefix: "rt_")
        try await tx.execute(
            "INSERT INTO \(T.refreshTokens) (token_hash, session_id, issued_at) VALUES (\(SecretToken.hash(token)), \(sessionId), \(now))"
        )
        return token
    }

    func rotate(refreshToken: String, now: Date, in tx: any SQLExecutor) async throws -> RefreshOutcome {
        guard
            let row = try await tx.queryFirst(
                """
                SELECT t.used_at, s.* FROM \(T.refreshTokens) t JOIN \(T.sessions) s ON s.id = t.session_id
                WHERE t.token_hash = \(SecretToken.hash(refreshToken))
                """
            )
        else { return .invalid }
        let session = try decode(row)
        let usedAt: Date? = try row.get("used_at")
        if usedAt != nil {
            if session.revokedAt == nil {
                try await revoke(sessionId: session.id, reason: "refresh_token_reuse", now: now, in: tx)
            }
            return .reused(sessionId: session.id, userId: session.userId)
        }
        guard isLive(session, now: now) else { return .invalid }
        try await tx.execute(
            "UPDATE \(T.refreshTokens) SET used_at = \(now) WHERE token_hash = \(SecretToken.hash(refreshToken))"
        )
        let idleExpiry = min(now.addingTimeInterval(policy.idleTimeout), session.absoluteExpiresAt)
        try await tx.execute(
            "UPDATE \(T.sessions) SET last_used_at = \(now), idle_expires_at = \(idleExpiry) WHERE id = \(session.id)"
        )
        var updated = session
        updated.lastUsedAt = now
        updated.idleExpiresAt = idleExpiry
        return .rotated(session: updated, refreshToken: try await issueRefreshToken(sessionId: session.id, now: now, in: tx))
    }

    /// The session a refresh token belongs to, if the token is current.
    func session(forRefreshToken token: String, in tx: any SQLExecutor) async throws -> SessionInfo? {
        try await tx.queryFirst(
            """
            SELECT s.* FROM \(T.refreshTokens) t JOIN \(T.sessions) s ON s.id = t.session_id
            WHERE t.token_hash = \(SecretToken.hash(token)) AND t.used_at IS NULL
            """
        ).map(decode)
    }

    @discardableResult
    func revoke(sessionId: UUID, reason: String, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        let rows = try await tx.query(
            """
            UPDATE \(T.sessions) SET revoked_at = \(now), revoked_reason = \(reason)
            WHERE id = \(sessionId) AND revoked_at IS NULL RETURNING id
            """
        )
        return !rows.isEmpty
    }

    func revokeAll(userId: UUID, except keep: UUID?, reason: String, now: Date, in tx: any SQLExecutor) async throws {
        let exception: SQL = keep.map { "AND id <> \($0)" } ?? ""
        try await tx.execute(
            """
            UPDATE \(T.sessions) SET revoked_at = \(now), revoked_reason = \(reason)
            WHERE user_id = \(userId) AND revoked_at IS NULL \(exception)
            """
        )
    }

    func find(sessionId: UUID, in tx: any SQLExecutor) async throws -> SessionInfo? {
        try await tx.queryFirst("SELECT * FROM \(T.sessions) WHERE id = \(sessionId)").map(decode)
    }

    func active(userId: UUID, now: Date, in tx: any SQLExecutor) async throws -> [SessionInfo] {
        try await tx.query(
            """
            SELECT * FROM \(T.sessions)
            WHERE user_id = \(userId) AND revoked_at IS NULL AND idle_expires_at > \(now) AND absolute_expires_at > \(now)
            ORDER BY last_used_at DESC LIMIT 200
            """
        ).map(decode)
    }

    func isLive(_ session: SessionInfo, now: Date) -> Bool {
        session.revokedAt == nil && session.idleExpiresAt > now && session.absoluteExpiresAt > now
    }

    func decode(_ row: SQLRow) throws -> SessionInfo {
        SessionInfo(
            id: try row.get("id"),
            userId: try row.get("user_id"),
            createdAt: try row.get("created_at"),
            lastUsedAt: try row.get("last_used_at"),
            idleExpiresAt: try row.get("idle_expires_at"),
            absoluteExpiresAt: try row.get("absolute_expires_at"),
            revokedAt: try row.get("revoked_at"),
            ip: try row.get("ip"),
            userAgent: try row.get("user_agent"),
            organizationId: try row.get("organization_id")
        )
    }
}
