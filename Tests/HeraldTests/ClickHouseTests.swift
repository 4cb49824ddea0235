import Foundation
import HTTPTypes
import HeraldApp
import HeraldContracts
import HeraldCore
import HeraldStorage
import NIOCore
import Testing

@testable import AnalyticsService

/// The ClickHouse server the test script started (HERALD_TEST_CLICKHOUSE_URL), or nil; with
/// HERALD_TEST_REQUIRE_CLICKHOUSE=1 its absence is a failure, not a skip.
private let clickHouseURL: String? = {
    let environment = ProcessInfo.processInfo.environment
    if let url = environment["HERALD_TEST_CLICKHOUSE_URL"], !url.isEmpty { return url }
    precondition(environment["HERALD_TEST_REQUIRE_CLICKHOUSE"] != "1", "HERALD_TEST_CLICKHOUSE_URL is required but not set")
    return nil
}()

@Suite("ClickHouse: configuration, SQL and NDJSON")
struct ClickHouseUnitTests {
    @Test("the URL's credentials go to headers, never into the endpoint or errors")
    func configuration() throws {
        let parsed = try ClickHouseConfiguration.parse(url: "http://herald:s%40cret@ch.internal:8123/", database: "analytics_1", flushInterval: "0.5")
        #expect(parsed.endpoint == "http://ch.internal:8123")
        #expect(parsed.user == "herald" && parsed.password == "s@cret")
        #expect(parsed.database == "analytics_1" && parsed.flushInterval == 0.5)
        #expect(!parsed.description.contains("cret"))
        let plain = try ClickHouseConfiguration.parse(url: "https://ch.example.com")
        #expect(plain.endpoint == "https://ch.example.com" && plain.user == nil && plain.password == nil && plain.database == "herald")

        for (url, database, interval) in [
            ("ftp://u:topsecret@host", nil, nil), ("http://u:topsecret@host:8123?database=x", nil, nil), ("u:topsecret@host", nil, nil),
            ("http://u:topsecret@host", "1bad", nil), ("http://u:topsecret@host", "drop table", nil), ("http://u:topsecret@host", nil, "0"),
        ] as [(String, String?, String?)] {
            #expect {
                try ClickHouseConfiguration.parse(url: url, database: database, flushInterval: interval)
            } throws: { error in
                !"\(error)".contains("topsecret") && "\(error)".contains("HERALD_CLICKHOUSE_")
            }
        }
    }

    @Test("string literals are escaped, exceptions are read")
    func literals() {
        #expect(ClickHouseSQL.string("it's") == "'it\\'s'")
        #expect(ClickHouseSQL.string("a\\b\n\u{1}") == "'a\\\\b\\x0A\\x01'")
        #expect(ClickHouseSQL.string("héllo 😀") == "'héllo 😀'")
        let (code, message) = ClickHouseClient.exception(
            "Code: 60, e.displayText() = DB::Exception: Table herald.events doesn't exist., e.what() = DB::Exception\n")
        #expect(code == 60 && message == "Table herald.events doesn't exist.")
        #expect(ClickHouseClient.exception("something else").message == "something else")
        #expect(ClickHouseClient.encode("INSERT INTO events FORMAT JSONEachRow") == "INSERT%20INTO%20events%20FORMAT%20JSONEachRow")
    }

    @Test("inserts are split where the UTC month (the partition) changes")
    func partitions() {
        let april30 = Int64(LocalTime.days(year: 2026, month: 4, day: 30)) * 86_400_000
        #expect(ClickHouseQueries.partition(atMillis: april30) == 202_604)
        #expect(ClickHouseQueries.partition(atMillis: april30 + 86_400_000 - 1) == 202_604)
        #expect(ClickHouseQueries.partition(atMillis: april30 + 86_400_000) == 202_605)
        #expect(ClickHouseQueries.partition(atMillis: 0) == 197_001)
    }

    @Test("funnel steps map to the raw rows that reach them")
    func steps() throws {
        let n = try #require(UUID(uuidString: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d"))
        let v = try #require(UUID(uuidString: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5e"))
        let step = ClickHouseQueries.stepCondition
        #expect(step("i") == "type = 'impression'")
        #expect(step("k:" + n.lowercased) == "type = 'click' AND notification_id = toUUID('\(n.lowercased)')")
        #expect(step("i:\(n.lowercased):\(v.lowercased)")?.contains("variant_id = toUUID('\(v.lowercased)')") == true)
        #expect(step("p") == "type = 'pageview'")
        #expect(step("c") == "type = 'conversion'")
        #expect(step("g:it's:late") == "type = 'conversion' AND goal = 'it\\'s:late'")
        #expect(step("k:not-a-uuid") == nil)
        #expect(step("cv:\(n.lowercased):\(v.lowercased)") == nil)
        let siteId = UUID.v7()
        let sql = try #require(
            ClickHouseQueries.funnel(
                siteId: siteId, organizationId: UUID.v7(), days: 20_261_201...20_261_204, steps: ["i", "teleport", "c"], windowMillis: 60_000))
        #expect(sql.contains("countIf(0) > 0 AS h1"))
        #expect(sql.contains("sum(h0 AND h1 AND t1 >= t0 AND t1 <= t0 + 60000 AND h2 AND t2 >= t1 AND t2 <= t0 + 60000) AS s2"))
        #expect(sql.contains("visitor_day BETWEEN 20261201 AND 20261204"))
        #expect(ClickHouseQueries.funnel(siteId: siteId, organizationId: siteId, days: 1...2, steps: [], windowMillis: 1) == nil)
    }

    @Test("rows go out as JSONEachRow with the sequence, the organization and 0/1 flags")
    func ndjson() throws {
        let organizationId = UUID.v7()
        let event = RawEvent(
            siteId: UUID.v7(), atMillis: 1_796_000_000_123, hour: 1_796_000_000, day: 20_261_204, visitorDay: 20_261_204, type: "impression",
            notificationId: UUID.v7(), variantId: nil, activityId: nil, visitor: "v\"1", session: nil, path: "/a", referrer: nil, utmSource: nil,
            utmMedium: nil, utmCampaign: nil, device: "desktop", country: nil, goal: nil, value: 3.28, exposure: true
        )
        let buffer = ClickHouseShipper.ndjson([StoredRawEvent(seq: 42, organizationId: organizationId, event: event)][...])
        let text = String(buffer: buffer)
        #expect(text.hasSuffix("}\n") && text.split(separator: "\n").count == 1)
        let row = try JSONReader.read(Array(text.utf8.dropLast()))
        #expect(row["seq"]?.number == 42 && row["organization_id"]?.string == organizationId.lowercased)
        #expect(row["exposure"]?.number == 1 && row["new_visitor"]?.number == 0 && row["visitor"]?.string == "v\"1")
        #expect(row["variant_id"] == nil && row["value"] == nil)
        // The double's bits, exactly (ClickHouse 18.16 parses decimal text up to one unit in the last place off).
        #expect(text.contains("\"value_bits\":\(Int64(bitPattern: (3.28).bitPattern))}"))
    }
}

