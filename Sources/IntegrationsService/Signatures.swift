import Crypto
import Foundation
import HeraldCore

/// Inbound webhook signature schemes. Every comparison is constant time.
enum WebhookSignature {
    /// Shopify (`X-Shopify-Hmac-Sha256`) and WooCommerce (`X-WC-Webhook-Signature`): base64 of
    /// HMAC-SHA256 over the raw body, keyed with the shared secret.
    static func verifyBase64HMAC(body: [UInt8], secret: String, signature: String) -> Bool {
        guard let expected = Data(base64Encoded: signature.trimmingCharacters(in: .whitespaces)) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(expected, authenticating: Data(body), using: SymmetricKey(data: Data(secret.utf8)))
    }

    /// Why a Standard Webhooks delivery was refused.
    enum StandardFailure: Error, Equatable, CustomStringConvertible {
        case missingHeaders
        case badTimestamp
        case stale(seconds: Int)
        case noMatchingSignature

        var description: String {
            switch self {
            case .missingHeaders: "missing webhook-id, webhook-timestamp or webhook-signature"
            case .badTimestamp: "webhook-timestamp is not a Unix time in seconds"
            case .stale(let seconds): "webhook-timestamp is \(seconds) s away from now (tolerance 300 s)"
            case .noMatchingSignature: "no webhook-signature matches the payload"
            }
        }
    }

    static let tolerance: TimeInterval = 300

    /// Standard Webhooks: `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` entries over
    /// `id.timestamp.body`, keyed with the base64 part of the `whsec_` secret; the timestamp must be within 5 minutes.
    static func verifyStandard(
        body: [UInt8], id: String?, timestamp: String?, signatures: String?, secret: String, now: Date = Date()
    ) throws(StandardFailure) {
        guard let id, let timestamp, let signatures, !id.isEmpty else { throw .missingHeaders }
        guard let seconds = Int64(timestamp) else { throw .badTimestamp }
        let skew = now.timeIntervalSince1970 - Double(seconds)
        guard abs(skew) <= tolerance else { throw .stale(seconds: Int(skew)) }
        let key = SymmetricKey(data: standardKey(secret))
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        for entry in signatures.split(separator: " ") {
            let parts = entry.split(separator: ",", maxSplits: 1)
            guard parts.count == 2, parts[0] == "v1", let mac = Data(base64Encoded: String(parts[1])) else { continue }
            if HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: content, using: key) { return }
        }
        throw .noMatchingSignature
    }

    /// The signing key of a `whsec_…` secret: its base64 part decoded.
    static func standardKey(_ secret: String) -> Data {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        return Data(base64Encoded: encoded) ?? Data(encoded.utf8)
    }

    /// `v1,<base64>` for one secret.
    static func signStandard(id: String, timestamp: Int64, body: [UInt8], secret: String) -> String {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: standardKey(secret)))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// A new `whsec_` secret: 24 random bytes in base64.
    static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }
}
