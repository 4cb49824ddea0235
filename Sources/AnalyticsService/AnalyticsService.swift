import AsyncHTTPClient
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldMail
import HeraldModules
import HeraldObjectStore
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging
import ServiceLifecycle

/// The Analytics service: turns the widget's beacons into raw events, rollups and per-visitor-day steps, and
/// answers the reports (metrics over time, funnels, cohorts, attribution, A/B tests), exports and scheduled
/// reports from them. See docs/ANALYTICS.md.
public struct AnalyticsService: HeraldModule {
    public static let name = "analytics"

    let database: any Database
    let access: AccessControl
    let limiter: any RateLimiter
    let options: Options
    let logger: Logger
    let engine: ReportEngine
    let worker: AnalyticsWorker
    let archive: EventArchive
    /// Ships raw events to ClickHouse when it is configured (reports then run there).
    let shipper: ClickHouseShipper?
    let exports = ExportStore()
    let scheduledReports = ScheduledReportStore()
    let jobs = JobStore()
    let steps = StepCache()
    let partitions = PartitionGuard()

    /// Operator settings (HERALD_ANALYTICS_*, HERALD_MAIL_*).
    public struct Options: Sendable {
        public var retention: AnalyticsRetention
        /// Report requests a site may make per minute before 429 (heavy queries are shared by every member).
        public var queriesPerMinute: Int
        /// Where raw events past their retention are archived (a directory or an S3-compatible bucket).
        public var archive: ObjectStoreConfiguration?
        /// How scheduled reports are mailed, and from which address (nil: reports are recorded as failed, saying so).
        public var mail: any MailTransport
        public var mailFrom: MailAddress?
        /// Seconds before each retry of a report the mail system refused for now (HERALD_MAIL_RETRY_SCHEDULE).
        public var mailRetryDelays: [TimeInterval] = [60, 300, 1800, 7200]
        /// Seconds between maintenance runs (retention, archives, partitions).
        public var maintenanceInterval: TimeInterval
        /// Raw events shipped to ClickHouse and reports run there (HERALD_CLICKHOUSE_*); nil: reports from the rollups.
        public var clickHouse: ClickHouseConfiguration?

        public init(
            retention: AnalyticsRetention = AnalyticsRetention(), queriesPerMinute: Int = 120, archive: ObjectStoreConfiguration? = nil,
            mail: any MailTransport = DisabledMailTransport(), mailFrom: MailAddress? = nil, maintenanceInterval: TimeInterval = 3600,
            clickHouse: ClickHouseConfiguration? = nil
        ) {
            self.retention = retention
            self.queriesPerMinute = queriesPerMinute
            self.archive = archive
            self.mail = mail
            self.mailFrom = mailFrom
            self.maintenanceInterval = maintenanceInterval
            self.clickHouse = clickHouse
        }
    }

    public init(database: any Database, access: AccessControl, limiter: any RateLimiter, options: Options = Options(), logger: Logger) {
        self.database = database
        self.access = access
        self.limiter = limiter
        self.options = options
        self.logger = logger
        let rollups = SQLAnalyticsReader(database: database)
        let engine: ReportEngine
        if let clickHouse = options.clickHouse {
            let client = ClickHouseClient(configuration: clickHouse)
            engine = ReportEngine(reader: ClickHouseReader(client: client, store: rollups, logger: logger), source: "clickhouse", database: database)
            self.shipper = ClickHouseShipper(database: database, client: client, logger: logger)
        } else {
            engine = ReportEngine(reader: rollups, source: "rollups", database: database)
            self.shipper = nil
        }
        self.engine = engine
        let store = options.archive?.makeStore(httpClient: .shared) ?? NoArchiveStore()
        var archive = EventArchive(database: database, store: store, logger: logger)
        // Days not yet shipped to ClickHouse stay in the store until they are.
        archive.keepUnshipped = options.clickHouse != nil
        self.archive = archive
        self.worker = AnalyticsWorker(
            database: database, exports: ExportBuilder(database: database, engine: engine, retention: options.retention, logger: logger),
            deliveries: ReportDeliveries(
                database: database, engine: engine, mail: options.mail, from: options.mailFrom, retention: options.retention,
                retryDelays: options.mailRetryDelays, logger: logger
            ),
            maintenance: AnalyticsMaintenance(database: database, retention: options.retention, archive: archive, logger: logger),
            maintenanceInterval: options.maintenanceInterval, logger: logger
        )
    }

    public static var migrations: MigrationSet {
        MigrationSet(owner: "analytics", migrations: [AnalyticsMigrations.v1, AnalyticsMigrations.v2, AnalyticsMigrations.v3])
    }

    public var consumers: [any EventConsumer] { [BeaconIngest(steps: steps, partitions: partitions, database: database), CatalogConsumer()] }

    /// ClickHouse, when reports run there.
    public var dependencies: [DependencyCheck] {
        guard let client = shipper?.client else { return [] }
        return [DependencyCheck("clickhouse") { try await client.ping() }]
    }

    /// The tables Billing meters as this service's storage.
    public var storageFootprint: StorageFootprint? { AnalyticsTables.footprint }

    public var services: [any Service] { [worker] + (shipper.map { [$0] } ?? []) }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        addReportRoutes(to: router)
        addExportRoutes(to: router)
        addScheduledReportRoutes(to: router)
    }

    /// Restores archived raw events (`herald analytics restore`).
    public static func restoreArchive(
        database: any Database, options: Options, from: String, to: String, organizationId: UUID?, logger: Logger
    ) async throws -> [EventArchive.RestoredDay] {
        guard let configuration = options.archive else {
            throw HeraldError.badRequest("no archive is configured: set HERALD_ANALYTICS_ARCHIVE_URL")
        }
        let archive = EventArchive(database: database, store: configuration.makeStore(httpClient: .shared), logger: logger)
        return try await archive.restore(from: from, to: to, organizationId: organizationId)
    }
}

/// The service's migrations, one file each under `Migrations/`.
enum AnalyticsMigrations {}
