import Foundation
import HeraldCore
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird

/// A notification's settings for one channel. The template field is `subject` for email and `title` for push.
struct ChannelSettingsBody: Encodable, Sendable {
    var notificationId: UUID
    var enabled: Bool
    var subject: String?
    var title: String?
    /// Whether this Herald can send on the channel (a mail transport and sender; a VAPID key).
    var available: Bool
    var updatedAt: Date?
}

/// One delivery on a channel: `recipientId` for email, `subscriptionId` for push.
struct ChannelDeliveryBody: Encodable, Sendable {
    var id: UUID
    var notificationId: UUID
    var activityId: UUID
    var recipientId: UUID?
    var subscriptionId: UUID?
    var title: String
    var status: String
    var attempts: Int
    var nextAttemptAt: Date?
    var lastError: String?
    var providerMessageId: String?
    var createdAt: Date
    var sentAt: Date?
}

/// What differs between the channels' settings and deliveries routes.
struct ChannelRouteSpec: Sendable {
    var store: ChannelDeliveryStore
    /// The request and response field holding the title template.
    var titleField: String
    var defaultTitle: String
    /// Why the channel cannot be turned on here, or nil when it can.
    var unavailable: String?
}

extension NotificationsService {
    static let deliveryStatuses = ["pending", "sent", "failed", "skipped"]

    var emailSpec: ChannelRouteSpec {
        ChannelRouteSpec(
            store: .email, titleField: "subject", defaultTitle: "New at {{siteName}}",
            unavailable: email.isAvailable
                ? nil : "This Herald has no mail transport or sender address: set HERALD_MAIL_URL and HERALD_MAIL_FROM, then turn email on."
        )
    }

    var pushSpec: ChannelRouteSpec {
        ChannelRouteSpec(
            store: .push, titleField: "title", defaultTitle: "{{siteName}}",
            unavailable: push.isAvailable
                ? nil
                : "This Herald cannot send push: set HERALD_VAPID_PRIVATE_KEY and HERALD_VAPID_SUBJECT (web push) or HERALD_FCM_SERVICE_ACCOUNT_FILE (FCM)."
        )
    }

