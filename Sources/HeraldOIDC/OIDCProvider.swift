import AsyncHTTPClient
import Crypto
import Foundation
import HeraldCore
import HeraldSecurity
import JWTKit
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// What an OpenID Connect provider publishes at `{issuer}/.well-known/openid-configuration` (OpenID Connect
/// Discovery 1.0 §3). Only the fields Herald uses.
public struct OIDCProviderMetadata: Codable, Sendable, Equatable {
    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var jwksURI: String
    public var tokenEndpointAuthMethodsSupported: [String]?
    public var codeChallengeMethodsSupported: [String]?
    public var idTokenSigningAlgValuesSupported: [String]?

    enum CodingKeys: String, CodingKey {
        case issuer
        case authorizationEndpoint = "authorization_endpoint"
        case tokenEndpoint = "token_endpoint"
        case jwksURI = "jwks_uri"
        case tokenEndpointAuthMethodsSupported = "token_endpoint_auth_methods_supported"
        case codeChallengeMethodsSupported = "code_challenge_methods_supported"
        case idTokenSigningAlgValuesSupported = "id_token_signing_alg_values_supported"
    }

    /// Whether the client secret goes in the form (`client_secret_post`) rather than Basic authentication, which
    /// is the default the specification names.
    public var prefersSecretInForm: Bool {
        guard let methods = tokenEndpointAuthMethodsSupported, !methods.isEmpty else { return false }
        return !methods.contains("client_secret_basic") && methods.contains("client_secret_post")
    }
}

/// Why talking to a provider failed, in words an administrator can act on.
public enum OIDCError: Error, Equatable, CustomStringConvertible {
    /// The issuer is not a URL Herald may call.
    case issuerRefused(String)
    /// The discovery document could not be fetched or is not valid.
    case discovery(String)
    /// The JWKS could not be fetched or holds no usable key.
    case keys(String)
    /// The token endpoint refused the code or could not be reached.
    case tokenEndpoint(String)
    /// A token was refused.
    case token(TokenRefusal)

    public var description: String {
        switch self {
        case .issuerRefused(let reason): "the issuer URL \(reason)"
        case .discovery(let reason): "the provider's discovery document \(reason)"
        case .keys(let reason): "the provider's signing keys \(reason)"
        case .tokenEndpoint(let reason): "the provider's token endpoint \(reason)"
        case .token(let refusal): refusal.description
        }
    }
}

/// Why an ID token or session token was refused.
public enum TokenRefusal: Error, Equatable, CustomStringConvertible {
    case malformed
    case algorithmNotAllowed(String)
    case unknownKey
    case badSignature
    case wrongIssuer
    case wrongAudience
    case unauthorizedParty
    case expired
    case notYetValid
    case nonceMismatch
    case missingClaim(String)

    public var description: String {
        switch self {
        case .malformed: "the token is malformed"
        case .algorithmNotAllowed(let alg): "the token's algorithm \(alg) is not accepted"
        case .unknownKey: "the token was signed with a key the provider does not publish"
        case .badSignature: "the token's signature is invalid"
        case .wrongIssuer: "the token was issued by another issuer"
        case .wrongAudience: "the token is meant for another audience"
        case .unauthorizedParty: "the token was issued to a party this organization does not accept"
        case .expired: "the token has expired"
        case .notYetValid: "the token is not valid yet"
        case .nonceMismatch: "the token does not answer this sign-in (nonce mismatch)"
        case .missingClaim(let claim): "the token lacks the \(claim) claim"
        }
    }
}

/// The claims Herald reads from an ID token or a session token, after the signature and the standard checks.
public struct VerifiedClaims: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var audience: [String]
    public var expiresAt: Date
    public var email: String?
    public var emailVerified: Bool
    public var name: String?
    /// The provider's session id (Clerk's `sid`), when present.
    public var sessionId: String?
}

/// What a token must satisfy besides its signature.
public struct TokenExpectations: Sendable {
    public var issuer: String
    /// The client id for an ID token; nil accepts any audience (Clerk's session tokens carry none by default).
    public var audience: String?
    /// Accepted `azp` values (Clerk: the origins of the organization's front ends); empty accepts any.
    public var authorizedParties: [String]
    /// The nonce of the sign-in an ID token answers.
    public var nonce: String?
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    public var leeway: TimeInterval

    public init(issuer: String, audience: String?, authorizedParties: [String] = [], nonce: String? = nil, leeway: TimeInterval = 60) {
        self.issuer = issuer
        self.audience = audience
        self.authorizedParties = authorizedParties
        self.nonce = nonce
        self.leeway = leeway
    }
}

