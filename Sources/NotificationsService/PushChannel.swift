import AsyncHTTPClient
import Crypto
import Foundation
import HeraldCore
import HeraldPush
import HeraldSecurity
import HeraldStorage

/// The web push channel's settings (docs/CHANNELS.md).
public struct PushChannelOptions: Sendable {
    /// The application server key browsers subscribe with (Web Push).
    public var vapid: VAPIDKey?
    /// Firebase Cloud Messaging's HTTP v1 API, for registration tokens (`HERALD_FCM_SERVICE_ACCOUNT_FILE`). With neither
    /// this nor `vapid` push cannot be turned on.
    public var fcm: FCMSender?
    /// Pushes a site may send per rolling hour; more wait for the window (`HERALD_PUSH_PER_SITE_PER_HOUR`).
    public var perSitePerHour = 1000
    /// Active browser subscriptions a site may have.
    public var maxSubscriptionsPerSite = 100_000
    /// Seconds a push service keeps a push for a browser that is offline: social proof is stale after an hour.
    public var ttl = 3600
    /// Push endpoints must resolve to public addresses, like outbound webhooks (`HERALD_OUTBOUND_ALLOW_CIDRS`).
    public var outbound = OutboundGuard()
    /// Subscriptions the widget API accepts per minute from one address, and per site: a hostile page cannot fill a
    /// site's subscriptions. Shared across instances when the limiter is Redis's.
    public var subscriptionsPerMinutePerAddress = 10
    public var subscriptionsPerMinutePerSite = 600
    public var limiter: any RateLimiter = InMemoryRateLimiter()
    public var http: HTTPClient = .shared

    public init() {}

    var isAvailable: Bool { vapid != nil || fcm != nil }
}

/// Web push (RFC 8030) with VAPID (RFC 8292) and encrypted payloads (RFC 8291) to any standard push service, or
/// Firebase Cloud Messaging's HTTP v1 API for a registration token: each subscription goes through its own sender. A
/// subscription the push service reports gone (404, 410; FCM's UNREGISTERED or an invalid token) ends, so nothing more
/// is sent to it.
struct PushTransport: ChannelTransport {
    let subscriptions: PushSubscriptionStore
    let options: PushChannelOptions
    var deliveries: ChannelDeliveryStore { .push }
    var perSitePerHour: Int { options.perSitePerHour }

    func target(_ id: UUID, in tx: any SQLExecutor) async throws -> Result<PushSubscriptionRecord, SkipReason> {
        guard let record = try await subscriptions.find(id, in: tx) else {
            return .failure(SkipReason(message: "not sent: the subscription was removed"))
        }
        guard record.status == "active" else { return .failure(SkipReason(message: "not sent: the subscription ended")) }
        return .success(record)
    }

    func send(_ delivery: ChannelDelivery, to record: PushSubscriptionRecord, organizationId: UUID, siteName: String) async -> ChannelOutcome {
        let payload = PushPayload(title: delivery.title, body: delivery.body, url: delivery.url, tag: delivery.notificationId.lowercased)
        switch record.target {
        case .webPush(let subscription):
            guard let vapid = options.vapid else { return .retry("web push is not configured (HERALD_VAPID_PRIVATE_KEY)", after: 300) }
            do {
                _ = try await options.outbound.check(subscription.endpoint.absoluteString)
            } catch {
                return .failed("the push endpoint \(error)", endsTarget: true)
            }
            let sender = WebPushSender(key: vapid, http: options.http)
            switch await sender.send(payload.bytes, to: subscription, ttl: options.ttl, topic: nil) {
            case .accepted(let location): return .sent(providerMessageId: location)
            case .gone(let status): return .failed("the push service answered \(status): the subscription ended", endsTarget: true)
            case .retry(let reason, let after): return .retry(reason, after: after)
            case .refused(let reason): return .failed(reason, endsTarget: false)
            }
        case .fcm(let token):
            // FCM's address is the operator's (HERALD_FCM_BASE_URL), not the visitor's: the token only travels in the body.
            guard let fcm = options.fcm else { return .retry("FCM is not configured (HERALD_FCM_SERVICE_ACCOUNT_FILE)", after: 300) }
            let trimmed = payload.trimmed
            let message = FCMMessage(title: trimmed.title, body: trimmed.body, link: trimmed.url, tag: trimmed.tag, ttl: options.ttl)
            switch await fcm.send(message, to: token) {
            case .accepted(let name): return .sent(providerMessageId: name)
            case .ended(let reason): return .failed("\(reason): the registration token ended", endsTarget: true)
            case .retry(let reason, let after): return .retry(reason, after: after)
            case .refused(let reason): return .failed(reason, endsTarget: false)
            }
        }
    }

    func end(_ record: PushSubscriptionRecord, reason: String, in tx: any SQLExecutor) async throws {
        try await subscriptions.end(record.id, reason: reason, now: Date(), in: tx)
    }
}

/// What the service worker (`/widget/v1/push-worker.js`) shows: `title`, `body`, and where a click leads.
struct PushPayload: Encodable {
    var title: String
    var body: String
    var url: String?
    /// A newer push of the same notification replaces the older one on screen.
    var tag: String

    /// One push carries at most ~4 KB; the message and title are far shorter, but never let a long one fail.
    var trimmed: PushPayload {
        var trimmed = self
        trimmed.body = String(body.prefix(1000))
        trimmed.title = String(title.prefix(300))
        return trimmed
    }

    var bytes: [UInt8] { Array((try? JSONEncoder().encode(trimmed)) ?? Data("{}".utf8)) }
}
