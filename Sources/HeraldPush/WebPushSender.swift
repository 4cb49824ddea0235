import AsyncHTTPClient
import Crypto
import Foundation
import HeraldSecurity
import NIOCore
import NIOHTTP1

/// The application server's identity towards push services (VAPID, RFC 8292): a P-256 key whose public half the
/// browser was given when it subscribed, and a contact (`mailto:` or `https:`) the push service may use.
public struct VAPIDKey: Sendable {
    public let privateKey: P256.Signing.PrivateKey
    public let subject: String

    /// `privateKey`: the 32-byte P-256 private key in base64url (`HERALD_VAPID_PRIVATE_KEY`).
    public init(privateKey base64url: String, subject: String) throws {
        guard let bytes = Base64URL.decode(base64url.trimmingCharacters(in: .whitespaces)), bytes.count == 32,
            let key = try? P256.Signing.PrivateKey(rawRepresentation: bytes)
        else {
            throw WebPushError.invalidKey("expected a 32-byte P-256 private key in base64url (herald push-keys makes one)")
        }
        guard subject.hasPrefix("mailto:") || subject.hasPrefix("https://") else {
            throw WebPushError.invalidKey("the subject must be a mailto: or https: URL push services can reach you at")
        }
        self.privateKey = key
        self.subject = subject
    }

    public init(privateKey: P256.Signing.PrivateKey, subject: String) {
        self.privateKey = privateKey
        self.subject = subject
    }

    /// The public key browsers subscribe with (`applicationServerKey`): uncompressed, base64url.
    public var publicKey: String { Base64URL.encode(privateKey.publicKey.x963Representation) }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push endpoint: an ES256 JWT naming the endpoint's origin.
    public func authorization(endpoint: URL, now: Date = Date()) throws -> String {
        guard let scheme = endpoint.scheme, let host = endpoint.host else {
            throw WebPushError.invalidSubscription("the endpoint is not an absolute URL")
        }
        let origin = "\(scheme)://\(host)" + (endpoint.port.map { ":\($0)" } ?? "")
        let header = Base64URL.encode(Array(#"{"typ":"JWT","alg":"ES256"}"#.utf8))
        struct Claims: Encodable {
            let aud: String
            let exp: Int
            let sub: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // At most 24 hours ahead (RFC 8292 §2); twelve leaves room for clock differences.
        let claims = try encoder.encode(Claims(aud: origin, exp: Int(now.timeIntervalSince1970) + 12 * 3600, sub: subject))
        let input = header + "." + Base64URL.encode(claims)
        let signature = try privateKey.signature(for: Data(input.utf8))
        return "vapid t=\(input).\(Base64URL.encode(signature.rawRepresentation)), k=\(publicKey)"
    }
}

/// A browser's push subscription (`PushSubscription.toJSON()`).
public struct WebPushSubscription: Sendable, Equatable {
    public var endpoint: URL
    public var p256dh: [UInt8]
    public var auth: [UInt8]

    public init(endpoint: URL, p256dh: [UInt8], auth: [UInt8]) {
        self.endpoint = endpoint
        self.p256dh = p256dh
        self.auth = auth
    }
}

/// What a push service answered.
public enum WebPushOutcome: Sendable, Equatable {
    /// Accepted (201): the push service will deliver it when the browser is online, within the TTL.
    case accepted(location: String?)
    /// 404 or 410: the subscription ended (the visitor revoked permission or the browser dropped it). Delete it.
    case gone(status: Int)
    /// Worth trying again later: 429, 5xx, no answer.
    case retry(reason: String, after: TimeInterval?)
    /// Refused for good (another 4xx): the request itself is wrong.
    case refused(reason: String)
}

/// Sends encrypted pushes to any standard push service (RFC 8030) over AsyncHTTPClient.
public struct WebPushSender: Sendable {
    public let key: VAPIDKey
    let http: HTTPClient
    let timeout: TimeAmount

    public init(key: VAPIDKey, http: HTTPClient, timeout: TimeAmount = .seconds(10)) {
        self.key = key
        self.http = http
        self.timeout = timeout
    }

    /// Sends one message. `ttl`: seconds the push service keeps it for an offline browser; `topic` replaces an
    /// undelivered earlier message with the same topic.
    public func send(_ payload: [UInt8], to subscription: WebPushSubscription, ttl: Int = 3600, topic: String? = nil) async -> WebPushOutcome {
        do {
            let body = try WebPushEncryption.encrypt(payload, p256dh: subscription.p256dh, auth: subscription.auth)
            var request = HTTPClientRequest(url: subscription.endpoint.absoluteString)
            request.method = .POST
            request.headers.add(name: "Authorization", value: try key.authorization(endpoint: subscription.endpoint))
            request.headers.add(name: "Content-Encoding", value: "aes128gcm")
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            request.headers.add(name: "TTL", value: String(ttl))
            request.headers.add(name: "Urgency", value: "normal")
            if let topic { request.headers.add(name: "Topic", value: topic) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await http.execute(request, timeout: timeout)
            let text = String(buffer: try await response.body.collect(upTo: 16_384))
            let status = Int(response.status.code)
            switch status {
            case 200..<300: return .accepted(location: response.headers.first(name: "Location"))
            case 404, 410: return .gone(status: status)
            case 429, 500..<600:
                let after = response.headers.first(name: "Retry-After").flatMap { TimeInterval($0) }
                return .retry(reason: "the push service answered \(status)\(Self.excerpt(text))", after: after)
            default:
                return .refused(reason: "the push service answered \(status)\(Self.excerpt(text))")
            }
        } catch let error as WebPushError {
            return .refused(reason: error.description)
        } catch {
            return .retry(reason: "the push service did not answer: \(error)", after: nil)
        }
    }

    static func excerpt(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines).filter { !$0.isNewline }
        return trimmed.isEmpty ? "" : ": " + String(trimmed.prefix(200))
    }
}
