import Crypto
import Foundation
import HeraldCore
import HeraldSecurity
import JWTKit
import Testing

@Suite("Access tokens")
struct AccessTokenTests {
    func service(lifetime: TimeInterval = 900) async throws -> (AccessTokenService, KeyRing) {
        let ring = try KeyRing.generate()
        return (await AccessTokenService(keyRing: ring, lifetime: lifetime), ring)
    }

    func encode(_ json: String) -> String { Base64URL.encode(Data(json.utf8)) }

    @Test func issuedTokensVerify() async throws {
        let (tokens, _) = try await service()
        let user = UUID()
        let session = UUID()
        let (token, expiresIn) = try await tokens.issue(userId: user, sessionId: session)
        #expect(expiresIn == 900)
        let claims = try await tokens.verify(token)
        #expect(claims.userId == user)
        #expect(claims.sessionId == session)
    }

    @Test func algorithmNoneIsRefused() async throws {
        let (tokens, ring) = try await service()
        let (token, _) = try await tokens.issue(userId: UUID(), sessionId: UUID())
        let payload = token.split(separator: ".")[1]
        let forged = encode(#"{"alg":"none","typ":"JWT","kid":"\#(ring.signingKeys[0].kid)"}"#) + "." + payload + "."
        await #expect(throws: AccessTokenError.algorithmNotAllowed("none")) { try await tokens.verify(forged) }
    }

    @Test func hs256SignedWithThePublicKeyIsRefused() async throws {
        let (tokens, ring) = try await service()
        let (token, _) = try await tokens.issue(userId: UUID(), sessionId: UUID())
        let payload = String(token.split(separator: ".")[1])
        let header = encode(#"{"alg":"HS256","typ":"JWT","kid":"\#(ring.signingKeys[0].kid)"}"#)
        let key = SymmetricKey(data: ring.signingKeys[0].key.publicKey.rawRepresentation)
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(header).\(payload)".utf8), using: key)
        let forged = "\(header).\(payload).\(Base64URL.encode(Data(mac)))"
        await #expect(throws: AccessTokenError.algorithmNotAllowed("HS256")) { try await tokens.verify(forged) }
    }

    @Test func unknownAndMissingKeyIdsAreRefused() async throws {
        let (tokens, _) = try await service()
        let (other, _) = try await service()
        let (foreign, _) = try await other.issue(userId: UUID(), sessionId: UUID())
        await #expect(throws: AccessTokenError.unknownKey) { try await tokens.verify(foreign) }
        let (token, _) = try await tokens.issue(userId: UUID(), sessionId: UUID())
        let parts = token.split(separator: ".")
        let noKid = encode(#"{"alg":"EdDSA","typ":"JWT"}"#) + "." + parts[1] + "." + parts[2]
        await #expect(throws: AccessTokenError.unknownKey) { try await tokens.verify(noKid) }
    }

    @Test func tamperedPayloadFailsTheSignature() async throws {
        let (tokens, _) = try await service()
        let (token, _) = try await tokens.issue(userId: UUID(), sessionId: UUID())
        let parts = token.split(separator: ".")
        var payload = try JSONSerialization.jsonObject(with: Data(Base64URL.decode(String(parts[1])) ?? [])) as? [String: Any] ?? [:]
        payload["sub"] = UUID().lowercased
        let forged = parts[0] + "." + Base64URL.encode(try JSONSerialization.data(withJSONObject: payload)) + "." + parts[2]
        await #expect(throws: AccessTokenError.badSignature) { try await tokens.verify(forged) }
    }

    @Test func expiryNotBeforeIssuerAndAudienceAreChecked() async throws {
        let ring = try KeyRing.generate()
        let tokens = await AccessTokenService(keyRing: ring, lifetime: 900)
        let now = Date()
        let (token, _) = try await tokens.issue(userId: UUID(), sessionId: UUID(), now: now)
        await #expect(throws: AccessTokenError.expired) { try await tokens.verify(token, now: now.addingTimeInterval(1000)) }
        await #expect(throws: AccessTokenError.notYetValid) { try await tokens.verify(token, now: now.addingTimeInterval(-120)) }
        _ = try await tokens.verify(token, now: now.addingTimeInterval(20))

        let otherIssuer = await AccessTokenService(keyRing: ring, issuer: "someone-else")
        let (foreignIssuer, _) = try await otherIssuer.issue(userId: UUID(), sessionId: UUID())
        await #expect(throws: AccessTokenError.wrongIssuer) { try await tokens.verify(foreignIssuer) }
        let otherAudience = await AccessTokenService(keyRing: ring, audience: "another-api")
        let (foreignAudience, _) = try await otherAudience.issue(userId: UUID(), sessionId: UUID())
        await #expect(throws: AccessTokenError.wrongAudience) { try await tokens.verify(foreignAudience) }
    }

    @Test func rotatedKeysStillVerifyOldTokens() async throws {
        let old = try KeyRing.generate()
        let fresh = try KeyRing.generate()
        let before = await AccessTokenService(keyRing: old)
        let (token, _) = try await before.issue(userId: UUID(), sessionId: UUID())
        var rotated = fresh
        rotated.signingKeys.append(contentsOf: old.signingKeys)
        let after = await AccessTokenService(keyRing: rotated)
        _ = try await after.verify(token)
        let (newToken, _) = try await after.issue(userId: UUID(), sessionId: UUID())
        #expect(
            newToken.split(separator: ".").first.flatMap { Base64URL.decode(String($0)) }.map { String(decoding: $0, as: UTF8.self) }?
                .contains(fresh.signingKeys[0].kid) == true)
    }
}

@Suite("Keys and field encryption")
struct FieldCipherTests {
    @Test func encryptsWithTheNewestKeyAndDecryptsWithAny() throws {
        var ring = try KeyRing.generate()
        let first = FieldCipher(keyRing: ring)
        let stored = try first.encrypt("ann@example.com", context: "users.accounts.email:1")
        #expect(!String(decoding: stored, as: UTF8.self).contains("ann@example.com"))
        ring.dataKeys.insert(KeyRing.DataKey(version: 2, key: SymmetricKey(size: .bits256)), at: 0)
        let second = FieldCipher(keyRing: ring)
        #expect(try second.decrypt(stored, context: "users.accounts.email:1") == "ann@example.com")
        let newer = try second.encrypt("ann@example.com", context: "users.accounts.email:1")
        #expect(FieldCipher.keyVersion(of: newer) == 2)
        #expect(FieldCipher.keyVersion(of: stored) == 1)
    }

    @Test func ciphertextIsBoundToItsPlace() throws {
        let cipher = FieldCipher(keyRing: try KeyRing.generate())
        let stored = try cipher.encrypt("secret", context: "users.accounts.email:1")
        #expect(throws: FieldCipherError.self) { try cipher.decrypt(stored, context: "users.accounts.email:2") }
        var flipped = stored
        flipped[flipped.count - 1] ^= 0x01
        #expect(throws: FieldCipherError.self) { try cipher.decrypt(flipped, context: "users.accounts.email:1") }
    }

    @Test func blindIndexIsKeyedAndStable() throws {
        let a = FieldCipher(keyRing: try KeyRing.generate())
        let b = FieldCipher(keyRing: try KeyRing.generate())
        #expect(a.blindIndex("x@example.com", purpose: "email") == a.blindIndex("x@example.com", purpose: "email"))
        #expect(a.blindIndex("x@example.com", purpose: "email") != b.blindIndex("x@example.com", purpose: "email"))
        #expect(a.blindIndex("x@example.com", purpose: "email") != a.blindIndex("x@example.com", purpose: "other"))
    }

    @Test func keyRingRoundTripsThroughTheEnvironment() throws {
        let ring = try KeyRing.generate()
        let environment = Dictionary(uniqueKeysWithValues: ring.environmentForm)
        let directory = NSTemporaryDirectory() + "keys-" + UUID().lowercased
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (loaded, source) = try KeyRing.load(environment: environment, dataDirectory: directory)
        guard case .environment = source else { Issue.record("expected keys from the environment"); return }
        #expect(loaded.signingKeys[0].kid == ring.signingKeys[0].kid)
        let cipher = FieldCipher(keyRing: loaded)
        #expect(try cipher.decrypt(try FieldCipher(keyRing: ring).encrypt("v", context: "c"), context: "c") == "v")
        #expect(!FileManager.default.fileExists(atPath: directory + "/keys.json"))
    }

    @Test func malformedOrPartialKeyVariablesAreRefused() throws {
        let ring = try KeyRing.generate()
        var environment = Dictionary(uniqueKeysWithValues: ring.environmentForm)
        environment["HERALD_DATA_KEYS"] = "1:not-base64!"
        #expect(throws: KeyRingError.self) { try KeyRing.load(environment: environment, dataDirectory: "/nonexistent") }
        environment.removeValue(forKey: "HERALD_DATA_KEYS")
        #expect(throws: KeyRingError.self) { try KeyRing.load(environment: environment, dataDirectory: "/nonexistent") }
    }

    @Test func generatedKeysAreReusedAndPrivate() throws {
        let directory = NSTemporaryDirectory() + "keys-" + UUID().lowercased
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (first, _) = try KeyRing.load(environment: [:], dataDirectory: directory)
        let (second, source) = try KeyRing.load(environment: [:], dataDirectory: directory)
        guard case .file = source else { Issue.record("expected the generated file to be reused"); return }
        #expect(first.signingKeys[0].kid == second.signingKeys[0].kid)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/keys.json")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }
}

@Suite("Address ranges")
struct CIDRTests {
    @Test func parsesAndMatches() throws {
        let ranges = try CIDR.parseList("10.0.0.0/8, 127.0.0.1/32,::1/128,fd00::/8")
        #expect(ranges[0].contains(try #require(IPAddress("10.1.2.3"))))
        #expect(!ranges[0].contains(try #require(IPAddress("11.0.0.1"))))
        #expect(ranges[1].contains(try #require(IPAddress("::ffff:127.0.0.1"))))
        #expect(ranges[2].contains(try #require(IPAddress("::1"))))
        #expect(ranges[3].contains(try #require(IPAddress("fd12:3456::1"))))
        #expect(throws: HeraldError.self) { try CIDR.parseList("10.0.0.0/33") }
        #expect(IPAddress("256.1.1.1") == nil)
        #expect(IPAddress("1::2::3") == nil)
    }
}
