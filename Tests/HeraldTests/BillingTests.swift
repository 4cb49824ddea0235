import Foundation
import HTTPTypes
import HeraldApp
import HeraldCore
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

@testable import BillingService

/// A clock the test moves by hand, so a month passes in a second.
final class ManualClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func advance(days: Double) { current.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }
}

@Suite("Billing rules")
struct BillingPolicyTests {
    static func date(_ text: String) throws -> Date { try #require(ISO8601DateFormatter().date(from: text)) }

    @Test func periodsEndOnTheSameDayOrTheMonthsLast() throws {
        #expect(BillingPolicy.periodEnd(from: try Self.date("2026-01-31T10:00:00Z"), interval: .month) == (try Self.date("2026-02-28T10:00:00Z")))
        #expect(BillingPolicy.periodEnd(from: try Self.date("2028-01-31T10:00:00Z"), interval: .month) == (try Self.date("2028-02-29T10:00:00Z")))
        #expect(BillingPolicy.periodEnd(from: try Self.date("2026-03-15T00:00:00Z"), interval: .year) == (try Self.date("2027-03-15T00:00:00Z")))
    }

    @Test func aTrialFallsBackAndADowngradeWaitsForThePeriodsEnd() throws {
        let policy = BillingPolicy()
        let start = try Self.date("2026-01-01T00:00:00Z")
        var account = policy.newAccount(organizationId: UUID(), at: start)
        #expect(account.status == .trialing && account.planId == "growth")
        #expect(account.trialEndsAt == start.addingTimeInterval(14 * 86_400))
        #expect(!policy.advance(&account, to: start.addingTimeInterval(13 * 86_400)))
        #expect(policy.advance(&account, to: start.addingTimeInterval(15 * 86_400)))
        #expect(account.status == .active && account.planId == "free")
        #expect(account.periodStart == start.addingTimeInterval(14 * 86_400))

        account.planId = "scale"
        account.pendingPlanId = "starter"
        let end = account.periodEnd
        #expect(!policy.advance(&account, to: end.addingTimeInterval(-1)))
        #expect(account.planId == "scale")
        #expect(policy.advance(&account, to: end.addingTimeInterval(1)))
        #expect(account.planId == "starter" && account.pendingPlanId == nil && account.periodStart == end)
    }

    @Test func thresholdsHardLimitGraceAndProration() throws {
        let policy = BillingPolicy(gracePeriod: .seconds(3 * 86_400))
        #expect(policy.thresholdsReached(usage: 799, quota: 1_000) == [])
        #expect(policy.thresholdsReached(usage: 800, quota: 1_000) == [80])
        #expect(policy.thresholdsReached(usage: 1_200, quota: 1_000) == [80, 100, 120])
        #expect(policy.thresholdsReached(usage: 5, quota: nil) == [])
        let start = try Self.date("2026-01-01T00:00:00Z")
        var account = policy.newAccount(organizationId: UUID(), at: start)
        account.status = .active
        account.planId = "starter"
        let usage = Usage(impressions: 11_999, activeCampaigns: 0, sites: 1, storageBytes: 0)
        #expect(policy.pause(for: account, usage: usage) == nil)
        #expect(policy.pause(for: account, usage: Usage(impressions: 12_000, activeCampaigns: 0, sites: 1, storageBytes: 0)) == "quota")
        account.status = .pastDue
        account.pastDueSince = start
        _ = policy.advance(&account, to: start.addingTimeInterval(2 * 86_400))
        #expect(account.status == .pastDue)
        _ = policy.advance(&account, to: start.addingTimeInterval(3 * 86_400 + 1))
        #expect(account.status == .restricted)
        #expect(policy.pause(for: account, usage: usage) == "payment")

        // Half the period left: half the price difference.
        account.periodStart = start
        account.periodEnd = start.addingTimeInterval(30 * 86_400)
        let starter = try #require(policy.catalog.plan("starter"))
        let growth = try #require(policy.catalog.plan("growth"))
        #expect(policy.proration(from: starter, .month, to: growth, .month, account: account, at: start.addingTimeInterval(15 * 86_400)) == 1_500)
        #expect(policy.isUpgrade(from: starter, .month, to: growth, .month))
        #expect(!policy.isUpgrade(from: growth, .month, to: starter, .year))
    }

    @Test func operatorCataloguesAreChecked() throws {
        let good =
            #"{"currency":"eur","plans":[{"id":"basic","name":"Basic","monthlyPrice":500,"yearlyPrice":5000,"quotas":{"impressionsPerMonth":100}}]}"#
        let catalog = try PlanCatalog.load(json: Data(good.utf8))
        #expect(catalog.currency == "eur" && catalog.trialPlanId == "basic" && catalog.fallbackPlanId == "basic")
        #expect(catalog.plan("basic")?.quotas.sites == nil)
        #expect(throws: PlanCatalogError.self) { try PlanCatalog.load(json: Data(#"{"plans":[]}"#.utf8)) }
        #expect(throws: PlanCatalogError.self) {
            try PlanCatalog.load(json: Data(#"{"plans":[{"id":"A B","name":"x","monthlyPrice":1,"yearlyPrice":1,"quotas":{}}]}"#.utf8))
        }
    }

    @Test func stripeSignaturesAreCheckedWithTheirTolerance() throws {
        let body = Array(#"{"id":"evt_1"}"#.utf8)
        let now = Date()
        let header = StripeSignature.sign(body: body, secret: "whsec_test", timestamp: Int64(now.timeIntervalSince1970))
        try StripeSignature.verify(header: header, body: body, secret: "whsec_test", tolerance: 300, now: now)
        #expect(throws: StripeSignature.Failure.noMatch) {
            try StripeSignature.verify(header: header, body: body + [0x20], secret: "whsec_test", tolerance: 300, now: now)
        }
        #expect(throws: StripeSignature.Failure.noMatch) {
            try StripeSignature.verify(header: header, body: body, secret: "whsec_other", tolerance: 300, now: now)
        }
        #expect(throws: StripeSignature.Failure.self) {
            try StripeSignature.verify(header: header, body: body, secret: "whsec_test", tolerance: 300, now: now.addingTimeInterval(301))
        }
        #expect(throws: StripeSignature.Failure.missing) {
            try StripeSignature.verify(header: nil, body: body, secret: "s", tolerance: 300, now: now)
        }
        #expect(throws: StripeSignature.Failure.malformed) {
            try StripeSignature.verify(header: "v1=00", body: body, secret: "s", tolerance: 300, now: now)
        }
    }
}

