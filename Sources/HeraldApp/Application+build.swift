import AsyncHTTPClient
import Foundation
import HeraldCore
import HeraldDashboard
import HeraldEvents
import HeraldHTTP
import HeraldMail
import HeraldModules
import HeraldRedis
import HeraldRedisBus
import HeraldSecurity
import HeraldServiceClient
import HeraldStorage
import HeraldTelemetry
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import IntegrationsService
import Logging
import NIOCore
import NIOFoundationCompat
import ServiceLifecycle
import UsersService

/// Builds the Herald application for a configuration: opens the store, loads keys, composes the selected
/// services behind one router with the shared middleware, and registers the background services.
public func buildApplication(_ config: HeraldConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let composition = try await compose(config, logger: logger)
    // The hot GET routes answered from memory on the event loop, unless requests are traced (a span per request
    // needs the middleware chain).
    let fastRoutes = HeraldTracing.isRequested(config.environment) ? [] : composition.fastRoutes
    let fastOptions = FastPathOptions(recordsMetrics: config.metrics.isEnabled, trustedProxies: config.trustedProxies, logger: logger)
    let http1: HTTPServerBuilder = .heraldHTTP1(fastRoutes: fastRoutes, options: fastOptions)
    let server: HTTPServerBuilder = try config.tls.map { try .tls(http1, tlsConfiguration: try $0.makeTLSConfiguration()) } ?? http1
    var app = Application(
        router: composition.router,
        server: server,
        configuration: ApplicationConfiguration(address: .hostname(config.host, port: config.port), serverName: nil),
        services: composition.services,
        onServerRunning: { channel in
            logger.info(
                "Herald is listening",
                metadata: [
                    "address": "\(channel.localAddress?.description ?? "?")",
                    "services": "\(config.services.sorted().map(\.rawValue).joined(separator: ","))",
                ]
            )
        },
        logger: logger
    )
    let migrator = composition.migrator
    let started = composition.started
    app.beforeServerStarts {
        if config.migrateOnStart {
            try await migrator.migrate(HeraldRuntime.migrationSets)
        }
        started.open()
    }
    return app
}

/// What the application runs: the router with every selected module's routes, and the services beside it.
struct Composition {
    var router: Router<HeraldRequestContext>
    var services: [any Service]
    var migrator: Migrator
    /// Opened once migrations ran; consumers wait for it.
    var started: ReadyGate
    /// The selected modules' routes that ``FastPathHandler`` may answer from memory.
    var fastRoutes: [any FastRoute] = []
}

