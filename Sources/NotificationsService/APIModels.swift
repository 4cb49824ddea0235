import Foundation
import HeraldContracts
import HeraldCore

// The JSON shapes of the Notifications management API (camelCase, ISO 8601 dates). Documented in openapi.json.
// The widget's own shapes (its feed, beacons, presence) live with the widget routes.

struct NotificationBody: Encodable, Sendable {
    var id: UUID
    var siteId: UUID
    var name: String
    var type: NotificationType
    var status: NotificationStatus
    var templateId: UUID?
    /// The notification's own message template, when it has one.
    var message: String?
    /// The template text in effect: the message, else the named template's body, else the type's default.
    var effectiveTemplate: String
    var settings: DisplaySettings
    var content: NotificationContent
    var rules: RuleNode?
    var abTestId: UUID?
    var variants: [Variant]
    var createdAt: Date
    var updatedAt: Date
    var publishedAt: Date?
}

struct TemplateBody: Encodable, Sendable {
    var id: UUID?
    var name: String
    var type: NotificationType
    var body: String
    var builtIn: Bool
    var createdAt: Date?
    var updatedAt: Date?
}

struct ActivityBody: Encodable, Sendable {
    var id: UUID
    var type: String
    var firstName: String?
    var city: String?
    var region: String?
    var country: String?
    var productName: String?
    var productUrl: String?
    var imageUrl: String?
    var rating: Int?
    var occurredAt: Date
    var provenance: Provenance
}

struct WidgetSettingsBody: Codable, Sendable {
    var privacy: PrivacySettings
}