@Suite("Billing through the API")
struct BillingAPITests {
    /// Small quotas so a handful of beacons crosses them.
    static func catalog() -> PlanCatalog {
        PlanCatalog(
            plans: [
                Plan(
                    id: "free", name: "Free", monthlyPrice: 0, yearlyPrice: 0,
                    quotas: Quotas(impressionsPerMonth: 5, activeCampaigns: 1, sites: 1, storageBytes: nil)),
                Plan(
                    id: "starter", name: "Starter", monthlyPrice: 1_000, yearlyPrice: 10_000,
                    quotas: Quotas(impressionsPerMonth: 10, activeCampaigns: 2, sites: 1, storageBytes: nil)),
                Plan(
                    id: "growth", name: "Growth", monthlyPrice: 3_000, yearlyPrice: 30_000,
                    quotas: Quotas(impressionsPerMonth: 100, activeCampaigns: 5, sites: 3, storageBytes: nil)),
            ],
            currency: "usd", trialPlanId: "growth", trialDays: 14, fallbackPlanId: "free"
        )
    }

    func sendImpressions(_ client: any TestClientProtocol, _ fixture: SiteFixture, notification: String, count: Int, visitor: String) async throws {
        let events = (0..<count).map { _ in ["type": "impression", "notificationId": notification, "path": "/"] }
        let accepted = try await client.call(.post, "/widget/v1/\(fixture.publicKey)/beacons", json: ["visitorId": visitor, "events": events])
        #expect(accepted.status == .accepted, "\(accepted.text)")
    }

