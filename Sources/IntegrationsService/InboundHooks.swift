import Foundation
import HTTPTypes
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird
import NIOCore
import NIOFoundationCompat

/// A verified inbound delivery, queued for transformation. The payload travels encrypted: orders carry
/// customers' personal data.
public struct IntegrationDeliveryReceived: DomainEvent {
    public static let eventType = "integration.delivery_received"
    public static let schemaVersion = 1
    public var deliveryId: UUID
    public var integrationId: UUID
    public var topic: String?
    public var sourceDeliveryId: String?
    /// Base64 of the payload encrypted with context `integrations.delivery:<deliveryId>`.
    public var payloadEncrypted: String
}

extension IntegrationsService {
    static let maxHookBody = 1024 * 1024

    /// Receives a webhook for an integration, identified by the unguessable token in its URL. It verifies the
    /// source's signature, records the delivery (deduplicated on the source's delivery id) and queues the
    /// payload; the activity is made off the request. Forged or stale deliveries are refused with 401 and recorded.
    @Sendable func receiveHook(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        var body = request
        let buffer: ByteBuffer
        do {
            buffer = try await body.collectBody(upTo: Self.maxHookBody)
        } catch {
            throw HeraldError.payloadTooLarge(limit: Self.maxHookBody)
        }
        let raw = Array(buffer: buffer)
        guard token.utf8.count <= 100,
            let route = try await database.transaction(.system, { tx in try await integrations.route(token: token, in: tx) })
        else {
            throw HeraldError.notFound("No integration has this webhook URL. The integration")
        }
        let scope = TenantScope.organization(route.organizationId)
        guard let integration = try await database.transaction(scope, { try await integrations.find(route.integrationId, in: $0) }) else {
            throw HeraldError.notFound("The integration")
        }
        let headers = request.headers
        func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }
        let now = Date()
        var delivery = InboundDelivery(
            id: .v7(at: now), integrationId: integration.id, receivedAt: now, sourceDeliveryId: nil, topic: nil, status: "received",
            reason: nil, activityId: nil, signatureVerified: false, processedAt: nil
        )

        // Verify the sender and read its delivery id and topic.
        var refusal: String?
        switch integration.type {
        case .shopify:
            delivery.sourceDeliveryId = header("X-Shopify-Webhook-Id")
            delivery.topic = header("X-Shopify-Topic")
            if let signature = header("X-Shopify-Hmac-Sha256"), let secret = integration.secrets.webhookSecret,
                WebhookSignature.verifyBase64HMAC(body: raw, secret: secret, signature: signature)
            {
                delivery.signatureVerified = true
                if let shop = header("X-Shopify-Shop-Domain"), shop.lowercased() != integration.config.shopDomain {
                    refusal = "the delivery is for another shop (\(shop.prefix(100)))"
                }
            } else {
                refusal = header("X-Shopify-Hmac-Sha256") == nil ? "missing X-Shopify-Hmac-Sha256" : "X-Shopify-Hmac-Sha256 does not match the body"
            }
        case .woocommerce:
            delivery.sourceDeliveryId = header("X-WC-Webhook-Delivery-ID")
            delivery.topic = header("X-WC-Webhook-Topic")
            if header("X-WC-Webhook-Signature") == nil, let text = String(bytes: raw, encoding: .utf8), text.hasPrefix("webhook_id=") {
                // WooCommerce pings a new webhook, unsigned, and deactivates it unless the ping succeeds.
                delivery.topic = "ping"
                delivery.status = "ignored"
                delivery.reason = "ping sent when the webhook was created"
                delivery.processedAt = now
                try await database.transaction(scope) {
                    try await deliveries.insert(delivery, siteId: route.siteId, organizationId: route.organizationId, in: $0)
                }
                return try Self.hookResponse(HookAnswer(deliveryId: delivery.id, status: "ignored"))
            }
            if let signature = header("X-WC-Webhook-Signature"), let secret = integration.secrets.webhookSecret,
                WebhookSignature.verifyBase64HMAC(body: raw, secret: secret, signature: signature)
            {
                delivery.signatureVerified = true
            } else {
                refusal =
                    header("X-WC-Webhook-Signature") == nil ? "missing X-WC-Webhook-Signature" : "X-WC-Webhook-Signature does not match the body"
            }
        case .webhook:
            delivery.sourceDeliveryId = header("webhook-id")
            do {
                try WebhookSignature.verifyStandard(
                    body: raw, id: header("webhook-id"), timestamp: header("webhook-timestamp"), signatures: header("webhook-signature"),
                    secret: integration.secrets.webhookSecret ?? "", now: now
                )
                delivery.signatureVerified = true
            } catch {
                refusal = error.description
            }
        case .zapier:
            throw HeraldError.notFound("Zapier integrations receive no webhooks; Zaps call /zapier/actions/activities. The webhook URL")
        }
        if let id = delivery.sourceDeliveryId { delivery.sourceDeliveryId = String(id.prefix(200)) }
        if let topic = delivery.topic { delivery.topic = String(topic.prefix(100)) }

        if let refusal {
            delivery.status = "rejected"
            delivery.reason = refusal
            delivery.processedAt = now
            try await database.transaction(scope) {
                try await deliveries.insert(delivery, siteId: route.siteId, organizationId: route.organizationId, in: $0)
            }
            throw HeraldError(status: 401, slug: "invalid-signature", title: "Unauthorized", detail: "The webhook was refused: \(refusal).")
        }
        if integration.status != "active" {
            delivery.status = "ignored"
            delivery.reason = "the integration is disabled"
            delivery.processedAt = now
            try await database.transaction(scope) {
                try await deliveries.insert(delivery, siteId: route.siteId, organizationId: route.organizationId, in: $0)
            }
            return try Self.hookResponse(HookAnswer(deliveryId: delivery.id, status: "ignored"))
        }

        let sealed = Data(try cipher.encrypt(String(decoding: raw, as: UTF8.self), context: "integrations.delivery:\(delivery.id.lowercased)"))
        let received = IntegrationDeliveryReceived(
            deliveryId: delivery.id, integrationId: integration.id, topic: delivery.topic, sourceDeliveryId: delivery.sourceDeliveryId,
            payloadEncrypted: sealed.base64EncodedString()
        )
        do {
            try await database.transaction(scope) { tx in
                try await deliveries.insert(delivery, siteId: route.siteId, organizationId: route.organizationId, in: tx)
                try await Outbox.append(received, organizationId: route.organizationId, siteId: route.siteId, in: tx)
            }
        } catch StorageError.uniqueViolation {
            // The same delivery again (sources retry): record it, apply nothing.
            var duplicate = delivery
            duplicate.id = .v7()
            duplicate.status = "duplicate"
            duplicate.reason = "already received delivery \(delivery.sourceDeliveryId ?? "")"
            duplicate.processedAt = now
            try await database.transaction(scope) {
                try await deliveries.insert(duplicate, siteId: route.siteId, organizationId: route.organizationId, in: $0)
            }
            return try Self.hookResponse(HookAnswer(deliveryId: duplicate.id, status: "duplicate"))
        }
        bus.didCommitEvents()
        return try Self.hookResponse(HookAnswer(deliveryId: delivery.id, status: "received"))
    }

    static func hookResponse(_ answer: HookAnswer) throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(data: try JSONEncoder.herald.encode(answer)))
        )
    }
}
