import Crypto
import Foundation

/// Random, prefixed secrets (`pk_…`, `sk_…`, refresh tokens, invitation tokens) and how they are stored.
public enum SecretToken {
    /// `bytes` random bytes in base64url.
    public static func random(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Base64URL.encode(raw)
    }

    /// A new secret with a prefix saying what it is: `sk_live_…`.
    public static func make(prefix: String, bytes: Int = 32) -> String {
        prefix + random(bytes: bytes)
    }

    /// The stored form of a high-entropy secret: SHA-256. (Passwords use bcrypt instead: they are low-entropy.)
    public static func hash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(token.utf8)))
    }

    /// Constant-time equality for secrets and signatures.
    public static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    /// Whether an `Authorization` header carries `Bearer <expected>`, compared in constant time. Hashing first
    /// makes the comparison independent of the tokens' lengths.
    public static func bearerMatches(_ authorization: String?, expected: String) -> Bool {
        guard !expected.isEmpty, let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let presented = authorization.dropFirst(7)
        return !presented.isEmpty && constantTimeEquals(hash(String(presented)), hash(expected))
    }
}
