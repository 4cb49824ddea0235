import AsyncHTTPClient
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1

/// A Google service account allowed to send with Firebase Cloud Messaging: the JSON file the Firebase console
/// downloads (`HERALD_FCM_SERVICE_ACCOUNT_FILE` or `_JSON`). Only its project, client e-mail, private key and token
/// URI are used; the private key never leaves the process.
public struct FCMServiceAccount: Sendable {
    public let projectId: String
    public let clientEmail: String
    /// Where the signed assertion is exchanged for an access token (`https://oauth2.googleapis.com/token`).
    public let tokenURI: String
    let privateKey: Insecure.RSA.PrivateKey

    public init(json: [UInt8]) throws {
        struct File: Decodable {
            var type: String?
            var project_id: String?
            var client_email: String?
            var private_key: String?
            var token_uri: String?
        }
        guard let file = try? JSONDecoder().decode(File.self, from: Data(json)) else {
            throw FCMError.invalidServiceAccount("not a JSON object (expected the service account file from the Firebase console)")
        }
        if let type = file.type, type != "service_account" {
            throw FCMError.invalidServiceAccount("its type is \"\(type)\", not \"service_account\"")
        }
        guard let projectId = file.project_id, !projectId.isEmpty,
            projectId.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "." || $0 == ":" })
        else {
            throw FCMError.invalidServiceAccount("project_id is missing or not a project id")
        }
        guard let clientEmail = file.client_email, clientEmail.contains("@") else {
            throw FCMError.invalidServiceAccount("client_email is missing")
        }
        let tokenURI = file.token_uri ?? "https://oauth2.googleapis.com/token"
        guard let url = URL(string: tokenURI), ["https", "http"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false else {
            throw FCMError.invalidServiceAccount("token_uri is not an http(s) URL")
        }
        guard let pem = file.private_key else { throw FCMError.invalidServiceAccount("private_key is missing") }
        do {
            privateKey = try Insecure.RSA.PrivateKey(pem: pem)
        } catch {
            throw FCMError.invalidServiceAccount("private_key is not an RSA private key in PEM of at least 2048 bits")
        }
        self.projectId = projectId
        self.clientEmail = clientEmail
        self.tokenURI = tokenURI
    }

    /// The scope an access token needs to send messages.
    public static let scope = "https://www.googleapis.com/auth/firebase.messaging"

    /// The JWT assertion (RFC 7523) exchanged for an access token: RS256, issued by the service account for
    /// the messaging scope, addressed to the token URI, valid for an hour (Google's maximum).
    public func assertion(now: Date = Date()) async throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        let claims = AssertionClaims(iss: clientEmail, scope: Self.scope, aud: tokenURI, iat: issued, exp: issued + 3600)
        let keys = JWTKeyCollection()
        await keys.add(rsa: privateKey, digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    struct AssertionClaims: JWTPayload {
        var iss: String
        var scope: String
        var aud: String
        var iat: Int
        var exp: Int

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}

public enum FCMError: Error, Equatable, CustomStringConvertible {
    case invalidServiceAccount(String)
    /// The token URI refused the assertion or did not answer; `retryable` when asking again later may help.
    case token(String, retryable: Bool)

    public var description: String {
        switch self {
        case .invalidServiceAccount(let reason): "invalid FCM service account: \(reason)"
        case .token(let reason, _): "no FCM access token: \(reason)"
        }
    }
}

/// Access tokens for the service account, kept until a minute before they expire and shared by every send.
public actor FCMAccessTokens {
    let account: FCMServiceAccount
    let http: HTTPClient
    let timeout: TimeAmount
    private var cached: (token: String, expires: Date)?
    private var pending: Task<(token: String, expires: Date), any Error>?

    public init(account: FCMServiceAccount, http: HTTPClient, timeout: TimeAmount = .seconds(10)) {
        self.account = account
        self.http = http
        self.timeout = timeout
    }

    /// A current access token; one exchange at a time however many sends ask.
    public func token(now: Date = Date()) async throws -> String {
        if let cached, cached.expires > now.addingTimeInterval(60) { return cached.token }
        if let pending { return try await pending.value.token }
        let task = Task { [account, http, timeout] in try await Self.exchange(account: account, http: http, timeout: timeout, now: now) }
        pending = task
        defer { pending = nil }
        let fresh = try await task.value
        cached = fresh
        return fresh.token
    }

    /// Forgets a token FCM refused (401), so the next ``token(now:)`` asks for a new one.
    public func invalidate(_ token: String) {
        if cached?.token == token { cached = nil }
    }

    static func exchange(
        account: FCMServiceAccount, http: HTTPClient, timeout: TimeAmount, now: Date
    ) async throws -> (
        token: String, expires: Date
    ) {
        let assertion = try await account.assertion(now: now)
        var request = HTTPClientRequest(url: account.tokenURI)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(string: "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"))
        let status: Int
        let body: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            body = try await response.body.collect(upTo: 65_536)
        } catch {
            throw FCMError.token("the token URI \(account.tokenURI) did not answer: \(error)", retryable: true)
        }
        return try parseToken(status: status, body: Array(buffer: body), now: now, tokenURI: account.tokenURI)
    }

    /// `{"access_token": "…", "expires_in": 3599, "token_type": "Bearer"}`, or OAuth's `{"error", "error_description"}`.
    static func parseToken(status: Int, body: [UInt8], now: Date, tokenURI: String) throws -> (token: String, expires: Date) {
        struct Answer: Decodable {
            var access_token: String?
            var expires_in: Double?
            var token_type: String?
            var error: String?
            var error_description: String?
        }
        let answer = try? JSONDecoder().decode(Answer.self, from: Data(body))
        guard (200..<300).contains(status) else {
            let reason = [answer?.error, answer?.error_description].compactMap { $0 }.joined(separator: ": ")
            throw FCMError.token(
                "the token URI answered \(status)\(reason.isEmpty ? "" : " (\(reason.prefix(200)))")", retryable: status == 429 || status >= 500)
        }
        guard let token = answer?.access_token, !token.isEmpty, answer?.token_type.map({ $0.lowercased() == "bearer" }) ?? true else {
            throw FCMError.token("the token URI's answer has no bearer access_token", retryable: true)
        }
        let lifetime = min(max(answer?.expires_in ?? 3600, 0), 3600)
        return (token, now.addingTimeInterval(lifetime))
    }
}

