import Foundation
import JWTKit
import Testing

@testable import HeraldOIDC

/// The checks an ID token or a provider session token must pass after its signature (the signature, keys and the
/// whole sign-in run against a real provider in tests-e2e/test_sso.py).
@Suite("Single sign-on token checks")
struct SingleSignOnTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func claims(_ change: (inout ProviderClaims) -> Void = { _ in }) -> ProviderClaims {
        var claims = ProviderClaims(
            iss: "https://id.example.com", sub: "user-1", aud: .init(value: ["herald"]), azp: nil, exp: now.timeIntervalSince1970 + 300,
            nbf: nil, iat: now.timeIntervalSince1970, nonce: "n-1", email: "ada@example.com", emailVerified: nil, name: "Ada", sid: nil)
        change(&claims)
        return claims
    }

    func refusal(_ claims: ProviderClaims, _ expected: TokenExpectations) -> TokenRefusal? {
        do {
            _ = try claims.check(expected, now: now)
            return nil
        } catch {
            if case .token(let refusal) = error { return refusal }
            return nil
        }
    }

    let idToken = TokenExpectations(issuer: "https://id.example.com", audience: "herald", nonce: "n-1")

    @Test func aGoodTokenPasses() throws {
        let verified = try claims { $0.emailVerified = try? JSONDecoder().decode(LenientBool.self, from: Data("\"true\"".utf8)) }
            .check(idToken, now: now)
        #expect(verified.subject == "user-1" && verified.emailVerified && verified.email == "ada@example.com")
    }

    @Test func eachClaimIsChecked() {
        #expect(refusal(claims { $0.iss = "https://id.example.com/" }, idToken) == .wrongIssuer)
        #expect(refusal(claims { $0.sub = "" }, idToken) == .missingClaim("sub"))
        #expect(refusal(claims { $0.exp = nil }, idToken) == .missingClaim("exp"))
        #expect(refusal(claims { $0.aud = .init(value: ["other"]) }, idToken) == .wrongAudience)
        // Several audiences: the authorized party must be Herald's client.
        #expect(
            refusal(
                claims {
                    $0.aud = .init(value: ["herald", "other"]); $0.azp = "other"
                }, idToken) == .wrongAudience)
        #expect(
            refusal(
                claims {
                    $0.aud = .init(value: ["herald", "other"]); $0.azp = "herald"
                }, idToken) == nil)
        #expect(refusal(claims { $0.nonce = "n-2" }, idToken) == .nonceMismatch)
        #expect(refusal(claims { $0.nonce = nil }, idToken) == .nonceMismatch)
    }

    @Test func timeIsCheckedWithALeeway() {
        #expect(refusal(claims { $0.exp = now.timeIntervalSince1970 - 59 }, idToken) == nil)
        #expect(refusal(claims { $0.exp = now.timeIntervalSince1970 - 61 }, idToken) == .expired)
        #expect(refusal(claims { $0.nbf = now.timeIntervalSince1970 + 59 }, idToken) == nil)
        #expect(refusal(claims { $0.nbf = now.timeIntervalSince1970 + 61 }, idToken) == .notYetValid)
        #expect(refusal(claims { $0.iat = now.timeIntervalSince1970 + 600 }, idToken) == .notYetValid)
    }

    @Test func sessionTokensCheckTheAuthorizedParty() {
        let session = TokenExpectations(issuer: "https://id.example.com", audience: nil, authorizedParties: ["https://app.example.com"])
        #expect(
            refusal(
                claims {
                    $0.aud = nil; $0.azp = "https://app.example.com"
                }, session) == nil)
        #expect(
            refusal(
                claims {
                    $0.aud = nil; $0.azp = "https://evil.example"
                }, session) == .unauthorizedParty)
        #expect(
            refusal(
                claims {
                    $0.aud = nil; $0.azp = nil
                }, session) == .unauthorizedParty)
    }

    @Test func onlyAsymmetricSigningKeysAreKept() async throws {
        let jwks = """
            {"keys": [
              {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
              {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
              {"kty": "EC", "kid": "e1", "use": "sig", "crv": "P-256",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
            ]}
            """
        let keys = try #require(await ProviderKeys.make(jwks: Data(jwks.utf8), fetchedAt: now))
        #expect(keys.kids == ["e1"])
        #expect(keys.knows("e1") && keys.knows(nil) && !keys.knows("h"))
        #expect(await ProviderKeys.make(jwks: Data(#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#.utf8), fetchedAt: now) == nil)
    }

    @Test func pkceChallengeIsTheHashOfTheVerifier() {
        let pkce = PKCE()
        #expect(pkce.verifier.count == 43 && pkce.challenge.count == 43 && pkce.challenge != pkce.verifier)
        #expect(PKCE.challenge(for: "abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0")
    }
}
