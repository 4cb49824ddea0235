import Crypto
import Foundation
import HeraldSecurity
import Testing

@testable import HeraldPush

@Suite("Web Push: RFC 8291 encryption and VAPID")
struct WebPushTests {
    /// RFC 8291 Appendix A: the example message, keys and salt, and the exact body they produce.
    @Test func encryptsTheRFC8291ExampleByteForByte() throws {
        let serverKey = try P256.KeyAgreement.PrivateKey(
            rawRepresentation: try #require(Base64URL.decode("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")))
        #expect(
            Base64URL.encode(serverKey.publicKey.x963Representation)
                == "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8")
        let body = try WebPushEncryption.encrypt(
            Array("When I grow up, I want to be a watermelon".utf8),
            p256dh: try #require(Base64URL.decode("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")),
            auth: try #require(Base64URL.decode("BTBZMqHH6r4Tts7J_aSIgg")), serverKey: serverKey,
            salt: try #require(Base64URL.decode("DGv6ra1nlYgDCS1FRnbzlw"))
        )
        #expect(
            Base64URL.encode(body)
                == "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        )
    }

    @Test func refusesWhatCannotBeSent() throws {
        let browser = P256.KeyAgreement.PrivateKey()
        let p256dh = [UInt8](browser.publicKey.x963Representation)
        #expect(throws: WebPushError.self) {
            try WebPushEncryption.encrypt([UInt8](repeating: 1, count: 4000), p256dh: p256dh, auth: Array(repeating: 0, count: 16))
        }
        #expect(throws: WebPushError.self) { try WebPushEncryption.encrypt([1], p256dh: p256dh, auth: [1, 2, 3]) }
        #expect(throws: WebPushError.self) {
            try WebPushEncryption.encrypt([1], p256dh: Array(repeating: 4, count: 65), auth: Array(repeating: 0, count: 16))
        }
        #expect(throws: WebPushError.self) { try VAPIDKey(privateKey: "not-a-key", subject: "mailto:ops@example.com") }
        #expect(throws: WebPushError.self) {
            try VAPIDKey(privateKey: Base64URL.encode(P256.Signing.PrivateKey().rawRepresentation), subject: "ops@example.com")
        }
    }

    @Test func vapidNamesTheEndpointsOriginAndVerifiesWithTheAdvertisedKey() throws {
        let key = VAPIDKey(privateKey: P256.Signing.PrivateKey(), subject: "mailto:ops@example.com")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let header = try key.authorization(endpoint: try #require(URL(string: "https://push.example.net:8443/send/abc?x=1")), now: now)
        let parts = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(parts[1] == "k=\(key.publicKey)")
        let token = String(parts[0].dropFirst("vapid t=".count))
        let pieces = token.split(separator: ".").map(String.init)
        #expect(pieces.count == 3)
        let claims = try JSONSerialization.jsonObject(with: Data(try #require(Base64URL.decode(pieces[1])))) as? [String: Any]
        #expect(claims?["aud"] as? String == "https://push.example.net:8443")
        #expect(claims?["sub"] as? String == "mailto:ops@example.com")
        #expect(claims?["exp"] as? Int == 1_800_000_000 + 12 * 3600)
        let publicKey = try P256.Signing.PublicKey(x963Representation: try #require(Base64URL.decode(key.publicKey)))
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: try #require(Base64URL.decode(pieces[2])))
        #expect(publicKey.isValidSignature(signature, for: Data("\(pieces[0]).\(pieces[1])".utf8)))
    }
}
