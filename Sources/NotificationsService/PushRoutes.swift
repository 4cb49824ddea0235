import Crypto
import Foundation
import HeraldCore
import HeraldHTTP
import HeraldPush
import HeraldSecurity
import HeraldStorage
import Hummingbird

/// `GET /widget/v1/{publicKey}/push`: whether the widget should offer push, and the key to subscribe with.
struct PushInfoBody: Encodable, Sendable {
    /// This Herald can send web push.
    var available: Bool
    /// A published notification of the site sends its new activities by push: the widget may offer opt-in.
    var enabled: Bool
    /// The VAPID public key (`applicationServerKey`), base64url.
    var publicKey: String?
}

struct PushSubscriptionCounts: Encodable, Sendable {
    var active: Int
    var gone: Int
}

extension NotificationsService {
    func addPushWidgetRoutes(to group: RouterGroup<HeraldRequestContext>) {
        group.get(":publicKey/push", use: pushInfo)
        group.post(":publicKey/push-subscriptions", use: subscribePush)
        group.delete(":publicKey/push-subscriptions", use: unsubscribePush)
    }

    func addPushRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        // Imported cross-origin by the site's own service worker: served like the widget (Cross-Origin-Resource-Policy
        // cross-origin, or the browser refuses the import and the worker fails to install).
        let worker = WidgetAsset(script: Self.pushWorker)
        router.get("widget/v1/push-worker.js") { request, _ in Self.script(worker, request: request) }
        let optIn = pushOptIn
        router.get("widget/v1/push-optin.js") { request, _ in Self.script(optIn, request: request) }
        router.group("sites/:siteId").get("push/subscriptions", use: pushSubscriptionCounts)
    }

    @Sendable func pushInfo(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let site = try await route(context)
        let enabled = try await database.transaction(.organization(site.organizationId)) { tx in
            guard push.isAvailable else { return false }
            let on = Set(try await ChannelDeliveryStore.push.enabledSettings(siteId: site.siteId, in: tx).map(\.notificationId))
            return try await notifications.published(siteId: site.siteId, in: tx).contains { on.contains($0.id) }
        }
        return try JSONResponse(
            PushInfoBody(available: push.isAvailable, enabled: enabled, publicKey: push.vapid?.publicKey),
            headers: [.cacheControl: "public, max-age=60"]
        ).response(from: request, context: context)
    }

    /// Stores a browser's `PushSubscription.toJSON()`, or `{"fcmToken": "…"}` (an FCM registration token) when FCM is
    /// set up; the same endpoint or token again renews it.
    @Sendable func subscribePush(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let site = try await route(context)
        guard push.isAvailable else {
            throw HeraldError.conflict(
                "Push is not set up on this Herald (HERALD_VAPID_PRIVATE_KEY, HERALD_FCM_SERVICE_ACCOUNT_FILE).", slug: "push-unavailable")
        }
        try await throttleSubscriptions(site: site, request: request, context: context)
        var reader = try await BodyReader(request: request, context: context)
        let target: PushTarget
        if reader.has("fcmToken") {
            guard push.fcm != nil else {
                throw HeraldError.conflict(
                    "Firebase Cloud Messaging is not set up on this Herald (HERALD_FCM_SERVICE_ACCOUNT_FILE).", slug: "push-unavailable")
            }
            if reader.has("endpoint") { reader.validator.add("endpoint", "give either a web push subscription or fcmToken, not both") }
            let token = Self.fcmToken(&reader)
            try reader.validator.check()
            guard let token else { throw HeraldError.validation(field: "fcmToken", "is required") }
            target = .fcm(token: token)
        } else {
            guard push.vapid != nil else {
                throw HeraldError.conflict("Web push is not set up on this Herald (HERALD_VAPID_PRIVATE_KEY).", slug: "push-unavailable")
            }
            let subscription = Self.subscription(&reader)
            try reader.validator.check()
            guard let subscription else { throw HeraldError.validation(field: "endpoint", "is required") }
            do {
                _ = try await push.outbound.check(subscription.endpoint.absoluteString)
            } catch {
                throw HeraldError.validation(field: "endpoint", "\(error)")
            }
            target = .webPush(subscription)
        }
        try await database.transaction(.organization(site.organizationId)) { tx in
            let active = try await pushSubscriptions.counts(siteId: site.siteId, in: tx)["active"] ?? 0
            guard active < push.maxSubscriptionsPerSite else {
                throw HeraldError.conflict(
                    "This site has \(active) push subscriptions, the most it may have.", slug: "too-many-subscriptions")
            }
            _ = try await pushSubscriptions.upsert(target, siteId: site.siteId, organizationId: site.organizationId, now: Date(), in: tx)
        }
        return Response(
            status: .created, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"subscribed":true}"#))
        )
    }

    func throttleSubscriptions(site: SiteRoute, request: Request, context: HeraldRequestContext) async throws {
        let now = Date()
        let address = RequestMeta(request: request, context: context).ip
        let fromAddress = await push.limiter.hit("push-subscribe:\(address)", window: .seconds(60), now: now)
        let forSite = await push.limiter.hit("push-subscribe-site:\(site.siteId.lowercased)", window: .seconds(60), now: now)
        if fromAddress > push.subscriptionsPerMinutePerAddress || forSite > push.subscriptionsPerMinutePerSite {
            throw HeraldError.tooManyRequests(
                retryAfter: 60, detail: "Too many push subscriptions from this address or for this site in the last minute; try again later.")
        }
    }

    /// The visitor turned push off (or the browser dropped the subscription): nothing more is sent to it.
    /// `{"endpoint": …}` for a web push subscription, `{"fcmToken": …}` for an FCM registration token.
    @Sendable func unsubscribePush(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let site = try await route(context)
        var reader = try await BodyReader(request: request, context: context)
        var key: String?
        if reader.has("fcmToken") {
            key = Self.fcmToken(&reader).map { PushTarget.fcm(token: $0).key }
        } else {
            let endpoint = reader.string("endpoint")
            if endpoint == nil { reader.validator.add("endpoint", "is required: the subscription's endpoint (or fcmToken)") }
            if let endpoint, endpoint.unicodeScalars.count > 2000 { reader.validator.add("endpoint", "must be at most 2000 characters") }
            key = endpoint
        }
        try reader.validator.check()
        try await database.transaction(.organization(site.organizationId)) { tx in
            _ = try await pushSubscriptions.end(key: key ?? "", siteId: site.siteId, reason: "the visitor unsubscribed", now: Date(), in: tx)
        }
        return Response(status: .noContent)
    }

    /// An FCM registration token as the Firebase SDKs give it: letters, digits and `-_:.`, at most 4096 characters.
    static func fcmToken(_ reader: inout BodyReader) -> String? {
        guard let token = reader.string("fcmToken") else {
            if reader.isMissing("fcmToken") { reader.validator.add("fcmToken", "is required: the FCM registration token") }
            return nil
        }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.")
        guard (20...4096).contains(token.unicodeScalars.count), token.unicodeScalars.allSatisfy(allowed.contains) else {
            reader.validator.add("fcmToken", "must be an FCM registration token (20 to 4096 letters, digits, '-', '_', ':' or '.')")
            return nil
        }
        return token
    }

    @Sendable func pushSubscriptionCounts(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<PushSubscriptionCounts> {
        let grant = try await access.site(from: context, .contentRead)
        let counts = try await database.transaction(grant.scope) { try await pushSubscriptions.counts(siteId: grant.siteId, in: $0) }
        return JSONResponse(PushSubscriptionCounts(active: counts["active"] ?? 0, gone: counts["gone"] ?? 0))
    }

    /// `{"endpoint": "https://…", "keys": {"p256dh": "…", "auth": "…"}}` as browsers give it, checked.
    static func subscription(_ reader: inout BodyReader) -> WebPushSubscription? {
        let endpointText = reader.string("endpoint")
        var endpoint: URL?
        if let endpointText {
            if endpointText.unicodeScalars.count <= 2000, let url = URL(string: endpointText),
                ["https", "http"].contains(url.scheme?.lowercased() ?? ""),
                url.host?.isEmpty == false
            {
                endpoint = url
            } else {
                reader.validator.add("endpoint", "must be the push service's URL (https, at most 2000 characters)")
            }
        } else {
            reader.validator.add("endpoint", "is required")
        }
        let keys = reader.decode("keys", as: [String: String].self)
        if reader.isMissing("keys") { reader.validator.add("keys", "is required: {\"p256dh\": …, \"auth\": …}") }
        let p256dh = keys?["p256dh"].flatMap(Base64URL.decode)
        if keys != nil, p256dh.flatMap({ try? P256.KeyAgreement.PublicKey(x963Representation: $0) }) == nil {
            reader.validator.add("keys.p256dh", "must be the browser's P-256 public key (65 bytes, base64url)")
        }
        let auth = keys?["auth"].flatMap(Base64URL.decode)
        if keys != nil, auth?.count != 16 { reader.validator.add("keys.auth", "must be the browser's 16-byte auth secret (base64url)") }
        guard let endpoint, let p256dh, let auth, auth.count == 16 else { return nil }
        return WebPushSubscription(endpoint: endpoint, p256dh: p256dh, auth: auth)
    }

    /// The service worker a site serves from its own origin with one line,
    /// `importScripts("https://<herald>/widget/v1/push-worker.js")`: it shows each push and opens its link on click.
    static let pushWorker = """
        self.addEventListener("push", function (event) {
          var data = {};
          try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data && event.data.text() }; }
          event.waitUntil(self.registration.showNotification(data.title || "", {
            body: data.body || "", tag: data.tag, data: { url: data.url || "/" }
          }));
        });
        self.addEventListener("notificationclick", function (event) {
          event.notification.close();
          var url = (event.notification.data && event.notification.data.url) || "/";
          event.waitUntil(self.clients.openWindow(url));
        });

        """
}
