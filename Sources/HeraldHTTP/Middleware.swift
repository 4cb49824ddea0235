import Foundation
import HTTPTypes
import HeraldCore
import HeraldSecurity
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat

extension HTTPField.Name {
    /// A header name known at compile time to be a valid token.
    public static func known(_ name: StaticString) -> HTTPField.Name {
        guard let field = HTTPField.Name("\(name)") else { preconditionFailure("invalid header name \(name)") }
        return field
    }

    public static let requestId = known("X-Request-Id")
    public static let idempotencyKey = known("Idempotency-Key")
    public static let csrfToken = known("X-CSRF-Token")
    public static let xForwardedFor = known("X-Forwarded-For")
    public static let xFrameOptions = known("X-Frame-Options")
    public static let referrerPolicy = known("Referrer-Policy")
    public static let pragma = known("Pragma")
}

/// Gives every request an id (the client's `X-Request-Id` when well-formed), puts it in the logger's metadata
/// and echoes it on the response; resolves the client address behind trusted proxies.
public struct RequestIdMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext
    let trustedProxies: [CIDR]

    public init(trustedProxies: [CIDR]) {
        self.trustedProxies = trustedProxies
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let supplied = request.headers[.requestId]
        if let supplied, Self.isWellFormed(supplied) {
            context.requestId = supplied
        } else {
            // Hummingbird already gives every request a random id (logged as hb.request.id): reuse it.
            context.requestId = context.id
        }
        // Every log line of the request carries its id under one key, beside trace_id and span_id when traced.
        context.logger[metadataKey: "request_id"] = .string(context.requestId)
        if !trustedProxies.isEmpty {
            context.clientIP = ClientAddress.resolve(
                peer: context.remoteAddress?.ipAddress,
                forwardedFor: request.headers[.xForwardedFor],
                trusted: trustedProxies
            )
        }
        var response = try await next(request, context)
        response.headers[.requestId] = context.requestId
        return response
    }

    static func isWellFormed(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128
            && id.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x3A
            }
    }
}

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
public enum ClientAddress {
    public static func resolve(peer: String?, forwardedFor: String?, trusted: [CIDR]) -> String {
        guard let peer else { return "" }
        guard let forwardedFor, !trusted.isEmpty, let peerIP = IPAddress(peer), trusted.contains(where: { $0.contains(peerIP) }) else {
            return peer
        }
        for hop in forwardedFor.split(separator: ",").reversed() {
            let candidate = hop.trimmingCharacters(in: .whitespaces)
            guard let ip = IPAddress(candidate) else { return peer }
            if !trusted.contains(where: { $0.contains(ip) }) { return ip.description }
        }
        return peer
    }
}

/// One log line per request: method, path, status, duration, request id.
public struct AccessLogMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        Self.log(
            context.logger, method: request.method.rawValue, path: request.uri.path, status: response.status.code, since: start,
            client: context.clientIP)
        return response
    }

    /// The line, also written by ``FastPathHandler`` for the requests it answers.
    static func log(_ logger: Logger, method: String, path: String, status: Int, since start: ContinuousClock.Instant, client: String) {
        let elapsed = ContinuousClock.now - start
        let millis = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        logger.info(
            "request",
            metadata: [
                "method": .string(method),
                "path": .string(path),
                "status": .stringConvertible(status),
                "duration_ms": .string(String(format: "%.2f", millis)),
                "client": .string(client),
            ]
        )
    }
}

/// Security headers on every response. API responses may not be framed, sniffed or cached by default;
/// routes that are meant to be cached or embedded (the widget) set their own values, which are kept.
public struct SecurityHeadersMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        Self.addDefaults(to: &response.headers)
        return response
    }

    /// The headers a response gets unless it set its own.
    public static func addDefaults(to headers: inout HTTPFields) {
        func setIfAbsent(_ name: HTTPField.Name, _ value: String) {
            if headers[name] == nil { headers[name] = value }
        }
        setIfAbsent(.xContentTypeOptions, "nosniff")
        setIfAbsent(.contentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
        setIfAbsent(.xFrameOptions, "DENY")
        setIfAbsent(.referrerPolicy, "no-referrer")
        setIfAbsent(.crossOriginResourcePolicy, "same-origin")
        setIfAbsent(.cacheControl, "no-store")
    }
}

