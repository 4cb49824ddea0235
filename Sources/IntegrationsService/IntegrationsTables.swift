import HeraldStorage

/// The Integrations service's tables (PostgreSQL schema `integrations`).
enum IntegrationsTables {
    /// Responses to requests that carried an `Idempotency-Key`, kept 24 hours.
    static let idempotencyKeys = Table("integrations", "idempotency_keys")
    static let integrations = Table("integrations", "integrations")
    /// Inbound URL token (hashed) → integration, resolved before the tenant is known.
    static let hookRoutes = Table("integrations", "hook_routes")
    /// Shopify shop domain → integrations, for the app's install request.
    static let shopRoutes = Table("integrations", "shop_routes")
    /// OAuth `state` nonces (hashed) → integration, single use, 10 minutes.
    static let oauthStates = Table("integrations", "oauth_states")
    /// Every inbound delivery with what became of it.
    static let inboundDeliveries = Table("integrations", "inbound_deliveries")
    /// Which source records (orders, customers) already became an activity, whichever way they came.
    static let sourceRecords = Table("integrations", "source_records")
    static let imports = Table("integrations", "imports")
    static let webhookEndpoints = Table("integrations", "webhook_endpoints")
    static let webhookMessages = Table("integrations", "webhook_messages")
    static let webhookAttempts = Table("integrations", "webhook_attempts")
    /// Due outbound messages across tenants: ids and times only, for the dispatcher.
    static let webhookQueue = Table("integrations", "webhook_queue")

    /// What Billing meters as an organization's storage with Integrations: the inbound deliveries of its integrations.
    static let footprint = StorageFootprint([
        .init(
            inboundDeliveries, key: "integration_id", directory: hookRoutes, variableColumns: ["source_delivery_id", "topic", "status", "reason"],
            fixedBytesPerRow: 200
        )
    ])
}
