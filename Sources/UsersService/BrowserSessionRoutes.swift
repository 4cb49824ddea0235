import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct BrowserSessionRequest: Decodable {
    var email: String?
    var password: String?
    /// Instead of a password: a session's refresh token (after sign-up or single sign-on), which is spent.
    var refreshToken: String?
}

struct BrowserSessionBody: ResponseEncodable {
    /// Repeat in `X-CSRF-Token` on every state-changing request made with the cookie.
    var csrfToken: String
    var user: UserBody
    /// Set when the session acts only in one organization (single sign-on).
    var organizationId: UUID?
}

/// The dashboard signs in with an HttpOnly cookie instead of tokens in page script (docs/DASHBOARD.md).
extension UsersService {
    func addBrowserSessionRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.post("auth/browser-session", use: createBrowserSession)
        router.get("auth/browser-session", use: getBrowserSession)
        router.delete("auth/browser-session", use: deleteBrowserSession)
    }

    var cookiesAreSecure: Bool { publicBaseURL.lowercased().hasPrefix("https://") }

    /// Signs in with a password, or turns a token session into a cookie session, and sets the cookie.
    @Sendable func createBrowserSession(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let body = try await BodyReader(request: request, context: context).decode(as: BrowserSessionRequest.self)
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        let session: SessionInfo
        let account: Account
        if let refreshToken = body.refreshToken {
            guard body.email == nil, body.password == nil else {
                throw HeraldError.validation(field: "refreshToken", "cannot be sent with an email and password: send one or the other")
            }
            var validator = Validator()
            _ = validator.requireText(refreshToken, field: "refreshToken", maxLength: 200)
            try validator.check()
            let outcome = try await write(.system) { try await sessions.rotate(refreshToken: refreshToken, now: now, in: $0) }
            guard case .rotated(let rotated, _) = outcome,
                let found = try await database.transaction(.system, { try await accounts.find(id: rotated.userId, in: $0) })
            else {
                throw HeraldError.unauthorized("The refresh token is not valid or its session has ended. Sign in again.")
            }
            session = rotated
            account = found
        } else {
            (account, session, _) = try await passwordSignIn(LoginRequest(email: body.email, password: body.password), meta: meta, now: now)
        }
        let secret = try await write(.system) { tx in
            let secret = try await BrowserSessionStore().create(sessionId: session.id, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "auth.browser_session.started", subjectUserId: account.id, actorUserId: account.id, targetType: "session",
                    targetId: session.id.lowercased, meta: meta),
                now: now,
                in: tx
            )
            return secret
        }
        var headers = tokenHeaders
        headers[.setCookie] = BrowserSessionCookie.setCookie(
            secret, maxAge: max(0, Int(session.absoluteExpiresAt.timeIntervalSince(now))), secure: cookiesAreSecure)
        let answer = BrowserSessionBody(
            csrfToken: BrowserSessionCookie.csrfToken(for: secret), user: UserBody(account), organizationId: session.organizationId)
        return try JSONResponse(answer, status: .created, headers: headers).response(from: request, context: context)
    }

    /// The cookie's session: who is signed in and the CSRF token (a page reloaded has forgotten it). Each call keeps
    /// the session from idling out, as a token client's refresh does.
    /// Without a cookie at all the answer is 204: nobody is signed in, which a page asks about routinely.
    @Sendable func getBrowserSession(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        guard let secret = request.cookies[BrowserSessionCookie.name]?.value, request.headers[.authorization] == nil else {
            return Response(status: .noContent, headers: tokenHeaders)
        }
        let (userId, sessionId) = try context.requireUser()
        let now = Date()
        let account = try await write(.system) { tx in
            try await BrowserSessionStore().touch(sessionId: sessionId, idleExpiresAt: now.addingTimeInterval(policy.idleTimeout), now: now, in: tx)
            return try await accounts.find(id: userId, in: tx)
        }
        guard let account else { throw HeraldError.unauthorized("No dashboard session: sign in.") }
        return try JSONResponse(
            BrowserSessionBody(
                csrfToken: BrowserSessionCookie.csrfToken(for: secret), user: UserBody(account), organizationId: context.sessionOrganization),
            headers: tokenHeaders
        ).response(from: request, context: context)
    }

    /// Signs out: ends the session and clears the cookie. Needs the CSRF token, so another site cannot sign a
    /// member out either.
    @Sendable func deleteBrowserSession(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let (userId, sessionId) = try context.requireUser()
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        try await write(.system) { tx in
            if try await sessions.revoke(sessionId: sessionId, reason: "logout", now: now, in: tx) {
                try await audit.append(
                    AuditEntry(
                        action: "auth.logout", subjectUserId: userId, actorUserId: userId, targetType: "session",
                        targetId: sessionId.lowercased, meta: meta),
                    now: now,
                    in: tx
                )
            }
        }
        var headers = tokenHeaders
        headers[.setCookie] = BrowserSessionCookie.setCookie("", maxAge: 0, secure: cookiesAreSecure)
        return Response(status: .noContent, headers: headers)
    }
}
