import Crypto
import Foundation

/// SendGrid's signed Event Webhook: each POST carries an ECDSA P-256 signature over the timestamp followed by the
/// raw body (`X-Twilio-Email-Event-Webhook-Signature`, base64 DER) and the timestamp
/// (`X-Twilio-Email-Event-Webhook-Timestamp`, Unix seconds). The verification key is the base64 DER public key
/// SendGrid shows under Mail Settings → Event Webhook.
public struct SendGridEventWebhook: Sendable {
    public static let signatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
    public static let timestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
    /// Older or newer timestamps are refused, so a captured request cannot be replayed later.
    public static let tolerance: TimeInterval = 300

    let key: P256.Signing.PublicKey

    public init(verificationKey: String) throws {
        let text = verificationKey.replacingOccurrences(of: "-----BEGIN PUBLIC KEY-----", with: "")
            .replacingOccurrences(of: "-----END PUBLIC KEY-----", with: "").filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: text) else {
            throw MailError.permanent("the SendGrid event verification key is not base64 (copy it from Mail Settings → Event Webhook)")
        }
        do {
            key = try P256.Signing.PublicKey(derRepresentation: der)
        } catch {
            throw MailError.permanent("the SendGrid event verification key is not an ECDSA P-256 public key")
        }
    }

    /// Why a request is not SendGrid's, or nil when its signature verifies within the tolerance.
    public func problem(signature: String?, timestamp: String?, body: [UInt8], now: Date = Date()) -> String? {
        guard let signature, let timestamp else {
            return "the \(Self.signatureHeader) and \(Self.timestampHeader) headers are required"
        }
        guard let seconds = Double(timestamp), abs(now.timeIntervalSince1970 - seconds) <= Self.tolerance else {
            return "the timestamp is missing or more than \(Int(Self.tolerance)) seconds away from now"
        }
        guard let der = Data(base64Encoded: signature), let parsed = try? P256.Signing.ECDSASignature(derRepresentation: der) else {
            return "the signature is not a base64 DER ECDSA signature"
        }
        var signed = Data(timestamp.utf8)
        signed.append(contentsOf: body)
        return key.isValidSignature(parsed, for: signed) ? nil : "the signature does not verify with the configured key"
    }
}