/// One message for one registration token, shown by the browser or app that registered it.
public struct FCMMessage: Sendable, Equatable {
    public var title: String
    public var body: String
    /// Opened on click; FCM takes only https links here (`webpush.fcm_options.link`).
    public var link: String?
    /// A newer message with the same tag replaces an unread older one.
    public var tag: String
    /// Seconds FCM keeps it for a device that is offline.
    public var ttl: Int

    public init(title: String, body: String, link: String?, tag: String, ttl: Int) {
        self.title = title
        self.body = body
        self.link = link
        self.tag = tag
        self.ttl = ttl
    }

    /// The HTTP v1 request body: `{"message": {"token", "notification", "data", "webpush", "android"}}`.
    public func requestBody(token: String) -> [UInt8] {
        struct Body: Encodable {
            struct Message: Encodable {
                var token: String
                var notification: Notification
                var data: [String: String]
                var webpush: WebPush
                var android: Android
            }
            struct Notification: Encodable {
                var title: String
                var body: String
            }
            struct WebPush: Encodable {
                var headers: [String: String]
                var notification: WebNotification
                var fcm_options: Options?
            }
            struct WebNotification: Encodable {
                var title: String
                var body: String
                var tag: String
            }
            struct Options: Encodable {
                var link: String
            }
            struct Android: Encodable {
                var ttl: String
                var collapse_key: String
            }
            var message: Message
        }
        let https = link.flatMap(URL.init(string:))?.scheme?.lowercased() == "https" ? link : nil
        var data = ["title": title, "body": body, "tag": tag]
        if let link { data["url"] = link }
        let message = Body.Message(
            token: token, notification: .init(title: title, body: body), data: data,
            webpush: .init(
                headers: ["TTL": String(ttl), "Urgency": "normal"], notification: .init(title: title, body: body, tag: tag),
                fcm_options: https.map { .init(link: $0) }
            ),
            android: .init(ttl: "\(ttl)s", collapse_key: tag)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(Body(message: message))) ?? Data())
    }
}

/// Sends through Firebase Cloud Messaging's HTTP v1 API (`POST /v1/projects/{project}/messages:send`) with an
/// OAuth access token from the service account. FCM's answers map onto the same outcomes as web push's:
/// UNREGISTERED (404), a registration token FCM calls invalid (400) or another sender's token (403) end the
/// subscription; 429 and 5xx are retried, after `Retry-After` when FCM sends one; a 401 gets one fresh token.
public struct FCMSender: Sendable {
    public let account: FCMServiceAccount
    public let tokens: FCMAccessTokens
    let baseURL: String
    let http: HTTPClient
    let timeout: TimeAmount
    /// A `Retry-After` this short is waited for within the attempt rather than left to the retry schedule.
    let shortWait: TimeInterval

    /// `baseURL`: `https://fcm.googleapis.com` (`HERALD_FCM_BASE_URL` points tests at a local stand-in).
    public init(
        account: FCMServiceAccount, baseURL: String = "https://fcm.googleapis.com", http: HTTPClient = .shared, timeout: TimeAmount = .seconds(10),
        shortWait: TimeInterval = 5
    ) {
        self.account = account
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
        self.timeout = timeout
        self.shortWait = shortWait
        self.tokens = FCMAccessTokens(account: account, http: http, timeout: timeout)
    }

