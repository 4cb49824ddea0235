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

    /// Operator settings (HERALD_ANALYTICS_*).
    public struct Options: Sendable {
        public var retention: AnalyticsRetention
        /// Report requests a site may make per minute before 429 (heavy queries are shared by every member).
        public var queriesPerMinute: Int

        public init(retention: AnalyticsRetention = AnalyticsRetention(), queriesPerMinute: Int = 120) {
            self.retention = retention
            self.queriesPerMinute = queriesPerMinute
        }
    }

    public init(database: any Database, access: AccessControl, limiter: any RateLimiter, options: Options = Options(), logger: Logger) {
        self.database = database
        self.access = access
        self.limiter = limiter
        self.options = options
        self.logger = logger
        self.engine = ReportEngine(reader: SQLAnalyticsReader(database: database), source: "rollups", database: database)
    }

    public static var migrations: MigrationSet {
        MigrationSet(owner: "analytics", migrations: [AnalyticsMigrations.v1, AnalyticsMigrations.v2])
    }

    public var consumers: [any EventConsumer] { [BeaconIngest(), CatalogConsumer()] }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        addReportRoutes(to: router)
    }
}

/// The service's migrations, one file each under `Migrations/`.
enum AnalyticsMigrations {}