    func addChannelRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let site = router.group("sites/:siteId")
        for (path, spec) in [("email", emailSpec), ("push", pushSpec)] {
            site.get("notifications/:notificationId/\(path)") { request, context in try await getChannelSettings(spec, request, context) }
            site.put("notifications/:notificationId/\(path)") { request, context in try await putChannelSettings(spec, request, context) }
            site.get("\(path)/deliveries") { request, context in try await listChannelDeliveries(spec, request, context) }
        }
    }

    func getChannelSettings(
        _ spec: ChannelRouteSpec, _ request: Request, _ context: HeraldRequestContext
    ) async throws -> JSONResponse<
        ChannelSettingsBody
    > {
        let grant = try await access.site(from: context, .contentRead)
        let settings = try await database.transaction(grant.scope) { tx in
            let notification = try await loadNotification(grant, context, in: tx)
            return try await spec.store.settings(notificationId: notification.id, in: tx)
                ?? ChannelSettings(notificationId: notification.id, enabled: false, title: spec.defaultTitle)
        }
        return JSONResponse(body(settings, spec))
    }

    /// Turns a channel on or off for a notification and sets its title template (the message's placeholders).
    func putChannelSettings(
        _ spec: ChannelRouteSpec, _ request: Request, _ context: HeraldRequestContext
    ) async throws -> JSONResponse<
        ChannelSettingsBody
    > {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let enabled = reader.decode("enabled", as: Bool.self)
        if reader.isMissing("enabled") { reader.validator.add("enabled", "is required: true or false") }
        let title = reader.validator.optionalText(reader.string(spec.titleField), field: spec.titleField, maxLength: 200)
        if let title { Self.checkTemplate(title, field: spec.titleField, into: &reader.validator) }
        try reader.validator.check()
        let meta = RequestMeta(request: request, context: context)
        let settings = try await database.transaction(grant.scope) { tx in
            let notification = try await loadNotification(grant, context, in: tx)
            if enabled == true {
                guard notification.type == .recentActivity else {
                    throw HeraldError.validation(
                        field: "enabled", "only recent_activity notifications go out by \(spec.store.channel) (one per new activity)")
                }
                if let unavailable = spec.unavailable { throw HeraldError.conflict(unavailable, slug: "\(spec.store.channel)-unavailable") }
            }
            let current = try await spec.store.settings(notificationId: notification.id, in: tx)
            let settings = ChannelSettings(
                notificationId: notification.id, enabled: enabled ?? false, title: title ?? current?.title ?? spec.defaultTitle, updatedAt: Date()
            )
            try await spec.store.saveSettings(settings, siteId: grant.siteId, organizationId: grant.organizationId, now: Date(), in: tx)
            try await AuditTrail.record(
                "notification.\(spec.store.channel)_changed", target: "notification", notification.id,
                details: ["enabled": settings.enabled ? "true" : "false"], by: grant, meta: meta, in: tx
            )
            return settings
        }
        return JSONResponse(body(settings, spec))
    }

    func body(_ settings: ChannelSettings, _ spec: ChannelRouteSpec) -> ChannelSettingsBody {
        ChannelSettingsBody(
            notificationId: settings.notificationId, enabled: settings.enabled, subject: spec.titleField == "subject" ? settings.title : nil,
            title: spec.titleField == "title" ? settings.title : nil, available: spec.unavailable == nil, updatedAt: settings.updatedAt
        )
    }

    /// Every delivery of the site on the channel, newest first, with its attempts and outcome.
    func listChannelDeliveries(
        _ spec: ChannelRouteSpec, _ request: Request, _ context: HeraldRequestContext
    ) async throws -> JSONResponse<
        Page<ChannelDeliveryBody>
    > {
        let grant = try await access.site(from: context, .contentRead)
        let limit = try request.limit(default: 50, max: 200)
        let before = try Self.cursor(request)
        var notificationId: UUID?
        if let text = request.uri.queryParameters.get("notificationId") {
            guard let id = UUID(text: text.description) else { throw HeraldError.validation(field: "notificationId", "must be a notification id") }
            notificationId = id
        }
        let status = request.uri.queryParameters.get("status").map { String($0) }
        if let status, !Self.deliveryStatuses.contains(status) {
            throw HeraldError.validation(field: "status", "must be one of: \(Self.deliveryStatuses.joined(separator: ", "))")
        }
        let records = try await database.transaction(grant.scope) {
            try await spec.store.list(siteId: grant.siteId, notificationId: notificationId, status: status, before: before, limit: limit, in: $0)
        }
        let next = records.count == limit ? records.last.map { TimeCursor(date: $0.createdAt, id: $0.id).text } : nil
        let email = spec.store.channel == "email"
        let items = records.map {
            ChannelDeliveryBody(
                id: $0.id, notificationId: $0.notificationId, activityId: $0.activityId, recipientId: email ? $0.targetId : nil,
                subscriptionId: email ? nil : $0.targetId, title: $0.title, status: $0.status, attempts: $0.attempts,
                nextAttemptAt: $0.nextAttemptAt, lastError: $0.lastError, providerMessageId: $0.providerMessageId, createdAt: $0.createdAt,
                sentAt: $0.sentAt
            )
        }
        return JSONResponse(Page(items: items, nextCursor: next))
    }

    static func cursor(_ request: Request) throws -> TimeCursor? {
        guard let cursor = request.uri.queryParameters.get("cursor") else { return nil }
        guard let parsed = TimeCursor(String(cursor)) else {
            throw HeraldError.validation(field: "cursor", "must be the nextCursor of a previous page")
        }
        return parsed
    }
}