/// Against the ClickHouse server of the test script: the same beacons give the same facts from ClickHouse as from
/// the rollups, every raw event is shipped once (also by a second shipper that takes over), and archiving waits for
/// shipping.
@Suite("ClickHouse: shipping and reports", .enabled(if: clickHouseURL != nil))
struct ClickHouseIntegrationTests {
    static let tz = "America/Chicago"

    @Test("readiness reports ClickHouse; one that does not answer makes Herald degraded, still ready")
    func readiness() async throws {
        let database = "herald_t_" + UUID().lowercased.replacingOccurrences(of: "-", with: "").prefix(12)
        try await withApp(
            .sqlite, configure: { $0.analyticsOptions.clickHouse = try? ClickHouseConfiguration.parse(url: clickHouseURL ?? "", database: database) }
        ) {
            client, _ in
            let ready = try await client.call(.get, "/readyz")
            #expect(ready.status == .ok && (ready.json["checks"] as? [String: String])?["clickhouse"] == "ok", "\(ready.text)")
        }
        try await withApp(.sqlite, configure: { $0.analyticsOptions.clickHouse = try? ClickHouseConfiguration.parse(url: "http://127.0.0.1:1") }) {
            client, _ in
            let ready = try await client.call(.get, "/readyz")
            #expect(ready.status == .ok && ready.json["status"] as? String == "degraded", "\(ready.text)")
            #expect((ready.json["checks"] as? [String: String])?["clickhouse"] == "unreachable", "\(ready.text)")
        }
    }

