import Foundation
import HTTPTypes
import HeraldApp
import HeraldCore
import HeraldHTTP
import HeraldStorage
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import Testing

/// The stores every contract test runs against. PostgreSQL is included when the test script started one
/// (HERALD_TEST_POSTGRES_URL); with HERALD_TEST_REQUIRE_POSTGRES=1 its absence is a failure, not a skip.
enum TestStore: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var available: [TestStore] {
        let environment = ProcessInfo.processInfo.environment
        if environment["HERALD_TEST_POSTGRES_URL"] != nil { return [.sqlite, .postgres] }
        precondition(environment["HERALD_TEST_REQUIRE_POSTGRES"] != "1", "HERALD_TEST_POSTGRES_URL is required but not set")
        return [.sqlite]
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "herald-test")
    logger.logLevel = ProcessInfo.processInfo.environment["HERALD_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    return logger
}()

/// A fresh, empty store for one test: a temporary data directory, and for PostgreSQL a new database owned by
/// Herald's non-superuser role.
struct TestEnvironment: Sendable {
    var store: TestStore
    var dataDirectory: String
    var databaseURL: String?

    static func make(_ store: TestStore) async throws -> TestEnvironment {
        let directory = NSTemporaryDirectory() + "herald-test-" + UUID().lowercased
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard store == .postgres else { return TestEnvironment(store: store, dataDirectory: directory, databaseURL: nil) }
        let environment = ProcessInfo.processInfo.environment
        guard let adminText = environment["HERALD_TEST_POSTGRES_ADMIN_URL"], let baseText = environment["HERALD_TEST_POSTGRES_URL"] else {
            throw TestFailure("PostgreSQL test URLs are not set")
        }
        let name = "herald_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await PostgresAdmin.execute("CREATE DATABASE \(name) OWNER herald", adminURL: adminText)
        var components = URLComponents(string: baseText)
        components?.path = "/" + name
        return TestEnvironment(store: store, dataDirectory: directory, databaseURL: components?.string)
    }

    func configuration(port: Int = 0) -> HeraldConfiguration {
        var config = HeraldConfiguration()
        config.port = port
        config.dataDirectory = dataDirectory
        config.databaseURL = databaseURL
        // Every test runs its own application at once: small pools keep the server under max_connections.
        config.databasePoolSize = 6
        config.bcryptCost = 4
        config.eventPollInterval = .milliseconds(100)
        config.publicURL = "http://herald.test"
        return config
    }

    /// Opens the store directly (outside the application), migrated.
    func withDatabase<T: Sendable>(_ body: @Sendable (any Database) async throws -> T) async throws -> T {
        try await HeraldRuntime.withDatabase(configuration(), logger: testLogger) { database in
            try await Migrator(database: database, logger: testLogger).migrate(HeraldRuntime.migrationSets)
            return try await body(database)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum PostgresAdmin {
    /// Runs one statement as the cluster's superuser (test set-up only).
    static func execute(_ sql: String, adminURL: String, database: String? = nil) async throws {
        let url = try PostgresURL(parsing: adminURL)
        let configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: database ?? url.database, tls: .disable
        )
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: testLogger)
        defer { Task { try? await connection.close() } }
        try await connection.query(PostgresQuery(unsafeSQL: sql), logger: testLogger)
    }
}

/// Runs `body` against a Herald application on a fresh store.
func withApp(
    _ store: TestStore,
    configure: (inout HeraldConfiguration) -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol, TestEnvironment) async throws -> Void
) async throws {
    let environment = try await TestEnvironment.make(store)
    var config = environment.configuration()
    configure(&config)
    let app = try await buildApplication(config, logger: testLogger)
    try await app.test(.router) { client in
        try await body(client, environment)
    }
}

/// A decoded JSON response.
struct JSONResult: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    var json: [String: Any] {
        guard let data = body.getData(at: body.readerIndex, length: body.readableBytes),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object
    }

    var text: String { String(buffer: body) }

    subscript(key: String) -> String? { json[key] as? String }

    var items: [[String: Any]] { (json["items"] as? [[String: Any]]) ?? [] }
}

