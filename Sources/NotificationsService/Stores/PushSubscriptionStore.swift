import Foundation
import HeraldCore
import HeraldPush
import HeraldSecurity
import HeraldStorage

/// A browser's subscription to a site's pushes.
struct PushSubscriptionRecord: Sendable {
    var id: UUID
    var siteId: UUID
    var subscription: WebPushSubscription
    /// `active`, or `gone` (the push service said it ended, or the visitor unsubscribed).
    var status: String
    var statusReason: String?
    var createdAt: Date
}

/// The browsers subscribed to each site's pushes. The endpoint (a capability URL) and the keys are stored encrypted;
/// a keyed hash of the endpoint finds a subscription again.
struct PushSubscriptionStore: Sendable {
    typealias T = NotificationsTables
    let cipher: FieldCipher

    func endpointIndex(_ endpoint: String, siteId: UUID) -> [UInt8] {
        cipher.blindIndex("\(siteId.lowercased):\(endpoint)", purpose: "push-endpoint")
    }

    static func context(_ id: UUID) -> String { "notifications.push_subscriptions.subscription:\(id.lowercased)" }

    /// Stores a subscription, or renews the one with the same endpoint (new keys, active again); returns its id.
    func upsert(_ subscription: WebPushSubscription, siteId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws -> UUID {
        let index = endpointIndex(subscription.endpoint.absoluteString, siteId: siteId)
        let existing: UUID? = try await tx.queryFirst(
            "SELECT id FROM \(T.pushSubscriptions) WHERE site_id = \(siteId) AND endpoint_index = \(index)"
        )?.get("id")
        let id = existing ?? UUID.v7()
        let sealed = try cipher.encrypt(Self.encode(subscription), context: Self.context(id))
        if existing != nil {
            try await tx.execute(
                """
                UPDATE \(T.pushSubscriptions) SET subscription_encrypted = \(sealed), status = 'active', status_reason = NULL,
                    updated_at = \(now)
                WHERE id = \(id)
                """
            )
        } else {
            try await tx.execute(
                """
                INSERT INTO \(T.pushSubscriptions) (id, site_id, organization_id, endpoint_index, subscription_encrypted, status, created_at,
                    updated_at)
                VALUES (\(id), \(siteId), \(organizationId), \(index), \(sealed), 'active', \(now), \(now))
                """
            )
        }
        return id
    }

    func find(_ id: UUID, in tx: any SQLExecutor) async throws -> PushSubscriptionRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.pushSubscriptions) WHERE id = \(id)").map(decode)
    }

    func activeIds(siteId: UUID, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query("SELECT id FROM \(T.pushSubscriptions) WHERE site_id = \(siteId) AND status = 'active' ORDER BY id").map {
            try $0.get("id")
        }
    }

    func counts(siteId: UUID, in tx: any SQLExecutor) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await tx.query("SELECT status, COUNT(*) AS n FROM \(T.pushSubscriptions) WHERE site_id = \(siteId) GROUP BY status") {
            counts[try row.get("status")] = try row.get("n")
        }
        return counts
    }

    /// Ends a subscription (the visitor unsubscribed, or the push service said it is gone); false when unknown.
    func end(endpoint: String, siteId: UUID, reason: String, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query(
            """
            UPDATE \(T.pushSubscriptions) SET status = 'gone', status_reason = \(reason), updated_at = \(now)
            WHERE site_id = \(siteId) AND endpoint_index = \(endpointIndex(endpoint, siteId: siteId)) RETURNING id
            """
        ).isEmpty
    }

    func end(_ id: UUID, reason: String, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "UPDATE \(T.pushSubscriptions) SET status = 'gone', status_reason = \(reason), updated_at = \(now) WHERE id = \(id)"
        )
    }

    func decode(_ row: SQLRow) throws -> PushSubscriptionRecord {
        let id: UUID = try row.get("id")
        let text = try cipher.decrypt(try row.get("subscription_encrypted"), context: Self.context(id))
        guard let subscription = Self.decode(text) else { throw FieldCipherError.cannotDecrypt }
        return PushSubscriptionRecord(
            id: id, siteId: try row.get("site_id"), subscription: subscription, status: try row.get("status"),
            statusReason: try row.get("status_reason"), createdAt: try row.get("created_at")
        )
    }

    /// `endpoint p256dh auth` (the keys in base64url: no spaces in any of them).
    static func encode(_ subscription: WebPushSubscription) -> String {
        "\(subscription.endpoint.absoluteString) \(Base64URL.encode(subscription.p256dh)) \(Base64URL.encode(subscription.auth))"
    }

    static func decode(_ text: String) -> WebPushSubscription? {
        let parts = text.split(separator: " ").map(String.init)
        guard parts.count == 3, let endpoint = URL(string: parts[0]), let p256dh = Base64URL.decode(parts[1]), let auth = Base64URL.decode(parts[2])
        else { return nil }
        return WebPushSubscription(endpoint: endpoint, p256dh: p256dh, auth: auth)
    }
}
