import Foundation
import HeraldSecurity
import JWTKit

/// A provider's published signing keys (its JWKS), as jwt-kit verifiers, with the key ids they answer to.
struct ProviderKeys: Sendable {
    /// Asymmetric algorithms only: a symmetric one would let anyone holding the public key forge tokens.
    static let acceptedAlgorithms: Set<String> = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]

    let collection: JWTKeyCollection
    let kids: Set<String>
    let fetchedAt: Date

    /// Reads a JWKS, keeping the RSA and EC signing keys that have a key id and skipping any other (an
    /// encryption key or an unknown type must not make the whole set unusable).
    static func make(jwks document: Data, fetchedAt: Date) async -> ProviderKeys? {
        guard let object = try? JSONSerialization.jsonObject(with: document) as? [String: Any],
            let entries = object["keys"] as? [[String: Any]]
        else { return nil }
        let collection = JWTKeyCollection()
        var kids: Set<String> = []
        for entry in entries {
            guard let kid = entry["kid"] as? String, let kty = entry["kty"] as? String, kty == "RSA" || kty == "EC" else { continue }
            if let use = entry["use"] as? String, use != "sig" { continue }
            if let alg = entry["alg"] as? String, !Self.acceptedAlgorithms.contains(alg) { continue }
            guard let data = try? JSONSerialization.data(withJSONObject: entry), let jwk = try? JSONDecoder().decode(JWK.self, from: data) else {
                continue
            }
            let isFirst = kids.isEmpty
            if (try? await collection.add(jwk: jwk, isDefault: isFirst)) != nil { kids.insert(kid) }
        }
        guard !kids.isEmpty else { return nil }
        return ProviderKeys(collection: collection, kids: kids, fetchedAt: fetchedAt)
    }

    /// Whether a token's key id names one of these keys. A token without one is accepted only when the provider
    /// publishes a single key, so it cannot pick a key by omission.
    func knows(_ kid: String?) -> Bool {
        guard let kid else { return kids.count == 1 }
        return kids.contains(kid)
    }
}

/// Reads a compact JWT's parts without trusting them: the header (which key), the issuer (which provider).
public enum JWTParts {
    struct Header: Decodable {
        var alg: String?
        var kid: String?
        var typ: String?
    }

    /// The largest token accepted; providers' tokens are a few kilobytes.
    static let maximumLength = 16_384

    static func header(of token: String) throws(OIDCError) -> Header {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= maximumLength, let bytes = Base64URL.decode(String(parts[0])),
            let header = try? JSONDecoder().decode(Header.self, from: Data(bytes))
        else { throw .token(.malformed) }
        return header
    }

    /// The issuer a token claims, before its signature is checked: it says which provider's keys to check it with.
    public static func unverifiedIssuer(of token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= maximumLength, let bytes = Base64URL.decode(String(parts[1])),
            let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        else { return nil }
        return object["iss"] as? String
    }
}

/// The claims of an ID token or a session token, checked after the signature.
struct ProviderClaims: JWTPayload {
    var iss: String?
    var sub: String?
    var aud: AudienceClaim?
    var azp: String?
    var exp: Double?
    var nbf: Double?
    var iat: Double?
    var nonce: String?
    var email: String?
    var emailVerified: LenientBool?
    var name: String?
    var sid: String?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, azp, exp, nbf, iat, nonce, email, name, sid
        case emailVerified = "email_verified"
    }

    /// Claims are checked in ``check(_:now:)``, where the expectations are known.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    func check(_ expected: TokenExpectations, now: Date) throws(OIDCError) -> VerifiedClaims {
        guard let iss, iss == expected.issuer else { throw .token(.wrongIssuer) }
        guard let sub, !sub.isEmpty else { throw .token(.missingClaim("sub")) }
        guard let exp else { throw .token(.missingClaim("exp")) }
        let audiences = aud?.value ?? []
        if let audience = expected.audience {
            guard audiences.contains(audience) else { throw .token(.wrongAudience) }
            // OpenID Connect Core §3.1.3.7: with several audiences, the authorized party must be this client.
            if audiences.count > 1, let azp, azp != audience { throw .token(.wrongAudience) }
        }
        if !expected.authorizedParties.isEmpty {
            guard let azp, expected.authorizedParties.contains(azp) else { throw .token(.unauthorizedParty) }
        }
        guard Date(timeIntervalSince1970: exp).addingTimeInterval(expected.leeway) > now else { throw .token(.expired) }
        if let nbf, Date(timeIntervalSince1970: nbf).addingTimeInterval(-expected.leeway) > now { throw .token(.notYetValid) }
        if let iat, Date(timeIntervalSince1970: iat).addingTimeInterval(-expected.leeway) > now { throw .token(.notYetValid) }
        if let nonceExpected = expected.nonce, nonce != nonceExpected { throw .token(.nonceMismatch) }
        return VerifiedClaims(
            issuer: iss, subject: sub, audience: audiences, expiresAt: Date(timeIntervalSince1970: exp), email: email,
            emailVerified: emailVerified?.value ?? false, name: name, sessionId: sid
        )
    }
}

/// `email_verified` as a boolean or, as some providers send it, the string "true".
struct LenientBool: Codable, Sendable {
    var value: Bool

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            value = flag
        } else {
            value = (try? container.decode(String.self))?.lowercased() == "true"
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
