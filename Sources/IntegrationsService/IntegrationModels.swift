import Foundation
import HeraldContracts
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage

public enum IntegrationType: String, APIEnum {
    case shopify, woocommerce, zapier, webhook
}

/// The non-secret settings of an integration, as stored in clear and returned by the API.
struct IntegrationConfig: Codable, Sendable, Equatable {
    /// Shopify: `shop.myshopify.com`.
    var shopDomain: String?
    /// Shopify: Admin API version for imports.
    var apiVersion: String?
    /// WooCommerce: the store's base URL.
    var storeUrl: String?
    /// Generic webhook: activity field → JSON Pointer into the payload.
    var mapping: [String: String]?
    /// Generic webhook: the activity type when the mapping has none.
    var activityType: String?
    /// Generic webhook: an example payload the mapping was checked against.
    var samplePayload: JSONValue?
}

/// Credentials, stored encrypted with the field cipher and never returned in full after creation.
struct IntegrationSecrets: Codable, Sendable, Equatable {
    /// The token in the inbound webhook URL.
    var hookToken: String
    var webhookSecret: String?
    var accessToken: String?
    var consumerKey: String?
    var consumerSecret: String?
}

struct Integration: Sendable {
    var id: UUID
    var siteId: UUID
    var organizationId: UUID
    var type: IntegrationType
    var name: String
    var status: String
    var config: IntegrationConfig
    var secrets: IntegrationSecrets
    var health: Health
    var createdAt: Date
    var updatedAt: Date

    struct Health: Codable, Sendable, Equatable {
        /// `closed` (calls flow), `open` (calls are refused for a while after repeated failures), `half-open` (one trial).
        var circuit: String = "closed"
        var consecutiveFailures: Int = 0
        var openedAt: Date?
        var lastError: String?
        var lastSuccessAt: Date?
        var lastFailureAt: Date?
    }
}

enum ActivityFields {
    /// The activity fields a webhook mapping may fill.
    static let mappable: Set<String> = [
        "type", "firstName", "lastName", "email", "city", "region", "country", "productName", "productUrl", "imageUrl", "rating",
        "occurredAt", "sourceEventId",
    ]
}

