import AnalyticsService
import BillingService
import Foundation
import HeraldCore
import HeraldMail
import HeraldRedis
import HeraldStorage
import IntegrationsService
import Logging
import NotificationsService
import UsersService

/// The services Herald is made of. `herald serve --services users,notifications` runs a subset.
public enum ServiceName: String, CaseIterable, Sendable, Comparable {
    case users
    case notifications
    case analytics
    case integrations
    case billing

    public static func < (lhs: ServiceName, rhs: ServiceName) -> Bool {
        (allCases.firstIndex(of: lhs) ?? 0) < (allCases.firstIndex(of: rhs) ?? 0)
    }

    /// Parses `users,notifications`; `all` means every service.
    public static func parseList(_ text: String) throws -> Set<ServiceName> {
        var result = Set<ServiceName>()
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !item.isEmpty {
            if item == "all" { return Set(allCases) }
            guard let name = ServiceName(rawValue: item) else {
                throw ConfigurationError("unknown service '\(item)'; choose from \(allCases.map(\.rawValue).joined(separator: ", ")) or all")
            }
            result.insert(name)
        }
        guard !result.isEmpty else { throw ConfigurationError("--services names no service") }
        return result
    }
}

/// A configuration problem, reported as one line before Herald exits.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Everything `herald serve` needs, from flags and HERALD_* environment variables (flags win).
public struct HeraldConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var dataDirectory = "./herald-data"
    /// nil: the embedded SQLite store in the data directory.
    public var databaseURL: String?
    /// Connections this process may open to PostgreSQL (HERALD_DATABASE_POOL_SIZE).
    public var databasePoolSize = PostgresDatabase.defaultMaximumConnections
    public var services = Set(ServiceName.allCases)
    public var migrateOnStart = true
    /// The URL browsers use to reach Herald (embed snippets, links). Defaults to http://host:port.
    public var publicURL: String?
    /// Proxies whose `X-Forwarded-For` is believed (HERALD_TRUSTED_PROXIES, comma-separated CIDRs).
    public var trustedProxies: [CIDR] = []
    public var sessionPolicy = SessionPolicy()
    /// Bcrypt cost for new password hashes (HERALD_BCRYPT_COST, 12 or more in production).
    public var bcryptCost: UInt8 = 12
    /// The process environment, for keys and other settings read later.
    public var environment: [String: String] = [:]
    /// Widget delivery settings (HERALD_COUNTRY_HEADER, HERALD_FEED_MAX_AGE).
    public var notificationOptions = NotificationsService.Options()
    /// The email channel's limits; its transport and sender are the shared mail settings.
    public var emailChannel = EmailChannelOptions()
    /// Web push: the VAPID key and limits.
    public var pushChannel = PushChannelOptions()
    /// Intake limits (HERALD_ACTIVITIES_PER_MINUTE).
    public var integrationOptions = IntegrationsService.Options()
    /// Retention and report limits (HERALD_ANALYTICS_*).
    public var analyticsOptions = AnalyticsService.Options()
    /// Plans, quotas, Stripe and the operator token (HERALD_BILLING_*, HERALD_STRIPE_*, HERALD_OPERATOR_TOKEN).
    public var billingOptions = BillingService.Options()
    /// Outgoing mail (HERALD_MAIL_URL, HERALD_MAIL_FROM, HERALD_SENDGRID_*): disabled unless configured.
    public var mail = MailConfiguration(transport: .disabled, from: nil)
    /// How often event consumers poll when not woken by a local commit.
    public var eventPollInterval: Duration = .milliseconds(500)
    /// Redis for the event bus and shared limits (HERALD_REDIS_URL); unset: the embedded bus and per-process limits.
    public var redisURL: String?
    /// TLS (and mutual TLS) on Herald's port (HERALD_TLS_CERT_FILE, HERALD_TLS_KEY_FILE, HERALD_TLS_CLIENT_CA_FILE).
    public var tls: ServerTLSConfiguration?
    /// Prefix of every Redis key Herald writes (HERALD_REDIS_PREFIX), so deployments can share one Redis.
    public var redisPrefix = "herald:"
    /// How often each service reports its storage per organization to Billing (HERALD_STORAGE_REPORT_INTERVAL, seconds).
    public var storageReportInterval: Duration = .seconds(3600)
    /// Where Prometheus scrapes `/metrics` (HERALD_METRICS_PORT, HERALD_METRICS_HOST, HERALD_METRICS_TOKEN); off by default.
    public var metrics = MetricsConfiguration()
    /// How this process reaches services it does not run (HERALD_USERS_URL, HERALD_INTERNAL_TOKEN).
    public var links = ServiceLinks()

    public init() {}

    public var effectivePublicURL: String {
        if let publicURL { return publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
        let shownHost = host == "0.0.0.0" || host == "::" ? "localhost" : (host.contains(":") ? "[\(host)]" : host)
        return "\(tls == nil ? "http" : "https")://\(shownHost):\(port)"
    }

    /// Reads HERALD_* variables; flags are applied on top by the command line.
    public static func fromEnvironment(_ environment: [String: String]) throws -> HeraldConfiguration {
        var config = HeraldConfiguration()
        config.environment = environment
        if let host = environment["HERALD_HOST"], !host.isEmpty { config.host = host }
        if let port = environment["HERALD_PORT"], !port.isEmpty { config.port = try parsePort(port) }
        if let dir = environment["HERALD_DATA_DIR"], !dir.isEmpty { config.dataDirectory = dir }
        if let url = environment["HERALD_DATABASE_URL"], !url.isEmpty { config.databaseURL = url }
        if let size = environment["HERALD_DATABASE_POOL_SIZE"], !size.isEmpty {
            guard let value = Int(size), (1...500).contains(value) else {
                throw ConfigurationError("HERALD_DATABASE_POOL_SIZE must be a number of connections from 1 to 500 (default 20)")
            }
            config.databasePoolSize = value
        }
        if let services = environment["HERALD_SERVICES"], !services.isEmpty { config.services = try ServiceName.parseList(services) }
        if let url = environment["HERALD_PUBLIC_URL"], !url.isEmpty { config.publicURL = try parsePublicURL(url) }
        if let proxies = environment["HERALD_TRUSTED_PROXIES"], !proxies.isEmpty {
            do {
                config.trustedProxies = try CIDR.parseList(proxies)
            } catch let error as HeraldError {
                throw ConfigurationError("HERALD_TRUSTED_PROXIES: \(error.detail)")
            }
        }
        if let cost = environment["HERALD_BCRYPT_COST"], !cost.isEmpty {
            guard let value = UInt8(cost), (10...16).contains(value) else {
                throw ConfigurationError("HERALD_BCRYPT_COST must be a number from 10 to 16 (default 12)")
            }
            config.bcryptCost = value
        }
        if let header = environment["HERALD_COUNTRY_HEADER"], !header.isEmpty {
            guard header.count <= 64, header.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ConfigurationError("HERALD_COUNTRY_HEADER must be a header name such as CF-IPCountry")
            }
            config.notificationOptions.countryHeader = header
        }
        if let maxAge = environment["HERALD_FEED_MAX_AGE"], !maxAge.isEmpty {
            guard let value = Int(maxAge), (0...300).contains(value) else {
                throw ConfigurationError("HERALD_FEED_MAX_AGE must be a number of seconds from 0 to 300 (default 5)")
            }
            config.notificationOptions.feedMaxAge = value
        }
        if let refresh = environment["HERALD_FEED_REFRESH"], !refresh.isEmpty {
            guard let value = Int(refresh), (1...3600).contains(value) else {
                throw ConfigurationError("HERALD_FEED_REFRESH must be a number of seconds from 1 to 3600 (default 30)")
            }
            config.notificationOptions.feedRefreshSeconds = value
        }
        try readChannels(environment, into: &config)
        if let rate = environment["HERALD_ACTIVITIES_PER_MINUTE"], !rate.isEmpty {
            guard let value = Int(rate), (1...100_000).contains(value) else {
                throw ConfigurationError("HERALD_ACTIVITIES_PER_MINUTE must be a number from 1 to 100000 (default 300)")
            }
            config.integrationOptions.activitiesPerMinute = value
        }
        if let ranges = environment["HERALD_OUTBOUND_ALLOW_CIDRS"], !ranges.isEmpty {
            do {
                config.integrationOptions.outboundAllow = try CIDR.parseList(ranges)
            } catch let error as HeraldError {
                throw ConfigurationError("HERALD_OUTBOUND_ALLOW_CIDRS: \(error.detail)")
            }
        }
        if let key = environment["HERALD_SHOPIFY_API_KEY"], !key.isEmpty {
            guard let secret = environment["HERALD_SHOPIFY_API_SECRET"], !secret.isEmpty else {
                throw ConfigurationError("HERALD_SHOPIFY_API_KEY is set but HERALD_SHOPIFY_API_SECRET is not")
            }
            config.integrationOptions.shopifyApp = ShopifyApp(
                apiKey: key, apiSecret: secret,
                scopes: environment["HERALD_SHOPIFY_SCOPES"].flatMap { $0.isEmpty ? nil : $0 } ?? "read_orders,read_customers"
            )
        }
        if let origin = environment["HERALD_SHOPIFY_ADMIN_ORIGIN"], !origin.isEmpty {
            guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ConfigurationError("HERALD_SHOPIFY_ADMIN_ORIGIN must be an origin such as http://127.0.0.1:9000")
            }
            config.integrationOptions.shopifyAdminOrigin = origin.hasSuffix("/") ? String(origin.dropLast()) : origin
        }
        if let schedule = environment["HERALD_WEBHOOK_RETRY_SCHEDULE"], !schedule.isEmpty {
            let delays = schedule.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !delays.isEmpty, delays.count <= 20, delays.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                throw ConfigurationError("HERALD_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, such as 0,5,300,1800")
            }
            config.integrationOptions.retryPolicy.schedule = delays.compactMap { $0 }
        }
        if let after = environment["HERALD_WEBHOOK_DISABLE_AFTER"], !after.isEmpty {
            guard let value = Int(after), (1...10_000).contains(value) else {
                throw ConfigurationError("HERALD_WEBHOOK_DISABLE_AFTER must be a number of failed messages from 1 to 10000 (default 50)")
            }
            config.integrationOptions.retryPolicy.disableAfter = value
        }
        try readAnalytics(environment, into: &config.analyticsOptions)
        try readBilling(environment, into: &config.billingOptions)
        do {
            config.mail = try MailConfiguration.fromEnvironment(environment)
        } catch {
            throw ConfigurationError("\(error)")
        }
        config.sessionPolicy.idleTimeout = try seconds(environment, "HERALD_SESSION_IDLE_TIMEOUT", default: config.sessionPolicy.idleTimeout)
        config.sessionPolicy.absoluteTimeout = try seconds(
            environment, "HERALD_SESSION_ABSOLUTE_TIMEOUT", default: config.sessionPolicy.absoluteTimeout
        )
        if let url = environment["HERALD_REDIS_URL"], !url.isEmpty {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                throw ConfigurationError("\(error)")
            }
            config.redisURL = url
        }
        config.tls = try ServerTLSConfiguration.fromEnvironment(environment)
        if let prefix = environment["HERALD_REDIS_PREFIX"], !prefix.isEmpty {
            guard prefix.count <= 64, prefix.allSatisfy({ $0.isLetter || $0.isNumber || ":-_.".contains($0) }) else {
                throw ConfigurationError("HERALD_REDIS_PREFIX must be up to 64 letters, digits and : - _ . (default herald:)")
            }
            config.redisPrefix = prefix
        }
        if let text = environment["HERALD_STORAGE_REPORT_INTERVAL"], !text.isEmpty {
            guard let seconds = Int(text), (1...86_400).contains(seconds) else {
                throw ConfigurationError("HERALD_STORAGE_REPORT_INTERVAL must be a number of seconds from 1 to 86400 (default 3600)")
            }
            config.storageReportInterval = .seconds(seconds)
        }
        config.metrics = try readMetrics(environment)
        config.links = try readServiceLinks(environment)
        return config
    }

    static func seconds(_ environment: [String: String], _ name: String, default value: TimeInterval) throws -> TimeInterval {
        guard let text = environment[name], !text.isEmpty else { return value }
        guard let seconds = Int(text), seconds >= 60 else { throw ConfigurationError("\(name) must be a number of seconds, at least 60") }
        return TimeInterval(seconds)
    }

    /// A shared secret from the environment (a bearer token operators generate): nil when unset, an error naming the
    /// variable when shorter than `minimum` or not printable ASCII without spaces.
    /// An integer setting within `range`, or `value` when unset; anything else names the setting and its range.
    static func number(
        _ environment: [String: String], _ name: String, _ range: ClosedRange<Int>, _ meaning: String = "a number", default value: Int
    ) throws -> Int {
        guard let text = environment[name], !text.isEmpty else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError("\(name) must be \(meaning) from \(range.lowerBound) to \(range.upperBound) (default \(value))")
        }
        return number
    }

    static func secret(_ environment: [String: String], _ name: String, minimum: Int) throws -> String? {
        guard let token = environment[name], !token.isEmpty else { return nil }
        guard token.count >= minimum, token.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            throw ConfigurationError("\(name) must be at least \(minimum) printable ASCII characters without spaces (a random secret)")
        }
        return token
    }

    public static func parsePort(_ text: String) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw ConfigurationError("the port must be a number from 1 to 65535 (got '\(text)')")
        }
        return port
    }

    static func parsePublicURL(_ text: String) throws -> String {
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError("HERALD_PUBLIC_URL must be an http(s) URL such as https://herald.example.com")
        }
        return text
    }

    /// Where the embedded store keeps its file.
    public var sqlitePath: String { (dataDirectory as NSString).appendingPathComponent("herald.sqlite") }
}