extension TestClientProtocol {
    /// Sends a request with an optional JSON body and bearer token.
    func call(
        _ method: HTTPRequest.Method,
        _ path: String,
        json: [String: Any]? = nil,
        raw: String? = nil,
        token: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> JSONResult {
        var headers = extra
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(data: try JSONSerialization.data(withJSONObject: json))
            headers[.contentType] = "application/json"
        } else if let raw {
            body = ByteBuffer(string: raw)
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        }
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: path, method: method, headers: headers, body: body) { response in
            JSONResult(status: response.status, headers: response.headers, body: response.body)
        }
    }

    /// Signs up a new user and returns its access token, refresh token and id.
    func signup(
        email: String = "user-\(UUID().lowercased.prefix(8))@example.com", password: String = "a long passphrase", name: String = "Test User"
    )
        async throws -> (token: String, refresh: String, userId: String, email: String)
    {
        let result = try await call(.post, "/auth/signup", json: ["email": email, "password": password, "name": name])
        try #require(result.status == .created, "signup failed: \(result.text)")
        let user = result.json["user"] as? [String: Any]
        return (result["accessToken"] ?? "", result["refreshToken"] ?? "", user?["id"] as? String ?? "", email)
    }

    func createOrganization(_ token: String, name: String = "Acme") async throws -> String {
        let result = try await call(.post, "/organizations", json: ["name": name], token: token)
        try #require(result.status == .created, "create organization failed: \(result.text)")
        return result["id"] ?? ""
    }

    func createSite(
        _ token: String, organization: String, domain: String = "shop.example.com"
    ) async throws -> (id: String, publicKey: String, secretKey: String) {
        let result = try await call(.post, "/organizations/\(organization)/sites", json: ["name": "Shop", "domain": domain], token: token)
        try #require(result.status == .created, "create site failed: \(result.text)")
        return (result["id"] ?? "", result["publicKey"] ?? "", result["secretKey"] ?? "")
    }
}

/// Checks that a response is an RFC 9457 problem with the given status.
func expectProblem(_ result: JSONResult, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == status, "expected \(status.code), got \(result.status.code): \(result.text)", sourceLocation: sourceLocation)
    #expect(result.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
    #expect(result.json["status"] as? Int == Int(status.code), sourceLocation: sourceLocation)
    #expect((result["type"] ?? "").hasPrefix("/problems/"), sourceLocation: sourceLocation)
    #expect(!(result["detail"] ?? "").isEmpty, sourceLocation: sourceLocation)
}

/// Polls until `condition` holds (event consumers run asynchronously), failing after `timeout`.
func eventually(
    timeout: Duration = .seconds(10),
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
}

/// An organization with a site, ready for notifications.
struct SiteFixture: Sendable {
    var token: String
    var organization: String
    var site: String
    var publicKey: String
    var secretKey: String
}

extension TestClientProtocol {
    func siteFixture() async throws -> SiteFixture {
        let owner = try await signup()
        let org = try await createOrganization(owner.token)
        let site = try await createSite(owner.token, organization: org)
        // The Notifications service learns about the site from its event; wait until the widget key resolves.
        try await eventually("the site to reach the notifications service") {
            try await call(.get, "/widget/v1/\(site.publicKey)/feed").status == .ok
        }
        return SiteFixture(token: owner.token, organization: org, site: site.id, publicKey: site.publicKey, secretKey: site.secretKey)
    }

    func createNotification(_ fixture: SiteFixture, _ body: [String: Any], publish: Bool = true) async throws -> String {
        let created = try await call(.post, "/sites/\(fixture.site)/notifications", json: body, token: fixture.token)
        try #require(created.status == .created, "create notification failed: \(created.text)")
        let id = try #require(created["id"])
        if publish {
            let published = try await call(.post, "/sites/\(fixture.site)/notifications/\(id)/publish", token: fixture.token)
            try #require(published.status == .ok)
        }
        return id
    }

    func feedItems(_ fixture: SiteFixture) async throws -> [[String: Any]] {
        let feed = try await call(.get, "/widget/v1/\(fixture.publicKey)/feed")
        return (feed.json["notifications"] as? [[String: Any]]) ?? []
    }

    func recordActivity(_ fixture: SiteFixture, _ body: [String: Any], key: String? = nil) async throws -> JSONResult {
        var headers: HTTPFields = [:]
        if let key { headers[.idempotencyKey] = key }
        return try await call(.post, "/sites/\(fixture.site)/activities", json: body, token: fixture.secretKey, headers: headers)
    }
}