/// Proof Key for Code Exchange (RFC 7636) with the S256 method.
public struct PKCE: Sendable {
    public let verifier: String
    public var challenge: String { Self.challenge(for: verifier) }

    public init() {
        verifier = Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8))))
    }
}

/// Talks to OpenID Connect providers: discovery, the token endpoint and the signing keys, each cached.
///
/// Every URL is checked by the outbound guard (a provider cannot point Herald at its own network) and must be
/// `https`, except on loopback, which tests and local providers use.
public actor OIDCClient {
    let http: HTTPClient
    let outbound: OutboundGuard
    let timeout: TimeAmount
    /// How long a discovery document and a key set are trusted before they are fetched again.
    let cacheLifetime: TimeInterval
    /// The shortest interval between two fetches of a key set forced by an unknown key id, so a flood of
    /// forged tokens cannot make Herald hammer the provider.
    let refetchInterval: TimeInterval
    /// The largest document accepted from a provider.
    static let maximumDocument = 512 * 1024

    struct CachedMetadata {
        var metadata: OIDCProviderMetadata
        var fetchedAt: Date
    }
    var metadataCache: [String: CachedMetadata] = [:]
    var keyCache: [String: ProviderKeys] = [:]

    public init(
        http: HTTPClient = .shared, outbound: OutboundGuard, timeout: TimeAmount = .seconds(10), cacheLifetime: TimeInterval = 3600,
        refetchInterval: TimeInterval = 10
    ) {
        self.http = http
        self.outbound = outbound
        self.timeout = timeout
        self.cacheLifetime = cacheLifetime
        self.refetchInterval = refetchInterval
    }

    // MARK: Discovery

    /// The provider's metadata, from the cache or its discovery document. The document must name the same
    /// issuer (Discovery §4.3), or anyone serving a document could claim to be any issuer.
    public func metadata(issuer: String, refresh: Bool = false, now: Date = Date()) async throws(OIDCError) -> OIDCProviderMetadata {
        if !refresh, let cached = metadataCache[issuer], now.timeIntervalSince(cached.fetchedAt) < cacheLifetime {
            return cached.metadata
        }
        do {
            try await checkURL(issuer)
        } catch let reason {
            throw .issuerRefused(reason.description)
        }
        let base = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        let document: Data
        do {
            document = try await get(base + "/.well-known/openid-configuration")
        } catch let reason {
            throw .discovery(reason.description)
        }
        let metadata: OIDCProviderMetadata
        do {
            metadata = try JSONDecoder().decode(OIDCProviderMetadata.self, from: document)
        } catch {
            throw .discovery("is not valid: it must be JSON with issuer, authorization_endpoint, token_endpoint and jwks_uri")
        }
        guard metadata.issuer == issuer else {
            throw .discovery("names the issuer \(metadata.issuer), not \(issuer); use exactly the issuer it names")
        }
        if let methods = metadata.codeChallengeMethodsSupported, !methods.isEmpty, !methods.contains("S256") {
            throw .discovery("does not offer PKCE with S256, which Herald requires")
        }
        for (name, url) in [
            ("authorization_endpoint", metadata.authorizationEndpoint), ("token_endpoint", metadata.tokenEndpoint),
            ("jwks_uri", metadata.jwksURI),
        ] {
            do {
                try await checkURL(url)
            } catch let reason {
                throw .discovery("names a \(name) that \(reason.description)")
            }
        }
        metadataCache[issuer] = CachedMetadata(metadata: metadata, fetchedAt: now)
        return metadata
    }

    // MARK: Token endpoint

    /// Exchanges an authorization code (with its PKCE verifier) for the provider's ID token.
    public func exchange(
        code: String, verifier: String, redirectURI: String, clientId: String, clientSecret: String?, metadata: OIDCProviderMetadata
    ) async throws(OIDCError) -> String {
        var form: [(String, String)] = [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", verifier),
            ("client_id", clientId),
        ]
        var request = HTTPClientRequest(url: metadata.tokenEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        if let clientSecret {
            if metadata.prefersSecretInForm {
                form.append(("client_secret", clientSecret))
            } else {
                // RFC 6749 §2.3.1: both parts form-encoded before Base64.
                let credentials = "\(Self.formEncode(clientId)):\(Self.formEncode(clientSecret))"
                request.headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
            }
        }
        request.body = .bytes(ByteBuffer(string: form.map { "\($0)=\(Self.formEncode($1))" }.joined(separator: "&")))
        let status: Int
        let body: Data
        do {
            try await checkURL(metadata.tokenEndpoint)
            (status, body) = try await send(request)
        } catch let reason {
            throw .tokenEndpoint(reason.description)
        }
        struct TokenResponse: Decodable {
            var idToken: String?
            var error: String?
            var errorDescription: String?
            enum CodingKeys: String, CodingKey {
                case idToken = "id_token"
                case error
                case errorDescription = "error_description"
            }
        }
        let response = try? JSONDecoder().decode(TokenResponse.self, from: body)
        guard (200..<300).contains(status) else {
            let reason = [response?.error, response?.errorDescription].compactMap { $0 }.joined(separator: ": ")
            throw .tokenEndpoint("refused the code (\(status)\(reason.isEmpty ? "" : ", " + String(reason.prefix(200))))")
        }
        guard let idToken = response?.idToken, !idToken.isEmpty else {
            throw .tokenEndpoint("answered without an id_token; the client must request the openid scope")
        }
        return idToken
    }

    // MARK: Tokens

    /// Verifies a JWT signed by the provider whose keys are at `jwksURI`: an asymmetric algorithm, a key the
    /// provider publishes (the set is fetched again, at most every `refetchInterval`, when a token names a key id
    /// Herald has not seen: providers rotate keys), the signature, then issuer, audience, authorized party, expiry
    /// and nonce.
    public func verify(
        _ token: String, jwksURI: String, expecting expected: TokenExpectations, now: Date = Date()
    ) async throws(OIDCError)
        -> VerifiedClaims
    {
        let header = try JWTParts.header(of: token)
        guard let alg = header.alg, ProviderKeys.acceptedAlgorithms.contains(alg) else {
            throw .token(.algorithmNotAllowed(header.alg ?? "none"))
        }
        var keys = try await keySet(jwksURI, now: now)
        if !keys.knows(header.kid) {
            if now.timeIntervalSince(keys.fetchedAt) >= refetchInterval {
                keys = try await fetchKeys(jwksURI, now: now)
            }
            guard keys.knows(header.kid) else { throw .token(.unknownKey) }
        }
        let payload: ProviderClaims
        do {
            payload = try await keys.collection.verify(token, as: ProviderClaims.self)
        } catch {
            throw .token(.badSignature)
        }
        return try payload.check(expected, now: now)
    }

    func keySet(_ uri: String, now: Date) async throws(OIDCError) -> ProviderKeys {
        if let cached = keyCache[uri], now.timeIntervalSince(cached.fetchedAt) < cacheLifetime { return cached }
        return try await fetchKeys(uri, now: now)
    }

    func fetchKeys(_ uri: String, now: Date) async throws(OIDCError) -> ProviderKeys {
        let document: Data
        do {
            try await checkURL(uri)
            document = try await get(uri)
        } catch let reason {
            // A provider briefly down must not lock everyone out while the keys Herald has are still good.
            if let cached = keyCache[uri] { return cached }
            throw .keys(reason.description)
        }
        guard let keys = await ProviderKeys.make(jwks: document, fetchedAt: now) else {
            throw .keys("are not a JSON Web Key Set with an RSA or EC signing key")
        }
        keyCache[uri] = keys
        return keys
    }

    // MARK: HTTP

    /// Refuses URLs Herald must not call; the reason completes "the URL …".
    func checkURL(_ text: String) async throws(Reason) {
        let url: URL
        do {
            url = try await outbound.check(text)
        } catch {
            throw Reason(stringLiteral: error.description)
        }
        if url.scheme?.lowercased() == "http", !Self.isLoopback(url.host ?? "") {
            throw "must use https"
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }

    func get(_ url: String) async throws(Reason) -> Data {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let (status, body) = try await send(request)
        guard status == 200 else { throw "could not be fetched from \(url): the server answered \(status)" }
        return body
    }

    func send(_ request: HTTPClientRequest) async throws(Reason) -> (Int, Data) {
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: Self.maximumDocument)
            return (Int(response.status.code), Data(buffer: body))
        } catch {
            throw "could not be reached at \(request.url): \(error)"
        }
    }

    static func formEncode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}

/// Why a request to a provider failed; completes a sentence such as "the token endpoint …".
struct Reason: Error, CustomStringConvertible, ExpressibleByStringInterpolation {
    let description: String
    init(stringLiteral value: String) { description = value }
    init(stringInterpolation: DefaultStringInterpolation) { description = String(stringInterpolation: stringInterpolation) }
}
