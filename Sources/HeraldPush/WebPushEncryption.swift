import Crypto
import Foundation

/// Message encryption for Web Push (RFC 8291) in the `aes128gcm` content coding (RFC 8188): only the browser that
/// holds the subscription's private key can read a push, whatever push service carries it.
public enum WebPushEncryption {
    /// The one record a push fits in; push services accept bodies up to 4,096 bytes.
    public static let recordSize: UInt32 = 4096
    /// The most plaintext one push can carry: the record less the header (86 bytes), the padding delimiter and the tag.
    public static let maxPlaintext = 4096 - 86 - 1 - 16

    /// Encrypts `plaintext` for a subscription (`p256dh`: its uncompressed P-256 public key, `auth`: its 16-byte secret).
    /// `serverKey` and `salt` are fresh for every message; tests pass fixed ones to check against RFC 8291's example.
    public static func encrypt(
        _ plaintext: [UInt8], p256dh: [UInt8], auth: [UInt8],
        serverKey: P256.KeyAgreement.PrivateKey = P256.KeyAgreement.PrivateKey(), salt: [UInt8]? = nil
    ) throws -> [UInt8] {
        guard plaintext.count <= maxPlaintext else { throw WebPushError.payloadTooLarge(plaintext.count) }
        guard auth.count == 16 else { throw WebPushError.invalidSubscription("the auth secret must be 16 bytes, not \(auth.count)") }
        let subscriber: P256.KeyAgreement.PublicKey
        do {
            subscriber = try P256.KeyAgreement.PublicKey(x963Representation: p256dh)
        } catch {
            throw WebPushError.invalidSubscription("p256dh is not an uncompressed P-256 public key")
        }
        let salt = salt ?? (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        let serverPublic = [UInt8](serverKey.publicKey.x963Representation)
        let shared = try serverKey.sharedSecretFromKeyAgreement(with: subscriber)
        let ecdhSecret = shared.withUnsafeBytes { [UInt8]($0) }

        // RFC 8291 §3.4: the auth secret and both public keys go into the input keying material.
        let keyInfo = Array("WebPush: info".utf8) + [0] + p256dh + serverPublic
        let prkKey = HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: ecdhSecret), salt: auth)
        let ikm = HKDF<SHA256>.expand(pseudoRandomKey: prkKey, info: keyInfo, outputByteCount: 32)
        // RFC 8188 §2.2–2.3: the content-encryption key and nonce from the salt.
        let prk = HKDF<SHA256>.extract(inputKeyMaterial: ikm, salt: salt)
        let cek = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Array("Content-Encoding: aes128gcm".utf8) + [0], outputByteCount: 16)
        let nonce = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: Array("Content-Encoding: nonce".utf8) + [0], outputByteCount: 12)

        // One record, the last: the plaintext, then the delimiter 0x02.
        let record = plaintext + [2]
        let sealed = try AES.GCM.seal(record, using: cek, nonce: try AES.GCM.Nonce(data: nonce.withUnsafeBytes { [UInt8]($0) }))
        var body = salt
        withUnsafeBytes(of: recordSize.bigEndian) { body.append(contentsOf: $0) }
        body.append(UInt8(serverPublic.count))
        body += serverPublic
        body += sealed.ciphertext
        body += sealed.tag
        return body
    }
}

public enum WebPushError: Error, Equatable, CustomStringConvertible {
    case payloadTooLarge(Int)
    case invalidSubscription(String)
    case invalidKey(String)

    public var description: String {
        switch self {
        case .payloadTooLarge(let bytes): "the push payload is \(bytes) bytes; at most \(WebPushEncryption.maxPlaintext) fit in one push"
        case .invalidSubscription(let reason): "invalid push subscription: \(reason)"
        case .invalidKey(let reason): "invalid VAPID key: \(reason)"
        }
    }
}
