import Foundation
import HeraldHTTP
import HeraldSecurity
import HeraldStorage

/// Dashboard cookies and the sessions they stand for. Only a hash of each cookie's secret is stored; the session's
/// own expiry and revocation decide whether the cookie still works.
struct BrowserSessionStore: Sendable {
    typealias T = UsersTables

    func create(sessionId: UUID, now: Date, in tx: any SQLExecutor) async throws -> String {
        let secret = SecretToken.make(prefix: BrowserSessionCookie.prefix)
        try await tx.execute(
            "INSERT INTO \(T.browserSessions) (secret_hash, session_id, created_at) VALUES (\(SecretToken.hash(secret)), \(sessionId), \(now))")
        return secret
    }

    /// The live session behind a cookie's secret.
    func session(secret: String, now: Date, in tx: any SQLExecutor) async throws -> BrowserSession? {
        guard secret.utf8.count <= 100,
            let row = try await tx.queryFirst(
                """
                SELECT s.id, s.user_id, s.organization_id FROM \(T.browserSessions) b JOIN \(T.sessions) s ON s.id = b.session_id
                WHERE b.secret_hash = \(SecretToken.hash(secret)) AND s.revoked_at IS NULL AND s.idle_expires_at > \(now)
                  AND s.absolute_expires_at > \(now)
                """
            )
        else { return nil }
        return BrowserSession(userId: try row.get("user_id"), sessionId: try row.get("id"), organizationId: try row.get("organization_id"))
    }

    /// Keeps an active dashboard's session from idling out, as refreshing does for token clients.
    func touch(sessionId: UUID, idleExpiresAt: Date, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.sessions) SET last_used_at = \(now), idle_expires_at = \(idleExpiresAt)
            WHERE id = \(sessionId) AND absolute_expires_at >= \(idleExpiresAt)
            """
        )
    }
}
