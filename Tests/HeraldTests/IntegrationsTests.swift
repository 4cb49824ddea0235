import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldEvents
import HeraldHTTP
import Hummingbird
import HummingbirdTesting
import Testing

@testable import IntegrationsService

@Suite("Integration building blocks")
struct IntegrationUnitTests {
    /// Zapier shows a sample of every trigger it offers while a Zap is set up: each event a hook may subscribe to has one.
    @Test func everyOutboundEventHasAZapierSample() throws {
        let site = UUID()
        let organization = UUID()
        for type in OutboundEvents.types {
            let sample = try #require(IntegrationsService.sample(type, siteId: site, organizationId: organization), "no sample for \(type)")
            guard case .object(let fields) = sample, case .object(let data)? = fields["data"] else {
                Issue.record("\(type): \(sample)")
                continue
            }
            #expect(fields["type"] == .string(type))
            #expect(!data.isEmpty)
        }
        let threshold = try #require(IntegrationsService.sample("usage.threshold", siteId: site, organizationId: organization))
        guard case .object(let fields) = threshold, case .object(let data)? = fields["data"] else { return }
        #expect(data["organizationId"] == .string(organization.lowercased) && data["metric"] == .string("impressions"))
        #expect(IntegrationsService.sample("storage.reported", siteId: site, organizationId: organization) == nil)
    }

    @Test func shopifyStyleSignatures() {
        let body = Array(#"{"id":1}"#.utf8)
        let signature = "Ue8hXbBYjyoEiTTpYj8pUGyOybvcUkRsWfSEa5Q1gmQ="  // base64 HMAC-SHA256("secret", body)
        let computed = Data(HMACSHA256.mac(key: "secret", message: body)).base64EncodedString()
        #expect(WebhookSignature.verifyBase64HMAC(body: body, secret: "secret", signature: computed))
        #expect(!WebhookSignature.verifyBase64HMAC(body: body, secret: "other", signature: computed))
        #expect(!WebhookSignature.verifyBase64HMAC(body: body, secret: "secret", signature: signature + "x"))
        #expect(!WebhookSignature.verifyBase64HMAC(body: body, secret: "secret", signature: "not base64!"))
    }

    @Test func standardWebhooksSignAndVerify() throws {
        let secret = WebhookSignature.newSecret()
        #expect(secret.hasPrefix("whsec_"))
        let body = Array(#"{"type":"x"}"#.utf8)
        let now = Date()
        let signature = WebhookSignature.signStandard(id: "msg_1", timestamp: Int64(now.timeIntervalSince1970), body: body, secret: secret)
        try WebhookSignature.verifyStandard(
            body: body, id: "msg_1", timestamp: String(Int64(now.timeIntervalSince1970)), signatures: "v1,bogus " + signature, secret: secret,
            now: now)
        #expect(throws: WebhookSignature.StandardFailure.noMatchingSignature) {
            try WebhookSignature.verifyStandard(
                body: body + [0x20], id: "msg_1", timestamp: String(Int64(now.timeIntervalSince1970)), signatures: signature, secret: secret, now: now
            )
        }
        #expect(throws: WebhookSignature.StandardFailure.self) {
            try WebhookSignature.verifyStandard(
                body: body, id: "msg_1", timestamp: String(Int64(now.timeIntervalSince1970) - 301), signatures: signature, secret: secret, now: now)
        }
        #expect(throws: WebhookSignature.StandardFailure.missingHeaders) {
            try WebhookSignature.verifyStandard(body: body, id: nil, timestamp: "1", signatures: signature, secret: secret, now: now)
        }
    }

    @Test func privateAddressesAreRefused() async throws {
        let guardian = OutboundGuard()
        for url in [
            "http://127.0.0.1/x", "http://169.254.169.254/latest", "http://10.1.2.3/", "http://[::1]/", "http://[fd00::1]/", "http://localhost/",
        ] {
            await #expect(throws: OutboundGuard.Refusal.self, "\(url)") { _ = try await guardian.check(url) }
        }
        await #expect(throws: OutboundGuard.Refusal.notHTTP) { _ = try await guardian.check("file:///etc/passwd") }
        let allowed = OutboundGuard(allowed: try CIDR.parseList("127.0.0.0/8"))
        _ = try await allowed.check("http://127.0.0.1:9/x")
        _ = try await OutboundGuard().check("https://93.184.216.34/")
    }

    @Test func retryScheduleEndsInADeadLetter() {
        let policy = WebhookRetryPolicy()
        #expect(policy.delay(afterAttempts: 0) == 0)
        let second = policy.delay(afterAttempts: 1) ?? 0
        #expect(second >= 4.5 && second <= 5.5)
        #expect(policy.delay(afterAttempts: 7) != nil)
        #expect(policy.delay(afterAttempts: 8) == nil)
    }

    @Test func mappingsAreCheckedAgainstTheSample() {
        var validator = Validator()
        let sample: JSONValue = .object(["customer": .object(["name": .string("Ann")]), "items": .array([.object(["title": .string("Cap")])])])
        _ = IntegrationConfig.validated(
            type: .webhook,
            config: [
                "mapping": .object(["firstName": .string("/customer/name"), "productName": .string("/items/0/title")]), "samplePayload": sample,
            ],
            existing: nil, into: &validator
        )
        #expect(validator.errors.isEmpty)
        var bad = Validator()
        _ = IntegrationConfig.validated(
            type: .webhook,
            config: [
                "mapping": .object(["firstName": .string("/customer/first"), "shoeSize": .string("/x"), "city": .string("no-slash")]),
                "samplePayload": sample,
            ],
            existing: nil, into: &bad
        )
        #expect(Set(bad.errors.map(\.field)) == ["config.mapping.firstName", "config.mapping.shoeSize", "config.mapping.city"])
    }

    @Test func shopifyOrdersBecomePurchases() throws {
        let order = try JSONDecoder().decode(
            JSONValue.self,
            from: Data(
                #"{"id": 7, "created_at": "2026-01-02T03:04:05Z", "customer": {"first_name": "Ann", "last_name": "Lee", "email": "a@b.co"}, "billing_address": {"city": "Oslo", "country": "Norway"}, "line_items": [{"title": "Cap"}]}"#
                    .utf8)
        )
        let integration = Integration(
            id: UUID(), siteId: UUID(), organizationId: UUID(), type: .shopify, name: "s", status: "active", config: IntegrationConfig(),
            secrets: IntegrationSecrets(hookToken: "t"), health: .init(), createdAt: Date(), updatedAt: Date()
        )
        guard case .activity(let request, let key) = InboundTransformer.shopify(order, topic: "orders/create", integration: integration) else {
            Issue.record("not an activity")
            return
        }
        #expect(key == "order:7")
        #expect(request.type == "purchase")
        #expect(request.firstName == "Ann")
        #expect(request.city == "Oslo")
        #expect(request.productName == "Cap")
        guard case .ignored = InboundTransformer.shopify(order, topic: "products/update", integration: integration) else {
            Issue.record("unknown topics are ignored")
            return
        }
    }
}

