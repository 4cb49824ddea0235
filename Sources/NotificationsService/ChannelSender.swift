import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage
import Logging
import Metrics
import ServiceLifecycle

/// What one attempt to hand a delivery to its channel's provider came to.
enum ChannelOutcome: Sendable {
    case sent(providerMessageId: String?)
    /// Worth trying again (a temporary refusal, no answer); `after`: how long the provider asked to wait.
    case retry(String, after: TimeInterval?)
    /// Refused for good; `endsTarget` when the refusal is about the recipient or subscription itself (a bounced
    /// address, an expired subscription), which then gets nothing more.
    case failed(String, endsTarget: Bool)
}

/// How one channel (email, web push) reaches its targets; ``ChannelSender`` does the rest.
protocol ChannelTransport: Sendable {
    associatedtype Target: Sendable
    var deliveries: ChannelDeliveryStore { get }
    /// Deliveries a site may send in any rolling hour.
    var perSitePerHour: Int { get }
    /// The target if it may still receive deliveries, or why not.
    func target(_ id: UUID, in tx: any SQLExecutor) async throws -> Result<Target, SkipReason>
    func send(_ delivery: ChannelDelivery, to target: Target, organizationId: UUID, siteName: String) async -> ChannelOutcome
    /// Ends a target after a refusal about itself.
    func end(_ target: Target, reason: String, in tx: any SQLExecutor) async throws
}

struct SkipReason: Error {
    var message: String
}

/// Sends a channel's due deliveries: checks the target may still receive it and the site is within its hourly
/// limit, hands it to the transport, records the outcome, and schedules a retry with backoff or gives up. Deliveries
/// are rows claimed with a lease, so several instances share the work and a crash only delays one.
final class ChannelSender<Transport: ChannelTransport>: Service, Sendable {
    let database: any Database
    let transport: Transport
    let maxAttempts: Int
    let logger: Logger
    let signal = WakeSignal()
    let sent: Counter
    let failed: Counter
    static var parallel: Int { 4 }

    init(database: any Database, transport: Transport, maxAttempts: Int = 6, logger: Logger) {
        self.database = database
        self.transport = transport
        self.maxAttempts = maxAttempts
        self.logger = logger
        let channel = transport.deliveries.channel
        sent = Counter(label: "herald_channel_deliveries_total", dimensions: [("channel", channel), ("outcome", "sent")])
        failed = Counter(label: "herald_channel_deliveries_total", dimensions: [("channel", channel), ("outcome", "failed")])
    }

    func wake() { signal.signalAll() }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let worked = (try? await self.sendDue()) ?? false
                if !worked { await self.signal.wait(timeout: .seconds(1)) }
            }
        }
    }

    /// Claims a batch of due deliveries and sends them, a few at a time.
    func sendDue(now: Date = Date()) async throws -> Bool {
        let due = try await database.transaction(.system) { tx in
            try await transport.deliveries.claimDue(now: now, limit: Self.parallel * 4, in: tx)
        }
        guard !due.isEmpty else { return false }
        await withTaskGroup(of: Void.self) { group in
            var iterator = due.makeIterator()
            for _ in 0..<Self.parallel {
                guard let next = iterator.next() else { break }
                group.addTask { await self.deliver(next.deliveryId, organizationId: next.organizationId) }
            }
            while await group.next() != nil {
                if let next = iterator.next() { group.addTask { await self.deliver(next.deliveryId, organizationId: next.organizationId) } }
            }
        }
        return true
    }

    func deliver(_ deliveryId: UUID, organizationId: UUID) async {
        do {
            try await attempt(deliveryId, organizationId: organizationId)
        } catch {
            logger.warning(
                "delivery step failed", metadata: ["channel": "\(transport.deliveries.channel)", "delivery": "\(deliveryId)", "error": "\(error)"])
        }
    }

    private enum Plan {
        case done
        case send(ChannelDelivery, Transport.Target, siteName: String)
    }

    private func attempt(_ deliveryId: UUID, organizationId: UUID) async throws {
        let store = transport.deliveries
        let scope = TenantScope.organization(organizationId)
        let now = Date()
        let plan = try await database.transaction(scope) { tx -> Plan in
            guard let delivery = try await store.find(deliveryId, in: tx), delivery.status == "pending" else {
                try await store.dequeue(deliveryId, in: tx)
                return .done
            }
            let target: Transport.Target
            switch try await transport.target(delivery.targetId, in: tx) {
            case .success(let found): target = found
            case .failure(let skip):
                try await store.markEnded(deliveryId, status: "skipped", error: skip.message, attempted: false, in: tx)
                return .done
            }
            // The site's hourly limit: wait for the window to free a place rather than drop the delivery. Places are
            // taken under a per-site lock, before sending.
            try await store.lockSite(delivery.siteId, in: tx)
            let window = try await store.sentSince(siteId: delivery.siteId, since: now.addingTimeInterval(-3600), in: tx)
            if window.count >= transport.perSitePerHour {
                let next = max(now.addingTimeInterval(1), (window.earliest ?? now).addingTimeInterval(3600 + 1))
                try await store.markRetry(
                    deliveryId, organizationId: organizationId,
                    error: "waiting: the site sent its \(transport.perSitePerHour) \(store.channel) deliveries of the last hour", next: next,
                    attempted: false, in: tx
                )
                return .done
            }
            try await store.reserve(deliveryId, now: now, in: tx)
            let siteName = try await SiteStore().find(delivery.siteId, in: tx)?.name ?? "this site"
            return .send(delivery, target, siteName: siteName)
        }
        guard case .send(let delivery, let target, let siteName) = plan else { return }
        let outcome = await transport.send(delivery, to: target, organizationId: organizationId, siteName: siteName)
        try await database.transaction(scope) { tx in
            switch outcome {
            case .sent(let providerMessageId):
                try await store.markSent(deliveryId, providerMessageId: providerMessageId, now: Date(), in: tx)
                sent.increment()
            case .retry(let reason, let after) where delivery.attempts + 1 < maxAttempts:
                let next = Date().addingTimeInterval(max(after ?? 0, Self.backoff(attempt: delivery.attempts + 1)))
                try await store.markRetry(deliveryId, organizationId: organizationId, error: reason, next: next, attempted: true, in: tx)
                failed.increment()
            case .retry(let reason, _), .failed(let reason, endsTarget: false):
                try await store.markEnded(deliveryId, status: "failed", error: reason, attempted: true, in: tx)
                failed.increment()
            case .failed(let reason, endsTarget: true):
                try await store.markEnded(deliveryId, status: "failed", error: reason, attempted: true, in: tx)
                try await transport.end(target, reason: reason, in: tx)
                failed.increment()
            }
        }
    }

    /// 30 s, 2 min, 8 min, 32 min, then about 2 hours.
    static func backoff(attempt: Int) -> TimeInterval {
        min(30 * pow(4, Double(max(0, attempt - 1))), 7200)
    }
}