    @Test(arguments: TestStore.available)
    func aMonthFromTrialToTheHardLimitAndTheNextPeriod(store: TestStore) async throws {
        let clock = ManualClock(Date())
        try await withApp(
            store,
            configure: { config in
                config.billingOptions.policy = BillingPolicy(catalog: Self.catalog())
                config.billingOptions.now = { clock.now }
                config.billingOptions.tickInterval = .milliseconds(200)
            }
        ) { client, _ in
            let fixture = try await client.siteFixture()
            let token = fixture.token
            let base = "/sites/\(fixture.site)"

            // A new organization tries the trial plan for 14 days.
            var subscription = try await client.call(.get, "\(base)/subscription", token: token)
            #expect(subscription.status == .ok, "\(subscription.text)")
            #expect(subscription.json["status"] as? String == "trialing")
            #expect((subscription.json["plan"] as? [String: Any])?["id"] as? String == "growth")
            #expect(subscription.json["billing"] as? String == "none")

            // Trial → paid: leaving the trial starts a paid period at once.
            let paid = try await client.call(
                .post, "\(base)/subscription", json: ["plan": "starter", "billingEmail": "Billing@Example.com"], token: token)
            #expect(paid.status == .ok, "\(paid.text)")
            #expect(paid.json["effective"] as? String == "now")
            subscription = try await client.call(.get, "\(base)/subscription", token: token)
            #expect(subscription.json["status"] as? String == "active")
            #expect((subscription.json["plan"] as? [String: Any])?["id"] as? String == "starter")

            let notification = try await client.createNotification(fixture, ["name": "Hello", "type": "announcement"])
            // 8 of 10 impressions: the 80 % alert.
            try await sendImpressions(client, fixture, notification: notification, count: 8, visitor: "visitor-a")
            try await eventually("8 impressions to be metered") {
                let usage = try await client.call(.get, "\(base)/usage", token: token)
                let metrics = usage.json["metrics"] as? [[String: Any]] ?? []
                return metrics.first { $0["metric"] as? String == "impressions" }?["usage"] as? Int == 8
            }
            var usage = try await client.call(.get, "\(base)/usage", token: token)
            var metrics = usage.json["metrics"] as? [[String: Any]] ?? []
            let impressions = try #require(metrics.first { $0["metric"] as? String == "impressions" })
            #expect(impressions["quota"] as? Int == 10 && impressions["percent"] as? Int == 80 && impressions["site"] as? Int == 8)
            #expect(
                (usage.json["alerts"] as? [[String: Any]])?.filter { $0["metric"] as? String == "impressions" }.compactMap { $0["threshold"] as? Int }
                    == [80])
            #expect(metrics.first { $0["metric"] as? String == "activeCampaigns" }?["usage"] as? Int == 1)

            // 12 of 10: 100 % and 120 %, and the feed pauses without an error.
            try await sendImpressions(client, fixture, notification: notification, count: 4, visitor: "visitor-b")
            // Four consumers in a row (metering, the account, Notifications, the feed cache): on a loaded test run
            // that chain once took longer than the default 10 s.
            try await eventually(timeout: .seconds(30), "the feed to pause at the hard limit") {
                let feed = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed")
                return feed.status == .ok && feed.json["paused"] as? String == "quota" && (feed.json["notifications"] as? [Any])?.isEmpty == true
            }
            usage = try await client.call(.get, "\(base)/usage", token: token)
            #expect(
                (usage.json["alerts"] as? [[String: Any]])?.filter { $0["metric"] as? String == "impressions" }.compactMap { $0["threshold"] as? Int }
                    == [80, 100, 120])
            #expect((usage.json["delivery"] as? [String: Any])?["reason"] as? String == "quota")

            // A downgrade below current usage is refused with the reason; an upgrade lifts the pause at once.
            let refused = try await client.call(.post, "\(base)/subscription", json: ["plan": "free"], token: token)
            expectProblem(refused, .conflict)
            #expect(refused.text.contains("impressions 12"))
            let upgraded = try await client.call(.post, "\(base)/subscription", json: ["plan": "growth"], token: token)
            #expect(upgraded.status == .ok, "\(upgraded.text)")
            #expect((upgraded.json["prorationAmount"] as? Int ?? 0) > 0)
            try await eventually("the feed to resume after the upgrade") {
                let feed = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed")
                return feed.json["paused"] is NSNull && (feed.json["notifications"] as? [Any])?.count == 1
            }

            // The next period: usage and alerts start again.
            let periodStart = try #require(upgraded.json["subscription"] as? [String: Any])["currentPeriodStart"] as? String
            clock.advance(days: 32)
            try await eventually("the period to roll over") {
                let now = try await client.call(.get, "\(base)/subscription", token: token)
                return now.json["currentPeriodStart"] as? String != periodStart
            }
            usage = try await client.call(.get, "\(base)/usage", token: token)
            metrics = usage.json["metrics"] as? [[String: Any]] ?? []
            #expect(metrics.first { $0["metric"] as? String == "impressions" }?["usage"] as? Int == 0)
            #expect((usage.json["alerts"] as? [Any])?.isEmpty == true)

            // A downgrade within quotas waits for the period's end, then applies.
            let downgrade = try await client.call(.post, "\(base)/subscription", json: ["plan": "starter"], token: token)
            #expect(downgrade.json["effective"] as? String == "period_end", "\(downgrade.text)")
            subscription = try await client.call(.get, "\(base)/subscription", token: token)
            #expect((subscription.json["pendingPlan"] as? [String: Any])?["id"] as? String == "starter")
            #expect((subscription.json["plan"] as? [String: Any])?["id"] as? String == "growth")
            clock.advance(days: 32)
            try await eventually("the downgrade to apply at the period's end") {
                let now = try await client.call(.get, "\(base)/subscription", token: token)
                return (now.json["plan"] as? [String: Any])?["id"] as? String == "starter" && now.json["pendingPlan"] is NSNull
            }

