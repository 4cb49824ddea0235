import Foundation
import HeraldContracts
import HeraldCore
import HeraldStorage

/// The widget's feed for a site: every published notification with its settings, rules, variants and
/// pre-rendered items. Encoded once per change and served as bytes (see ``FeedCache``).
struct FeedDocument: Encodable, Sendable {
    var v = 1
    var siteId: UUID
    var generatedAt: Int64
    var timezone: String
    var notifications: [FeedNotification]
    /// Billing paused the organization's popups (`quota`: the plan's hard limit; `payment`: an unpaid invoice past
    /// its grace period). The feed is then empty and the widget shows nothing, without an error on the page.
    @Nullable var paused: String? = nil
}

struct FeedNotification: Encodable, Sendable {
    struct VariantRef: Encodable, Sendable {
        var id: UUID
        var weight: Int
    }

    struct Item: Encodable, Sendable {
        var id: UUID
        /// Milliseconds since 1970.
        var at: Int64
        var runs: [RenderedText.Run]
        var variantRuns: [String: [RenderedText.Run]]?
        var url: String?
        var image: String?
    }

    struct PathCounter: Encodable, Sendable {
        var count: Int
        var runs: [RenderedText.Run]
        var variantRuns: [String: [RenderedText.Run]]?
    }

    var id: UUID
    var type: NotificationType
    var settings: DisplaySettings
    var rules: RuleNode?
    var variants: [VariantRef]?
    /// recent_activity: the newest matching activities, rendered.
    var items: [Item]?
    /// counter (site scope), live_visitors and announcement: the rendered message.
    var runs: [RenderedText.Run]?
    var variantRuns: [String: [RenderedText.Run]]?
    /// counter (page scope): the message for each product page path.
    var byPath: [String: PathCounter]?
    /// counter (site scope): the count.
    var count: Int?
    /// live_visitors and counter: nothing is shown below this number.
    var minimum: Int?
    var cta: NotificationContent.CallToAction?
}

/// Renders notifications for visitors, applying the site's privacy settings.
struct FeedBuilder: Sendable {
    let notifications = NotificationStore()
    let templates = TemplateStore()
    let activities = ActivityStore()
    let sites = SiteStore()
    let holds = DeliveryHoldStore()
    static let itemsPerNotification = 20

    func build(siteId: UUID, in tx: any SQLExecutor, now: Date = Date()) async throws -> FeedDocument? {
        guard let site = try await sites.find(siteId, in: tx) else { return nil }
        if let hold = try await holds.find(organizationId: site.organizationId, in: tx), hold.paused {
            return FeedDocument(
                siteId: siteId, generatedAt: now.unixMilliseconds, timezone: site.timezone, notifications: [], paused: hold.reason ?? "billing")
        }
        let published = try await notifications.published(siteId: siteId, in: tx)
        let maxAge = published.filter { $0.type == .recentActivity }.map(\.settings.hideOlderThanDays).max() ?? 0
        let recent =
            maxAge > 0
            ? try await activities.recent(siteId: siteId, since: now.addingTimeInterval(-Double(maxAge) * 86_400), limit: 200, in: tx) : []
        var feed = FeedDocument(siteId: siteId, generatedAt: now.unixMilliseconds, timezone: site.timezone, notifications: [])
        for notification in published {
            feed.notifications.append(try await entry(for: notification, site: site, recent: recent, in: tx, now: now))
        }
        return feed
    }