/// Turns a new activity into one delivery per target, on each channel, for each published `recent_activity`
/// notification that shows it and has that channel on, in the transaction that stores the activity: a redelivered
/// event adds nothing.
struct ChannelFanout: Sendable {
    struct Channel: Sendable {
        var deliveries: ChannelDeliveryStore
        /// The site's current targets (subscribed recipients, active subscriptions).
        var targets: @Sendable (UUID, any SQLExecutor) async throws -> [UUID]
    }

    let channels: [Channel]
    /// Only activities this recent go out (an import of last year's orders reaches no one).
    static let freshness: TimeInterval = 3600
    let notifications = NotificationStore()
    let sites = SiteStore()
    let holds = DeliveryHoldStore()

    /// The number of deliveries queued.
    func fanOut(_ activity: ActivityCaptured, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws -> Int {
        guard !channels.isEmpty, activity.occurredAt >= now.addingTimeInterval(-Self.freshness) else { return 0 }
        var enabled: [(channel: Channel, titles: [UUID: String], targets: [UUID])] = []
        for channel in channels {
            let settings = try await channel.deliveries.enabledSettings(siteId: activity.siteId, in: tx)
            guard !settings.isEmpty else { continue }
            let targets = try await channel.targets(activity.siteId, tx)
            guard !targets.isEmpty else { continue }
            enabled.append((channel, Dictionary(settings.map { ($0.notificationId, $0.title) }, uniquingKeysWith: { first, _ in first }), targets))
        }
        guard !enabled.isEmpty else { return 0 }
        // Billing paused the organization's popups: the other channels pause with them.
        if let hold = try await holds.find(organizationId: organizationId, in: tx), hold.paused { return 0 }
        guard let site = try await sites.find(activity.siteId, in: tx) else { return 0 }
        let record = ActivityRecord(
            id: activity.activityId, siteId: activity.siteId, type: activity.type, firstName: activity.firstName, city: activity.city,
            region: activity.region, country: activity.country, productName: activity.productName, productUrl: activity.productUrl,
            imageUrl: activity.imageUrl, rating: activity.rating, occurredAt: activity.occurredAt, provenance: activity.provenance
        )
        let values = FeedBuilder.values(for: record, site: site)
        var batches = [[ChannelDelivery]](repeating: [], count: enabled.count)
        for notification in try await notifications.published(siteId: activity.siteId, in: tx) where notification.type == .recentActivity {
            let content = notification.content.completed(for: notification.type)
            guard content.activityTypes?.contains(activity.type) ?? true else { continue }
            let templates = try await FeedBuilder().resolveTemplates(notification, in: tx)
            let body = Self.plainText(templates.main.render(values).runs)
            for (index, (_, titles, targets)) in enabled.enumerated() {
                guard let source = titles[notification.id] else { continue }
                let title = String(Self.plainText(((try? MessageTemplate(source)) ?? templates.main).render(values).runs).prefix(300))
                guard !body.isEmpty, !title.isEmpty else { continue }
                let url = activity.productUrl.flatMap(WebURL.validated)
                batches[index] += targets.map { targetId in
                    ChannelDelivery(
                        id: UUID.v7(), siteId: activity.siteId, notificationId: notification.id, activityId: activity.activityId,
                        targetId: targetId, title: title, body: body, url: url, status: "pending", attempts: 0, createdAt: now
                    )
                }
            }
        }
        var queued = 0
        for (index, batch) in batches.enumerated() where !batch.isEmpty {
            queued += try await enabled[index].channel.deliveries.insert(batch, organizationId: organizationId, in: tx)
        }
        return queued
    }

    /// A rendered message as plain text: relative times become "just now" (the delivery goes out at once).
    static func plainText(_ runs: [RenderedText.Run]) -> String {
        runs.map { run in
            switch run {
            case .text(let text): text
            case .timeAgo: "just now"
            case .live: ""
            case .livePlural(_, let other): other
            }
        }.joined().trimmingCharacters(in: .whitespacesAndNewlines).removingControlCharacters
    }
}
