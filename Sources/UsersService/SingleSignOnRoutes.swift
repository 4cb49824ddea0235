import Foundation
import HeraldCore
import HeraldHTTP
import HeraldOIDC
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct SSOConnectionRequest: Decodable {
    var issuer: String?
    var clientId: String?
    var clientSecret: String?
    var defaultRole: String?
    var enabled: Bool?
    var acceptSessionTokens: Bool?
    var sessionTokenAudience: String?
    var authorizedParties: [String]?
}

struct SSOConnectionBody: ResponseEncodable {
    var issuer: String
    var clientId: String
    var clientSecretSet: Bool
    var defaultRole: Role
    var enabled: Bool
    var acceptSessionTokens: Bool
    var sessionTokenAudience: String?
    var authorizedParties: [String]
    /// What to register at the provider as the redirect URI.
    var redirectUri: String
    /// Where members start a sign-in.
    var signInUrl: String
    var linkedIdentities: Int
    var createdAt: Date
    var updatedAt: Date
}

struct SSOExchangeRequest: Decodable {
    var code: String?
}

/// What a sign-in remembers between the redirect to the provider and its answer.
struct SSOSignInState: Codable {
    var verifier: String
    var nonce: String
    var returnTo: String?
}

extension UsersService {
    /// How long a sign-in may take at the provider.
    static let ssoSignInLifetime: TimeInterval = 600
    /// How long the hand-off code a browser trades for tokens is good for.
    static let ssoHandoffLifetime: TimeInterval = 60
    static let ssoStateCookie = "herald_sso_state"