    /// One notification as the widget needs it, from the site's recent activities. A `sample` entry (the
    /// dashboard's preview) shows a made-up activity or count where the real ones would show nothing yet.
    func entry(
        for notification: Notification, site: SiteRecord, recent: [ActivityRecord], in tx: any SQLExecutor, now: Date, sample: Bool = false
    ) async throws -> FeedNotification {
        let siteId = site.siteId
        let resolved = try await resolveTemplates(notification, in: tx)
        var entry = FeedNotification(
            id: notification.id, type: notification.type, settings: notification.settings, rules: notification.rules,
            variants: notification.variants.isEmpty ? nil : notification.variants.map { .init(id: $0.id, weight: $0.weight) }
        )
        let content = notification.content.completed(for: notification.type)
        switch notification.type {
        case .recentActivity:
            let horizon = now.addingTimeInterval(-Double(notification.settings.hideOlderThanDays) * 86_400)
            entry.items = recent.filter { activity in
                activity.occurredAt >= horizon && (content.activityTypes?.contains(activity.type) ?? true)
            }.prefix(Self.itemsPerNotification).map { item(for: $0, resolved, site: site) }
            if sample, entry.items?.isEmpty ?? true {
                entry.items = [
                    item(for: Self.sampleActivity(site: site, type: content.activityTypes?.first ?? "purchase", now: now), resolved, site: site)
                ]
            }
        case .counter:
            let type = content.counterActivityType ?? "purchase"
            let since = now.addingTimeInterval(-Double(content.windowHours ?? 24) * 3600)
            entry.minimum = content.minimumCount
            var values = TemplateValues()
            values.strings["action"] = ActivityTypes.verb(for: type)
            values.strings["siteName"] = site.name
            values.numbers["windowHours"] = Double(content.windowHours ?? 24)
            if content.scope == "page" {
                var byPath: [String: FeedNotification.PathCounter] = [:]
                for (url, count, name) in try await activities.countByProduct(siteId: siteId, type: type, since: since, in: tx) {
                    guard let path = URLComponents(string: url)?.path else { continue }
                    var pathValues = values
                    pathValues.numbers["count"] = Double(count)
                    pathValues.strings["productName"] = name
                    let (runs, variantRuns) = render(resolved, pathValues)
                    byPath[Self.normalizedPath(path)] = .init(count: count, runs: runs, variantRuns: variantRuns)
                }
                if sample, byPath.isEmpty {
                    var pathValues = values
                    let count = max(content.minimumCount ?? 1, Self.sampleCount)
                    pathValues.numbers["count"] = Double(count)
                    pathValues.strings["productName"] = Self.sampleProduct
                    let (runs, variantRuns) = render(resolved, pathValues)
                    byPath["/"] = .init(count: count, runs: runs, variantRuns: variantRuns)
                }
                entry.byPath = byPath
            } else {
                var count = try await activities.count(siteId: siteId, type: type, since: since, in: tx)
                if sample, count < (content.minimumCount ?? 1) { count = max(content.minimumCount ?? 1, Self.sampleCount) }
                values.numbers["count"] = Double(count)
                entry.count = count
                (entry.runs, entry.variantRuns) = render(resolved, values)
            }
        case .liveVisitors:
            entry.minimum = content.minimumCount
            var values = TemplateValues()
            values.strings["siteName"] = site.name
            (entry.runs, entry.variantRuns) = render(resolved, values)
        case .announcement:
            var values = TemplateValues()
            values.strings["siteName"] = site.name
            (entry.runs, entry.variantRuns) = render(resolved, values)
            entry.cta = content.cta
        }
        return entry
    }

    /// The widget's feed for one notification, saved or not and whatever its status, for the dashboard's preview:
    /// the same rendering as the site's feed, with a sample activity or count where there is none yet.
    func preview(_ notification: Notification, in tx: any SQLExecutor, now: Date = Date()) async throws -> FeedDocument? {
        guard let site = try await sites.find(notification.siteId, in: tx) else { return nil }
        let recent =
            notification.type == .recentActivity
            ? try await activities.recent(
                siteId: site.siteId, since: now.addingTimeInterval(-Double(notification.settings.hideOlderThanDays) * 86_400), limit: 200, in: tx)
            : []
        let entry = try await entry(for: notification, site: site, recent: recent, in: tx, now: now, sample: true)
        return FeedDocument(siteId: site.siteId, generatedAt: now.unixMilliseconds, timezone: site.timezone, notifications: [entry])
    }

    static let sampleCount = 27
    static let sampleProduct = "Blue Hoodie"

    /// The made-up activity a preview shows when the site has none: it never leaves the preview.
    static func sampleActivity(site: SiteRecord, type: String, now: Date) -> ActivityRecord {
        ActivityRecord(
            id: UUID(uuid: (0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1)), siteId: site.siteId, type: type, firstName: "Sarah",
            city: "Austin", region: "Texas", country: "US", productName: sampleProduct, productUrl: nil, imageUrl: nil,
            rating: type == "review" ? 5 : nil, occurredAt: now.addingTimeInterval(-240),
            provenance: Provenance(source: "api", receivedAt: now, signatureVerified: false, authenticatedBy: "preview")
        )
    }