extension IntegrationConfig {
    /// Checks the settings for `type` and splits secret fields out of the request's `config`.
    static func validated(
        type: IntegrationType, config object: [String: JSONValue], existing: (IntegrationConfig, IntegrationSecrets)?, into validator: inout Validator
    ) -> (IntegrationConfig, IntegrationSecrets) {
        var config = existing?.0 ?? IntegrationConfig()
        var secrets = existing?.1 ?? IntegrationSecrets(hookToken: SecretToken.random(bytes: 24))
        func text(_ key: String) -> String? {
            guard let value = object[key], value != .null else { return nil }
            guard let string = value.stringValue else {
                validator.add("config.\(key)", "must be a string")
                return nil
            }
            return string.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let allowed: Set<String>
        switch type {
        case .shopify:
            allowed = ["shopDomain", "webhookSecret", "accessToken", "apiVersion"]
            if let shop = text("shopDomain") { config.shopDomain = shop.lowercased() }
            if let secret = text("webhookSecret") { secrets.webhookSecret = secret }
            if let token = text("accessToken") { secrets.accessToken = token }
            if let version = text("apiVersion") { config.apiVersion = version }
            if config.apiVersion == nil { config.apiVersion = "2025-01" }
            if let shop = config.shopDomain, !isShopDomain(shop) {
                validator.add("config.shopDomain", "must be the store's myshopify.com domain, like acme.myshopify.com")
            } else if config.shopDomain == nil {
                validator.add("config.shopDomain", "is required, like acme.myshopify.com")
            }
            if (secrets.webhookSecret ?? "").count < 8 {
                validator.add("config.webhookSecret", "is required: the secret Shopify signs webhooks with (at least 8 characters)")
            }
            if let version = config.apiVersion, !version.matches(#"^\d{4}-\d{2}$"#) && version != "unstable" {
                validator.add("config.apiVersion", "must look like 2025-01")
            }
        case .woocommerce:
            allowed = ["storeUrl", "webhookSecret", "consumerKey", "consumerSecret"]
            if let url = text("storeUrl") { config.storeUrl = url.hasSuffix("/") ? String(url.dropLast()) : url }
            if let secret = text("webhookSecret") { secrets.webhookSecret = secret }
            if let key = text("consumerKey") { secrets.consumerKey = key }
            if let secret = text("consumerSecret") { secrets.consumerSecret = secret }
            if config.storeUrl.flatMap(WebURL.validated) == nil { validator.add("config.storeUrl", "must be the store's http(s) address") }
            if (secrets.webhookSecret ?? "").count < 8 {
                validator.add("config.webhookSecret", "is required: the secret set on the WooCommerce webhook (at least 8 characters)")
            }
            if (secrets.consumerKey == nil) != (secrets.consumerSecret == nil) {
                validator.add("config.consumerSecret", "consumerKey and consumerSecret go together (both, or neither)")
            }
        case .zapier:
            allowed = []
        case .webhook:
            allowed = ["mapping", "activityType", "samplePayload"]
            if let value = object["mapping"], value != .null {
                if let fields = value.objectValue, fields.values.allSatisfy({ $0.stringValue != nil }) {
                    config.mapping = fields.compactMapValues(\.stringValue)
                } else {
                    validator.add(
                        "config.mapping", "must be an object of activity field → JSON Pointer, like {\"firstName\": \"/customer/first_name\"}")
                }
            }
            if let type = text("activityType") { config.activityType = type }
            if let sample = object["samplePayload"] { config.samplePayload = sample == .null ? nil : sample }
            if secrets.webhookSecret == nil { secrets.webhookSecret = WebhookSignature.newSecret() }
            validateMapping(config, into: &validator)
        }
        for key in object.keys.sorted() where !allowed.contains(key) {
            validator.add("config.\(key)", "is not a setting of \(type.rawValue) integrations")
        }
        return (config, secrets)
    }

    static func isShopDomain(_ text: String) -> Bool {
        text.matches(#"^[a-z0-9][a-z0-9-]{0,60}\.myshopify\.com$"#)
    }

    static func validateMapping(_ config: IntegrationConfig, into validator: inout Validator) {
        guard let mapping = config.mapping, !mapping.isEmpty else {
            validator.add("config.mapping", "is required: which payload fields become the activity, like {\"firstName\": \"/customer/first_name\"}")
            return
        }
        for (field, pointer) in mapping.sorted(by: { $0.key < $1.key }) {
            guard ActivityFields.mappable.contains(field) else {
                validator.add("config.mapping.\(field)", "is not an activity field; use \(ActivityFields.mappable.sorted().joined(separator: ", "))")
                continue
            }
            guard pointer.hasPrefix("/") else {
                validator.add("config.mapping.\(field)", "must be a JSON Pointer starting with '/', like /customer/first_name")
                continue
            }
            if let sample = config.samplePayload {
                if sample.resolve(pointer: pointer) == nil {
                    validator.add("config.mapping.\(field)", "points at nothing in samplePayload (\(pointer))")
                } else if case .object = sample.resolve(pointer: pointer) {
                    validator.add("config.mapping.\(field)", "points at an object in samplePayload; point at a value")
                }
            }
        }
        if mapping["type"] == nil, let type = config.activityType, !ActivityTypes.isValid(type) {
            validator.add("config.activityType", "must be an activity type such as purchase or signup")
        }
    }
}

extension String {
    func matches(_ pattern: String) -> Bool {
        range(of: pattern, options: .regularExpression) != nil
    }
}

/// `…abcd`: enough to recognise a credential, not to use it.
func hint(_ secret: String?) -> String? {
    guard let secret, secret.count >= 8 else { return secret == nil ? nil : "…" }
    return "…" + secret.suffix(4)
}
