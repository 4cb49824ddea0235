import Foundation
import HeraldCore
import HeraldStorage

/// One email or push: an activity, as a notification renders it, to one recipient or browser subscription.
struct ChannelDelivery: Sendable {
    var id: UUID
    var siteId: UUID
    var notificationId: UUID
    var activityId: UUID
    /// The email recipient or push subscription.
    var targetId: UUID
    /// The email's subject or the push's title.
    var title: String
    var body: String
    /// Where a click on a push leads (the activity's product page).
    var url: String?
    /// `pending`, `sent`, `failed` (refused for good or retries exhausted) or `skipped` (the target left first).
    var status: String
    var attempts: Int
    var nextAttemptAt: Date?
    var lastError: String?
    var providerMessageId: String?
    var createdAt: Date
    var sentAt: Date?
}

/// A notification's settings for one channel.
struct ChannelSettings: Sendable, Equatable {
    var notificationId: UUID
    var enabled: Bool
    /// A message template (the notification's placeholders) for the email's subject or the push's title.
    var title: String
    var updatedAt: Date?
}

/// A channel's deliveries and the queue of due ones its sender claims across tenants; the same for every channel,
/// over that channel's tables.
struct ChannelDeliveryStore: Sendable {
    typealias T = NotificationsTables
    let channel: String
    let deliveries: Table
    let queue: Table
    /// The column naming the recipient or subscription.
    let target: String

    static let email = ChannelDeliveryStore(channel: "email", deliveries: T.emailDeliveries, queue: T.emailQueue, target: "recipient_id")
    static let push = ChannelDeliveryStore(channel: "push", deliveries: T.pushDeliveries, queue: T.pushQueue, target: "subscription_id")

    // MARK: Settings (one table for every channel)

    func settings(notificationId: UUID, in tx: any SQLExecutor) async throws -> ChannelSettings? {
        try await tx.queryFirst("SELECT * FROM \(T.channelSettings) WHERE notification_id = \(notificationId) AND channel = \(channel)")
            .map(decodeSettings)
    }

    /// The notifications of a site whose new activities also go out on this channel.
    func enabledSettings(siteId: UUID, in tx: any SQLExecutor) async throws -> [ChannelSettings] {
        try await tx.query(
            "SELECT * FROM \(T.channelSettings) WHERE site_id = \(siteId) AND channel = \(channel) AND enabled = \(true)"
        ).map(decodeSettings)
    }