/// Turns every error into an RFC 9457 problem document. Errors Herald did not anticipate become a 500 that says
/// nothing about internals and are logged with the request id so an operator can find them.
extension HeraldError {
    /// What any failure that is not a ``HeraldError`` is answered with: the details stay in the log.
    public static let internalError = HeraldError(
        status: 500, slug: "internal-error", title: "Internal server error",
        detail: "Something went wrong on our side. Quote the request id if you report it."
    )
}

public struct ProblemMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext
    let routes: RouteTable?

    public init(routes: RouteTable? = nil) {
        self.routes = routes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var problem = Self.heraldError(for: error, request: request)
            // The router's own 404: if the path exists with other methods, say so.
            if let error = error as? HTTPError, error.status == .notFound,
                let allowed = routes?.allowedMethods(for: request.uri.path), !allowed.contains(request.method.rawValue)
            {
                problem = HeraldError(
                    status: 405,
                    slug: "method-not-allowed",
                    title: "Method not allowed",
                    detail: "\(request.uri.path) does not support \(request.method.rawValue); use \(allowed.joined(separator: ", ")).",
                    headers: [("Allow", allowed.joined(separator: ", "))]
                )
            }
            if problem.status >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return Self.response(for: problem, request: request, context: context)
        }
    }

    /// The problem an error becomes.
    public static func heraldError(for error: any Error, request: Request) -> HeraldError {
        switch error {
        case let error as HeraldError:
            return error
        case let error as HTTPError:
            return map(error, request: request)
        case let error as DecodingError:
            return JSONBody.problem(for: error)
        case let error as any HTTPResponseError:
            return HeraldError(
                status: Int(error.status.code), slug: "http-error", title: error.status.reasonPhrase, detail: error.status.reasonPhrase)
        default:
            return .internalError
        }
    }

    static func map(_ error: HTTPError, request: Request) -> HeraldError {
        switch error.status {
        case .notFound:
            return HeraldError(
                status: 404,
                slug: "not-found",
                title: "Not found",
                detail: "There is no \(request.method.rawValue) \(request.uri.path). See /openapi.json for the API."
            )
        case .contentTooLarge:
            return HeraldError(status: 413, slug: "payload-too-large", title: "Payload too large", detail: "The request body is too large.")
        default:
            let status = Int(error.status.code)
            return HeraldError(
                status: status,
                slug: status >= 500 ? "internal-error" : "http-error",
                title: error.status.reasonPhrase,
                detail: error.body ?? error.status.reasonPhrase
            )
        }
    }

    public static func response(for problem: HeraldError, request: Request, context: Context) -> Response {
        if SCIMErrorDocument.applies(to: request.uri.path) { return SCIMErrorDocument.response(for: problem) }
        let answer = answer(for: problem, instance: request.uri.path, requestId: context.requestId.isEmpty ? nil : context.requestId)
        return Response(status: answer.status, headers: answer.headers, body: ResponseBody(byteBuffer: answer.body ?? ByteBuffer()))
    }

    /// The problem document of `problem` and its headers, for the router and for ``FastPathHandler`` alike.
    public static func answer(for problem: HeraldError, instance: String, requestId: String?) -> FastAnswer {
        let document = ProblemDocument(problem, instance: instance, requestId: requestId)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(document)) ?? Data()
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        for (name, value) in problem.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        // RFC 9110 §15.5.2: every 401 names a scheme; Herald's credentials are bearer tokens.
        if problem.status == 401 && headers[.wwwAuthenticate] == nil {
            headers[.wwwAuthenticate] = "Bearer realm=\"herald\""
        }
        return FastAnswer(status: HTTPResponse.Status(code: problem.status), headers: headers, body: ByteBuffer(data: data))
    }
}

