import Foundation
import HeraldCore
import HeraldPush
import HeraldSecurity
import HeraldStorage

/// Where a push goes: a browser's Web Push subscription, or a Firebase Cloud Messaging registration token (an app's
/// or a page using Firebase's SDK).
enum PushTarget: Sendable, Equatable {
    case webPush(WebPushSubscription)
    case fcm(token: String)

    /// What finds the subscription again (its keyed hash is stored): the endpoint, or `fcm:` and the token. Endpoints
    /// are http(s) URLs, so the two never collide.
    var key: String {
        switch self {
        case .webPush(let subscription): subscription.endpoint.absoluteString
        case .fcm(let token): "fcm:" + token
        }
    }
}

/// A browser's or app's subscription to a site's pushes.
struct PushSubscriptionRecord: Sendable {
    var id: UUID
    var siteId: UUID
    var target: PushTarget
    /// `active`, or `gone` (the push service said it ended, or the visitor unsubscribed).
    var status: String
    var statusReason: String?
    var createdAt: Date
}

/// The browsers and apps subscribed to each site's pushes. The endpoint (a capability URL) and the keys, or the FCM
/// registration token, are stored encrypted; a keyed hash of the endpoint or token finds a subscription again.
struct PushSubscriptionStore: Sendable {
    typealias T = NotificationsTables
    let cipher: FieldCipher

    /// `key`: ``PushTarget/key``.
    func endpointIndex(_ key: String, siteId: UUID) -> [UInt8] {
        cipher.blindIndex("\(siteId.lowercased):\(key)", purpose: "push-endpoint")
    }

    static func context(_ id: UUID) -> String { "notifications.push_subscriptions.subscription:\(id.lowercased)" }

    /// Stores a subscription, or renews the one with the same endpoint or token (new keys, active again); returns its id.
    func upsert(_ target: PushTarget, siteId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws -> UUID {
        let index = endpointIndex(target.key, siteId: siteId)
        let existing: UUID? = try await tx.queryFirst(
            "SELECT id FROM \(T.pushSubscriptions) WHERE site_id = \(siteId) AND endpoint_index = \(index)"
        )?.get("id")
        let id = existing ?? UUID.v7()
        let sealed = try cipher.encrypt(Self.encode(target), context: Self.context(id))
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
    /// `key`: ``PushTarget/key``.
    func end(key: String, siteId: UUID, reason: String, now: Date, in tx: any SQLExecutor) async throws -> Bool {
        try await !tx.query(
            """
            UPDATE \(T.pushSubscriptions) SET status = 'gone', status_reason = \(reason), updated_at = \(now)
            WHERE site_id = \(siteId) AND endpoint_index = \(endpointIndex(key, siteId: siteId)) RETURNING id
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
        guard let target = Self.decode(text) else { throw FieldCipherError.cannotDecrypt }
        return PushSubscriptionRecord(
            id: id, siteId: try row.get("site_id"), target: target, status: try row.get("status"),
            statusReason: try row.get("status_reason"), createdAt: try row.get("created_at")
        )
    }

    /// Web push: `endpoint p256dh auth` (the keys in base64url: no spaces in any of them). FCM: `fcm token` (tokens
    /// have no spaces either). The kind lives inside the encrypted value, so the table needs no column for it.
    static func encode(_ target: PushTarget) -> String {
        switch target {
        case .webPush(let subscription):
            "\(subscription.endpoint.absoluteString) \(Base64URL.encode(subscription.p256dh)) \(Base64URL.encode(subscription.auth))"
        case .fcm(let token): "fcm \(token)"
        }
    }

    static func decode(_ text: String) -> PushTarget? {
        let parts = text.split(separator: " ").map(String.init)
        if parts.count == 2, parts[0] == "fcm" { return .fcm(token: parts[1]) }
        guard parts.count == 3, let endpoint = URL(string: parts[0]), let p256dh = Base64URL.decode(parts[1]), let auth = Base64URL.decode(parts[2])
        else { return nil }
        return .webPush(WebPushSubscription(endpoint: endpoint, p256dh: p256dh, auth: auth))
    }
}