    @Test("every fact from ClickHouse equals the rollups'; each raw event is shipped once", arguments: TestStore.available)
    func sameFacts(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            var configuration = try ClickHouseConfiguration.parse(
                url: clickHouseURL ?? "", database: "herald_t_" + UUID().lowercased.replacingOccurrences(of: "-", with: "").prefix(12))
            configuration.batchSize = 97  // many batches, and runs split by month
            let client = ClickHouseClient(configuration: configuration)
            let world = BeaconWorld()
            try await world.register(in: database)

            // Two rounds of beacons, shipped by two shippers in turn (the second reads the positions from ClickHouse).
            try await world.ingest(round: 0, into: database)
            let first = ClickHouseShipper(database: database, client: client, logger: testLogger)
            var state = ClickHouseShipper.State()
            while try await first.cycle(&state) {}
            // Funnels computed now are kept per day; the second round must invalidate the days it changes.
            let sql = SQLAnalyticsReader(database: database)
            for site in world.sites {
                for steps in world.funnels(site: site) {
                    _ = try await sql.funnel(
                        siteId: site.siteId, organizationId: site.organizationId, days: world.dayRange, steps: steps, windowMillis: 60_000)
                }
            }
            try await world.ingest(round: 1, into: database)
            let second = ClickHouseShipper(database: database, client: client, logger: testLogger)
            var other = ClickHouseShipper.State()
            while try await second.cycle(&other) {}
            #expect(try await second.cycle(&other) == false)

            let stored = try await world.rawCount(in: database)
            let shipped = try await client.select("SELECT count() AS n, uniqExact(seq) AS seqs FROM events")
            #expect(shipped.first?["n"].flatMap(ClickHouseSQL.int64) == Int64(stored))
            #expect(shipped.first?["seqs"].flatMap(ClickHouseSQL.int64) == Int64(stored))
            #expect(stored > 500)
            // The positions are on record for visibility and for archiving.
            let recorded = try await database.transaction(.system) { tx in
                try await ShippingStore().shipped(organizationId: world.organizations[0], in: tx)
            }
            #expect(recorded > 0)

            let clickHouse = ClickHouseReader(client: client, store: sql, logger: testLogger)
            for site in world.sites {
                try await Self.compare(sql, clickHouse, site: site, world: world)
            }
            // The attribution above came from rollups (every conversion is in one), and days without a rollup
            // (kept before it existed) are credited from raw conversions to the same result.
            let site = world.sites[0]
            let kept = try #require(
                try await sql.keptAttribution(siteId: site.siteId, organizationId: site.organizationId, days: world.dayRange))
            let rolledUp = try await database.transaction(.organization(site.organizationId)) { tx in
                try await tx.queryFirst(
                    "SELECT SUM(total) AS n FROM \(AnalyticsTables.attributionTotalsDay) WHERE site_id = \(site.siteId)"
                )?.get("n", as: Int?.self)
            }
            #expect(rolledUp == kept.total)
            try await database.transaction(.organization(site.organizationId)) { tx in
                try await tx.execute(
                    """
                    DELETE FROM \(AnalyticsTables.attributionTotalsDay)
                    WHERE site_id = \(site.siteId)
                    AND day = (SELECT MAX(day) FROM \(AnalyticsTables.attributionTotalsDay) WHERE site_id = \(site.siteId))
                    """
                )
            }
            let mixed = try #require(
                try await sql.keptAttribution(siteId: site.siteId, organizationId: site.organizationId, days: world.dayRange))
            #expect(Self.describe(mixed) == Self.describe(kept))
            try await client.execute("DROP DATABASE IF EXISTS \(configuration.database)", useDatabase: false)
        }
    }

    static func compare(_ sql: SQLAnalyticsReader, _ clickHouse: ClickHouseReader, site: BeaconWorld.Site, world: BeaconWorld) async throws {
        let (siteId, organizationId) = (site.siteId, site.organizationId)
        let days = world.dayRange
        let millis = world.millisRange
        let seconds = millis.lowerBound / 1000 - 86_400...millis.upperBound / 1000 + 86_400
        for granularity in Granularity.allCases {
            let buckets = granularity == .day ? Int64(days.lowerBound)...Int64(days.upperBound) : seconds
            func facts(_ reader: any AnalyticsReader) async throws -> [String] {
                try await reader.counters(siteId: siteId, organizationId: organizationId, granularity: granularity, buckets: buckets)
                    .filter { $0.counters != Counters() }
                    .map {
                        "\($0.bucket) \($0.notificationId) \($0.variantId) \($0.counters.pageviews) \($0.counters.impressions) "
                            + "\($0.counters.hovers) \($0.counters.clicks) \($0.counters.closes) \($0.counters.conversions) "
                            + String(format: "%.6f", $0.counters.conversionValue)
                    }
                    .sorted()
            }
            let expected = try await facts(sql)
            #expect(!expected.isEmpty)
            #expect(try await facts(clickHouse) == expected, "counters by \(granularity.rawValue)")
        }
        func uniques(_ reader: any AnalyticsReader) async throws -> [String] {
            try await reader.uniques(siteId: siteId, organizationId: organizationId, days: days).map { "\($0.day) \($0.scope) \($0.visitors)" }
                .sorted()
        }
        #expect(try await uniques(clickHouse) == uniques(sql))
        for steps in world.funnels(site: site) {
            for window: Int64 in [60_000, 86_400_000] {
                let expected = try await sql.funnel(siteId: siteId, organizationId: organizationId, days: days, steps: steps, windowMillis: window)
                let got = try await clickHouse.funnel(siteId: siteId, organizationId: organizationId, days: days, steps: steps, windowMillis: window)
                #expect(got == expected, "funnel \(steps) within \(window) ms")
                #expect(expected.first ?? 0 > 0)
            }
        }
        let weeks = LocalTime.weekKey(dayKey: LocalTime.dayKey(days: (LocalTime.days(dayKey: days.lowerBound) ?? 0) - 60))...days.upperBound
        func cohorts(_ reader: any AnalyticsReader) async throws -> [String] {
            try await reader.cohorts(siteId: siteId, organizationId: organizationId, weeks: weeks)
                .filter { $0.newVisitors != 0 || $0.conversions != 0 }
                .map { "\($0.cohortWeek) \($0.weekIndex) \($0.newVisitors) \($0.conversions) \(String(format: "%.6f", $0.value))" }.sorted()
        }
        #expect(try await cohorts(clickHouse) == cohorts(sql))
        func conversions(_ reader: any AnalyticsReader) async throws -> [String] {
            try await reader.conversions(siteId: siteId, organizationId: organizationId, millis: millis).map {
                "\($0.atMillis) \($0.day) \($0.goal ?? "-") \($0.value.map { String($0) } ?? "-") \($0.notificationId?.lowercased ?? "-") "
                    + "\($0.variantId?.lowercased ?? "-") \($0.previousConversionAt.map { String($0) } ?? "-") "
                    + $0.touches.map { "\($0.notificationId.lowercased)/\($0.kind)/\($0.at)" }.joined(separator: ",")
            }.sorted()
        }
        #expect(try await conversions(clickHouse) == conversions(sql))
        // Attribution rollups kept by ingest say what crediting the raw conversions says.
        let kept = try #require(try await sql.keptAttribution(siteId: siteId, organizationId: organizationId, days: days))
        var recount = AttributionTally()
        for conversion in try await clickHouse.conversions(siteId: siteId, organizationId: organizationId, millis: millis) {
            recount.add(
                conversion, windowDays: AttributionTally.rollupWindowDays, halfLifeDays: AttributionTally.rollupHalfLifeDays,
                models: AttributionTally.models)
        }
        #expect(try await clickHouse.keptAttribution(siteId: siteId, organizationId: organizationId, days: days) == nil)
        #expect(kept.total > 10 && kept.attributed > 0 && kept.repeatWithinWindow > 0 && kept.unattributed > 0)
        #expect(Self.describe(kept) == Self.describe(recount))
        func experiments(_ reader: any AnalyticsReader) async throws -> [String] {
            try await reader.experiments(siteId: siteId, organizationId: organizationId, days: days)
                .filter { $0.exposures != 0 || $0.conversions != 0 }
                .map { "\($0.notificationId) \($0.variantId) \($0.exposures) \($0.conversions)" }.sorted()
        }
        #expect(try await experiments(clickHouse) == experiments(sql))
        #expect(try await clickHouse.bots(siteId: siteId, organizationId: organizationId, days: days) == 3)
    }

    /// An attribution tally as text, rounded as the report rounds it.
    static func describe(_ tally: AttributionTally) -> [String] {
        var lines = [
            "\(tally.total) \(tally.attributed) \(tally.unattributed) \(tally.repeatWithinWindow) \(String(format: "%.2f", tally.attributedValue))"
        ]
        for (model, notifications) in tally.credit {
            for (id, credit) in notifications {
                lines.append("\(model) \(id) \(String(format: "%.4f", credit.conversions)) \(String(format: "%.2f", credit.value))")
            }
        }
        return lines.sorted()
    }

    @Test("archiving keeps a day until every row of it was shipped", arguments: TestStore.available)
    func archiveWaitsForShipping(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let organizationId = UUID.v7()
            let siteId = UUID.v7()
            let day = Int(Date().timeIntervalSince1970 / 86_400) - 400
            let at = Int64(day) * 86_400_000 + 3_600_000
            let events = (0..<5).map { index in
                RawEvent(
                    siteId: siteId, atMillis: at + Int64(index), hour: at / 1000, day: LocalTime.dayKey(days: day),
                    visitorDay: LocalTime.dayKey(days: day),
                    type: "pageview", notificationId: nil, variantId: nil, activityId: nil, visitor: "v\(index)", session: nil, path: "/",
                    referrer: nil, utmSource: nil, utmMedium: nil, utmCampaign: nil, device: "desktop", country: nil, goal: nil, value: nil
                )
            }
            try await database.transaction(.organization(organizationId)) { tx in
                try await CatalogStore().upsertSite(siteId, organizationId, name: "Shop", timezone: "UTC", in: tx)
                try await IngestStore().insertRaw(events, organizationId: organizationId, in: tx)
            }
            let last = try await database.transaction(.organization(organizationId)) { tx in
                try await ShippingStore().lastSeq(
                    millis: Int64(day) * 86_400_000..<Int64(day + 1) * 86_400_000, organizationId: organizationId, in: tx)
            }
            let lastSeq = try #require(last)
            // A store that refuses every file: reaching it means the guard let the day through.
            var archive = EventArchive(database: database, store: NoArchiveStore(), logger: testLogger)
            archive.keepUnshipped = true
            let cutoff = LocalTime.dayKey(days: day + 10)
            try await database.transaction(.system) {
                try await ShippingStore().record([(ShippingStore.target(organizationId), lastSeq - 1)], at: Date(), in: $0)
            }
            #expect(try await archive.archive(organizationId: organizationId, before: cutoff, now: Date()) == 0)
            try await database.transaction(.system) {
                try await ShippingStore().record([(ShippingStore.target(organizationId), lastSeq)], at: Date(), in: $0)
            }
            await #expect(throws: (any Error).self) { try await archive.archive(organizationId: organizationId, before: cutoff, now: Date()) }
            archive.keepUnshipped = false
            try await database.transaction(.system) {
                try await ShippingStore().record([(ShippingStore.target(organizationId), 0)], at: Date(), in: $0)
            }
            await #expect(throws: (any Error).self) { try await archive.archive(organizationId: organizationId, before: cutoff, now: Date()) }
            let remaining = try await database.transaction(.organization(organizationId)) { tx in
                try await RawEventStore().count(siteId: siteId, millis: at...at + 10, in: tx)
            }
            #expect(remaining == 5)
        }
    }
}

