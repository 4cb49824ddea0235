import AsyncHTTPClient
import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Where Herald reaches Stripe and how it checks Stripe's webhooks. Without one, Herald bills nothing and still
/// meters and enforces quotas.
public struct StripeConfiguration: Sendable, Equatable {
    public var secretKey: String
    /// `https://api.stripe.com` (or a local server speaking its API, in tests).
    public var apiBase: String
    /// The signing secret of the webhook endpoint (`whsec_…`); webhooks are refused without one.
    public var webhookSecret: String?
    /// How old a webhook's signed timestamp may be.
    public var webhookTolerance: TimeInterval

    public init(secretKey: String, apiBase: String = "https://api.stripe.com", webhookSecret: String?, webhookTolerance: TimeInterval = 300) {
        self.secretKey = secretKey
        self.apiBase = apiBase.hasSuffix("/") ? String(apiBase.dropLast()) : apiBase
        self.webhookSecret = webhookSecret
        self.webhookTolerance = webhookTolerance
    }
}

/// A failure Stripe reported, or the reason it could not be reached.
struct StripeError: Error, CustomStringConvertible {
    var status: Int
    var type: String
    var message: String
    /// Worth retrying: Stripe was unreachable, rate limited us or failed on its side.
    var isTransient: Bool { status == 0 || status == 429 || status >= 500 }
    var description: String { "Stripe \(status == 0 ? "unreachable" : "HTTP \(status)"): \(message)" }
}

/// A small client of Stripe's REST API over AsyncHTTPClient: form-encoded writes, each with an Idempotency-Key
/// derived from what it does, so a retried request never charges or creates twice.
struct StripeClient: Sendable {
    let configuration: StripeConfiguration
    let http: HTTPClient
    let logger: Logger
    let timeout: TimeAmount = .seconds(20)

    /// GET a resource; nil for 404.
    func get(_ path: String, query: [(String, String)] = []) async throws -> JSONValue? {
        do {
            return try await send(.GET, path, form: query, idempotencyKey: nil)
        } catch let error as StripeError where error.status == 404 {
            return nil
        }
    }

    /// POST a form; `idempotencyKey` names the operation (the same key for the same intended change).
    func post(_ path: String, form: [(String, String)], idempotencyKey: String) async throws -> JSONValue {
        try await send(.POST, path, form: form, idempotencyKey: idempotencyKey)
    }

    func delete(_ path: String, idempotencyKey: String) async throws -> JSONValue {
        try await send(.DELETE, path, form: [], idempotencyKey: idempotencyKey)
    }

    private func send(_ method: HTTPMethod, _ path: String, form: [(String, String)], idempotencyKey: String?) async throws -> JSONValue {
        let encoded = Self.formEncode(form)
        var url = configuration.apiBase + path
        var request: HTTPClientRequest
        if method == .GET {
            if !encoded.isEmpty { url += "?" + encoded }
            request = HTTPClientRequest(url: url)
        } else {
            request = HTTPClientRequest(url: url)
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: encoded))
        }
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.secretKey)")
        request.headers.add(name: "Stripe-Version", value: "2020-08-27")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: 4 * 1024 * 1024)
        } catch {
            throw StripeError(status: 0, type: "api_connection_error", message: "\(error)")
        }
        let value = (try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: body))) ?? .null
        guard (200..<300).contains(Int(response.status.code)) else {
            let error = value["error"]
            throw StripeError(
                status: Int(response.status.code), type: error?["type"]?.stringValue ?? "api_error",
                message: error?["message"]?.stringValue ?? "no message (\(response.status.code))"
            )
        }
        logger.debug("stripe", metadata: ["method": "\(method.rawValue)", "path": "\(path)", "status": "\(response.status.code)"])
        return value
    }

    /// `application/x-www-form-urlencoded`, with Stripe's bracketed keys kept as written.
    static func formEncode(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        func escape(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }
        return pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? { objectValue?[key] }

    var int64Value: Int64? {
        switch self {
        case .number(let value): Int64(exactly: value.rounded())
        case .string(let value): Int64(value)
        default: nil
        }
    }
}
