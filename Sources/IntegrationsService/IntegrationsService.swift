import AsyncHTTPClient
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging
import ServiceLifecycle

/// The Integrations service: every way real activity enters Herald (the events API, Shopify, WooCommerce,
/// Zapier and signed webhooks, all publishing `activity.captured`) and Herald's own webhooks out to customers.
public struct IntegrationsService: HeraldModule {
    public static let name = "integrations"
    let database: any Database
    let bus: any EventBus
    let access: AccessControl
    let cipher: FieldCipher
    let limiter: any RateLimiter
    let options: Options
    let logger: Logger
    let http: HTTPClient
    let outbound: OutboundGuard
    let client: ThirdPartyClient
    let integrations: IntegrationStore
    let deliveries = DeliveryStore()
    let imports = ImportStore()
    let endpoints: EndpointStore
    let messages = WebhookMessageStore()
    let importer: OrderImporter
    let dispatcher: WebhookDispatcher

    public struct Options: Sendable {
        /// Activities a site may record per minute before 429: a flood of events must not become a flood of popups.
        public var activitiesPerMinute: Int
        /// Where sources reach Herald, for webhook and OAuth callback URLs.
        public var publicBaseURL: String
        /// Address ranges outbound requests may reach despite being private (HERALD_OUTBOUND_ALLOW_CIDRS).
        public var outboundAllow: [CIDR]
        /// The Shopify app, for OAuth installs (HERALD_SHOPIFY_API_KEY, …_SECRET, …_SCOPES).
        public var shopifyApp: ShopifyApp?
        /// Sends Shopify calls to this origin instead of https://{shop} (tests and proxies: HERALD_SHOPIFY_ADMIN_ORIGIN).
        public var shopifyAdminOrigin: String?
        public var retryPolicy: WebhookRetryPolicy

        public init(
            activitiesPerMinute: Int = 300, publicBaseURL: String = "http://127.0.0.1:8080", outboundAllow: [CIDR] = [],
            shopifyApp: ShopifyApp? = nil,
            shopifyAdminOrigin: String? = nil, retryPolicy: WebhookRetryPolicy = WebhookRetryPolicy()
        ) {
            self.activitiesPerMinute = activitiesPerMinute
            self.publicBaseURL = publicBaseURL
            self.outboundAllow = outboundAllow
            self.shopifyApp = shopifyApp
            self.shopifyAdminOrigin = shopifyAdminOrigin
            self.retryPolicy = retryPolicy
        }
    }

    public init(
        database: any Database, bus: any EventBus, access: AccessControl, cipher: FieldCipher, limiter: any RateLimiter, options: Options = Options(),
        logger: Logger
    ) {
        self.database = database
        self.bus = bus
        self.access = access
        self.cipher = cipher
        self.limiter = limiter
        self.options = options
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(15))
        configuration.redirectConfiguration = .disallow
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.http = http
        let outbound = OutboundGuard(allowed: options.outboundAllow)
        self.outbound = outbound
        let client = ThirdPartyClient(http: http, outbound: outbound, limiter: limiter, logger: logger)
        self.client = client
        let integrations = IntegrationStore(cipher: cipher)
        self.integrations = integrations
        let endpoints = EndpointStore(cipher: cipher)
        self.endpoints = endpoints
        self.importer = OrderImporter(
            database: database, bus: bus, client: client, cipher: cipher, integrations: integrations,
            shopifyAdminOrigin: options.shopifyAdminOrigin, logger: logger
        )
        self.dispatcher = WebhookDispatcher(
            database: database, bus: bus, http: http, outbound: outbound, endpoints: endpoints, policy: options.retryPolicy, logger: logger
        )
    }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.post("sites/:siteId/activities", use: captureActivity)
        addIntegrationRoutes(to: router)
        addWebhookRoutes(to: router)
        addZapierRoutes(to: router)
    }

    /// The event consumers this service runs.
    public var consumers: [any EventConsumer] {
        [
            InboundTransformer(cipher: cipher, bus: bus, integrations: integrations),
            OutboundFanout(endpoints: endpoints, dispatcher: dispatcher),
        ]
    }

    /// The tables Billing meters as this service's storage.
    public var storageFootprint: StorageFootprint? { IntegrationsTables.footprint }

    /// The webhook dispatcher, and the HTTP client's shutdown.
    public var services: [any Service] {
        [HTTPClientCloser(http: http), dispatcher]
    }

    /// Shuts the HTTP client down when Herald stops (after the dispatcher, which is listed later).
    struct HTTPClientCloser: Service {
        let http: HTTPClient

        func run() async throws {
            try? await gracefulShutdown()
            try? await http.shutdown()
        }
    }
}

extension IntegrationsService {
    public static let migrations = MigrationSet(
        owner: "integrations",
        migrations: [
            IntegrationsMigrations.v1,
            IntegrationsMigrations.v2,
            IntegrationsMigrations.v3,
        ]
    )
}

/// The service's migrations, one file each under `Migrations/`.
enum IntegrationsMigrations {
    /// Tenant tables whose row-level security policy was written before `tenancy.current_organization()`.
    static let landedTenantTables: [Table] = [
        IntegrationsTables.idempotencyKeys, IntegrationsTables.integrations, IntegrationsTables.inboundDeliveries, IntegrationsTables.sourceRecords,
        IntegrationsTables.imports, IntegrationsTables.webhookEndpoints, IntegrationsTables.webhookMessages, IntegrationsTables.webhookAttempts,
    ]
}