/// Two organizations with a site each, a notification with two variants, and visitors doing a bit of everything
/// over two days, one of them a month earlier (another partition).
struct BeaconWorld: Sendable {
    struct Site: Sendable {
        var index: Int
        var siteId: UUID
        var organizationId: UUID
    }

    let organizations = [UUID.v7(), UUID.v7()]
    let siteIds = [UUID.v7(), UUID.v7()]
    let notifications = [UUID.v7(), UUID.v7()]
    let variants = [[UUID.v7(), UUID.v7()], [UUID.v7(), UUID.v7()]]
    let other = UUID.v7()
    let now = Int64(Date().timeIntervalSince1970 * 1000)

    var sites: [Site] { (0..<2).map { Site(index: $0, siteId: siteIds[$0], organizationId: organizations[$0]) } }
    var clock: SiteClock { SiteClock.named(ClickHouseIntegrationTests.tz) }
    /// The visits' base times: a month ago, yesterday and today.
    var bases: [Int64] { [now - 33 * 86_400_000, now - 86_400_000, now - 3_600_000] }
    var dayRange: ClosedRange<Int> { (bases.map { clock.dayKey(atMillis: $0) }.min() ?? 0)...(clock.dayKey(atMillis: now) + 1) }
    var millisRange: ClosedRange<Int64> { (now - 40 * 86_400_000)...(now + 86_400_000) }