    func saveSettings(_ settings: ChannelSettings, siteId: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.channelSettings) (notification_id, channel, site_id, organization_id, enabled, title, updated_at)
            VALUES (\(settings.notificationId), \(channel), \(siteId), \(organizationId), \(settings.enabled), \(settings.title), \(now))
            ON CONFLICT (notification_id, channel) DO UPDATE SET enabled = excluded.enabled, title = excluded.title,
                updated_at = excluded.updated_at
            """
        )
    }

    func decodeSettings(_ row: SQLRow) throws -> ChannelSettings {
        ChannelSettings(
            notificationId: try row.get("notification_id"), enabled: try row.get("enabled"), title: try row.get("title"),
            updatedAt: try row.get("updated_at")
        )
    }

    // MARK: Deliveries

    /// Records deliveries once per activity, notification and target (a redelivered event adds nothing) in
    /// multi-row statements of at most `batchSize` rows (a site with 10,000 recipients is 50 statements, not
    /// 20,000), and queues the new ones; the number new.
    func insert(_ batch: [ChannelDelivery], organizationId: UUID, in tx: any SQLExecutor) async throws -> Int {
        var created = 0
        var start = batch.startIndex
        while start < batch.endIndex {
            let chunk = batch[start..<min(start + Self.batchSize, batch.endIndex)]
            start = chunk.endIndex
            let rows = chunk.map { delivery -> SQL in
                """
                (\(delivery.id), \(delivery.siteId), \(organizationId), \(delivery.notificationId), \(delivery.activityId), \(delivery.targetId),
                 \(delivery.title), \(delivery.body), \(delivery.url), 'pending', 0, \(delivery.createdAt), \(delivery.createdAt))
                """
            }
            let inserted = try await tx.query(
                """
                INSERT INTO \(deliveries) (id, site_id, organization_id, notification_id, activity_id, \(unsafeRaw: target), title, body,
                    url, status, attempts, next_attempt_at, created_at)
                VALUES \(SQL.joined(rows, separator: ", "))
                ON CONFLICT (activity_id, notification_id, \(unsafeRaw: target)) DO NOTHING RETURNING id, created_at
                """
            )
            guard !inserted.isEmpty else { continue }
            let queued = try inserted.map { row -> SQL in
                let id: UUID = try row.get("id")
                let due: Date = try row.get("created_at")
                return "(\(id), \(organizationId), \(due))"
            }
            try await tx.execute(
                """
                INSERT INTO \(queue) (delivery_id, organization_id, next_attempt_at) VALUES \(SQL.joined(queued, separator: ", "))
                ON CONFLICT (delivery_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, lease_until = NULL
                """
            )
            created += inserted.count
        }
        return created
    }

    /// Rows per multi-row insert: 13 values each, far below either store's limit on bound values.
    static let batchSize = 200

    func find(_ id: UUID, in tx: any SQLExecutor) async throws -> ChannelDelivery? {
        try await tx.queryFirst("SELECT * FROM \(deliveries) WHERE id = \(id)").map(decode)
    }

    func list(
        siteId: UUID, notificationId: UUID?, status: String?, before: TimeCursor?, limit: Int, in tx: any SQLExecutor
    ) async throws -> [ChannelDelivery] {
        var filters: SQL = ""
        if let notificationId { filters = filters + " AND notification_id = \(notificationId)" }
        if let status { filters = filters + " AND status = \(status)" }
        if let before { filters = filters + " AND (created_at, id) < (\(before.date), \(before.id))" }
        return try await tx.query(
            "SELECT * FROM \(deliveries) WHERE site_id = \(siteId)\(filters) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        ).map(decode)
    }

    /// Deliveries a site sent since `since`, and the earliest of them (when the window frees a place).
    func sentSince(siteId: UUID, since: Date, in tx: any SQLExecutor) async throws -> (count: Int, earliest: Date?) {
        let row = try await tx.queryFirst(
            "SELECT COUNT(*) AS n, MIN(sent_at) AS earliest FROM \(deliveries) WHERE site_id = \(siteId) AND sent_at >= \(since)"
        )
        return (try row?.get("n") ?? 0, try row?.get("earliest", as: Date?.self))
    }

    /// Serializes the sender's decisions for one site on this channel until the transaction ends, so two instances (or
    /// two tasks) cannot both take the last place in the hourly window. SQLite transactions are serial already.
    func lockSite(_ siteId: UUID, in tx: any SQLExecutor) async throws {
        guard tx.dialect == .postgres else { return }
        let bytes = siteId.uuid
        let high = [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5, bytes.6, bytes.7].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let key = Int64(bitPattern: high ^ (channel == "email" ? 0x656D_6169_6C00_0000 : 0x7075_7368_0000_0000))
        _ = try await tx.query("SELECT pg_advisory_xact_lock(\(key)) IS NOT NULL AS locked")
    }

    /// Takes a place in the site's hourly window before sending (`sent_at`), so concurrent sends count it; a retry or
    /// a failure gives the place back.
    func reserve(_ id: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(deliveries) SET sent_at = \(now) WHERE id = \(id)")
    }

    func markSent(_ id: UUID, providerMessageId: String?, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(deliveries) SET status = 'sent', attempts = attempts + 1, sent_at = \(now), next_attempt_at = NULL,
                provider_message_id = \(providerMessageId), last_error = NULL
            WHERE id = \(id)
            """
        )
        try await dequeue(id, in: tx)
    }

    /// Tries again at `next` (`attempted`: whether a send was tried, or only deferred).
    func markRetry(_ id: UUID, organizationId: UUID, error: String, next: Date, attempted: Bool, in tx: any SQLExecutor) async throws {
        let increment: SQL = attempted ? "attempts + 1" : "attempts"
        try await tx.execute(
            "UPDATE \(deliveries) SET attempts = \(increment), next_attempt_at = \(next), last_error = \(error), sent_at = NULL WHERE id = \(id)"
        )
        try await enqueue(id, organizationId: organizationId, at: next, in: tx)
    }

    /// Ends a delivery without sending it: `failed` after an attempt, `skipped` when it was not worth trying.
    func markEnded(_ id: UUID, status: String, error: String, attempted: Bool, in tx: any SQLExecutor) async throws {
        let increment: SQL = attempted ? "attempts + 1" : "attempts"
        try await tx.execute(
            """
            UPDATE \(deliveries) SET status = \(status), attempts = \(increment), next_attempt_at = NULL, last_error = \(error),
                sent_at = NULL
            WHERE id = \(id)
            """
        )
        try await dequeue(id, in: tx)
    }

    func decode(_ row: SQLRow) throws -> ChannelDelivery {
        ChannelDelivery(
            id: try row.get("id"), siteId: try row.get("site_id"), notificationId: try row.get("notification_id"),
            activityId: try row.get("activity_id"), targetId: try row.get(target), title: try row.get("title"), body: try row.get("body"),
            url: try row.get("url"), status: try row.get("status"), attempts: try row.get("attempts"),
            nextAttemptAt: try row.get("next_attempt_at"), lastError: try row.get("last_error"),
            providerMessageId: try row.get("provider_message_id"), createdAt: try row.get("created_at"), sentAt: try row.get("sent_at")
        )
    }

    // MARK: Queue

    func enqueue(_ deliveryId: UUID, organizationId: UUID, at date: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(queue) (delivery_id, organization_id, next_attempt_at) VALUES (\(deliveryId), \(organizationId), \(date))
            ON CONFLICT (delivery_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, lease_until = NULL
            """
        )
    }

    /// Leases up to `limit` due deliveries for two minutes (outside any tenant: the queue holds ids and times only).
    func claimDue(now: Date, limit: Int, in tx: any SQLExecutor) async throws -> [(deliveryId: UUID, organizationId: UUID)] {
        try await tx.query(
            """
            UPDATE \(queue) SET lease_until = \(now.addingTimeInterval(120))
            WHERE delivery_id IN (
                SELECT delivery_id FROM \(queue)
                WHERE next_attempt_at <= \(now) AND (lease_until IS NULL OR lease_until < \(now))
                ORDER BY next_attempt_at LIMIT \(limit))
            RETURNING delivery_id, organization_id
            """
        ).map { (try $0.get("delivery_id", as: UUID.self), try $0.get("organization_id", as: UUID.self)) }
    }

    func dequeue(_ deliveryId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(queue) WHERE delivery_id = \(deliveryId)")
    }
}
