import Foundation
import HTTPTypes
import HeraldApp
import HeraldHTTP
import HeraldServiceClient
import Hummingbird
import HummingbirdTesting
import Testing

/// Services in separate processes: a process without the Users service checks access through the Users
/// service's internal API (HERALD_USERS_URL), with a deadline, retries and a circuit breaker.
@Suite struct ServiceLinkTests {
    static let internalToken = "internal-token-0123456789abcdef0123456789"

    @Test func theCircuitBreakerOpensThenTriesOneCallThenCloses() {
        let breaker = CircuitBreaker(failureThreshold: 3, openFor: .seconds(10))
        let start = ContinuousClock.now
        for _ in 0..<2 { breaker.recordFailure(now: start) }
        #expect(breaker.state == .closed && breaker.permit(now: start).allowed)
        breaker.recordFailure(now: start)
        #expect(breaker.state == .open)
        let refused = breaker.permit(now: start + .seconds(4))
        #expect(!refused.allowed && refused.retryAfter == .seconds(6))
        // After the pause one trial call goes out; others wait for its outcome.
        #expect(breaker.permit(now: start + .seconds(10)).allowed)
        #expect(breaker.state == .halfOpen && !breaker.permit(now: start + .seconds(10)).allowed)
        breaker.recordFailure(now: start + .seconds(11))
        #expect(breaker.state == .open && !breaker.permit(now: start + .seconds(12)).allowed)
        #expect(breaker.permit(now: start + .seconds(21)).allowed)
        breaker.recordSuccess()
        #expect(breaker.state == .closed && breaker.permit(now: start + .seconds(21)).allowed)
    }

    @Test func theInternalAPIAnswersOnlyWithItsToken() async throws {
        try await withApp(.sqlite, configure: { $0.links.internalToken = Self.internalToken }) { client, _ in
            let fixture = try await client.siteFixture()
            let me = try await client.call(.get, "/users/me", token: fixture.token)
            let userId = try #require(me["id"])
            let rolePath = "/internal/v1/organizations/\(fixture.organization)/members/\(userId)/role"
            let auth: HTTPFields = [.authorization: "Bearer \(Self.internalToken)"]

            expectProblem(try await client.call(.get, rolePath), .unauthorized)
            // A user's own token is not the internal token.
            expectProblem(try await client.call(.get, rolePath, token: fixture.token), .unauthorized)
            let role = try await client.call(.get, rolePath, headers: auth)
            #expect(role.status == .ok && role["role"] == "owner", "\(role.text)")
            expectProblem(
                try await client.call(.get, "/internal/v1/organizations/\(fixture.organization)/members/\(UUID())/role", headers: auth), .notFound)

            let site = try await client.call(.get, "/internal/v1/sites/\(fixture.site)", headers: auth)
            #expect(site["organizationId"] == fixture.organization)
            let key = try await client.call(.post, "/internal/v1/site-keys/lookup", json: ["secretKey": fixture.secretKey], headers: auth)
            #expect(key["siteId"] == fixture.site)
            expectProblem(try await client.call(.post, "/internal/v1/site-keys/lookup", json: ["secretKey": "sk_nope"], headers: auth), .notFound)
        }
        // Without a token configured the internal API does not exist.
        try await withApp(.sqlite) { client, _ in
            expectProblem(
                try await client.call(.get, "/internal/v1/sites/\(UUID())", headers: [.authorization: "Bearer \(Self.internalToken)"]), .notFound)
        }
    }

