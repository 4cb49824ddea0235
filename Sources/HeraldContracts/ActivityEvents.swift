import Foundation
import HeraldCore
import HeraldEvents

/// Where an activity came from: the proof that a popup shows something real.
public struct Provenance: Codable, Sendable, Equatable {
    /// `api`, `shopify`, `woocommerce`, `zapier` or `webhook`.
    public var source: String
    public var receivedAt: Date
    /// Whether the request carried a signature Herald verified (webhooks), as opposed to an API key.
    public var signatureVerified: Bool
    /// The integration that received it, for integration sources.
    public var integrationId: UUID?
    /// The source's own id for the event (a Shopify webhook id, an order id), when it has one.
    public var sourceEventId: String?
    /// Who authenticated the request: `site-key` or `user:<id>`, or `integration` for webhooks.
    public var authenticatedBy: String

    public init(
        source: String, receivedAt: Date, signatureVerified: Bool, integrationId: UUID? = nil, sourceEventId: String? = nil,
        authenticatedBy: String
    ) {
        self.source = source
        self.receivedAt = receivedAt
        self.signatureVerified = signatureVerified
        self.integrationId = integrationId
        self.sourceEventId = sourceEventId
        self.authenticatedBy = authenticatedBy
    }
}

/// A real event on a site (an order, a sign-up, a review) captured from any source.
///
/// Fields a visitor may see travel in clear; the last name and email never reach a visitor and travel
/// encrypted with the field cipher (context `activity:<id>:lastName` / `activity:<id>:email`).
public struct ActivityCaptured: DomainEvent {
    public static let eventType = "activity.captured"
    public static let schemaVersion = 1

    public var activityId: UUID
    public var siteId: UUID
    public var type: String
    public var firstName: String?
    public var city: String?
    public var region: String?
    public var country: String?
    public var productName: String?
    public var productUrl: String?
    public var imageUrl: String?
    public var rating: Int?
    public var occurredAt: Date
    /// Base64 of the encrypted last name.
    public var lastNameEncrypted: String?
    /// Base64 of the encrypted email.
    public var emailEncrypted: String?
    public var provenance: Provenance

    public init(
        activityId: UUID, siteId: UUID, type: String, firstName: String? = nil, city: String? = nil, region: String? = nil,
        country: String? = nil, productName: String? = nil, productUrl: String? = nil, imageUrl: String? = nil, rating: Int? = nil,
        occurredAt: Date, lastNameEncrypted: String? = nil, emailEncrypted: String? = nil, provenance: Provenance
    ) {
        self.activityId = activityId
        self.siteId = siteId
        self.type = type
        self.firstName = firstName
        self.city = city
        self.region = region
        self.country = country
        self.productName = productName
        self.productUrl = productUrl
        self.imageUrl = imageUrl
        self.rating = rating
        self.occurredAt = occurredAt
        self.lastNameEncrypted = lastNameEncrypted
        self.emailEncrypted = emailEncrypted
        self.provenance = provenance
    }
}

/// Activity types: a short lowercase slug. Known types read naturally in messages.
public enum ActivityTypes {
    public static let verbs: [String: String] = [
        "purchase": "purchased", "signup": "signed up", "review": "reviewed", "subscription": "subscribed to",
        "download": "downloaded", "booking": "booked", "donation": "donated to", "registration": "registered for",
        "trial": "started a trial of", "lead": "requested info about",
    ]

    public static func isValid(_ type: String) -> Bool {
        guard let first = type.unicodeScalars.first, (1...32).contains(type.count), ("a"..."z").contains(first) else { return false }
        return type.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    public static func verb(for type: String) -> String {
        verbs[type] ?? type.replacingOccurrences(of: "_", with: " ")
    }
}