    /// Funnels worth comparing: the site's, a notification's, a variant's, a goal's, and one in an unusual order.
    func funnels(site: Site) -> [[String]] {
        let n = notifications[site.index].lowercased
        let v = variants[site.index][1].lowercased
        return [["i", "h", "k", "c"], ["i:" + n, "h:" + n, "k:" + n, "c"], ["i:\(n):\(v)", "c"], ["seen", "g:purchase"], ["c", "i"]]
    }

    func register(in database: any Database) async throws {
        for site in sites {
            try await database.transaction(.organization(site.organizationId)) { tx in
                try await CatalogStore().upsertSite(site.siteId, site.organizationId, name: "Shop", timezone: ClickHouseIntegrationTests.tz, in: tx)
            }
        }
    }

    /// A deterministic mix: impressions with and without exposure flags, hovers, clicks, closes, conversions with
    /// goals, values, touches and earlier conversions, pageviews, first sightings in earlier weeks, and a bot.
    func batches(round: Int, site: Int) -> [BeaconBatch] {
        var seed = UInt64(round * 7919 + site * 104_729 + 17)
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        let n = notifications[site]
        var result: [BeaconBatch] = []
        for (baseIndex, base) in bases.enumerated() {
            var visits: [Visit] = []
            for visitor in 0..<40 {
                let start = base + Int64(next(3_000_000))
                let arm = variants[site][visitor % 2]
                var beacons = [RecordedBeacon(type: "pageview", path: "/p\(next(3))", at: start)]
                let firstSeen = next(3) == 0 ? start - Int64(next(30)) * 86_400_000 : start
                if next(4) != 0 {
                    beacons.append(
                        RecordedBeacon(
                            type: "impression", notificationId: n, variantId: arm, at: start + 1000,
                            exposure: next(3) == 0 ? nil : next(2) == 0, firstSeenAt: firstSeen))
                    if next(3) == 0 { beacons.append(RecordedBeacon(type: "impression", notificationId: other, at: start + 1500)) }
                    if next(2) == 0 { beacons.append(RecordedBeacon(type: "hover", notificationId: n, variantId: arm, at: start + 2000)) }
                    if next(3) == 0 {
                        beacons.append(RecordedBeacon(type: "click", notificationId: n, variantId: arm, at: start + 2500 + Int64(next(200_000))))
                    }
                    if next(5) == 0 { beacons.append(RecordedBeacon(type: "close", notificationId: n, variantId: arm, at: start + 4000)) }
                }
                if next(3) == 0 {
                    let touched = next(2) == 0
                    beacons.append(
                        RecordedBeacon(
                            type: "conversion", notificationId: touched ? n : nil, variantId: touched ? arm : nil,
                            goal: next(2) == 0 ? "purchase" : "signup", value: next(2) == 0 ? Double(next(10_000)) / 100 : nil,
                            at: start + 3000 + Int64(next(100_000)), firstConversion: next(3) == 0 ? nil : next(2) == 0, firstSeenAt: firstSeen,
                            previousConversionAt: next(4) == 0 ? start - Int64(next(10)) * 86_400_000 : nil,
                            touches: touched ? [Touch(notificationId: n, variantId: arm, kind: "impression", at: start + 1000)] : nil
                        ))
                }
                visits.append(
                    Visit(
                        visitor: "r\(round % 2)-b\(baseIndex)-v\(visitor % 30)", session: "s\(visitor)", day: clock.dayKey(atMillis: start),
                        device: "desktop", country: next(2) == 0 ? "DE" : nil, bot: false, referrer: next(2) == 0 ? "google.com" : nil,
                        utmSource: nil, utmMedium: nil, utmCampaign: nil, beacons: beacons
                    ))
            }
            if baseIndex == 2 && round == 0 {
                let beacons = (0..<3).map { RecordedBeacon(type: "impression", notificationId: n, at: base + Int64($0)) }
                visits.append(
                    Visit(
                        visitor: "bot", session: nil, day: clock.dayKey(atMillis: base), device: "desktop", country: nil, bot: true, referrer: nil,
                        utmSource: nil, utmMedium: nil, utmCampaign: nil, beacons: beacons))
            }
            // Several batches per base: steps are claimed across transactions too.
            for chunk in stride(from: 0, to: visits.count, by: 15) {
                result.append(
                    BeaconBatch(
                        siteId: siteIds[site], timezone: ClickHouseIntegrationTests.tz, receivedAt: base,
                        visits: Array(visits[chunk..<min(visits.count, chunk + 15)])))
            }
        }
        return result
    }

    /// Applies the beacons as the beacons consumer does, one transaction per batch.
    func ingest(round: Int, into database: any Database) async throws {
        for site in sites {
            for batch in batches(round: round, site: site.index) {
                try await database.transaction(.organization(site.organizationId)) { tx in
                    var work = IngestWork(organizationId: site.organizationId)
                    work.collect(batch)
                    try await IngestStore().apply(&work, steps: work.stepCandidates, in: tx)
                }
            }
        }
    }

    func rawCount(in database: any Database) async throws -> Int {
        var total = 0
        for site in sites {
            total += try await database.transaction(.organization(site.organizationId)) { tx in
                try await RawEventStore().count(siteId: site.siteId, millis: millisRange, in: tx)
            }
        }
        return total
    }
}
