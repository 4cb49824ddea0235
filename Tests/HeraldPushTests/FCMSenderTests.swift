import Foundation
import HeraldSecurity
import Testing
import _CryptoExtras

@testable import HeraldPush

@Suite("Firebase Cloud Messaging HTTP v1: the service account's assertion and FCM's answers")
struct FCMSenderTests {
    static func account(_ key: _RSA.Signing.PrivateKey, tokenURI: String = "https://oauth2.googleapis.com/token") throws -> [UInt8] {
        let file: [String: String] = [
            "type": "service_account", "project_id": "herald-test", "private_key_id": "abc",
            "private_key": key.pemRepresentation, "client_email": "herald@herald-test.iam.gserviceaccount.com",
            "token_uri": tokenURI,
        ]
        return Array(try JSONSerialization.data(withJSONObject: file))
    }

    static func part(_ text: Substring) throws -> [String: Any] {
        let data = try #require(Base64URL.decode(String(text)))
        return try #require(try JSONSerialization.jsonObject(with: Data(data)) as? [String: Any])
    }

    @Test func theAssertionIsAnRS256JWTGoogleAccepts() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let account = try FCMServiceAccount(json: try Self.account(key))
        #expect(account.projectId == "herald-test")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let jwt = try await account.assertion(now: now)
        let parts = jwt.split(separator: ".")
        #expect(parts.count == 3)
        let header = try Self.part(parts[0])
        #expect(header["alg"] as? String == "RS256")
        let claims = try Self.part(parts[1])
        #expect(claims["iss"] as? String == "herald@herald-test.iam.gserviceaccount.com")
        #expect(claims["scope"] as? String == "https://www.googleapis.com/auth/firebase.messaging")
        #expect(claims["aud"] as? String == "https://oauth2.googleapis.com/token")
        #expect(claims["iat"] as? Int == 1_800_000_000)
        #expect(claims["exp"] as? Int == 1_800_003_600)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try #require(Base64URL.decode(String(parts[2]))))
        let signed = Data("\(parts[0]).\(parts[1])".utf8)
        #expect(key.publicKey.isValidSignature(signature, for: signed, padding: .insecurePKCS1v1_5))
        let other = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        #expect(!other.publicKey.isValidSignature(signature, for: signed, padding: .insecurePKCS1v1_5))
    }

    @Test func aBrokenServiceAccountIsRefusedWithoutRepeatingTheKey() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        var file = try #require(try JSONSerialization.jsonObject(with: Data(try Self.account(key))) as? [String: String])
        for field in ["project_id", "client_email", "private_key"] {
            var broken = file
            broken[field] = nil
            #expect(throws: FCMError.self) { try FCMServiceAccount(json: Array(try JSONSerialization.data(withJSONObject: broken))) }
        }
        file["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        do {
            _ = try FCMServiceAccount(json: Array(try JSONSerialization.data(withJSONObject: file)))
            Issue.record("a broken key was accepted")
        } catch {
            #expect(!"\(error)".contains("AAAA"))
        }
        file["private_key"] = key.pemRepresentation
        file["token_uri"] = "ftp://example.com/token"
        #expect(throws: FCMError.self) { try FCMServiceAccount(json: Array(try JSONSerialization.data(withJSONObject: file))) }
        #expect(throws: FCMError.self) { try FCMServiceAccount(json: Array("[]".utf8)) }
    }

    @Test func theTokenAnswerIsReadAndKeptAtMostAnHour() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let ok = try FCMAccessTokens.parseToken(
            status: 200, body: Array(#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#.utf8), now: now, tokenURI: "t")
        #expect(ok.token == "ya29.abc" && ok.expires == now.addingTimeInterval(3599))
        let long = try FCMAccessTokens.parseToken(
            status: 200, body: Array(#"{"access_token":"x","expires_in":86400}"#.utf8), now: now, tokenURI: "t")
        #expect(long.expires == now.addingTimeInterval(3600))
        #expect(throws: FCMError.token("the token URI answered 400 (invalid_grant: Invalid JWT Signature.)", retryable: false)) {
            try FCMAccessTokens.parseToken(
                status: 400, body: Array(#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.utf8), now: now,
                tokenURI: "t")
        }
        #expect(throws: FCMError.self) { try FCMAccessTokens.parseToken(status: 200, body: Array("{}".utf8), now: now, tokenURI: "t") }
    }

    @Test func fcmAnswersMapToOutcomes() {
        func error(_ status: Int, _ code: String, _ message: String, extra: String = "") -> [UInt8] {
            Array(
                """
                {"error":{"code":\(status),"message":"\(message)","status":"\(code)","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"\(code)"}\(extra)]}}
                """.utf8)
        }
        #expect(
            FCMSender.outcome(status: 200, body: Array(#"{"name":"projects/p/messages/0:1"}"#.utf8), retryAfter: nil)
                == .accepted(name: "projects/p/messages/0:1"))
        #expect(
            FCMSender.outcome(status: 404, body: error(404, "UNREGISTERED", "Requested entity was not found."), retryAfter: nil)
                == .ended(reason: "FCM answered 404 UNREGISTERED: Requested entity was not found."))
        let badToken = error(
            400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
            extra: #",{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token"}]}"#)
        if case .ended = FCMSender.outcome(status: 400, body: badToken, retryAfter: nil) {} else { Issue.record("an invalid token must end") }
        if case .refused = FCMSender.outcome(status: 400, body: error(400, "INVALID_ARGUMENT", "Invalid value at 'message.ttl'"), retryAfter: nil) {
        } else {
            Issue.record("another invalid argument is the request's fault, not the token's")
        }
        #expect(
            FCMSender.outcome(status: 503, body: error(503, "UNAVAILABLE", "The service is currently unavailable."), retryAfter: "7")
                == .retry(reason: "FCM answered 503 UNAVAILABLE: The service is currently unavailable.", after: 7))
        if case .retry(_, nil) = FCMSender.outcome(status: 429, body: error(429, "QUOTA_EXCEEDED", "Quota exceeded."), retryAfter: nil) {
        } else {
            Issue.record("429 is retried")
        }
        if case .retry(_, let after?) = FCMSender.outcome(
            status: 500, body: Array("oops".utf8), retryAfter: "Sun, 06 Nov 2094 08:49:37 GMT", now: Date(timeIntervalSince1970: 0))
        {
            #expect(after > 3_000_000_000)
        } else {
            Issue.record("an HTTP date in Retry-After is honoured")
        }
        let thirdParty = FCMSender.outcome(status: 401, body: error(401, "THIRD_PARTY_AUTH_ERROR", "APNs certificate invalid"), retryAfter: nil)
        #expect(thirdParty == .refused(reason: "FCM answered 401 THIRD_PARTY_AUTH_ERROR: APNs certificate invalid"))
        if case .refused = FCMSender.outcome(status: 401, body: error(401, "UNAUTHENTICATED", "Bad token"), retryAfter: nil) {
        } else {
            Issue.record("401 is for the sender to handle")
        }
    }

    @Test func theMessageCarriesTheNotificationForWebAndApps() throws {
        let message = FCMMessage(title: "Kite Shop", body: "Sarah bought a kite", link: "https://kites.example.com/blue", tag: "n1", ttl: 3600)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(message.requestBody(token: "tok"))) as? [String: Any])
        let inner = try #require(body["message"] as? [String: Any])
        #expect(inner["token"] as? String == "tok")
        let webpush = try #require(inner["webpush"] as? [String: Any])
        #expect((webpush["fcm_options"] as? [String: String])?["link"] == "https://kites.example.com/blue")
        #expect((webpush["notification"] as? [String: String])?["title"] == "Kite Shop")
        #expect((webpush["headers"] as? [String: String])?["TTL"] == "3600")
        #expect((inner["data"] as? [String: String])?["url"] == "https://kites.example.com/blue")
        // FCM takes only https links in fcm_options.
        let plain = FCMMessage(title: "t", body: "b", link: "http://kites.example.com/", tag: "n1", ttl: 60)
        let plainBody = try #require(try JSONSerialization.jsonObject(with: Data(plain.requestBody(token: "tok"))) as? [String: Any])
        #expect(((plainBody["message"] as? [String: Any])?["webpush"] as? [String: Any])?["fcm_options"] == nil)
    }
}
