import Foundation
import HeraldContracts
import HeraldCore

public enum NotificationType: String, APIEnum {
    /// One popup per activity: "Sarah from Austin purchased Blue Hoodie · 4 minutes ago".
    case recentActivity = "recent_activity"
    /// "27 people purchased this in the last 24 hours".
    case counter
    /// "14 people are viewing this page right now", from widget heartbeats.
    case liveVisitors = "live_visitors"
    /// A fixed message with an optional call to action.
    case announcement
}

public enum NotificationStatus: String, APIEnum {
    case draft, published, paused
}

/// How and when popups appear. Every field has a default (competitors' defaults: first popup after 3 s,
/// shown 7 s, 5 s apart), so `{}` is a complete setting.
public struct DisplaySettings: Codable, Sendable, Equatable {
    public enum Position: String, APIEnum {
        case bottomLeft = "bottom-left", bottomRight = "bottom-right", topLeft = "top-left", topRight = "top-right"
    }
    public enum Order: String, APIEnum { case newest, random }
    public enum Theme: String, APIEnum { case light, dark }
    public enum Device: String, APIEnum { case desktop, mobile, tablet }

    public struct Colors: Codable, Sendable, Equatable {
        public var background: String?
        public var text: String?
        public var accent: String?
    }

    public var position: Position = .bottomLeft
    public var firstDelaySeconds: Double = 3
    public var displaySeconds: Double = 7
    public var gapSeconds: Double = 5
    /// Most popups of this notification per page view.
    public var maxPerPage = 5
    /// Most popups of this notification per browsing session.
    public var maxPerSession = 20
    /// Start again from the first item once all were shown.
    public var loop = false
    public var order: Order = .newest
    /// Activities older than this are not shown.
    public var hideOlderThanDays = 7
    public var devices: [Device] = [.desktop, .mobile, .tablet]
    public var theme: Theme = .light
    public var colors: Colors?
    public var showTimeAgo = true
    public var showImage = true
    public var closable = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case position, firstDelaySeconds, displaySeconds, gapSeconds, maxPerPage, maxPerSession, loop, order, hideOlderThanDays
        case devices, theme, colors, showTimeAgo, showImage, closable
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DisplaySettings.init()
        position = try c.decodeIfPresent(Position.self, forKey: .position) ?? d.position
        firstDelaySeconds = try c.decodeIfPresent(Double.self, forKey: .firstDelaySeconds) ?? d.firstDelaySeconds
        displaySeconds = try c.decodeIfPresent(Double.self, forKey: .displaySeconds) ?? d.displaySeconds
        gapSeconds = try c.decodeIfPresent(Double.self, forKey: .gapSeconds) ?? d.gapSeconds
        maxPerPage = try c.decodeIfPresent(Int.self, forKey: .maxPerPage) ?? d.maxPerPage
        maxPerSession = try c.decodeIfPresent(Int.self, forKey: .maxPerSession) ?? d.maxPerSession
        loop = try c.decodeIfPresent(Bool.self, forKey: .loop) ?? d.loop
        order = try c.decodeIfPresent(Order.self, forKey: .order) ?? d.order
        hideOlderThanDays = try c.decodeIfPresent(Int.self, forKey: .hideOlderThanDays) ?? d.hideOlderThanDays
        devices = try c.decodeIfPresent([Device].self, forKey: .devices) ?? d.devices
        theme = try c.decodeIfPresent(Theme.self, forKey: .theme) ?? d.theme
        colors = try c.decodeIfPresent(Colors.self, forKey: .colors)
        showTimeAgo = try c.decodeIfPresent(Bool.self, forKey: .showTimeAgo) ?? d.showTimeAgo
        showImage = try c.decodeIfPresent(Bool.self, forKey: .showImage) ?? d.showImage
        closable = try c.decodeIfPresent(Bool.self, forKey: .closable) ?? d.closable
    }

    func validate(field: String, into validator: inout Validator) {
        func range<T: Comparable>(_ value: T, _ bounds: ClosedRange<T>, _ name: String) {
            if !bounds.contains(value) { validator.add("\(field).\(name)", "must be from \(bounds.lowerBound) to \(bounds.upperBound)") }
        }
        range(firstDelaySeconds, 0...600, "firstDelaySeconds")
        range(displaySeconds, 1...120, "displaySeconds")
        range(gapSeconds, 0...600, "gapSeconds")
        range(maxPerPage, 1...50, "maxPerPage")
        range(maxPerSession, 1...500, "maxPerSession")
        range(hideOlderThanDays, 1...365, "hideOlderThanDays")
        if devices.isEmpty { validator.add("\(field).devices", "must name at least one of desktop, mobile, tablet") }
        for (name, value) in [("background", colors?.background), ("text", colors?.text), ("accent", colors?.accent)] {
            if let value, !Self.isHexColor(value) { validator.add("\(field).colors.\(name)", "must be a hex colour like #1f2937") }
        }
    }

    static func isHexColor(_ text: String) -> Bool {
        guard text.hasPrefix("#"), [4, 7].contains(text.count) else { return false }
        return text.dropFirst().allSatisfy(\.isHexDigit)
    }
}