    func addSingleSignOnRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.get("organizations/:orgId/sso", use: getSSOConnection)
        router.put("organizations/:orgId/sso", use: putSSOConnection)
        router.delete("organizations/:orgId/sso", use: deleteSSOConnection)
        router.get("auth/sso/:orgId/login", use: startSSOSignIn)
        router.get("auth/sso/callback", use: finishSSOSignIn)
        router.post("auth/sso/exchange", use: exchangeSSOCode)
    }

    var ssoRedirectURI: String { publicBaseURL + "/auth/sso/callback" }

    // MARK: Connection

    @Sendable func getSSOConnection(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SSOConnectionBody> {
        let grant = try await access.organization(from: context, .organizationUpdate)
        let (connection, identities) = try await database.transaction(grant.scope) { tx in
            (try await sso.connection(of: grant.organizationId, in: tx), try await sso.identityCount(of: grant.organizationId, in: tx))
        }
        guard let connection else { throw HeraldError.notFound("Single sign-on for this organization (it is not configured)") }
        return JSONResponse(ssoBody(connection, identities: identities))
    }

    @Sendable func putSSOConnection(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SSOConnectionBody> {
        let grant = try await access.organization(from: context, .organizationUpdate)
        let body = try await BodyReader(request: request, context: context).decode(as: SSOConnectionRequest.self)
        var validator = Validator()
        let issuer = validator.requireText(body.issuer, field: "issuer", maxLength: 500)
        let clientId = validator.requireText(body.clientId, field: "clientId", maxLength: 300)
        let clientSecret = validator.optionalText(body.clientSecret, field: "clientSecret", maxLength: 1000)
        var role = Role.member
        if let text = body.defaultRole {
            if let parsed = Role(rawValue: text), parsed != .owner {
                role = parsed
            } else {
                validator.add("defaultRole", "must be one of viewer, member or admin")
            }
        }
        if !issuer.isEmpty, URL(string: issuer)?.host == nil {
            validator.add("issuer", "must be the provider's issuer URL, such as https://id.example.com")
        }
        let audience = validator.optionalText(body.sessionTokenAudience, field: "sessionTokenAudience", maxLength: 300)
        let parties = body.authorizedParties ?? []
        if parties.count > 20 { validator.add("authorizedParties", "must list at most 20 origins") }
        for (index, party) in parties.enumerated() where party.isEmpty || party.utf8.count > 300 {
            validator.add("authorizedParties[\(index)]", "must be an origin of 1 to 300 characters")
        }
        try validator.check()
        let enabled = body.enabled ?? true
        if enabled {
            // Check the provider now, so a mistyped issuer is reported here rather than to the first member.
            do {
                _ = try await oidc.metadata(issuer: issuer, refresh: true)
            } catch {
                throw HeraldError.validation(field: "issuer", "could not be used: \(error)")
            }
        }
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        let (connection, identities) = try await write(grant.scope) { tx in
            let existing = try await sso.connection(of: grant.organizationId, in: tx)
            let connection = SSOConnection(
                organizationId: grant.organizationId, issuer: issuer, clientId: clientId,
                clientSecret: clientSecret ?? (existing?.issuer == issuer ? existing?.clientSecret : nil), defaultRole: role, enabled: enabled,
                acceptSessionTokens: body.acceptSessionTokens ?? false, sessionTokenAudience: audience, authorizedParties: parties,
                createdAt: existing?.createdAt ?? now, updatedAt: now)
            try await sso.save(connection, in: tx)
            try await audit.append(
                AuditEntry(
                    action: existing == nil ? "sso.connection_created" : "sso.connection_updated", organizationId: grant.organizationId,
                    actorUserId: grant.userId, targetType: "sso_connection", targetId: grant.organizationId.lowercased,
                    details: [
                        "issuer": issuer, "enabled": String(enabled), "acceptSessionTokens": String(connection.acceptSessionTokens),
                        "defaultRole": role.rawValue,
                    ],
                    meta: meta),
                now: now,
                in: tx
            )
            return (connection, try await sso.identityCount(of: grant.organizationId, in: tx))
        }
        return JSONResponse(ssoBody(connection, identities: identities))
    }

    @Sendable func deleteSSOConnection(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.organization(from: context, .organizationUpdate)
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        let removed = try await write(grant.scope) { tx in
            guard try await sso.delete(of: grant.organizationId, in: tx) else { return false }
            try await audit.append(
                AuditEntry(
                    action: "sso.connection_removed", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "sso_connection", targetId: grant.organizationId.lowercased, meta: meta),
                now: now,
                in: tx
            )
            return true
        }
        guard removed else { throw HeraldError.notFound("Single sign-on for this organization (it is not configured)") }
        return Response(status: .noContent)
    }

    func ssoBody(_ connection: SSOConnection, identities: Int) -> SSOConnectionBody {
        SSOConnectionBody(
            issuer: connection.issuer, clientId: connection.clientId, clientSecretSet: connection.clientSecret != nil,
            defaultRole: connection.defaultRole, enabled: connection.enabled, acceptSessionTokens: connection.acceptSessionTokens,
            sessionTokenAudience: connection.sessionTokenAudience, authorizedParties: connection.authorizedParties,
            redirectUri: ssoRedirectURI, signInUrl: publicBaseURL + "/auth/sso/\(connection.organizationId.lowercased)/login",
            linkedIdentities: identities, createdAt: connection.createdAt, updatedAt: connection.updatedAt)
    }

    // MARK: Sign-in

    /// Sends the browser to the organization's provider: authorization code flow with PKCE (S256), a state bound
    /// to this browser by a cookie, and a nonce the ID token must repeat.
    @Sendable func startSSOSignIn(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let organizationId = try context.uuidParameter("orgId", resource: "Single sign-on for this organization")
        let returnTo = request.uri.queryParameters.get("returnTo")
        if let returnTo, !Self.isSafeReturnPath(returnTo) {
            throw HeraldError.validation(field: "returnTo", "must be a path on this site, such as /app (at most 500 characters)")
        }
        let connection = try await database.transaction(.organization(organizationId)) { try await sso.connection(of: organizationId, in: $0) }
        guard let connection, connection.enabled else {
            throw HeraldError.notFound("Single sign-on for this organization (it is not configured or turned off)")
        }
        let metadata: OIDCProviderMetadata
        do {
            metadata = try await oidc.metadata(issuer: connection.issuer)
        } catch {
            throw HeraldError(status: 502, slug: "sso-provider-unavailable", title: "Bad Gateway", detail: "Single sign-on is unavailable: \(error).")
        }
        let state = SecretToken.random(bytes: 32)
        let nonce = SecretToken.random(bytes: 32)
        let pkce = PKCE()
        let now = Date()
        let payload = String(
            decoding: try JSONEncoder().encode(SSOSignInState(verifier: pkce.verifier, nonce: nonce, returnTo: returnTo)), as: UTF8.self)
        try await write(.system) { tx in
            try await sso.sweep(now: now, in: tx)
            try await sso.put(
                .signIn, secret: state, organizationId: organizationId, payload: payload, expiresAt: now.addingTimeInterval(Self.ssoSignInLifetime),
                in: tx)
        }
        guard var components = URLComponents(string: metadata.authorizationEndpoint) else {
            throw HeraldError(
                status: 502, slug: "sso-provider-unavailable", title: "Bad Gateway", detail: "The provider's authorization endpoint is not a URL.")
        }
        components.queryItems =
            (components.queryItems ?? []) + [
                URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: connection.clientId),
                URLQueryItem(name: "redirect_uri", value: ssoRedirectURI), URLQueryItem(name: "scope", value: "openid email profile"),
                URLQueryItem(name: "state", value: state), URLQueryItem(name: "nonce", value: nonce),
                URLQueryItem(name: "code_challenge", value: pkce.challenge), URLQueryItem(name: "code_challenge_method", value: "S256"),
            ]
        let location = components.url?.absoluteString ?? metadata.authorizationEndpoint
        var headers = tokenHeaders
        headers[.location] = location
        headers[.setCookie] = stateCookie(state, maxAge: Int(Self.ssoSignInLifetime))
        return Response(status: .found, headers: headers)
    }

    /// The provider's answer: checks the state against this browser's cookie, trades the code for the ID token,
    /// verifies it, and signs the member in. With `returnTo`, the browser is sent there with a one-minute code to
    /// trade for tokens (`POST /auth/sso/exchange`), so tokens never appear in a URL; without it, the tokens are the
    /// answer.
    @Sendable func finishSSOSignIn(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let meta = RequestMeta(request: request, context: context)
        let now = Date()
        guard let state = query.get("state"), !state.isEmpty, state.utf8.count <= 200 else {
            throw HeraldError.validation(field: "state", "is required: start the sign-in at /auth/sso/{organizationId}/login")
        }
        guard let cookie = request.cookies[Self.ssoStateCookie]?.value,
            SecretToken.constantTimeEquals(SecretToken.hash(cookie), SecretToken.hash(state))
        else {
            throw HeraldError(
                status: 401, slug: "sso-state-mismatch", title: "Unauthorized",
                detail: "This sign-in was not started in this browser, or it expired. Start again from your organization's sign-in link.")
        }
        guard let pending = try await write(.system, { try await sso.take(.signIn, secret: state, now: now, in: $0) }),
            let saved = try? JSONDecoder().decode(SSOSignInState.self, from: Data(pending.payload.utf8))
        else {
            throw HeraldError(
                status: 401, slug: "sso-state-mismatch", title: "Unauthorized",
                detail: "This sign-in has expired or was already used. Start again from your organization's sign-in link.")
        }
        let organizationId = pending.organizationId
        if let error = query.get("error") {
            let description = query.get("error_description").map { ": " + String($0.prefix(200)) } ?? ""
            try await recordSSOFailure(organizationId, reason: "provider: \(error.prefix(100))", meta: meta, now: now)
            throw HeraldError(
                status: 401, slug: "sso-refused", title: "Unauthorized",
                detail: "The identity provider did not sign you in (\(error.prefix(100))\(description)).")
        }
        guard let code = query.get("code"), !code.isEmpty, code.utf8.count <= 2000 else {
            throw HeraldError.validation(field: "code", "is required: the provider's answer carries it")
        }
        let connection = try await database.transaction(.organization(organizationId)) { try await sso.connection(of: organizationId, in: $0) }
        guard let connection, connection.enabled else {
            throw HeraldError.notFound("Single sign-on for this organization (it is not configured or turned off)")
        }
        let claims: VerifiedClaims
        do {
            let metadata = try await oidc.metadata(issuer: connection.issuer)
            let idToken = try await oidc.exchange(
                code: code, verifier: saved.verifier, redirectURI: ssoRedirectURI, clientId: connection.clientId,
                clientSecret: connection.clientSecret, metadata: metadata)
            claims = try await oidc.verify(
                idToken, jwksURI: metadata.jwksURI,
                expecting: TokenExpectations(issuer: connection.issuer, audience: connection.clientId, nonce: saved.nonce), now: now)
        } catch {
            try await recordSSOFailure(organizationId, reason: "\(error)", meta: meta, now: now)
            throw HeraldError(
                status: 401, slug: "sso-failed", title: "Unauthorized", detail: "Sign-in through \(connection.issuer) failed: \(error).")
        }
        let userId: UUID
        do {
            userId = try await write(.organization(organizationId)) { tx in
                try await linker.user(for: claims, connection: connection, meta: meta, now: now, in: tx)
            }
        } catch let error as HeraldError {
            try await recordSSOFailure(organizationId, reason: error.slug, meta: meta, now: now)
            throw error
        }
        var headers = tokenHeaders
        headers[.setCookie] = stateCookie("", maxAge: 0)
        guard let returnTo = saved.returnTo else {
            let tokens = try await startSSOSession(userId: userId, organizationId: organizationId, issuer: connection.issuer, meta: meta, now: now)
            return try JSONResponse(tokens, headers: headers).response(from: request, context: context)
        }
        let handoff = SecretToken.make(prefix: "sso_")
        try await write(.system) { tx in
            try await sso.put(
                .handoff, secret: handoff, organizationId: organizationId, payload: "\(userId.lowercased) \(connection.issuer)",
                expiresAt: now.addingTimeInterval(Self.ssoHandoffLifetime), in: tx)
        }
        headers[.location] = returnTo + (returnTo.contains("?") ? "&" : "?") + "ssoCode=" + handoff
        return Response(status: .seeOther, headers: headers)
    }

    /// Trades the hand-off code of a finished sign-in for tokens, once.
    @Sendable func exchangeSSOCode(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TokensBody> {
        let body = try await BodyReader(request: request, context: context).decode(as: SSOExchangeRequest.self)
        var validator = Validator()
        let code = validator.requireText(body.code, field: "code", maxLength: 200)
        try validator.check()
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        guard let handoff = try await write(.system, { try await sso.take(.handoff, secret: code, now: now, in: $0) }) else {
            throw HeraldError.unauthorized("The sign-in code is not valid: codes work once, for a minute. Sign in again.")
        }
        let parts = handoff.payload.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let userId = UUID(text: String(parts[0])) else {
            throw HeraldError.unauthorized("The sign-in code is not valid. Sign in again.")
        }
        let tokens = try await startSSOSession(
            userId: userId, organizationId: handoff.organizationId, issuer: String(parts[1]), meta: meta, now: now)
        return JSONResponse(tokens, headers: tokenHeaders)
    }

    /// A session limited to the organization whose provider signed the member in.
    func startSSOSession(userId: UUID, organizationId: UUID, issuer: String, meta: RequestMeta, now: Date) async throws -> TokensBody {
        let (session, refreshToken, account) = try await write(.organization(organizationId, user: userId)) { tx in
            guard try await organizations.role(of: userId, in: organizationId, tx: tx) != nil,
                let account = try await accounts.find(id: userId, in: tx)
            else {
                throw HeraldError.forbidden("Your account is no longer a member of this organization.")
            }
            let (session, refreshToken) = try await sessions.create(userId: userId, meta: meta, now: now, limitedTo: organizationId, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "auth.sso.succeeded", organizationId: organizationId, subjectUserId: userId, actorUserId: userId,
                    targetType: "session", targetId: session.id.lowercased, details: ["issuer": issuer], meta: meta),
                now: now,
                in: tx
            )
            return (session, refreshToken, account)
        }
        let (accessToken, expiresIn) = try await tokens.issue(userId: userId, sessionId: session.id, organizationId: organizationId, now: now)
        return TokensBody(accessToken: accessToken, refreshToken: refreshToken, expiresIn: expiresIn, user: UserBody(account))
    }

    func recordSSOFailure(_ organizationId: UUID, reason: String, meta: RequestMeta, now: Date) async throws {
        try await write(.organization(organizationId)) { tx in
            try await audit.append(
                AuditEntry(action: "auth.sso.failed", organizationId: organizationId, details: ["reason": String(reason.prefix(300))], meta: meta),
                now: now,
                in: tx
            )
        }
    }

    /// The browser-binding cookie of a sign-in: HttpOnly, sent back only to the callback path, on the provider's
    /// top-level redirect (SameSite=Lax), and Secure when Herald is served over https.
    func stateCookie(_ value: String, maxAge: Int) -> String {
        BrowserSessionCookie.httpOnlyCookie(
            Self.ssoStateCookie, value, path: "/auth/sso", maxAge: maxAge, sameSite: "Lax", secure: cookiesAreSecure)
    }

    /// A path on Herald's own origin: no scheme, no host, no `//` or `/\` a browser would read as another host.
    static func isSafeReturnPath(_ path: String) -> Bool {
        guard path.hasPrefix("/"), path.utf8.count <= 500 else { return false }
        let second = path.dropFirst().first
        guard second != "/" && second != "\\" else { return false }
        // Printable ASCII only: anything else must be percent-encoded, so nothing invisible reaches the Location.
        return path.unicodeScalars.allSatisfy { $0.value >= 0x21 && $0.value <= 0x7E && $0 != "\\" }
    }
}