/// HMAC-SHA256 for the tests, independent of the code under test.
enum HMACSHA256 {
    static func mac(key: String, message: [UInt8]) -> [UInt8] {
        let blockSize = 64
        var keyBytes = Array(key.utf8)
        if keyBytes.count > blockSize { keyBytes = SHA256Digest.hash(keyBytes) }
        keyBytes += [UInt8](repeating: 0, count: blockSize - keyBytes.count)
        let inner = SHA256Digest.hash(keyBytes.map { $0 ^ 0x36 } + message)
        return SHA256Digest.hash(keyBytes.map { $0 ^ 0x5c } + inner)
    }
}

enum SHA256Digest {
    static func hash(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
}

@Suite("Integrations API")
struct IntegrationsAPITests {
    @Test(arguments: TestStore.available)
    func integrationsAreValidatedMaskedAndIsolated(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let path = "/sites/\(fixture.site)/integrations"
            let missing = try await client.call(.post, path, json: ["type": "shopify", "config": ["shopDomain": "not a shop"]], token: fixture.token)
            expectProblem(missing, .unprocessableContent)
            let fields = Set(((missing.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["config.shopDomain", "config.webhookSecret"])
            expectProblem(try await client.call(.post, path, json: ["type": "ftp"], token: fixture.token), .unprocessableContent)

            let created = try await client.call(
                .post, path,
                json: ["type": "shopify", "name": "Store", "config": ["shopDomain": "Acme.myshopify.com", "webhookSecret": "very-secret-value"]],
                token: fixture.token
            )
            #expect(created.status == .created, "\(created.text)")
            #expect(!created.text.contains("very-secret-value"))
            #expect((created.json["credentials"] as? [String: Any])?["webhookSecret"] as? String == "…alue")
            #expect((created.json["config"] as? [String: Any])?["shopDomain"] as? String == "acme.myshopify.com")
            let id = try #require(created["id"])
            #expect(created["webhookUrl"]?.hasPrefix("http://herald.test/hooks/") == true)

            let renamed = try await client.call(.put, "\(path)/\(id)", json: ["name": "Renamed", "status": "disabled"], token: fixture.token)
            #expect(renamed["name"] == "Renamed")
            #expect(renamed["status"] == "disabled")

            let stranger = try await client.signup()
            expectProblem(try await client.call(.get, "\(path)/\(id)", token: stranger.token), .notFound)
            expectProblem(try await client.call(.get, path, token: stranger.token), .notFound)
            expectProblem(try await client.call(.get, "/sites/\(fixture.site)/webhooks", token: stranger.token), .notFound)
            expectProblem(try await client.call(.post, "/hooks/not-a-token", raw: "{}"), .notFound)

            #expect(try await client.call(.delete, "\(path)/\(id)", token: fixture.token).status == .noContent)
            expectProblem(try await client.call(.get, "\(path)/\(id)", token: fixture.token), .notFound)
        }
    }

    @Test(arguments: TestStore.available)
    func receiverURLsInsideTheNetworkAreRefused(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            for url in ["http://127.0.0.1:9/x", "http://169.254.169.254/", "http://localhost/x", "gopher://example.com"] {
                let refused = try await client.call(
                    .post, "/sites/\(fixture.site)/webhooks", json: ["url": url, "eventTypes": ["activity.captured"]], token: fixture.token)
                expectProblem(refused, .unprocessableContent)
            }
            let badTypes = try await client.call(
                .post, "/sites/\(fixture.site)/webhooks", json: ["url": "https://93.184.216.34/x", "eventTypes": ["user.created"]],
                token: fixture.token
            )
            expectProblem(badTypes, .unprocessableContent)
        }
    }
}
