import AnalyticsService
import BillingService
import Foundation
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldMail
import HeraldModules
import HeraldObjectStore
import HeraldSecurity
import HeraldStorage
import IntegrationsService
import Logging
import NotificationsService
import UsersService

/// What every module of one process shares: the store, the bus, keys, limits and the authorization layer.
struct ModuleEnvironment: Sendable {
    var config: HeraldConfiguration
    var database: any Database
    var bus: any EventBus
    /// What every instance hears at once (cache invalidations): Redis pub/sub, or nobody in one process.
    var signals: any ClusterSignals
    var cipher: FieldCipher
    var tokens: AccessTokenService
    var rateLimiter: any RateLimiter
    var access: AccessControl
    var mail: any MailTransport
    var logger: Logger
}

/// One service of the catalogue: its name, its migrations, and how to build it for a process.
struct ModuleEntry: Sendable {
    var name: ServiceName
    var migrations: MigrationSet
    var make: @Sendable (ModuleEnvironment) -> any HeraldModule

    init<M: HeraldModule>(_ type: M.Type, make: @escaping @Sendable (ModuleEnvironment) -> M) {
        guard let name = ServiceName(rawValue: M.name) else { preconditionFailure("\(M.name) is not a ServiceName") }
        self.name = name
        self.migrations = M.migrations
        self.make = { make($0) }
    }
}

/// Every service Herald is made of, in start order. `buildApplication` builds the ones the configuration
/// selects; the migration list is derived from the same catalogue.
enum ModuleCatalog {
    static let all: [ModuleEntry] = [
        ModuleEntry(UsersService.self) { env in
            UsersService(
                database: env.database, bus: env.bus, tokens: env.tokens,
                passwords: PasswordHasher(cost: env.config.bcryptCost, threadPool: HeraldRuntime.passwordThreadPool),
                cipher: env.cipher, policy: env.config.sessionPolicy, rateLimiter: env.rateLimiter,
                publicBaseURL: env.config.effectivePublicURL, internalToken: env.config.links.internalToken,
                outbound: OutboundGuard(allowed: env.config.integrationOptions.outboundAllow), logger: env.logger
            )
        },
        ModuleEntry(NotificationsService.self) { env in
            var email = env.config.emailChannel
            email.mail = env.mail
            email.from = env.config.mail.from
            email.publicBaseURL = env.config.effectivePublicURL
            var push = env.config.pushChannel
            push.outbound = OutboundGuard(allowed: env.config.integrationOptions.outboundAllow)
            push.limiter = env.rateLimiter
            return NotificationsService(
                database: env.database, bus: env.bus, access: env.access, cipher: env.cipher, options: env.config.notificationOptions,
                email: email, push: push, signals: env.signals, logger: env.logger
            )
        },
        ModuleEntry(AnalyticsService.self) { env in
            var options = env.config.analyticsOptions
            options.mail = env.mail
            options.mailFrom = env.config.mail.from
            // Without a configured archive, raw events past their retention go to the data directory, never away.
            options.archive = options.archive ?? .directory(path: (env.config.dataDirectory as NSString).appendingPathComponent("archive"))
            return AnalyticsService(database: env.database, access: env.access, limiter: env.rateLimiter, options: options, logger: env.logger)
        },
        ModuleEntry(IntegrationsService.self) { env in
            var options = env.config.integrationOptions
            options.publicBaseURL = env.config.effectivePublicURL
            return IntegrationsService(
                database: env.database, bus: env.bus, access: env.access, cipher: env.cipher, limiter: env.rateLimiter,
                options: options, logger: env.logger
            )
        },
        ModuleEntry(BillingService.self) { env in
            var options = env.config.billingOptions
            options.mail = env.mail
            options.mailFrom = env.config.mail.from
            return BillingService(
                database: env.database, bus: env.bus, access: env.access, cipher: env.cipher, options: options, logger: env.logger
            )
        },
    ]

    /// Every migration set in the order they apply: the storage layer's, the bus's, then each service's.
    /// All apply whichever services run, so one database always has one complete schema.
    static var migrationSets: [MigrationSet] {
        [TenantIsolation.migrations, Outbox.migrations] + all.map(\.migrations)
    }
}
