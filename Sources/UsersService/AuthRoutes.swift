import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

/// Token responses must never be cached by a browser or a proxy.
let tokenHeaders: HTTPFields = [.cacheControl: "no-store", .pragma: "no-cache"]

struct SignupRequest: Decodable {
    var email: String?
    var password: String?
    var name: String?
}

struct LoginRequest: Decodable {
    var email: String?
    var password: String?
}

struct RefreshRequest: Decodable {
    var refreshToken: String?
}

extension UsersService {
    func addAuthRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.post("auth/signup", use: signup)
        router.post("auth/login", use: login)
        router.post("auth/refresh", use: refresh)
        router.post("auth/logout", use: logout)
    }

    static func validatePassword(_ password: String?, field: String, into validator: inout Validator) {
        guard let password else {
            validator.add(field, "is required")
            return
        }
        if password.unicodeScalars.count < PasswordHasher.minimumLength {
            validator.add(field, "must be at least \(PasswordHasher.minimumLength) characters")
        } else if password.unicodeScalars.count > PasswordHasher.maximumLength {
            validator.add(field, "must be at most \(PasswordHasher.maximumLength) characters")
        }
    }

    @Sendable func signup(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TokensBody> {
        let body = try await BodyReader(request: request, context: context).decode(as: SignupRequest.self)
        var validator = Validator()
        let email = validator.requireEmail(body.email)
        Self.validatePassword(body.password, field: "password", into: &validator)
        let name = validator.requireText(body.name, field: "name", maxLength: 100)
        try validator.check()

        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        try await throttle.checkSignup(ip: meta.ip, now: now)
        let hash = try await passwords.hash(body.password ?? "")
        let account = Account(id: .v7(at: now), email: email, name: name, passwordHash: hash, createdAt: now, updatedAt: now)
        let (session, refreshToken) = try await write(.system) { tx in
            try await accounts.insert(account, in: tx)
            let created = try await sessions.create(userId: account.id, meta: meta, now: now, in: tx)
            try await audit.append(
                AuditEntry(action: "auth.signup", subjectUserId: account.id, actorUserId: account.id, meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(UserCreated(userId: account.id), organizationId: nil, in: tx)
            return created
        }
        let (accessToken, expiresIn) = try await tokens.issue(userId: account.id, sessionId: session.id, now: now)
        return JSONResponse(
            TokensBody(accessToken: accessToken, refreshToken: refreshToken, expiresIn: expiresIn, user: UserBody(account)),
            status: .created,
            headers: tokenHeaders
        )
    }

    @Sendable func login(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TokensBody> {
        let body = try await BodyReader(request: request, context: context).decode(as: LoginRequest.self)
        let now = Date()
        let (account, session, refreshToken) = try await passwordSignIn(body, meta: RequestMeta(request: request, context: context), now: now)
        let (accessToken, expiresIn) = try await tokens.issue(userId: account.id, sessionId: session.id, now: now)
        return JSONResponse(
            TokensBody(accessToken: accessToken, refreshToken: refreshToken, expiresIn: expiresIn, user: UserBody(account)),
            headers: tokenHeaders
        )
    }

    /// Checks an email and password (throttled, audited either way) and opens a session.
    func passwordSignIn(_ body: LoginRequest, meta: RequestMeta, now: Date) async throws -> (Account, SessionInfo, String) {
        var validator = Validator()
        let email = EmailAddress.normalize(validator.requireText(body.email, field: "email", maxLength: 254))
        if body.password == nil { validator.add("password", "is required") }
        try validator.check()
        let password = body.password ?? ""

        let emailIndex = accounts.emailIndex(email)
        try await throttle.check(emailIndex: emailIndex, ip: meta.ip, now: now)

        let account = try await database.transaction(.system) { try await accounts.find(email: email, in: $0) }
        // The hash is computed even for unknown accounts, so both answers take the same time.
        let matches = try await passwords.verify(String(password.prefix(PasswordHasher.maximumLength)), against: account?.passwordHash)
        let valid = matches && password.unicodeScalars.count <= PasswordHasher.maximumLength
        guard let account, valid else {
            let delay = await throttle.recordFailure(emailIndex: emailIndex, ip: meta.ip, now: now)
            try await write(.system) { tx in
                try await audit.append(
                    AuditEntry(
                        action: "auth.login.failed",
                        subjectUserId: account?.id,
                        details: ["reason": account == nil ? "unknown_account" : "wrong_password"],
                        meta: meta
                    ),
                    now: now,
                    in: tx
                )
            }
            if delay > .zero { try await Task.sleep(for: delay) }
            throw HeraldError(status: 401, slug: "invalid-credentials", title: "Unauthorized", detail: "The email or password is incorrect.")
        }
        await throttle.recordSuccess(emailIndex: emailIndex)
        let (session, refreshToken) = try await write(.system) { tx in
            let created = try await sessions.create(userId: account.id, meta: meta, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "auth.login.succeeded", subjectUserId: account.id, actorUserId: account.id, targetType: "session",
                    targetId: created.0.id.lowercased, meta: meta),
                now: now,
                in: tx
            )
            return created
        }
        return (account, session, refreshToken)
    }

    @Sendable func refresh(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TokensBody> {
        let body = try await BodyReader(request: request, context: context).decode(as: RefreshRequest.self)
        var validator = Validator()
        let token = validator.requireText(body.refreshToken, field: "refreshToken", maxLength: 200)
        try validator.check()
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        let outcome = try await write(.system) { tx -> RefreshOutcome in
            let outcome = try await sessions.rotate(refreshToken: token, now: now, in: tx)
            if case .reused(let sessionId, let userId) = outcome {
                try await audit.append(
                    AuditEntry(
                        action: "auth.refresh_token.reused", subjectUserId: userId, targetType: "session",
                        targetId: sessionId.lowercased, details: ["result": "session_revoked"], meta: meta),
                    now: now,
                    in: tx
                )
            }
            return outcome
        }
        switch outcome {
        case .invalid:
            throw HeraldError.unauthorized("The refresh token is not valid or its session has ended. Sign in again.")
        case .reused:
            throw HeraldError.unauthorized(
                "This refresh token was already used, so its session has been ended to protect the account. Sign in again."
            )
        case .rotated(let session, let refreshToken):
            let (accessToken, expiresIn) = try await tokens.issue(
                userId: session.userId, sessionId: session.id, organizationId: session.organizationId, now: now)
            return JSONResponse(
                TokensBody(accessToken: accessToken, refreshToken: refreshToken, expiresIn: expiresIn, user: nil),
                headers: tokenHeaders
            )
        }
    }

    /// Ends the session of the access token, or of the refresh token in the body.
    @Sendable func logout(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        var refreshToken: String?
        if let length = request.headers[.contentLength], length != "0" {
            refreshToken = try await BodyReader(request: request, context: context).decode(as: RefreshRequest.self).refreshToken
        }
        let target: (sessionId: UUID, userId: UUID)
        if case .user(let userId, let sessionId) = context.principal {
            target = (sessionId, userId)
        } else if let refreshToken {
            guard let session = try await database.transaction(.system, { try await sessions.session(forRefreshToken: refreshToken, in: $0) })
            else {
                throw HeraldError.unauthorized("The refresh token is not valid.")
            }
            target = (session.id, session.userId)
        } else {
            throw HeraldError.unauthorized("Send the access token, or the refresh token in the body, of the session to end.")
        }
        try await write(.system) { tx in
            if try await sessions.revoke(sessionId: target.sessionId, reason: "logout", now: now, in: tx) {
                try await audit.append(
                    AuditEntry(
                        action: "auth.logout", subjectUserId: target.userId, actorUserId: target.userId, targetType: "session",
                        targetId: target.sessionId.lowercased, meta: meta),
                    now: now,
                    in: tx
                )
            }
        }
        return Response(status: .noContent, headers: tokenHeaders)
    }
}

extension LoginThrottle {
    /// Sign-ups per client address per hour before 429: generous for an office behind one NAT, hostile to scripts.
    static let signupLimit = 30

    func checkSignup(ip: String, now: Date) async throws {
        let count = await limiter.hit("signup:ip:" + ip, window: .seconds(3600), now: now)
        if count > Self.signupLimit {
            throw HeraldError.tooManyRequests(retryAfter: 3600, detail: "Too many accounts were created from this address. Try again later.")
        }
    }
}