    /// A notification's templates, parsed: its own, then each variant's (falling back to its own).
    struct ResolvedTemplates: Sendable {
        var main: MessageTemplate
        var variants: [(id: UUID, template: MessageTemplate)]
    }

    func resolveTemplates(_ notification: Notification, in tx: any SQLExecutor) async throws -> ResolvedTemplates {
        var source = notification.message
        if source == nil, let templateId = notification.templateId {
            source = try await templates.find(templateId, siteId: notification.siteId, in: tx)?.body
        }
        let main =
            (try? MessageTemplate(source ?? DefaultTemplates.body(for: notification.type))) ?? DefaultTemplates.template(for: notification.type)
        let variants = notification.variants.map { variant in
            (variant.id, variant.message.flatMap { try? MessageTemplate($0) } ?? main)
        }
        return ResolvedTemplates(main: main, variants: variants)
    }

    func render(_ templates: ResolvedTemplates, _ values: TemplateValues) -> ([RenderedText.Run], [String: [RenderedText.Run]]?) {
        let runs = templates.main.render(values).runs
        guard !templates.variants.isEmpty else { return (runs, nil) }
        var byVariant: [String: [RenderedText.Run]] = [:]
        for (id, template) in templates.variants { byVariant[id.lowercased] = template.render(values).runs }
        return (runs, byVariant)
    }

    func item(for activity: ActivityRecord, _ templates: ResolvedTemplates, site: SiteRecord) -> FeedNotification.Item {
        let values = Self.values(for: activity, site: site)
        let (runs, variantRuns) = render(templates, values)
        return FeedNotification.Item(
            id: activity.id, at: activity.occurredAt.unixMilliseconds, runs: runs, variantRuns: variantRuns,
            url: activity.productUrl.flatMap(WebURL.validated), image: activity.imageUrl.flatMap(WebURL.validated)
        )
    }

    /// What a template may say about an activity, after the site's privacy settings.
    static func values(for activity: ActivityRecord, site: SiteRecord) -> TemplateValues {
        var values = TemplateValues()
        if site.privacy.names == .firstName, let first = activity.firstName?.split(whereSeparator: \.isWhitespace).first {
            values.strings["firstName"] = String(first)
            values.strings["name"] = String(first)
        }
        let location = site.privacy.location
        if location == .city { values.strings["city"] = activity.city }
        if location == .city || location == .region { values.strings["region"] = activity.region }
        if location != .none { values.strings["country"] = activity.country }
        values.strings["location"] =
            [values.strings["city"], values.strings["region"], values.strings["country"]].compactMap { $0 }.first { !$0.isEmpty }
        values.strings["productName"] = activity.productName
        values.strings["productUrl"] = activity.productUrl
        values.strings["type"] = activity.type
        values.strings["action"] = ActivityTypes.verb(for: activity.type)
        values.strings["siteName"] = site.name
        if let rating = activity.rating { values.numbers["rating"] = Double(rating) }
        values.dates["occurredAt"] = activity.occurredAt
        return values
    }

    static func normalizedPath(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : (path.isEmpty ? "/" : path)
    }
}

/// The template each type uses when a notification names none.
enum DefaultTemplates {
    static func body(for type: NotificationType) -> String {
        switch type {
        case .recentActivity:
            #"{{firstName | fallback: "Someone"}}{{#city}} from {{city}}{{/city}} {{action}}{{#productName}} {{productName}}{{/productName}}"#
        case .counter:
            #"{{count | number}} {{count | plural: "person", "people"}} {{action}}{{#productName}} {{productName}}{{/productName}} in the last {{windowHours}} hours"#
        case .liveVisitors:
            #"{{visitors | number}} {{visitors | plural: "person is", "people are"}} viewing this page right now"#
        case .announcement:
            "Welcome! Have a look around."
        }
    }

    static func template(for type: NotificationType) -> MessageTemplate {
        // The built-in bodies are constants checked by the tests, so parsing cannot fail.
        (try? MessageTemplate(body(for: type))) ?? (try? MessageTemplate("")) ?? DefaultTemplates.empty
    }

    static let empty: MessageTemplate = {
        guard let template = try? MessageTemplate("") else { preconditionFailure("the empty template must parse") }
        return template
    }()
}