            // Viewers and other tenants see nothing of it.
            let stranger = try await client.signup()
            let hidden = try await client.call(.get, "\(base)/subscription", token: stranger.token)
            expectProblem(hidden, .notFound)
            let invoices = try await client.call(.get, "\(base)/invoices", token: token)
            #expect(invoices.status == .ok && (invoices.json["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test(arguments: TestStore.available)
    func trialExtensionsAreDecidedByTheOperatorAndAudited(store: TestStore) async throws {
        let operatorToken = "operator-token-0123456789abcdef"
        try await withApp(store, configure: { config in config.billingOptions.operatorToken = operatorToken }) { client, _ in
            let fixture = try await client.siteFixture()
            let base = "/sites/\(fixture.site)/subscription"
            let before = try await client.call(.get, base, token: fixture.token)
            let trialEnd = try #require(before.json["trialEndsAt"] as? String)

            expectProblem(
                try await client.call(.post, "\(base)/trial-extensions", json: ["days": 90, "reason": "x"], token: fixture.token),
                .unprocessableContent)
            let asked = try await client.call(
                .post, "\(base)/trial-extensions", json: ["days": 7, "reason": "Waiting for our launch"], token: fixture.token)
            #expect(asked.status == .accepted, "\(asked.text)")
            let id = try #require(asked["id"])
            expectProblem(
                try await client.call(.post, "\(base)/trial-extensions", json: ["days": 7, "reason": "again"], token: fixture.token), .conflict)

            // Only the operator decides; a member's token is not the operator's.
            expectProblem(try await client.call(.post, "/operator/trial-extensions/\(id)/approve", token: fixture.token), .unauthorized)
            let queue = try await client.call(.get, "/operator/trial-extensions", headers: [.authorization: "Bearer \(operatorToken)"])
            #expect((queue.json["items"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true)
            let approved = try await client.call(
                .post, "/operator/trial-extensions/\(id)/approve", json: ["note": "ok"], headers: [.authorization: "Bearer \(operatorToken)"])
            #expect(approved.status == .ok, "\(approved.text)")
            #expect(approved["status"] == "approved")
            let again = try await client.call(.post, "/operator/trial-extensions/\(id)/refuse", headers: [.authorization: "Bearer \(operatorToken)"])
            expectProblem(again, .conflict)

            let after = try await client.call(.get, base, token: fixture.token)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            func parse(_ text: String) -> Date? { formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text) }
            let extendedText = try #require(after.json["trialEndsAt"] as? String)
            let extended = try #require(parse(extendedText))
            let original = try #require(parse(trialEnd))
            #expect(abs(extended.timeIntervalSince(original) - 7 * 86_400) < 1)

            try await eventually("the request and the decision to reach the audit log") {
                let records = try await client.call(.get, "/organizations/\(fixture.organization)/audit-logs?limit=200", token: fixture.token).items
                let actions = Set(records.compactMap { $0["action"] as? String })
                return actions.isSuperset(of: ["trial_extension.requested", "trial_extension.approved"])
            }
        }
    }

    /// Storage is metered from what each service reports, per organization: one organization's events never count
    /// against another's quota, and crossing the storage quota alerts like any other.
    @Test(arguments: TestStore.available)
    func storageIsMeteredFromWhatServicesReport(store: TestStore) async throws {
        var catalog = Self.catalog()
        catalog.plans = catalog.plans.map { plan in
            var plan = plan
            plan.quotas.storageBytes = 2_000
            plan.quotas.impressionsPerMonth = 1_000
            return plan
        }
        try await withApp(
            store,
            configure: { config in
                config.billingOptions.policy = BillingPolicy(catalog: catalog)
                config.storageReportInterval = .milliseconds(300)
            }
        ) { client, _ in
            let busy = try await client.siteFixture()
            let quiet = try await client.siteFixture()
            func storage(_ fixture: SiteFixture) async throws -> [String: Any]? {
                let usage = try await client.call(.get, "/sites/\(fixture.site)/usage", token: fixture.token)
                return (usage.json["metrics"] as? [[String: Any]] ?? []).first { $0["metric"] as? String == "storageBytes" }
            }
            let notification = try await client.createNotification(busy, ["name": "Hello", "type": "announcement"])
            try await sendImpressions(client, busy, notification: notification, count: 20, visitor: "visitor-a")
            try await eventually("the busy organization's storage to pass its quota") {
                ((try await storage(busy))?["usage"] as? Int ?? 0) > 2_400
            }
            let used = try #require(try await storage(busy))
            #expect(used["quota"] as? Int == 2_000, "\(used)")
            try await eventually("the storage alerts") {
                let usage = try await client.call(.get, "/sites/\(busy.site)/usage", token: busy.token)
                return (usage.json["alerts"] as? [[String: Any]])?.filter { $0["metric"] as? String == "storageBytes" }
                    .compactMap { $0["threshold"] as? Int } == [80, 100, 120]
            }
            // The other organization holds no events: its storage is its own, and small.
            let other = try #require(try await storage(quiet))
            #expect((other["usage"] as? Int ?? -1) < 500, "\(other)")
        }
    }
}
