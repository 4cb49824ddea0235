import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird

extension NotificationsService {
    func addManagementRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let site = router.group("sites/:siteId")
        site.get("notifications", use: listNotifications)
        site.post("notifications", use: createNotification)
        site.get("notifications/:notificationId", use: getNotification)
        site.put("notifications/:notificationId", use: updateNotification)
        site.patch("notifications/:notificationId", use: updateNotification)
        site.delete("notifications/:notificationId", use: deleteNotification)
        site.get("notifications/:notificationId/preview", use: previewNotification)
        site.post("notifications/:notificationId/preview", use: previewNotification)
        site.post("notifications/:notificationId/publish") { request, context in
            try await setStatus(.published, request: request, context: context)
        }
        site.post("notifications/:notificationId/pause") { request, context in
            try await setStatus(.paused, request: request, context: context)
        }
        site.get("templates", use: listTemplates)
        site.post("templates", use: createTemplate)
        site.get("activities", use: listActivities)
        site.get("widget-settings", use: getWidgetSettings)
        site.put("widget-settings", use: updateWidgetSettings)
    }

    func body(_ notification: Notification, in tx: any SQLExecutor) async throws -> NotificationBody {
        let resolved = try await FeedBuilder().resolveTemplates(notification, in: tx)
        return NotificationBody(
            id: notification.id, siteId: notification.siteId, name: notification.name, type: notification.type, status: notification.status,
            templateId: notification.templateId, message: notification.message, effectiveTemplate: resolved.main.source,
            settings: notification.settings, content: notification.content.completed(for: notification.type), rules: notification.rules,
            abTestId: notification.abTestId, variants: notification.variants, createdAt: notification.createdAt,
            updatedAt: notification.updatedAt, publishedAt: notification.publishedAt
        )
    }

    func loadNotification(_ grant: SiteAccess, _ context: HeraldRequestContext, in tx: any SQLExecutor) async throws -> Notification {
        let id = try context.uuidParameter("notificationId", resource: "Notification")
        guard let notification = try await notifications.find(id, siteId: grant.siteId, in: tx) else {
            throw HeraldError.notFound("Notification \(id.lowercased)")
        }
        return notification
    }

    static func changed(_ notification: Notification) -> NotificationChanged {
        NotificationChanged(
            notificationId: notification.id, siteId: notification.siteId, name: notification.name, type: notification.type.rawValue,
            status: notification.status.rawValue,
            variants: notification.variants.isEmpty
                ? nil : notification.variants.map { ExperimentVariant(id: $0.id, name: $0.name, weight: $0.weight) }
        )
    }

    // MARK: Notifications

    @Sendable func listNotifications(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<NotificationBody>> {
        let grant = try await access.site(from: context, .contentRead)
        let items = try await database.transaction(grant.scope) { tx in
            var bodies: [NotificationBody] = []
            for notification in try await notifications.list(siteId: grant.siteId, in: tx) { bodies.append(try await body(notification, in: tx)) }
            return bodies
        }
        return JSONResponse(Page(items: items))
    }

    @Sendable func getNotification(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<NotificationBody> {
        let grant = try await access.site(from: context, .contentRead)
        let result = try await database.transaction(grant.scope) { tx in
            try await body(try await loadNotification(grant, context, in: tx), in: tx)
        }
        return JSONResponse(result)
    }

    @Sendable func createNotification(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<NotificationBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let name = reader.validator.requireText(reader.string("name"), field: "name", maxLength: 100)
        let type = reader.has("type") ? reader.decode("type", as: NotificationType.self) : nil
        if reader.isMissing("type") {
            reader.validator.add("type", "is required: one of \(NotificationType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let now = Date()
        var notification = Notification(
            id: .v7(at: now), siteId: grant.siteId, organizationId: grant.organizationId, name: name, type: type ?? .recentActivity,
            status: .draft, templateId: nil, message: nil, settings: DisplaySettings(), content: NotificationContent(), rules: nil,
            abTestId: nil, variants: [], createdAt: now, updatedAt: now, publishedAt: nil
        )
        try reader.validator.check()
        let meta = RequestMeta(request: request, context: context)
        let result = try await write(grant) { tx -> NotificationBody in
            try await apply(&reader, to: &notification, creating: true, in: tx)
            try reader.validator.check()
            try await notifications.insert(notification, in: tx)
            try await Outbox.append(
                NotificationCreated(notification: Self.changed(notification)), organizationId: grant.organizationId, siteId: grant.siteId, in: tx)
            try await AuditTrail.record(
                "notification.created", target: "notification", notification.id,
                details: ["name": notification.name, "type": notification.type.rawValue], by: grant, meta: meta, in: tx
            )
            return try await body(notification, in: tx)
        }
        return JSONResponse(result, status: .created)
    }

    /// Updates the fields present in the body; settings and content are merged key by key; `null` clears
    /// the message, template, rules or variants.
    @Sendable func updateNotification(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<NotificationBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let meta = RequestMeta(request: request, context: context)
        let result = try await write(grant) { tx -> NotificationBody in
            var notification = try await loadNotification(grant, context, in: tx)
            if let name = reader.string("name") { notification.name = reader.validator.requireText(name, field: "name", maxLength: 100) }
            if reader.has("type"), let type = reader.decode("type", as: NotificationType.self), type != notification.type {
                reader.validator.add("type", "cannot change after creation; create a new notification instead")
            }
            try await apply(&reader, to: &notification, creating: false, in: tx)
            try reader.validator.check()
            notification.updatedAt = Date()
            try await notifications.update(notification, in: tx)
            try await Outbox.append(
                NotificationUpdated(notification: Self.changed(notification)), organizationId: grant.organizationId, siteId: grant.siteId, in: tx)
            try await AuditTrail.record(
                "notification.updated", target: "notification", notification.id,
                details: ["name": notification.name, "fields": reader.object.keys.sorted().joined(separator: ",")], by: grant, meta: meta, in: tx
            )
            return try await body(notification, in: tx)
        }
        return JSONResponse(result)
    }

    /// The widget's feed document for this notification alone, as saved (GET) or with the changes of an update's
    /// body applied but not saved (POST), for the dashboard's live preview. Nothing is written: no audit, no event.
    @Sendable func previewNotification(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<FeedDocument> {
        let grant = try await access.site(from: context, .contentRead)
        let reader: BodyReader? = request.method == .post ? try await BodyReader(request: request, context: context) : nil
        let document = try await database.transaction(grant.scope) { tx -> FeedDocument? in
            var notification = try await loadNotification(grant, context, in: tx)
            if var body = reader {
                if let name = body.string("name") { notification.name = body.validator.requireText(name, field: "name", maxLength: 100) }
                if body.has("type"), let type = body.decode("type", as: NotificationType.self), type != notification.type {
                    body.validator.add("type", "cannot change after creation; create a new notification instead")
                }
                try await apply(&body, to: &notification, creating: false, in: tx)
                try body.validator.check()
            }
            return try await FeedBuilder().preview(notification, in: tx)
        }
        guard let document else { throw HeraldError.notFound("Site \(grant.siteId.lowercased)") }
        return JSONResponse(document, headers: [.cacheControl: "no-store"])
    }

    /// Applies template, message, settings, content, rules and variants from the body, validating each.
    func apply(_ reader: inout BodyReader, to notification: inout Notification, creating: Bool, in tx: any SQLExecutor) async throws {
        if reader.isNull("templateId") {
            notification.templateId = nil
        } else if reader.has("templateId"), let templateId = reader.decode("templateId", as: UUID.self) {
            if let template = try await templates.find(templateId, siteId: notification.siteId, in: tx) {
                if template.type != notification.type {
                    reader.validator.add("templateId", "is a \(template.type.rawValue) template; this notification is \(notification.type.rawValue)")
                }
                notification.templateId = templateId
            } else {
                reader.validator.add("templateId", "names no template of this site")
            }
        }
        if reader.isNull("message") {
            notification.message = nil
        } else if let message = reader.string("message") {
            Self.checkTemplate(message, field: "message", into: &reader.validator)
            notification.message = message
        }
        notification.settings = reader.merged("settings", over: notification.settings)
        notification.settings.validate(field: "settings", into: &reader.validator)
        notification.content = reader.merged("content", over: notification.content)
        notification.content.validate(for: notification.type, field: "content", into: &reader.validator)
        if reader.isNull("rules") {
            notification.rules = nil
        } else if reader.has("rules"), let rules = reader.decode("rules", as: RuleNode.self) {
            Targeting.validate(rules, field: "rules", into: &reader.validator)
            notification.rules = rules
        }
        if reader.isNull("variants") {
            notification.variants = []
        } else if reader.has("variants"), let requested = reader.decode("variants", as: [VariantRequest].self) {
            notification.variants = Self.variants(requested, existing: notification.variants, into: &reader.validator)
        }
        if notification.variants.isEmpty {
            notification.abTestId = nil
        } else if notification.abTestId == nil {
            notification.abTestId = .v7()
        }
    }

    struct VariantRequest: Decodable {
        var id: UUID?
        var name: String?
        var weight: Int?
        var message: String?
    }

    static let maxVariants = 5

    static func variants(_ requested: [VariantRequest], existing: [Variant], into validator: inout Validator) -> [Variant] {
        if requested.isEmpty { return [] }
        guard (2...maxVariants).contains(requested.count) else {
            validator.add("variants", "must hold 2 to \(maxVariants) variants (or be empty to end the A/B test)")
            return existing
        }
        var names = Set<String>()
        return requested.enumerated().map { index, request in
            let field = "variants.\(index)"
            let name = validator.requireText(request.name ?? "\(Character(UnicodeScalar(UInt8(65 + index))))", field: "\(field).name", maxLength: 50)
            if !names.insert(name.lowercased()).inserted { validator.add("\(field).name", "must be unique within the test") }
            let weight = request.weight ?? 50
            if !(1...100).contains(weight) { validator.add("\(field).weight", "must be from 1 to 100") }
            if let message = request.message { checkTemplate(message, field: "\(field).message", into: &validator) }
            let id = request.id.flatMap { id in existing.contains { $0.id == id } ? id : nil } ?? .v7()
            if let requestedId = request.id, requestedId != id { validator.add("\(field).id", "names no variant of this notification") }
            return Variant(id: id, name: name, weight: weight, message: request.message)
        }
    }

    static func checkTemplate(_ source: String, field: String, into validator: inout Validator) {
        do {
            _ = try MessageTemplate(source)
        } catch {
            validator.add(field, error.description)
        }
    }

    @Sendable func deleteNotification(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .contentWrite)
        let meta = RequestMeta(request: request, context: context)
        try await write(grant) { tx in
            let notification = try await loadNotification(grant, context, in: tx)
            try await notifications.delete(notification, in: tx)
            try await Outbox.append(
                NotificationDeleted(notification: Self.changed(notification)), organizationId: grant.organizationId, siteId: grant.siteId, in: tx)
            try await AuditTrail.record(
                "notification.deleted", target: "notification", notification.id, details: ["name": notification.name], by: grant, meta: meta, in: tx
            )
        }
        return Response(status: .noContent)
    }

    /// Publishing or pausing takes effect on the next feed request; open pages are told to refetch.
    func setStatus(_ status: NotificationStatus, request: Request, context: HeraldRequestContext) async throws -> JSONResponse<NotificationBody> {
        let grant = try await access.site(from: context, .contentWrite)
        let meta = RequestMeta(request: request, context: context)
        let result = try await write(grant) { tx -> NotificationBody in
            var notification = try await loadNotification(grant, context, in: tx)
            guard notification.status != status else { return try await body(notification, in: tx) }
            if status == .published, let limit = try await holds.find(organizationId: grant.organizationId, in: tx)?.maxActiveCampaigns,
                try await holds.publishedCount(organizationId: grant.organizationId, in: tx) >= limit
            {
                throw HeraldError(
                    status: 409, slug: "campaign-quota", title: "Active campaign quota reached",
                    detail: "The organization's plan allows \(limit) published notifications at once; pause one or upgrade the plan first."
                )
            }
            let now = Date()
            notification.status = status
            notification.updatedAt = now
            if status == .published { notification.publishedAt = now }
            try await notifications.setStatus(notification, in: tx)
            let changed = Self.changed(notification)
            if status == .published {
                try await Outbox.append(
                    NotificationPublished(notification: changed), organizationId: grant.organizationId, siteId: grant.siteId, in: tx)
            } else {
                try await Outbox.append(NotificationPaused(notification: changed), organizationId: grant.organizationId, siteId: grant.siteId, in: tx)
            }
            try await AuditTrail.record(
                status == .published ? "notification.published" : "notification.paused", target: "notification", notification.id,
                details: ["name": notification.name], by: grant, meta: meta, in: tx
            )
            return try await body(notification, in: tx)
        }
        return JSONResponse(result)
    }

    // MARK: Templates

    static let builtInTemplates: [TemplateBody] = NotificationType.allCases.map { type in
        TemplateBody(
            id: nil, name: "Default \(type.rawValue.replacingOccurrences(of: "_", with: " "))", type: type, body: DefaultTemplates.body(for: type),
            builtIn: true)
    }

    @Sendable func listTemplates(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<TemplateBody>> {
        let grant = try await access.site(from: context, .contentRead)
        let stored = try await database.transaction(grant.scope) { try await templates.list(siteId: grant.siteId, in: $0) }
        let custom = stored.map {
            TemplateBody(id: $0.id, name: $0.name, type: $0.type, body: $0.body, builtIn: false, createdAt: $0.createdAt, updatedAt: $0.updatedAt)
        }
        return JSONResponse(Page(items: Self.builtInTemplates + custom))
    }

    @Sendable func createTemplate(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TemplateBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let name = reader.validator.requireText(reader.string("name"), field: "name", maxLength: 100)
        let type = reader.decode("type", as: NotificationType.self)
        if reader.isMissing("type") { reader.validator.add("type", "is required") }
        let source = reader.string("body")
        if let source { Self.checkTemplate(source, field: "body", into: &reader.validator) } else { reader.validator.add("body", "is required") }
        try reader.validator.check()
        let now = Date()
        let template = StoredTemplate(
            id: .v7(at: now), siteId: grant.siteId, name: name, type: type ?? .recentActivity, body: source ?? "", createdAt: now, updatedAt: now
        )
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(grant.scope) { tx in
            try await templates.insert(template, organizationId: grant.organizationId, in: tx)
            try await AuditTrail.record(
                "template.created", target: "template", template.id, details: ["name": name, "type": template.type.rawValue], by: grant,
                meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return JSONResponse(
            TemplateBody(id: template.id, name: name, type: template.type, body: template.body, builtIn: false, createdAt: now, updatedAt: now),
            status: .created
        )
    }

    // MARK: Activities and widget settings

    /// The activities recorded for a site, newest first, with where each came from.
    @Sendable func listActivities(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<ActivityBody>> {
        let grant = try await access.site(from: context, .contentRead)
        let limit = try request.limit(default: 50, max: 200)
        var before: TimeCursor?
        if let cursor = request.uri.queryParameters.get("cursor") {
            guard let parsed = TimeCursor(cursor) else { throw HeraldError.validation(field: "cursor", "must be the nextCursor of a previous page") }
            before = parsed
        }
        let records = try await database.transaction(grant.scope) {
            try await activities.list(siteId: grant.siteId, before: before, limit: limit, in: $0)
        }
        let items = records.map {
            ActivityBody(
                id: $0.id, type: $0.type, firstName: $0.firstName, city: $0.city, region: $0.region, country: $0.country,
                productName: $0.productName, productUrl: $0.productUrl, imageUrl: $0.imageUrl, rating: $0.rating, occurredAt: $0.occurredAt,
                provenance: $0.provenance
            )
        }
        let next = records.count == limit ? records.last.map { TimeCursor(date: $0.occurredAt, id: $0.id).text } : nil
        return JSONResponse(Page(items: items, nextCursor: next))
    }

    @Sendable func getWidgetSettings(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<WidgetSettingsBody> {
        let grant = try await access.site(from: context, .contentRead)
        let site = try await database.transaction(grant.scope) { try await sites.find(grant.siteId, in: $0) }
        return JSONResponse(WidgetSettingsBody(privacy: site?.privacy ?? PrivacySettings()))
    }

    @Sendable func updateWidgetSettings(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<WidgetSettingsBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let site = try await database.transaction(grant.scope) { try await sites.find(grant.siteId, in: $0) }
        guard let site else {
            throw HeraldError.conflict("The site is still being set up; try again in a moment.", slug: "site-not-ready")
        }
        let privacy = reader.merged("privacy", over: site.privacy)
        try reader.validator.check()
        let meta = RequestMeta(request: request, context: context)
        try await write(grant) { tx in
            try await sites.setPrivacy(privacy, siteId: grant.siteId, in: tx)
            try await AuditTrail.record(
                "widget_settings.updated", target: "site", grant.siteId,
                details: ["names": privacy.names.rawValue, "location": privacy.location.rawValue], by: grant, meta: meta, in: tx
            )
        }
        return JSONResponse(WidgetSettingsBody(privacy: privacy))
    }
}
