import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging

/// The Integrations service: every way real activity enters Herald. Today the events API
/// (`POST /sites/{siteId}/activities`); Shopify, WooCommerce, Zapier and signed webhooks follow, all publishing
/// the same `activity.captured` event.
public struct IntegrationsService: Sendable {
    let database: any Database
    let bus: any EventBus
    let access: AccessControl
    let cipher: FieldCipher
    let limiter: any RateLimiter
    let options: Options
    let logger: Logger

    public struct Options: Sendable {
        /// Activities a site may record per minute before 429: a flood of events must not become a flood of popups.
        public var activitiesPerMinute: Int

        public init(activitiesPerMinute: Int = 300) {
            self.activitiesPerMinute = activitiesPerMinute
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
    }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.post("sites/:siteId/activities", use: captureActivity)
    }
}