    /// A Notifications process answers management requests by asking a Users process over HTTP; when the Users
    /// process is gone, those requests fail fast with 503 and Retry-After while the public widget keeps working.
    /// Two processes on one store: PostgreSQL, as split deployments run (see RedisDeploymentTests).
    @Test(arguments: TestStore.available.filter { $0 == .postgres })
    func aProcessWithoutUsersChecksAccessOverHTTP(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        var usersConfig = environment.configuration()
        usersConfig.services = [.users]
        usersConfig.links.internalToken = Self.internalToken
        let usersApp = try await buildApplication(usersConfig, logger: testLogger)
        try await usersApp.test(.live) { usersClient in
            let port = try #require(usersClient.port)
            var config = environment.configuration()
            config.services = [.notifications]
            config.links = ServiceLinks(usersURL: "http://127.0.0.1:\(port)", internalToken: Self.internalToken)
            let notificationsApp = try await buildApplication(config, logger: testLogger)
            try await notificationsApp.test(.router) { client in
                let owner = try await usersClient.signup()
                let org = try await usersClient.createOrganization(owner.token)
                let site = try await usersClient.createSite(owner.token, organization: org)
                try await eventually("the site to reach the notifications service") {
                    try await client.call(.get, "/widget/v1/\(site.publicKey)/feed").status == .ok
                }
                let listed = try await client.call(.get, "/sites/\(site.id)/notifications", token: owner.token)
                #expect(listed.status == .ok, "\(listed.text)")
                // Another user, signed in, is not a member: the same 404 as for a site that does not exist.
                let stranger = try await usersClient.signup()
                expectProblem(try await client.call(.get, "/sites/\(site.id)/notifications", token: stranger.token), .notFound)
                // A signed-out session stops working once the cached answer expires (5 s).
                #expect(try await usersClient.call(.post, "/auth/logout", token: stranger.token).status == .noContent)
                try await eventually(timeout: .seconds(15), "the logout to reach the notifications process") {
                    try await client.call(.get, "/sites/\(site.id)/notifications", token: stranger.token).status == .unauthorized
                }
                // Secret keys are checked by the Users service too.
                let viaKey = try await client.call(.get, "/sites/\(site.id)/notifications", token: site.secretKey)
                #expect(viaKey.status == .ok, "\(viaKey.text)")
                // So is the dashboard's cookie, with its CSRF rule applied where the request arrives.
                let signIn = try await usersClient.call(
                    .post, "/auth/browser-session", json: ["email": owner.email, "password": "a long passphrase"])
                #expect(signIn.status == .created, "\(signIn.text)")
                let cookie = try #require(signIn.headers[.setCookie]?.split(separator: ";").first.map(String.init))
                let csrf = try #require(signIn["csrfToken"])
                let viaCookie = try await client.call(.get, "/sites/\(site.id)/notifications", headers: [.cookie: cookie])
                #expect(viaCookie.status == .ok, "\(viaCookie.text)")
                let forged = try await client.call(
                    .post, "/sites/\(site.id)/notifications", raw: #"{"name":"Forged","type":"announcement"}"#, headers: [.cookie: cookie])
                expectProblem(forged, .forbidden)
                let made = try await client.call(
                    .post, "/sites/\(site.id)/notifications", raw: #"{"name":"Real","type":"recent_activity"}"#,
                    headers: [.cookie: cookie, .csrfToken: csrf])
                #expect(made.status == .created, "\(made.text)")
            }
        }

        // The Users process is gone (nothing listens on the port): access checks fail fast with 503.
        var config = environment.configuration()
        config.services = [.notifications]
        config.links = ServiceLinks(usersURL: "http://127.0.0.1:9", internalToken: Self.internalToken)
        let orphan = try await buildApplication(config, logger: testLogger)
        try await orphan.test(.router) { client in
            for attempt in 0..<6 {
                let refused = try await client.call(
                    .get, "/sites/\(UUID())/notifications", headers: [.authorization: "Bearer sk_live_unknown\(attempt)"])
                expectProblem(refused, .serviceUnavailable)
            }
            let started = ContinuousClock.now
            let fast = try await client.call(.get, "/sites/\(UUID())/notifications", headers: [.authorization: "Bearer sk_live_unknownkey"])
            expectProblem(fast, .serviceUnavailable)
            #expect(fast.headers[.retryAfter] != nil)
            #expect(ContinuousClock.now - started < .seconds(1), "an open breaker answers at once")
            #expect(try await client.call(.get, "/healthz").status == .ok)
        }
    }
}
