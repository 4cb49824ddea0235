import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct UpdateMeRequest: Decodable {
    var name: String?
    var email: String?
    var password: String?
    var currentPassword: String?
}

extension UsersService {
    func addAccountRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.get("users/me", use: getMe)
        router.put("users/me", use: updateMe)
        router.patch("users/me", use: updateMe)
        router.get("users/me/sessions", use: listSessions)
        router.delete("users/me/sessions/:sessionId", use: revokeSession)
    }

    func currentAccount(_ context: HeraldRequestContext) async throws -> Account {
        let (userId, _) = try context.requireUser()
        guard let account = try await database.transaction(.system, { try await accounts.find(id: userId, in: $0) }) else {
            throw HeraldError.unauthorized("The account no longer exists.")
        }
        return account
    }

    @Sendable func getMe(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<UserBody> {
        JSONResponse(UserBody(try await currentAccount(context)))
    }

    /// Changes name, email or password. Email and password changes need the current password; a password
    /// change ends every other session.
    @Sendable func updateMe(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<UserBody> {
        let body = try await BodyReader(request: request, context: context).decode(as: UpdateMeRequest.self)
        let (_, sessionId) = try context.requireUser()
        var account = try await currentAccount(context)
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        var validator = Validator()
        let name = validator.optionalText(body.name, field: "name", maxLength: 100)
        let email = body.email.map { validator.requireEmail($0) }
        if body.password != nil { Self.validatePassword(body.password, field: "password", into: &validator) }
        let emailChanges = email.map { $0 != account.email } ?? false
        // Any email or password in the body needs the current password, even an unchanged email, so the
        // rule is the same one the OpenAPI document states and a client cannot probe which email is current.
        let sensitive = body.email != nil || body.password != nil
        if sensitive && body.currentPassword == nil {
            validator.add("currentPassword", "is required to change the email or password")
        }
        try validator.check()
        if sensitive {
            // A stolen access token must not become a way to guess the password: wrong current passwords count
            // as failed sign-ins for the account, with the same slowing and the same 429.
            let emailIndex = accounts.emailIndex(account.email)
            try await throttle.check(emailIndex: emailIndex, ip: meta.ip, now: now)
            guard try await passwords.verify(body.currentPassword ?? "", against: account.passwordHash) else {
                let delay = await throttle.recordFailure(emailIndex: emailIndex, ip: meta.ip, now: now)
                try await write(.system) { tx in
                    try await audit.append(
                        AuditEntry(action: "auth.reauthentication.failed", subjectUserId: account.id, actorUserId: account.id, meta: meta),
                        now: now, in: tx
                    )
                }
                if delay > .zero { try await Task.sleep(for: delay) }
                // 403, not 422: the request is well formed, the caller failed to re-authenticate.
                throw HeraldError(
                    status: 403,
                    slug: "reauthentication-failed",
                    title: "Forbidden",
                    detail: "The current password is incorrect.",
                    errors: [FieldError(field: "currentPassword", message: "is incorrect")]
                )
            }
        }
        var changed: [String] = []
        if let name, name != account.name {
            account.name = name
            changed.append("name")
        }
        if let email, emailChanges {
            account.email = email
            changed.append("email")
        }
        if let password = body.password {
            account.passwordHash = try await passwords.hash(password)
            changed.append("password")
        }
        guard !changed.isEmpty else { return JSONResponse(UserBody(account)) }
        account.updatedAt = now
        try await write(.system) { tx in
            try await accounts.update(account, in: tx)
            if changed.contains("password") {
                try await sessions.revokeAll(userId: account.id, except: sessionId, reason: "password_changed", now: now, in: tx)
            }
            try await audit.append(
                AuditEntry(
                    action: changed.contains("password") ? "user.password_changed" : "user.updated", subjectUserId: account.id,
                    actorUserId: account.id, targetType: "user", targetId: account.id.lowercased,
                    details: ["fields": changed.joined(separator: ",")], meta: meta),
                now: now,
                in: tx
            )
        }
        return JSONResponse(UserBody(account))
    }

    @Sendable func listSessions(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<SessionBody>> {
        let (userId, current) = try context.requireUser()
        let now = Date()
        let list = try await database.transaction(.system) { try await sessions.active(userId: userId, now: now, in: $0) }
        return JSONResponse(
            Page(
                items: list.map {
                    SessionBody(
                        id: $0.id, current: $0.id == current, createdAt: $0.createdAt, lastUsedAt: $0.lastUsedAt,
                        expiresAt: min($0.idleExpiresAt, $0.absoluteExpiresAt), ip: $0.ip, userAgent: $0.userAgent
                    )
                }
            )
        )
    }

    @Sendable func revokeSession(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let (userId, _) = try context.requireUser()
        let sessionId = try context.uuidParameter("sessionId", resource: "Session")
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        try await write(.system) { tx in
            guard let session = try await sessions.find(sessionId: sessionId, in: tx), session.userId == userId else {
                throw HeraldError.notFound("Session \(sessionId.lowercased)")
            }
            if try await sessions.revoke(sessionId: sessionId, reason: "revoked_by_user", now: now, in: tx) {
                try await audit.append(
                    AuditEntry(
                        action: "session.revoked", subjectUserId: userId, actorUserId: userId, targetType: "session",
                        targetId: sessionId.lowercased, meta: meta),
                    now: now,
                    in: tx
                )
            }
        }
        return Response(status: .noContent)
    }
}
