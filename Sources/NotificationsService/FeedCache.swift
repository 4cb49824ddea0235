import Crypto
import Foundation
import HeraldCore
import HeraldEvents
import HeraldStorage
import Logging
import NIOCore
import Synchronization

/// The widget's feeds as encoded bytes with their ETags, rebuilt when something they show changes.
///
/// Reads vastly outnumber changes, so a feed request never encodes JSON: it returns the bytes of the last
/// build. A change (an activity, a notification published or paused, a site setting) drops the site's entry;
/// the next request rebuilds it once, however many requests arrive meanwhile. New activities are also pushed
/// to open pages; bursts are coalesced so a flood of activities cannot become a flood of popups.
actor FeedCache {
    struct Entry: Sendable {
        var siteId: UUID
        var organizationId: UUID
        var bytes: ByteBuffer
        var etag: String
        var builtAt: Date
        var document: FeedDocument
    }

    enum Reason: Sendable {
        case activity(UUID)
        case notificationsChanged
        case siteChanged
    }

    let database: any Database
    let builder = FeedBuilder()
    let sites = SiteStore()
    let stream: LiveStream
    let logger: Logger
    /// Pushes of new activities to open pages are grouped over this interval, at most this many per group.
    let pushInterval: Duration
    static let maxPushesPerInterval = 3

    /// Built feeds and resolved keys, readable without entering the actor: the hot path is a lock and a lookup.
    private struct Shared {
        var entries: [UUID: Entry] = [:]
        var routes: [String: SiteRoute] = [:]
    }
    private nonisolated let shared = Mutex(Shared())
    /// Builds in flight, with the organization whose state they read.
    private var builds: [UUID: (organizationId: UUID, task: Task<Entry?, any Error>)] = [:]
    private var pendingActivities: [UUID: [UUID]] = [:]
    private var pushScheduled: Set<UUID> = []
    /// Bumped on each invalidation, so a build that started before it is not cached as current.
    private var generations: [UUID: Int] = [:]

    /// Seconds after which a built feed is rebuilt on the next request even without an event. Events only reach
    /// the process that handles them, so this bounds how stale another instance's copy can be.
    nonisolated let refreshAfter: TimeInterval

    /// Tells the other instances of a deployment what changed, and hears what changed on theirs.
    nonisolated let signals: any ClusterSignals
    static let channel = "feed"

    init(
        database: any Database, stream: LiveStream, logger: Logger, pushInterval: Duration = .milliseconds(200),
        refreshAfter: TimeInterval = 30, signals: any ClusterSignals = LocalSignals()
    ) {
        self.signals = signals
        self.database = database
        self.stream = stream
        self.logger = logger
        self.pushInterval = pushInterval
        self.refreshAfter = refreshAfter
    }

    /// The cached feed of a site while it is fresh enough to serve.
    private nonisolated func fresh(_ siteId: UUID) -> Entry? {
        guard let entry = shared.withLock({ $0.entries[siteId] }), entry.builtAt.timeIntervalSinceNow > -refreshAfter else { return nil }
        return entry
    }

    /// The site a public key belongs to, or nil for an unknown key.
    nonisolated func route(publicKey: String) async throws -> SiteRoute? {
        if let route = shared.withLock({ $0.routes[publicKey] }) { return route }
        guard publicKey.hasPrefix("pk_"), publicKey.utf8.count <= 64 else { return nil }
        let sites = self.sites
        guard let key = try await database.transaction(.system, { try await sites.route(publicKey: publicKey, in: $0) }) else {
            return nil
        }
        // The time zone lives with the tenant's copy of the site.
        let site = try await database.transaction(.organization(key.organizationId)) { try await sites.find(key.siteId, in: $0) }
        let route = SiteRoute(siteId: key.siteId, organizationId: key.organizationId, clock: SiteClock.named(site?.timezone ?? "UTC"))
        shared.withLock { shared in
            if shared.routes.count > 100_000 { shared.routes.removeAll() }
            shared.routes[publicKey] = route
        }
        return route
    }

    /// The site of a key already looked up, without waiting: for ``BeaconsFastRoute`` on the event loop.
    nonisolated func cachedRoute(publicKey: String) -> SiteRoute? {
        shared.withLock { $0.routes[publicKey] }
    }

    /// The feed of a known key when it is built and fresh, without waiting: for ``FeedFastRoute`` on the event loop.
    nonisolated func cachedFeed(publicKey: String) -> Entry? {
        guard let route = shared.withLock({ $0.routes[publicKey] }) else { return nil }
        return fresh(route.siteId)
    }

    /// The current feed of the site behind `publicKey`.
    nonisolated func feed(publicKey: String) async throws -> Entry? {
        guard let route = try await route(publicKey: publicKey) else { return nil }
        if let entry = fresh(route.siteId) { return entry }
        return try await feed(siteId: route.siteId, organizationId: route.organizationId)
    }

    func feed(siteId: UUID, organizationId: UUID) async throws -> Entry? {
        if let entry = fresh(siteId) { return entry }
        if let build = builds[siteId] { return try await build.task.value }
        let generation = generations[siteId, default: 0]
        let database = self.database
        let builder = self.builder
        let build = Task { () -> Entry? in
            guard
                let document = try await database.transaction(
                    .organization(organizationId),
                    { tx in
                        try await builder.build(siteId: siteId, in: tx)
                    })
            else { return nil }
            let data = try JSONEncoder.herald.encode(document)
            let digest = SHA256.hash(data: data).prefix(12).hexString
            return Entry(
                siteId: siteId, organizationId: organizationId, bytes: ByteBuffer(bytes: data), etag: "\"\(digest)\"", builtAt: Date(),
                document: document
            )
        }
        builds[siteId] = (organizationId, build)
        defer { builds[siteId] = nil }
        let entry = try await build.value
        if let entry, generations[siteId, default: 0] == generation { shared.withLock { $0.entries[siteId] = entry } }
        return entry
    }

    /// Drops the feeds of every site of an organization (a billing decision covers them all), here and on the
    /// other instances.
    func invalidate(organizationId: UUID) {
        drop(organizationId: organizationId)
        tellOthers("org|\(organizationId.lowercased)")
    }

    /// Drops a site's feed, here and on the other instances; for a new activity, each instance with open pages of
    /// the site pushes it to them.
    func invalidate(siteId: UUID, reason: Reason) {
        drop(siteId: siteId, reason: reason)
        let what =
            switch reason {
            case .activity(let activityId): "activity|\(activityId.lowercased)"
            case .notificationsChanged: "notifications"
            case .siteChanged: "site"
            }
        tellOthers("site|\(siteId.lowercased)|\(what)")
    }

    private func tellOthers(_ message: String) {
        let signals = self.signals
        Task { await signals.broadcast(Self.channel, message) }
    }

    /// Applies what another instance broadcast: `org|<id>` or `site|<id>|activity|<id>`, `site|<id>|notifications`,
    /// `site|<id>|site`. Anything else is ignored.
    func applyRemote(_ message: String) {
        if message == ClusterSignal.resync {
            // Invalidations may have been missed: rebuild every feed, and let open pages fetch theirs again.
            let siteIds = shared.withLock { state in
                let ids = Array(Set(state.entries.keys))
                state.routes = [:]
                return ids
            }
            for siteId in siteIds { drop(siteId: siteId, reason: .notificationsChanged) }
            return
        }
        let parts = message.split(separator: "|").map(String.init)
        switch (parts.first, parts.count) {
        case ("org", 2):
            if let organizationId = UUID(uuidString: parts[1]) { drop(organizationId: organizationId) }
        case ("site", 3), ("site", 4):
            guard let siteId = UUID(uuidString: parts[1]) else { return }
            switch parts[2] {
            case "activity" where parts.count == 4:
                if let activityId = UUID(uuidString: parts[3]) { drop(siteId: siteId, reason: .activity(activityId)) }
            case "notifications": drop(siteId: siteId, reason: .notificationsChanged)
            case "site": drop(siteId: siteId, reason: .siteChanged)
            default: return
            }
        default:
            return
        }
    }

    private func drop(organizationId: UUID) {
        var siteIds = Set(shared.withLock { $0.entries.values.filter { $0.organizationId == organizationId }.map(\.siteId) })
        // A build in flight read the organization's state before this change: it must not be cached as current (it
        // would be served until `refreshAfter`, a paused feed still showing its popups for 30 s).
        siteIds.formUnion(builds.filter { $0.value.organizationId == organizationId }.keys)
        for siteId in siteIds { drop(siteId: siteId, reason: .notificationsChanged) }
    }

    private func drop(siteId: UUID, reason: Reason) {
        shared.withLock { $0.entries[siteId] = nil }
        generations[siteId, default: 0] += 1
        switch reason {
        case .siteChanged:
            shared.withLock { $0.routes = $0.routes.filter { $0.value.siteId != siteId } }
            stream.publish(siteId: siteId, event: "feed", data: "{}")
        case .notificationsChanged:
            stream.publish(siteId: siteId, event: "feed", data: "{}")
        case .activity(let activityId):
            guard stream.hasListeners(siteId: siteId) else { return }
            pendingActivities[siteId, default: []].append(activityId)
            if pushScheduled.insert(siteId).inserted {
                let interval = pushInterval
                Task { [weak self] in
                    try? await Task.sleep(for: interval)
                    await self?.pushPending(siteId: siteId)
                }
            }
        }
    }

    /// Sends the newest pending activities, rendered exactly as the feed renders them, to the site's open pages.
    private func pushPending(siteId: UUID) async {
        pushScheduled.remove(siteId)
        let pending = pendingActivities.removeValue(forKey: siteId) ?? []
        guard !pending.isEmpty else { return }
        let sites = self.sites
        guard let organizationId = (try? await database.transaction(.system, { try await sites.routeSite(siteId, in: $0) })) ?? nil else {
            return
        }
        do {
            guard let entry = try await feed(siteId: siteId, organizationId: organizationId) else { return }
            let wanted = Set(pending.suffix(Self.maxPushesPerInterval))
            var pushes: [UUID: [LivePush.Item]] = [:]
            for notification in entry.document.notifications {
                for item in notification.items ?? [] where wanted.contains(item.id) {
                    pushes[item.id, default: []].append(LivePush.Item(notificationId: notification.id, item: item))
                }
            }
            for activityId in pending.suffix(Self.maxPushesPerInterval) {
                guard let items = pushes[activityId] else { continue }
                let data = try JSONEncoder.herald.encode(LivePush(activityId: activityId, items: items))
                stream.publish(siteId: siteId, event: "activity", data: String(decoding: data, as: UTF8.self))
            }
        } catch {
            logger.warning("could not push new activity", metadata: ["site": "\(siteId)", "error": "\(error)"])
        }
    }
}

/// A site a public key resolves to, with its clock for local days.
struct SiteRoute: Sendable {
    var siteId: UUID
    var organizationId: UUID
    var clock: SiteClock
}

/// An `activity` event on the live stream: the new activity rendered for each notification that shows it.
struct LivePush: Encodable, Sendable {
    struct Item: Encodable, Sendable {
        var notificationId: UUID
        var item: FeedNotification.Item
    }

    var activityId: UUID
    var items: [Item]
}