/// Reads `Authorization: Bearer …` and sets the principal: an access token of a live session, or a site's
/// secret key. Missing credentials leave the principal empty (routes decide); wrong ones are refused with 401.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = HeraldRequestContext
    let tokens: AccessTokenService
    let directory: any AccessDirectory

    public init(tokens: AccessTokenService, directory: any AccessDirectory) {
        self.tokens = tokens
        self.directory = directory
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            guard let secret = request.cookies[BrowserSessionCookie.name]?.value, secret.hasPrefix(BrowserSessionCookie.prefix) else {
                return try await next(request, context)
            }
            return try await next(request, try await authenticateBrowser(request, secret: secret, context: context))
        }
        var context = context
        do {
            (context.principal, context.sessionOrganization) = try await authenticate(header)
            if case .user(let userId, _) = context.principal { context.logger[metadataKey: "user_id"] = .string(userId.lowercased) }
        } catch let error as HeraldError {
            // Refused credentials matter only to routes that need a caller: a client with an expired token can
            // still sign in, refresh or read the health endpoints.
            context.authenticationFailure = error
        }
        return try await next(request, context)
    }

    /// The dashboard's cookie session. A state-changing request must also carry the CSRF token; without it the
    /// caller is unknown (a route that needs one answers 403 and says why), so a forged form post acts as nobody.
    func authenticateBrowser(_ request: Request, secret: String, context: Context) async throws -> Context {
        var context = context
        guard let session = try await directory.browserSession(secret: secret) else {
            context.authenticationFailure = HeraldError.unauthorized("The dashboard session has ended. Sign in again.")
            return context
        }
        let safe = request.method == .get || request.method == .head || request.method == .options
        guard safe || BrowserSessionCookie.csrfMatches(request.headers[.csrfToken], secret: secret) else {
            context.authenticationFailure = HeraldError(
                status: 403, slug: "csrf-token-missing", title: "Forbidden",
                detail: "A change made with the dashboard's session cookie must carry its CSRF token in the X-CSRF-Token header.")
            return context
        }
        context.principal = .user(userId: session.userId, sessionId: session.sessionId)
        context.sessionOrganization = session.organizationId
        context.logger[metadataKey: "user_id"] = .string(session.userId.lowercased)
        return context
    }

    /// The caller, and the organization its session is limited to, if any.
    func authenticate(_ header: String) async throws -> (Principal, UUID?) {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw HeraldError.unauthorized("Use 'Authorization: Bearer <token>'.")
        }
        let credential = parts[1].trimmingCharacters(in: .whitespaces)
        if credential.hasPrefix("sk_") {
            guard let site = try await directory.site(forSecretKey: credential) else {
                throw HeraldError.unauthorized("The secret key is not valid. Keys are shown once; rotate the site's keys to get a new one.")
            }
            return (.siteKey(siteId: site.siteId, organizationId: site.organizationId), nil)
        }
        let claims: AccessTokenClaims
        do {
            claims = try await tokens.verify(credential)
        } catch let error as AccessTokenError {
            // Not one of Herald's keys or algorithms: perhaps a session token of an organization's own provider.
            if error == .unknownKey || error.isForeignAlgorithm, let external = try await directory.externalSession(token: credential) {
                return (.user(userId: external.userId, sessionId: external.sessionId), external.organizationId)
            }
            throw HeraldError.unauthorized("The access token was refused: \(error). Sign in again or refresh the token.")
        }
        guard try await directory.isSessionActive(claims.sessionId, userId: claims.userId) else {
            throw HeraldError.unauthorized("The session has ended. Sign in again.")
        }
        return (.user(userId: claims.userId, sessionId: claims.sessionId), claims.organizationId)
    }
}

/// SCIM 2.0 clients (RFC 7644 §3.12) expect their own error shape under `/scim/`: the Error message schema, the
/// status as a string and a `scimType`. Handlers throw ``HeraldError``s whose slug is `scim-<scimType>` (or any
/// other slug, which carries no scimType); the few generic problems a SCIM client can cause are mapped.
public enum SCIMErrorDocument {
    public static let schema = "urn:ietf:params:scim:api:messages:2.0:Error"

    public static func applies(to path: String) -> Bool { path == "/scim" || path.hasPrefix("/scim/") }

    public static func response(for problem: HeraldError) -> Response {
        var status = problem.status
        var scimType: String?
        if problem.slug.hasPrefix("scim-") {
            scimType = String(problem.slug.dropFirst(5))
        } else if problem.slug == "malformed-json" || problem.slug == "unsupported-media-type" {
            status = 400
            scimType = "invalidSyntax"
        } else if status == 422 {
            status = 400
            scimType = "invalidValue"
        } else if status == 409 {
            // A conflict in SCIM is a value already in use (RFC 7644 §3.12).
            scimType = "uniqueness"
        }
        struct Body: Encodable {
            var schemas: [String]
            var status: String
            var scimType: String?
            var detail: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = Body(schemas: [schema], status: String(status), scimType: scimType, detail: problem.detail)
        let data = (try? encoder.encode(body)) ?? Data()
        var headers: HTTPFields = [.contentType: "application/scim+json"]
        for (name, value) in problem.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        if status == 401 && headers[.wwwAuthenticate] == nil {
            headers[.wwwAuthenticate] = "Bearer realm=\"herald-scim\""
        }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }
}
