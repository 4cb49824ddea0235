import Foundation
import HTTPTypes
import HeraldApp
import HeraldRedis
import HummingbirdTesting
import NotificationsService
import Testing

/// The application with HERALD_REDIS_URL: events travel on Redis Streams and rate limits live in Redis.
@Suite("Herald on Redis")
struct RedisDeploymentTests {
    static var redisURL: String? {
        guard let url = ProcessInfo.processInfo.environment["HERALD_TEST_REDIS_URL"], !url.isEmpty else {
            precondition(ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] != "1", "HERALD_TEST_REDIS_URL is required")
            return nil
        }
        return url
    }

    static func configure(_ config: inout HeraldConfiguration) {
        config.redisURL = redisURL
        // Keys of their own: parallel tests share the Redis server.
        config.redisPrefix = "test:\(UUID().uuidString.prefix(8)):"
    }

    @Test(arguments: TestStore.available)
    func theCoreFlowRunsOnRedisStreams(store: TestStore) async throws {
        guard Self.redisURL != nil else { return }
        try await withApp(store, configure: Self.configure) { client, _ in
            // Readiness gives each dependency 500 ms; on a loaded test machine one probe may miss it, so ask again.
            try await eventually("readiness to report Redis") {
                let ready = try await client.call(.get, "/readyz")
                return ready.status == .ok && (ready.json["checks"] as? [String: String])?["redis"] == "ok"
            }

            // site.created reaches Notifications through Redis (the fixture waits for the widget key to resolve).
            let fixture = try await client.siteFixture()
            let notification = try await client.createNotification(fixture, ["name": "Hello", "type": "announcement"])
            let events = (0..<3).map { _ in ["type": "impression", "notificationId": notification, "path": "/"] }
            let accepted = try await client.call(
                .post, "/widget/v1/\(fixture.publicKey)/beacons", json: ["visitorId": "visitor-0001", "events": events])
            #expect(accepted.status == .accepted, "\(accepted.text)")
            // The beacon batch reaches Analytics and Billing, each once.
            try await eventually("the impressions to be counted by Analytics") {
                let summary = try await client.call(.get, "/sites/\(fixture.site)/analytics", token: fixture.token).json
                return ((summary["totals"] as? [String: Any])?["impressions"] as? Int) == 3
            }
            try await eventually("the impressions to be metered by Billing") {
                let usage = try await client.call(.get, "/sites/\(fixture.site)/usage", token: fixture.token)
                let metrics = usage.json["metrics"] as? [[String: Any]] ?? []
                return metrics.first { $0["metric"] as? String == "impressions" }?["usage"] as? Int == 3
            }
            // The audit log hears of the notification through the bus too.
            try await eventually("the audit entry") {
                let audit = try await client.call(.get, "/organizations/\(fixture.organization)/audit-logs", token: fixture.token)
                return audit.text.contains("notification.created")
            }
        }
    }

    @Test(arguments: TestStore.available)
    func loginLimitsAreKeptInRedisForEveryInstance(store: TestStore) async throws {
        guard let url = Self.redisURL else { return }
        let prefix = "test:\(UUID().uuidString.prefix(8)):"
        try await withApp(
            store,
            configure: { config in
                config.redisURL = url
                config.redisPrefix = prefix
            }
        ) { client, _ in
            let email = "limited-\(UUID().uuidString.prefix(6))@example.com"
            let attempt = try await client.call(.post, "/auth/login", json: ["email": email, "password": "not the password"])
            #expect(attempt.status == .unauthorized, "\(attempt.text)")
            // The failure is counted in Redis, where every instance reads it.
            let redis = RedisClient(configuration: try RedisConfiguration(url: url), logger: testLogger)
            let keys = try await redis.send(["KEYS", .string(prefix + "rl:login:*")]).array?.compactMap(\.string) ?? []
            await redis.shutdown()
            #expect(
                keys.contains { $0.hasPrefix(prefix + "rl:login:account:") } && keys.contains { $0.hasPrefix(prefix + "rl:login:ip:") }, "\(keys)")
        }
    }

    /// Two instances over one database and one Redis: a change made through one reaches the other's cached feed at
    /// once (not after the 30 s refresh), because the instances tell each other. Several instances share a
    /// PostgreSQL database (the embedded store belongs to one process).
    @Test(arguments: TestStore.available.filter { $0 == .postgres })
    func aChangeOnOneInstanceRefreshesTheOthersFeed(store: TestStore) async throws {
        guard let url = Self.redisURL else { return }
        let environment = try await TestEnvironment.make(store)
        var config = environment.configuration()
        config.redisURL = url
        config.redisPrefix = "test:\(UUID().uuidString.prefix(8)):"
        // Without signals, the other instance would serve its copy for an hour.
        config.notificationOptions.feedRefreshSeconds = 3600
        let first = try await buildApplication(config, logger: testLogger)
        let second = try await buildApplication(config, logger: testLogger)
        try await first.test(.router) { a in
            try await second.test(.router) { b in
                let fixture = try await a.siteFixture()
                let feedPath = "/widget/v1/\(fixture.publicKey)/feed"
                try await eventually("the second instance to know the site") { try await b.call(.get, feedPath).status == .ok }
                let before = try await b.call(.get, feedPath)
                #expect((before.json["notifications"] as? [Any])?.isEmpty == true, "\(before.text)")
                // Published through the first instance; the second instance's cached feed is dropped and rebuilt.
                _ = try await a.createNotification(fixture, ["name": "Hello", "type": "announcement", "message": "Welcome"])
                try await eventually("the second instance to serve the new notification") {
                    let feed = try await b.call(.get, feedPath)
                    return (feed.json["notifications"] as? [Any])?.count == 1
                }
            }
        }
    }

    /// When the instances' pub/sub connection drops (a Redis restart, a network blip), messages published meanwhile
    /// are lost; the instance that reconnects drops its cached feeds instead of serving them stale.
    /// Two instances on one store: PostgreSQL, as deployments do (two processes on one SQLite file would wait on
    /// its write lock, blocking the shared SQLite threads of every other test running beside this one).
    @Test(arguments: TestStore.available.filter { $0 == .postgres })
    func aLostSubscriptionIsReestablishedAndStaleFeedsAreDropped(store: TestStore) async throws {
        guard let url = Self.redisURL else { return }
        let environment = try await TestEnvironment.make(store)
        var config = environment.configuration()
        config.redisURL = url
        let prefix = "test:\(UUID().uuidString.prefix(8)):"
        config.redisPrefix = prefix
        config.notificationOptions.feedRefreshSeconds = 3600
        let admin = RedisClient(configuration: try RedisConfiguration(url: url), logger: testLogger)
        defer { Task { await admin.shutdown() } }
        // The subscriptions of this test's instances, by the name they give their connection.
        @Sendable func subscriptions() async throws -> [String] {
            let list = try await admin.send(["CLIENT", "LIST", "TYPE", "pubsub"]).string ?? ""
            return list.split(separator: "\n").filter { $0.contains("name=herald-signals:\(prefix)signal:") }
                .compactMap { line in line.split(separator: " ").first { $0.hasPrefix("id=") }.map { String($0.dropFirst(3)) } }
        }
        let first = try await buildApplication(config, logger: testLogger)
        let second = try await buildApplication(config, logger: testLogger)
        try await first.test(.router) { a in
            try await second.test(.router) { b in
                let fixture = try await a.siteFixture()
                let feedPath = "/widget/v1/\(fixture.publicKey)/feed"
                try await eventually("the second instance to know the site") { try await b.call(.get, feedPath).status == .ok }
                try await eventually("both instances to subscribe") { try await subscriptions().count == 2 }
                #expect((try await b.call(.get, feedPath).json["notifications"] as? [Any])?.isEmpty == true)

                // Cut both subscriptions, then change the site at once: the broadcast goes to nobody.
                for id in try await subscriptions() { _ = try await admin.send(["CLIENT", "KILL", "ID", .string(id)]) }
                _ = try await a.createNotification(fixture, ["name": "During the gap", "type": "announcement", "message": "Hi"])
                try await eventually("the instances to subscribe again") { try await subscriptions().count == 2 }
                try await eventually("the second instance to drop its stale feed") {
                    (try await b.call(.get, feedPath).json["notifications"] as? [Any])?.count == 1
                }
            }
        }
    }
}
