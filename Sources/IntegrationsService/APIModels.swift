import Foundation
import HeraldCore

/// The shapes the Integrations API returns: integrations, inbound hook answers, outbound endpoints, Zapier.
struct IntegrationBody: Encodable, Sendable {
    struct Credentials: Encodable, Sendable {
        /// The last characters of each stored credential: enough to recognise it.
        var webhookSecret: String?
        var accessToken: String?
        var consumerKey: String?
        var consumerSecret: String?
    }

    var id: UUID
    var siteId: UUID
    var type: IntegrationType
    var name: String
    /// `active` or `disabled`.
    var status: String
    var config: IntegrationConfig
    var credentials: Credentials
    /// Where the source sends its webhooks (not for Zapier).
    var webhookUrl: String?
    var health: Integration.Health
    var createdAt: Date
    var updatedAt: Date
    /// The generic webhook's signing secret: returned once, when the integration is created.
    var webhookSecret: String?

    init(_ integration: Integration, health: Integration.Health, baseURL: String, revealSecret: Bool = false) {
        id = integration.id
        siteId = integration.siteId
        type = integration.type
        name = integration.name
        status = integration.status
        config = integration.config
        credentials = Credentials(
            webhookSecret: hint(integration.secrets.webhookSecret), accessToken: hint(integration.secrets.accessToken),
            consumerKey: hint(integration.secrets.consumerKey), consumerSecret: hint(integration.secrets.consumerSecret)
        )
        webhookUrl = integration.type == .zapier ? nil : "\(baseURL)/hooks/\(integration.secrets.hookToken)"
        self.health = health
        createdAt = integration.createdAt
        updatedAt = integration.updatedAt
        webhookSecret = revealSecret ? integration.secrets.webhookSecret : nil
    }
}

struct AuthorizeBody: Encodable, Sendable {
    var authorizeUrl: String
    var expiresAt: Date
}

struct ConnectedBody: Encodable, Sendable {
    var status: String
    var integrationId: UUID
    var shopDomain: String
    var scope: String?
}

struct EndpointBody: Encodable, Sendable {
    var id: UUID
    var siteId: UUID
    var url: String
    var description: String?
    var eventTypes: [String]
    /// `enabled` or `disabled`.
    var status: String
    var disabledReason: String?
    var createdAt: Date
    var updatedAt: Date
    /// The `whsec_` signing secret: returned when the endpoint is created and when its secret is rotated.
    var secret: String?
    /// Until when the previous secret also signs, after a rotation.
    var previousSecretExpiresAt: Date?

    init(_ endpoint: WebhookEndpoint, secret: String? = nil) {
        id = endpoint.id
        siteId = endpoint.siteId
        url = endpoint.url
        description = endpoint.description
        eventTypes = endpoint.eventTypes
        status = endpoint.status
        disabledReason = endpoint.disabledReason
        createdAt = endpoint.createdAt
        updatedAt = endpoint.updatedAt
        self.secret = secret
        previousSecretExpiresAt = endpoint.secrets.compactMap(\.expiresAt).filter { $0 > Date() }.max()
    }
}

struct ResendBody: Encodable, Sendable {
    var id: String
    var status: String
}

struct ZapierMe: Encodable, Sendable {
    var siteId: UUID
    var organizationId: UUID
}

struct ZapierHook: Encodable, Sendable {
    var id: UUID
}

struct HookAnswer: Codable, Sendable {
    var deliveryId: UUID
    var status: String
}