/// Settings that belong to one notification type.
public struct NotificationContent: Codable, Sendable, Equatable {
    public struct CallToAction: Codable, Sendable, Equatable {
        public var text: String
        public var url: String
    }

    /// recent_activity: the activity types to show (all when absent).
    public var activityTypes: [String]?
    /// counter: which activities to count.
    public var counterActivityType: String?
    /// counter: the window counted, in hours.
    public var windowHours: Int?
    /// counter / live_visitors: below this number nothing is shown ("1 person" convinces no one).
    public var minimumCount: Int?
    /// counter: `site` counts every page; `page` counts activities whose product URL is the page.
    public var scope: String?
    /// announcement: the call to action button.
    public var cta: CallToAction?

    public init() {}

    static func defaults(for type: NotificationType) -> NotificationContent {
        var content = NotificationContent()
        switch type {
        case .recentActivity: break
        case .counter:
            content.counterActivityType = "purchase"
            content.windowHours = 24
            content.minimumCount = 3
            content.scope = "site"
        case .liveVisitors:
            content.minimumCount = 2
        case .announcement: break
        }
        return content
    }

    /// Fills absent fields with the type's defaults.
    func completed(for type: NotificationType) -> NotificationContent {
        let defaults = Self.defaults(for: type)
        var content = self
        content.counterActivityType = counterActivityType ?? defaults.counterActivityType
        content.windowHours = windowHours ?? defaults.windowHours
        content.minimumCount = minimumCount ?? defaults.minimumCount
        content.scope = scope ?? defaults.scope
        return content
    }

    func validate(for type: NotificationType, field: String, into validator: inout Validator) {
        if let types = activityTypes {
            if types.isEmpty || types.count > 20 || !types.allSatisfy(ActivityTypes.isValid) {
                validator.add("\(field).activityTypes", "must list 1 to 20 activity types such as purchase or signup")
            }
        }
        if let type = counterActivityType, !ActivityTypes.isValid(type) {
            validator.add("\(field).counterActivityType", "must be an activity type such as purchase")
        }
        if let hours = windowHours, !(1...720).contains(hours) { validator.add("\(field).windowHours", "must be from 1 to 720") }
        if let minimum = minimumCount, !(1...1000).contains(minimum) { validator.add("\(field).minimumCount", "must be from 1 to 1000") }
        if let scope, !["site", "page"].contains(scope) { validator.add("\(field).scope", "must be site or page") }
        if let cta {
            if cta.text.trimmingCharacters(in: .whitespaces).isEmpty || cta.text.count > 40 {
                validator.add("\(field).cta.text", "must be 1 to 40 characters")
            }
            if WebURL.validated(cta.url) == nil { validator.add("\(field).cta.url", "must be an http or https URL") }
        }
    }
}

/// One arm of an A/B test.
public struct Variant: Codable, Sendable, Equatable {
    public var id: UUID
    public var name: String
    /// Relative share of visitors, 1–100.
    public var weight: Int
    /// The variant's message template; the notification's when absent.
    public var message: String?
}

/// A notification as stored and as returned by the API.
public struct Notification: Sendable, Equatable {
    public var id: UUID
    public var siteId: UUID
    public var organizationId: UUID
    public var name: String
    public var type: NotificationType
    public var status: NotificationStatus
    public var templateId: UUID?
    /// The notification's own message template, overriding its template's.
    public var message: String?
    public var settings: DisplaySettings
    public var content: NotificationContent
    public var rules: RuleNode?
    public var abTestId: UUID?
    public var variants: [Variant]
    public var createdAt: Date
    public var updatedAt: Date
    public var publishedAt: Date?
}