    var sendURL: String { "\(baseURL)/v1/projects/\(account.projectId)/messages:send" }

    public func send(_ message: FCMMessage, to registrationToken: String) async -> FCMOutcome {
        var refreshed = false
        var waited = false
        while true {
            let accessToken: String
            do {
                accessToken = try await tokens.token()
            } catch let error as FCMError {
                // A refused assertion is the operator's to fix (the account was deleted or its key revoked): try later.
                if case .token(_, retryable: false) = error { return .retry(reason: error.description, after: 300) }
                return .retry(reason: error.description, after: nil)
            } catch {
                return .retry(reason: "no FCM access token: \(error)", after: nil)
            }
            var request = HTTPClientRequest(url: sendURL)
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(accessToken)")
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(bytes: message.requestBody(token: registrationToken)))
            let status: Int
            let outcome: FCMOutcome
            do {
                let response = try await http.execute(request, timeout: timeout)
                let body = Array(buffer: try await response.body.collect(upTo: 65_536))
                status = Int(response.status.code)
                outcome = Self.outcome(status: status, body: body, retryAfter: response.headers.first(name: "Retry-After"))
            } catch {
                return .retry(reason: "FCM did not answer: \(error)", after: nil)
            }
            // 401 THIRD_PARTY_AUTH_ERROR is about the project's APNs certificate or web push key, not Herald's token.
            if status == 401, case .refused(let reason) = outcome, !reason.contains("THIRD_PARTY_AUTH_ERROR") {
                // The access token was revoked or expired early: one fresh token, then leave it to the retry schedule.
                guard !refreshed else { return .retry(reason: reason, after: nil) }
                refreshed = true
                await tokens.invalidate(accessToken)
                continue
            }
            if case .retry(_, let after?) = outcome, after <= shortWait, !waited {
                waited = true
                try? await Task.sleep(for: .seconds(after))
                continue
            }
            return outcome
        }
    }

    /// FCM's answer as an outcome: `{"name": "projects/…/messages/…"}` on success, else Google's error
    /// `{"error": {"code", "status", "message", "details": [{"@type": "…FcmError", "errorCode"}, {"fieldViolations"}]}}`.
    public static func outcome(status: Int, body: [UInt8], retryAfter: String?, now: Date = Date()) -> FCMOutcome {
        struct Answer: Decodable {
            struct Failure: Decodable {
                var status: String?
                var message: String?
                var details: [Detail]?
            }
            struct Detail: Decodable {
                var errorCode: String?
                var fieldViolations: [Violation]?
            }
            struct Violation: Decodable {
                var field: String?
            }
            var name: String?
            var error: Failure?
        }
        let answer = try? JSONDecoder().decode(Answer.self, from: Data(body))
        if (200..<300).contains(status) { return .accepted(name: answer?.name) }
        let failure = answer?.error
        let code = failure?.details?.compactMap(\.errorCode).first ?? failure?.status ?? ""
        let message = failure?.message.map { String($0.prefix(200)) } ?? ""
        let reason = "FCM answered \(status)" + (code.isEmpty ? "" : " \(code)") + (message.isEmpty ? "" : ": \(message)")
        let aboutToken =
            failure?.details?.contains { $0.fieldViolations?.contains { $0.field == "message.token" } ?? false } ?? false
            || message.lowercased().contains("registration token")
        switch (status, code) {
        case (_, "UNREGISTERED"), (404, _), (_, "SENDER_ID_MISMATCH"): return .ended(reason: reason)
        case (400, "INVALID_ARGUMENT") where aboutToken: return .ended(reason: reason)
        case (429, _), (500..<600, _), (_, "QUOTA_EXCEEDED"), (_, "UNAVAILABLE"), (_, "INTERNAL"):
            return .retry(reason: reason, after: retryAfter.flatMap { PushRetryAfter.seconds($0, now: now) })
        default: return .refused(reason: reason)
        }
    }
}

/// What FCM answered.
public enum FCMOutcome: Sendable, Equatable {
    /// Accepted; `name` is FCM's message id (`projects/…/messages/…`).
    case accepted(name: String?)
    /// The registration token is no longer valid (UNREGISTERED, an invalid token, another sender's token): end it.
    case ended(reason: String)
    /// Worth trying again later (429, 5xx, no answer); `after`: FCM's `Retry-After`.
    case retry(reason: String, after: TimeInterval?)
    /// Refused for good: the request itself is wrong.
    case refused(reason: String)
}

/// HTTP `Retry-After`: delay seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
enum PushRetryAfter {
    static func seconds(_ value: String, now: Date = Date()) -> TimeInterval? {
        let value = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(value), seconds >= 0 { return TimeInterval(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSince(now)) }
    }
}
