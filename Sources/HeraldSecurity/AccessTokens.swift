import Crypto
import Foundation
import HeraldCore
import JWTKit

/// What a verified access token says: who is calling, in which session.
public struct AccessTokenClaims: Sendable, Equatable {
    public var userId: UUID
    public var sessionId: UUID
    public var issuedAt: Date
    public var expiresAt: Date
    /// The only organization the token may act in (sessions opened through an organization's single sign-on).
    public var organizationId: UUID? = nil
}

/// Issues and verifies Herald's access tokens: EdDSA (Ed25519) JWTs with a `kid`, 15 minutes by default.
///
/// Verification is strict before any cryptography runs: the header must name `EdDSA` and a `kid` Herald
/// published, so `alg: none`, HS256 tokens and tokens for unknown keys are refused outright (jwt-kit alone
/// would fall back to its default key for an unknown `kid`). Then `exp`, `nbf`, `iss` and `aud` are checked.
public final class AccessTokenService: Sendable {
    public let issuer: String
    public let audience: String
    public let lifetime: TimeInterval
    /// Tolerated clock difference between instances when checking `exp` and `nbf`.
    public let leeway: TimeInterval = 30
    private let keys: JWTKeyCollection
    private let signingKid: String
    private let knownKids: Set<String>
    /// The public keys as a JWK Set, encoded once.
    public let jwksJSON: String

    public init(keyRing: KeyRing, issuer: String = "herald", audience: String = "herald-api", lifetime: TimeInterval = 900) async {
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        let keys = JWTKeyCollection()
        for signingKey in keyRing.signingKeys {
            await keys.add(eddsa: EdDSA.PrivateKey(backing: signingKey.key), kid: JWKIdentifier(string: signingKey.kid))
        }
        self.keys = keys
        self.signingKid = keyRing.signingKeys[0].kid
        self.knownKids = Set(keyRing.signingKeys.map(\.kid))
        let jwks = keyRing.signingKeys.map { key in
            PublicJWK(kid: key.kid, x: Base64URL.encode(key.key.publicKey.rawRepresentation))
        }
        let data = (try? JSONEncoder.herald.encode(["keys": jwks])) ?? Data(#"{"keys":[]}"#.utf8)
        self.jwksJSON = String(decoding: data, as: UTF8.self)
    }

    struct PublicJWK: Encodable {
        var kty = "OKP"
        var crv = "Ed25519"
        var use = "sig"
        var alg = "EdDSA"
        var kid: String
        var x: String
    }

    struct Payload: JWTPayload {
        var iss: IssuerClaim
        var aud: AudienceClaim
        var sub: SubjectClaim
        var sid: String
        var iat: IssuedAtClaim
        var nbf: NotBeforeClaim
        var exp: ExpirationClaim
        var jti: IDClaim
        /// The organization a single sign-on session is limited to; absent for password sessions.
        var org: String?

        /// Claims are checked by ``AccessTokenService/verify(_:now:)`` with Herald's issuer, audience and clock.
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    struct Header: Decodable {
        var alg: String?
        var kid: String?
        var typ: String?
    }

    /// Signs a new access token for a session.
    public func issue(userId: UUID, sessionId: UUID, organizationId: UUID? = nil, now: Date = Date()) async throws -> (token: String, expiresIn: Int)
    {
        let payload = Payload(
            iss: IssuerClaim(value: issuer),
            aud: AudienceClaim(value: [audience]),
            sub: SubjectClaim(value: userId.lowercased),
            sid: sessionId.lowercased,
            iat: IssuedAtClaim(value: now),
            nbf: NotBeforeClaim(value: now),
            exp: ExpirationClaim(value: now.addingTimeInterval(lifetime)),
            jti: IDClaim(value: UUID().lowercased),
            org: organizationId?.lowercased
        )
        let token = try await keys.sign(payload, kid: JWKIdentifier(string: signingKid))
        return (token, Int(lifetime))
    }

    /// Verifies a token and returns its claims, or throws ``AccessTokenError`` saying why it was refused.
    public func verify(_ token: String, now: Date = Date()) async throws -> AccessTokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 4096 else { throw AccessTokenError.malformed }
        guard let headerBytes = Base64URL.decode(String(parts[0])),
            let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes))
        else { throw AccessTokenError.malformed }
        guard header.alg == "EdDSA" else { throw AccessTokenError.algorithmNotAllowed(header.alg ?? "none") }
        guard let kid = header.kid, knownKids.contains(kid) else { throw AccessTokenError.unknownKey }
        if let typ = header.typ, typ.uppercased() != "JWT" { throw AccessTokenError.malformed }

        let payload: Payload
        do {
            payload = try await keys.verify(token, as: Payload.self)
        } catch {
            throw AccessTokenError.badSignature
        }
        guard payload.iss.value == issuer else { throw AccessTokenError.wrongIssuer }
        guard payload.aud.value.contains(audience) else { throw AccessTokenError.wrongAudience }
        guard payload.exp.value.addingTimeInterval(leeway) > now else { throw AccessTokenError.expired }
        guard payload.nbf.value.addingTimeInterval(-leeway) <= now else { throw AccessTokenError.notYetValid }
        guard let userId = UUID(text: payload.sub.value), let sessionId = UUID(text: payload.sid) else {
            throw AccessTokenError.malformed
        }
        var organizationId: UUID?
        if let org = payload.org {
            guard let id = UUID(text: org) else { throw AccessTokenError.malformed }
            organizationId = id
        }
        return AccessTokenClaims(
            userId: userId, sessionId: sessionId, issuedAt: payload.iat.value, expiresAt: payload.exp.value, organizationId: organizationId)
    }
}

public enum AccessTokenError: Error, Equatable, CustomStringConvertible {
    /// Whether the token names an algorithm Herald never signs with (another issuer's token, or a forgery).
    public var isForeignAlgorithm: Bool {
        if case .algorithmNotAllowed = self { return true }
        return false
    }

    case malformed
    case algorithmNotAllowed(String)
    case unknownKey
    case badSignature
    case wrongIssuer
    case wrongAudience
    case expired
    case notYetValid

    public var description: String {
        switch self {
        case .malformed: "the access token is malformed"
        case .algorithmNotAllowed(let alg): "the access token algorithm \(alg) is not accepted"
        case .unknownKey: "the access token was signed with an unknown key"
        case .badSignature: "the access token signature is invalid"
        case .wrongIssuer: "the access token was issued by someone else"
        case .wrongAudience: "the access token is meant for another audience"
        case .expired: "the access token has expired"
        case .notYetValid: "the access token is not valid yet"
        }
    }
}