/// Opens the store, loads keys and composes the selected modules (without starting anything).
func compose(_ config: HeraldConfiguration, logger: Logger) async throws -> Composition {
    // The data directory holds the embedded store and, unless keys come from the environment, the key file.
    let keysFromEnvironment = KeyRing.environmentVariables.allSatisfy { config.environment[$0] != nil }
    if config.databaseURL == nil || !keysFromEnvironment { try HeraldRuntime.prepareDataDirectory(config.dataDirectory) }
    let (keyRing, keySource) = try KeyRing.load(environment: config.environment, dataDirectory: config.dataDirectory)
    logger.info("keys loaded", metadata: ["source": "\(keySource)"])

    let database: any Database
    var services: [any Service] = []
    if let urlText = config.databaseURL {
        let url = try PostgresURL(parsing: urlText)
        try await PostgresDatabase.probe(url, logger: logger)
        let postgres = PostgresDatabase(url: url, maximumConnections: config.databasePoolSize, logger: logger)
        services.append(postgres)
        database = postgres
        logger.info("store: PostgreSQL", metadata: ["url": "\(url.redacted)"])
    } else {
        let sqlite = try await SQLiteDatabase.open(path: config.sqlitePath, logger: logger)
        services.append(DatabaseCloser(database: sqlite))
        database = sqlite
        logger.info("store: embedded SQLite", metadata: ["path": "\(config.sqlitePath)"])
    }

    let migrator = Migrator(database: database, logger: logger)
    let started = ReadyGate()
    let databaseBus = DatabaseEventBus(database: database, logger: logger, pollInterval: config.eventPollInterval, started: started)
    // With Redis, events travel between processes on Redis Streams, and rate limits are shared by every instance.
    let bus: any EventBus
    let rateLimiter: any RateLimiter
    let redis: RedisClient?
    let signals: any ClusterSignals
    if let url = config.redisURL {
        let configuration: RedisConfiguration
        do {
            configuration = try RedisConfiguration(url: url)
        } catch {
            throw ConfigurationError("\(error)")
        }
        let client = RedisClient(configuration: configuration, logger: logger)
        services.append(RedisCloser(client: client))
        redis = client
        var options = RedisEventBus.Options()
        options.prefix = config.redisPrefix
        bus = RedisEventBus(redis: client, local: databaseBus, options: options, logger: logger)
        rateLimiter = RedisRateLimiter(client: client, prefix: config.redisPrefix + "rl:", logger: logger)
        let redisSignals = RedisSignals(redis: client, prefix: config.redisPrefix, logger: logger)
        services.append(redisSignals)
        signals = redisSignals
        logger.info("event bus: Redis Streams", metadata: ["redis": "\(configuration)"])
    } else {
        redis = nil
        bus = databaseBus
        rateLimiter = InMemoryRateLimiter()
        signals = LocalSignals()
    }
    let tokens = await AccessTokenService(keyRing: keyRing, lifetime: config.sessionPolicy.accessTokenLifetime)
    // In a process with the Users service (or sharing its database) its tables answer authorization questions;
    // a process pointed at the Users service by HERALD_USERS_URL asks its internal API instead.
    let directory: any AccessDirectory
    if !config.services.contains(.users), let usersURL = config.links.usersURL, let token = config.links.internalToken {
        let http = try config.makeServiceHTTPClient()
        services.append(HTTPClientCloser(client: http))
        directory = UsersDirectoryClient(client: ServiceClient(service: "users", baseURL: usersURL, token: token, http: http, logger: logger))
        logger.info("access checks: the Users service", metadata: ["url": "\(usersURL)"])
    } else {
        directory = UsersService.directory(
            database: database, policy: config.sessionPolicy, cipher: FieldCipher(keyRing: keyRing),
            outbound: OutboundGuard(allowed: config.integrationOptions.outboundAllow))
    }
    // One mail transport for every service that sends mail (scheduled reports, usage alerts).
    let mail: any MailTransport
    do {
        mail = try config.mail.makeTransport(httpClient: .shared, logger: logger)
    } catch {
        throw ConfigurationError("HERALD_MAIL_URL: \(error)")
    }
    if config.mail.isEnabled { logger.info("mail", metadata: ["transport": "\(config.mail)"]) }
    let environment = ModuleEnvironment(
        config: config, database: database, bus: bus, signals: signals, cipher: FieldCipher(keyRing: keyRing), tokens: tokens,
        rateLimiter: rateLimiter, access: AccessControl(directory: directory), mail: mail, logger: logger
    )

    // Metrics are on only where the operator said how to scrape them; otherwise swift-metrics records nowhere and
    // requests skip the metrics middleware.
    let metrics = config.metrics
    if metrics.isEnabled { HeraldMetrics.enable() }
    // Traces go to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT names one (docs/OBSERVABILITY.md).
    let serviceName =
        config.services == Set(ServiceName.allCases) ? "herald" : "herald-" + config.services.sorted().map(\.rawValue).joined(separator: "-")
    let tracing: (any Service)?
    do {
        tracing = try HeraldTracing.bootstrap(environment: config.environment, defaultServiceName: serviceName, logger: logger)
    } catch {
        throw ConfigurationError("OpenTelemetry (OTEL_*): \(error)")
    }
    if let tracing { services.append(tracing) }
    let router = Router(context: HeraldRequestContext.self, options: .autoGenerateHeadEndpoints)
    if metrics.isEnabled { router.add(middleware: HTTPMetricsMiddleware()) }
    if HeraldTracing.isRequested(config.environment) { router.add(middleware: TracingMiddleware()) }
    router.add(middleware: RequestIdMiddleware(trustedProxies: config.trustedProxies))
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: ProblemMiddleware(routes: RouteTable(openAPIDocument: Data(buffer: OpenAPIDocument.bytes))))
    router.add(middleware: AuthenticationMiddleware(tokens: tokens, directory: directory))

    // Modules are built only when selected: some own clients or caches that must not exist otherwise.
    var consumers: [any EventConsumer] = []
    var fastRoutes: [any FastRoute] = []
    var footprints: [(service: String, footprint: StorageFootprint)] = []
    var dependencies: [DependencyCheck] = []
    for entry in ModuleCatalog.all where config.services.contains(entry.name) {
        let module = entry.make(environment)
        if metrics.isEnabled {
            module.addRoutes(to: router.group().add(middleware: ServiceLabelMiddleware(service: entry.name.rawValue)))
        } else {
            module.addRoutes(to: router)
        }
        consumers += module.consumers
        services += module.services
        if let footprint = module.storageFootprint { footprints.append((entry.name.rawValue, footprint)) }
        dependencies += module.dependencies
        fastRoutes += module.fastRoutes
    }
    // The dashboard is a client of the public API; it is served where people sign in.
    if config.services.contains(.users) { Dashboard.addRoutes(to: router) }
    if metrics.isEnabled {
        let operational = router.group().add(middleware: ServiceLabelMiddleware(service: "operational"))
        addOperationalRoutes(to: operational, database: database, migrator: migrator, redis: redis, dependencies: dependencies)
        let exporter = makeMetricsExporter(database: database, bus: bus)
        addMetricsRoute(to: operational, exporter: exporter, token: metrics.token)
        if let port = metrics.port {
            services.append(makeMetricsListener(exporter: exporter, host: metrics.host ?? config.host, port: port, logger: logger))
        }
    } else {
        addOperationalRoutes(to: router, database: database, migrator: migrator, redis: redis, dependencies: dependencies)
        addMetricsRoute(to: router, exporter: nil, token: nil)
    }
    services += consumers.map { bus.consumerService(for: $0) }
    services += bus.maintenanceServices()
    if !footprints.isEmpty {
        services.append(
            StorageReporter(
                database: database, bus: bus, footprints: footprints, interval: config.storageReportInterval, started: started, logger: logger
            )
        )
    }

    return Composition(router: router, services: services, migrator: migrator, started: started, fastRoutes: fastRoutes)
}

/// Shuts an HTTP client down when the application stops.
struct HTTPClientCloser: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

/// Closes the Redis connections when the application stops.
struct RedisCloser: Service {
    let client: RedisClient

    func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}

/// Closes the embedded store when the application stops.
struct DatabaseCloser: Service {
    let database: SQLiteDatabase

    func run() async throws {
        try? await gracefulShutdown()
        await database.shutdown()
    }
}
