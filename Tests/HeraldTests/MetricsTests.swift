import Foundation
import HTTPTypes
import HeraldApp
import Hummingbird
import HummingbirdTesting
import Testing

/// `/metrics`: off unless configured, protected by its token on the service's listener, and counting what the
/// dashboards and alert rules in deploy/ read. The registry is the process's, shared with the other tests running
/// beside this one, so counts are compared as increases.
@Suite struct MetricsTests {
    static let token = "metrics-token-0123456789"

    @Test(arguments: TestStore.available)
    func metricsCountRequestsBeaconsAndThePool(store: TestStore) async throws {
        try await withApp(store, configure: { $0.metrics.token = Self.token }) { client, _ in
            let fixture = try await client.siteFixture()
            let auth: HTTPFields = [.authorization: "Bearer \(Self.token)"]

            expectProblem(try await client.call(.get, "/metrics"), .unauthorized)
            expectProblem(try await client.call(.get, "/metrics", headers: [.authorization: "Bearer \(Self.token)x"]), .unauthorized)
            // A user's access token is not the metrics token.
            expectProblem(try await client.call(.get, "/metrics", token: fixture.token), .unauthorized)

            let before = Exposition(try await client.call(.get, "/metrics", headers: auth).text)
            let feedLabels = ["service": "notifications", "method": "GET", "route": "/widget/v1/{publicKey}/feed", "status": "200"]
            let feedsBefore = before.value("herald_http_requests_total", feedLabels) ?? 0
            let acceptedBefore = before.value("herald_beacon_events_total", ["outcome": "accepted"]) ?? 0
            let botsBefore = before.value("herald_beacon_events_total", ["outcome": "bot"]) ?? 0

            for _ in 0..<3 { #expect(try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed").status == .ok) }
            let beacons: [String: Any] = [
                "visitorId": "visitor-0001", "events": [["type": "pageview", "path": "/"], ["type": "pageview", "path": "/a"]],
            ]
            #expect(try await client.call(.post, "/widget/v1/\(fixture.publicKey)/beacons", json: beacons).status == .accepted)
            let robot = try await client.call(
                .post, "/widget/v1/\(fixture.publicKey)/beacons", json: beacons, headers: [.userAgent: "Mozilla/5.0 (compatible; Googlebot/2.1)"])
            #expect(robot.status == .accepted)
            expectProblem(try await client.call(.get, "/users/me"), .unauthorized)
            expectProblem(try await client.call(.get, "/no/such/path/\(UUID())"), .notFound)

            let response = try await client.call(.get, "/metrics", headers: auth)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            let after = Exposition(response.text)
            #expect((after.value("herald_http_requests_total", feedLabels) ?? 0) - feedsBefore >= 3)
            #expect((after.value("herald_beacon_events_total", ["outcome": "accepted"]) ?? 0) - acceptedBefore >= 2)
            #expect((after.value("herald_beacon_events_total", ["outcome": "bot"]) ?? 0) - botsBefore >= 2)
            // Problems count with the status the client saw, under the service that answered.
            #expect(after.value("herald_http_requests_total", ["service": "users", "route": "/users/me", "status": "401"]) ?? 0 >= 1)
            // Paths no route matches share one label value, so a scanner cannot mint a series per path.
            #expect(after.value("herald_http_requests_total", ["service": "none", "route": "unmatched", "status": "404"]) ?? 0 >= 1)
            #expect(!response.text.contains("/no/such/path"))
            #expect(
                after.value("herald_http_request_duration_seconds_count", ["service": "notifications", "route": "/widget/v1/{publicKey}/feed"])
                    ?? 0 >= 3)
            #expect(after.value("herald_http_request_duration_seconds_bucket", ["route": "/widget/v1/{publicKey}/feed", "le": "0.1"]) != nil)

            let capacity = try #require(after.value("herald_db_pool_connections", ["state": "capacity"]))
            #expect(store == .postgres ? capacity >= 1 : capacity == 1)
            #expect(after.value("herald_db_pool_connections", ["state": "in_use"]) != nil)
            #expect(after.value("herald_build_info", [:]) == 1)
            // Every family says what it counts, those recorded through swift-metrics too.
            let undescribed = after.families.subtracting(after.described)
            #expect(undescribed.isEmpty, "families without help: \(undescribed.sorted())")
            // The backlog is read from the bus at scrape time; a busy machine may make one scrape miss it, and says so.
            try await eventually("a scrape with the bus's backlog") {
                let scrape = Exposition(try await client.call(.get, "/metrics", headers: auth).text)
                guard scrape.value("herald_metrics_collector_failures", ["collector": "bus"]) == 0 else { return false }
                return scrape.value("herald_bus_lag_events", ["group": "analytics.beacons"]) != nil
                    && scrape.value("herald_bus_dead_letters", ["group": "analytics.beacons"]) != nil
            }
            #if os(Linux)
                #expect((after.value("process_resident_memory_bytes", [:]) ?? 0) > 1_000_000)
                #expect((after.value("process_open_fds", [:]) ?? 0) > 3)
                #expect((after.value("process_start_time_seconds", [:]) ?? 0) > Date().timeIntervalSince1970 - 86_400 * 7)
            #endif
        }
    }

    @Test func metricsAreOffUnlessConfigured() async throws {
        try await withApp(.sqlite) { client, _ in
            expectProblem(try await client.call(.get, "/metrics"), .notFound)
            expectProblem(try await client.call(.get, "/metrics", headers: [.authorization: "Bearer \(Self.token)"]), .notFound)
        }
    }

    @Test func metricsSettingsAreChecked() throws {
        #expect(throws: (any Error).self) { try HeraldConfiguration.fromEnvironment(["HERALD_METRICS_TOKEN": "short"]) }
        #expect(throws: (any Error).self) { try HeraldConfiguration.fromEnvironment(["HERALD_METRICS_PORT": "99999"]) }
        #expect(throws: (any Error).self) { try HeraldConfiguration.fromEnvironment(["HERALD_METRICS_HOST": "0.0.0.0"]) }
        let config = try HeraldConfiguration.fromEnvironment(["HERALD_METRICS_PORT": "9464", "HERALD_METRICS_HOST": "0.0.0.0"])
        #expect(config.metrics == MetricsConfiguration(port: 9464, host: "0.0.0.0", token: nil))
        #expect(try HeraldConfiguration.fromEnvironment([:]).metrics.isEnabled == false)
    }
}

/// A parsed Prometheus text exposition: samples by name with their labels.
struct Exposition {
    var samples: [(name: String, labels: [String: String], value: Double)] = []
    var families: Set<String> = []
    /// The families with a `# HELP` line.
    var described: Set<String> = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let parts = line.split(separator: " ")
                if parts.count >= 4 { described.insert(String(parts[2])) }
                continue
            }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count >= 3 { families.insert(String(parts[2])) }
                continue
            }
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            var name = String(series)
            var labels: [String: String] = [:]
            if let open = series.firstIndex(of: "{"), let close = series.lastIndex(of: "}") {
                name = String(series[..<open])
                // Label values here hold no commas or quotes (routes, statuses, groups).
                for pair in series[series.index(after: open)..<close].split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { labels[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
                }
            }
            samples.append((name, labels, value))
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`, or nil when there is none.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        let matching = samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }
}
