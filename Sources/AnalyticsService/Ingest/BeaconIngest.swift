import Crypto
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage
import Synchronization

/// Applies beacon events to the analytics tables, many events per transaction.
///
/// Every decision that depends on what a visitor did before (is this a new unique visitor today, the
/// visitor's A/B exposure, a new member of a cohort) is made here once, from `visitor_steps`, and written into
/// the raw row as well, so the rollups and a recount from raw events (ClickHouse) always agree.
struct BeaconIngest: BatchEventConsumer {
    let group = "analytics.beacons"
    let eventTypes: Set<String> = [BeaconBatch.eventType]
    let maxBatch = 200
    /// Beacon commits come every few milliseconds under load; applying a tenth of a second of them at once costs
    /// the store one transaction instead of dozens.
    let linger = Duration.milliseconds(100)
    /// Preparing decodes and collects, and makes sure a day's partition exists: nothing a batch before it could undo.
    let preparesAhead = true
    let store = IngestStore()
    /// Visitor steps this process knows the store holds, so most of a busy site's steps need no write.
    let steps: StepCache
    /// PostgreSQL's daily partitions this process knows exist.
    let partitions: PartitionGuard
    let database: any Database

    /// A batch decoded and collected per organization before its transaction.
    final class Prepared: Sendable {
        let events: Set<UUID>
        let work: [UUID: IngestWork]
        /// The steps the transaction wrote or found, remembered once it commits.
        let seen = Mutex<[StepKey: Int64]>([:])

        init(events: Set<UUID>, work: [UUID: IngestWork]) {
            self.events = events
            self.work = work
        }
    }

    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable {
        var work: [UUID: IngestWork] = [:]
        for event in events {
            guard let organizationId = event.organizationId else { continue }
            work[organizationId, default: IngestWork(organizationId: organizationId)].collect(try Self.decode(event))
        }
        await partitions.ensure(utcDays: work.values.reduce(into: Set<Int>()) { $0.formUnion($1.utcDays) }, database: database)
        return Prepared(events: Set(events.map(\.id)), work: work)
    }

    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {
        try await handle(batch: events, prepared: (), in: tx)
    }

    func handle(batch events: [EventEnvelope], prepared: any Sendable, in tx: any SQLExecutor) async throws {
        let prepared = prepared as? Prepared
        var byOrganization: [UUID: IngestWork]
        if let prepared, prepared.events == Set(events.map(\.id)) {
            byOrganization = prepared.work
        } else {
            // Some of the batch was applied before (a redelivery): collect only what is new.
            byOrganization = [:]
            for event in events {
                guard let organizationId = event.organizationId else { continue }
                byOrganization[organizationId, default: IngestWork(organizationId: organizationId)].collect(try Self.decode(event))
            }
        }
        for (organizationId, var work) in byOrganization {
            try await tx.setTenant(.organization(organizationId))
            let unknown = steps.unknown(work.stepCandidates)
            try await store.apply(&work, steps: unknown, in: tx)
            prepared?.seen.withLock { seen in seen.merge(work.stepCandidates) { min($0, $1) } }
        }
    }

    func didCommit(batch events: [EventEnvelope], prepared: any Sendable) async {
        guard let prepared = prepared as? Prepared else { return }
        steps.remember(prepared.seen.withLock { $0 })
    }

    /// Reads both versions of `widget.beacons_recorded`. Version 1 carried the visitor id in clear: it is
    /// hashed here (by day) so it is never stored.
    static func decode(_ event: EventEnvelope) throws -> BeaconBatch {
        if let batch = RecentBeaconBatches.shared.batch(eventId: event.id) { return batch }
        if event.version == BeaconsRecordedV1.schemaVersion {
            let old = try event.decode(BeaconsRecordedV1.self)
            let clock = SiteClock.named("UTC")
            let received = old.receivedAt.unixMilliseconds
            let day = clock.dayKey(atMillis: received)
            let digest = SHA256.hash(data: Data("\(day):\(old.siteId.lowercased):\(old.visitorId)".utf8))
            let visitor = digest.prefix(16).hexString
            let beacons = old.beacons.map {
                RecordedBeacon(
                    type: $0.type, notificationId: $0.notificationId, variantId: $0.variantId, activityId: $0.activityId, goal: $0.goal,
                    path: $0.path, at: $0.occurredAt.unixMilliseconds
                )
            }
            let visit = Visit(
                visitor: visitor, session: nil, day: day, device: "desktop", country: nil, bot: false, referrer: nil, utmSource: nil,
                utmMedium: nil, utmCampaign: nil, beacons: beacons
            )
            return BeaconBatch(siteId: old.siteId, timezone: "UTC", receivedAt: received, visits: [visit])
        }
        guard event.version == BeaconBatch.schemaVersion else { return try event.decode(BeaconBatch.self) }
        return try BeaconBatch(json: event.data)
    }
}

/// Makes sure PostgreSQL has the daily partition of every day a batch writes raw events for, before writing them:
/// a row that lands in the default partition keeps that day's partition from ever being created (and retention
/// drops partitions). Maintenance creates them a week ahead; this covers the first minutes of a new database and
/// beacons of unusual days. A failure (TimescaleDB, rows of the day already in the default partition) is not retried.
final class PartitionGuard: Sendable {
    private let known = Mutex<Set<Int>>([])

    func ensure(utcDays days: Set<Int>, database: any Database) async {
        guard database.dialect == .postgres else { return }
        let missing = known.withLock { known in days.subtracting(known) }
        guard !missing.isEmpty else { return }
        let store = RetentionStore()
        // Only those not in the catalog: creating a partition locks the whole table, even when it exists.
        let existing = Set((try? await database.transaction(.system) { try await store.partitions(in: $0) }) ?? [])
        for day in missing.sorted() where !existing.contains("events_p\(LocalTime.dayKey(days: day))") {
            _ = try? await database.transaction(.system) { try await store.createPartition(day: LocalTime.dayKey(days: day), in: $0) }
        }
        known.withLock { $0.formUnion(missing) }
    }
}

/// Stands for "none" in key columns: a conversion not attributed to a notification, a notification without variants.
let noneId = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

/// The visitor steps known to exist in the store, each with a time no earlier than its stored `first_at`. A
/// candidate at or after that time changes nothing and is not written. Entries are added only after the
/// transaction that wrote or found them committed, and a stored step's `first_at` only ever moves earlier, so an
/// entry stays true; retention deletes steps only of days far older than the beacons still arriving. Another
/// instance that takes over the consumer starts with an empty cache and asks the store.
final class StepCache: Sendable {
    private let known = Mutex<[StepKey: Int64]>([:])
    let limit: Int

    init(limit: Int = 300_000) {
        self.limit = limit
    }

    /// The candidates that may change the store: unknown steps, or known ones at an earlier time.
    func unknown(_ candidates: [StepKey: Int64]) -> [StepKey: Int64] {
        known.withLock { known in candidates.filter { key, at in known[key].map { at < $0 } ?? true } }
    }

    func remember(_ steps: [StepKey: Int64]) {
        known.withLock { known in
            if known.count + steps.count > limit {
                // Keep today's and yesterday's steps when the cache is full; drop the rest, then everything if needed.
                let newest = steps.keys.map(\.day).max() ?? 0
                let floor = LocalTime.dayKey(days: (LocalTime.days(dayKey: newest) ?? 0) - 1)
                known = known.filter { $0.key.day >= floor }
                if known.count + steps.count > limit { known.removeAll(keepingCapacity: true) }
            }
            known.merge(steps) { min($0, $1) }
        }
    }
}

/// Names like `i:<notification>` and `i:<notification>:<variant>` (lowercase ids), each made once: building them for
/// every beacon (two UUIDs formatted, a string joined) was a visible share of the consumer's CPU.
struct StepLabels {
    private struct Key: Hashable {
        var prefix: String
        var notification: UUID
        var variant: UUID?
    }

    private var names: [Key: String] = [:]

    /// `prefix` + the notification's id, then `:` + the variant's when given.
    mutating func name(_ prefix: String, _ notification: UUID, _ variant: UUID? = nil) -> String {
        let key = Key(prefix: prefix, notification: notification, variant: variant)
        if let name = names[key] { return name }
        let name = prefix + notification.lowercased + (variant.map { ":" + $0.lowercased } ?? "")
        names[key] = name
        return name
    }
}

/// A visitor's step on a day, the unit of uniqueness.
struct StepKey: Hashable, Sendable {
    var siteId: UUID
    var day: Int
    var visitor: String
    var step: String
}

/// A site's local day.
struct SiteDay: Hashable, Sendable {
    var siteId: UUID
    var day: Int
}

struct RollupKey: Hashable, Sendable {
    var siteId: UUID
    var bucket: Int64
    var notificationId: UUID
    var variantId: UUID
}

/// The counters of one rollup row.
struct Counters: Sendable, Equatable {
    var pageviews = 0
    var impressions = 0
    var hovers = 0
    var clicks = 0
    var closes = 0
    var conversions = 0
    var conversionValue = 0.0

    mutating func count(_ type: String, value: Double?) {
        switch type {
        case "pageview": pageviews += 1
        case "impression": impressions += 1
        case "hover": hovers += 1
        case "click": clicks += 1
        case "close": closes += 1
        case "conversion":
            conversions += 1
            conversionValue += value ?? 0
        default: break
        }
    }

    mutating func add(_ other: Counters) {
        pageviews += other.pageviews
        impressions += other.impressions
        hovers += other.hovers
        clicks += other.clicks
        closes += other.closes
        conversions += other.conversions
        conversionValue += other.conversionValue
    }
}

struct ConversionRow: Sendable {
    var id: UUID
    var siteId: UUID
    var atMillis: Int64
    var day: Int
    var goal: String?
    var value: Double?
    var notificationId: UUID?
    var variantId: UUID?
    var previousConversionAt: Int64?
    var touches: String?
}

struct CohortKey: Hashable, Sendable {
    var siteId: UUID
    var cohortWeek: Int
    var weekIndex: Int
}

struct CohortCounts: Sendable {
    var newVisitors = 0
    var conversions = 0
    var value = 0.0
}

struct ExperimentKey: Hashable, Sendable {
    var siteId: UUID
    var day: Int
    var notificationId: UUID
    var variantId: UUID
}

/// What one organization's share of a batch adds to every table, computed in memory before one write each.
struct IngestWork {
    let organizationId: UUID
    /// Beacons in time order, with where they came from.
    var pending: [(siteId: UUID, clock: SiteClock, visit: Visit, beacon: RecordedBeacon)] = []
    var stepCandidates: [StepKey: Int64] = [:]
    /// Step and scope names of the batch's notifications and variants, made once per batch, not per beacon.
    var labels = StepLabels()
    /// The UTC days (since 1970) the beacons fall on: PostgreSQL's raw-event partitions they need.
    var utcDays = Set<Int>()

    var raw: [RawEvent] = []
    var conversions: [ConversionRow] = []
    var minutes: [RollupKey: Counters] = [:]
    var hours: [RollupKey: Counters] = [:]
    var days: [RollupKey: Counters] = [:]
    var uniques: [StepScope: Int] = [:]
    var experiments: [ExperimentKey: (exposures: Int, conversions: Int)] = [:]
    var cohorts: [CohortKey: CohortCounts] = [:]
    var bots: [SiteDay: Int] = [:]
    /// Visitor-step rows written or moved per site and day.
    var stepChanges: [SiteDay: Int] = [:]
    /// Attribution of the batch's conversions for the default window and half-life, per conversion day.
    var attribution: [SiteDay: AttributionTally] = [:]

    struct StepScope: Hashable {
        var siteId: UUID
        var day: Int
        var scope: String
    }

    init(organizationId: UUID) {
        self.organizationId = organizationId
    }

    /// The steps a beacon takes a visitor through, for uniqueness and funnels.
    mutating func steps(of beacon: RecordedBeacon, visit: Visit, clock: SiteClock) -> [String] {
        var steps = ["seen"]
        let n = beacon.notificationId
        switch beacon.type {
        case "pageview":
            steps.append("p")
        case "impression":
            steps.append("i")
            if let n {
                steps.append(labels.name("i:", n))
                if let v = beacon.variantId { steps.append(labels.name("i:", n, v)) }
            }
            if let first = beacon.firstSeenAt, clock.dayKey(atMillis: first) == visit.day { steps.append("cohort") }
        case "hover":
            steps.append("h")
            if let n { steps.append(labels.name("h:", n)) }
        case "click":
            steps.append("k")
            if let n { steps.append(labels.name("k:", n)) }
        case "conversion":
            steps.append("c")
            if let n {
                steps.append(labels.name("c:", n))
                if let v = beacon.variantId, beacon.firstConversion == nil { steps.append(labels.name("cv:", n, v)) }
            }
            if let goal = beacon.goal { steps.append("g:" + goal) }
        default:
            break
        }
        return steps
    }

    mutating func collect(_ batch: BeaconBatch) {
        let clock = SiteClock.named(batch.timezone)
        for visit in batch.visits {
            for beacon in visit.beacons { utcDays.insert(Int(beacon.at / 86_400_000)) }
            if visit.bot {
                for beacon in visit.beacons { bots[SiteDay(siteId: batch.siteId, day: clock.dayKey(atMillis: beacon.at)), default: 0] += 1 }
                continue
            }
            for beacon in visit.beacons {
                pending.append((batch.siteId, clock, visit, beacon))
                for step in steps(of: beacon, visit: visit, clock: clock) {
                    let key = StepKey(siteId: batch.siteId, day: visit.day, visitor: visit.visitor, step: step)
                    if let existing = stepCandidates[key], existing <= beacon.at { continue }
                    stepCandidates[key] = beacon.at
                }
            }
        }
    }

    /// Makes every per-visitor decision from the steps that are new today (`fresh`: first written by this batch).
    /// The earliest beacon of a step claims it, so each is counted once however the batch is ordered.
    mutating func decide(freshSteps fresh: Set<StepKey>) {
        var unclaimed = fresh
        func claim(_ siteId: UUID, _ visit: Visit, _ step: String) -> Bool {
            unclaimed.remove(StepKey(siteId: siteId, day: visit.day, visitor: visit.visitor, step: step)) != nil
        }
        pending.sort { $0.beacon.at < $1.beacon.at }
        for (siteId, clock, visit, beacon) in pending {
            let n = beacon.notificationId
            let day = clock.dayKey(atMillis: beacon.at)
            var row = RawEvent(
                siteId: siteId, atMillis: beacon.at, hour: clock.hourStart(atMillis: beacon.at), day: day, visitorDay: visit.day,
                type: beacon.type, notificationId: beacon.notificationId, variantId: beacon.variantId, activityId: beacon.activityId,
                visitor: visit.visitor, session: visit.session, path: beacon.path, referrer: visit.referrer, utmSource: visit.utmSource,
                utmMedium: visit.utmMedium, utmCampaign: visit.utmCampaign, device: visit.device, country: visit.country, goal: beacon.goal,
                value: beacon.value
            )
            // Unique visitors per day: the site, the notification seen, the variant seen.
            if claim(siteId, visit, "seen") { uniques[StepScope(siteId: siteId, day: visit.day, scope: ""), default: 0] += 1 }
            if beacon.type == "impression", let n {
                if claim(siteId, visit, labels.name("i:", n)) {
                    uniques[StepScope(siteId: siteId, day: visit.day, scope: labels.name("n:", n)), default: 0] += 1
                }
                if let v = beacon.variantId {
                    let freshToday = claim(siteId, visit, labels.name("i:", n, v))
                    if freshToday { uniques[StepScope(siteId: siteId, day: visit.day, scope: labels.name("v:", n, v)), default: 0] += 1 }
                    // The widget knows the visitor's first exposure across days; without it, one per visitor and day.
                    row.exposure = beacon.exposure ?? freshToday
                }
                if let first = beacon.firstSeenAt, clock.dayKey(atMillis: first) == visit.day, claim(siteId, visit, "cohort") {
                    row.newVisitor = true
                    row.cohortWeek = LocalTime.weekKey(dayKey: visit.day)
                    row.cohortIndex = 0
                }
            }
            if beacon.type == "conversion" {
                if let n, let v = beacon.variantId {
                    row.abConversion = beacon.firstConversion ?? claim(siteId, visit, labels.name("cv:", n, v))
                }
                if let first = beacon.firstSeenAt {
                    let cohortWeek = LocalTime.weekKey(dayKey: clock.dayKey(atMillis: first))
                    let thisWeek = LocalTime.weekKey(dayKey: day)
                    row.cohortWeek = cohortWeek
                    row.cohortIndex = ((LocalTime.days(dayKey: thisWeek) ?? 0) - (LocalTime.days(dayKey: cohortWeek) ?? 0)) / 7
                }
                row.previousConversionAt = beacon.previousConversionAt
                row.touches = beacon.touches.map(Self.touchesJSON)
                attribution[SiteDay(siteId: siteId, day: day), default: AttributionTally()].add(
                    ConversionFact(
                        atMillis: beacon.at, day: day, goal: beacon.goal, value: beacon.value, notificationId: beacon.notificationId,
                        variantId: beacon.variantId, previousConversionAt: beacon.previousConversionAt, touches: beacon.touches ?? []
                    ),
                    windowDays: AttributionTally.rollupWindowDays, halfLifeDays: AttributionTally.rollupHalfLifeDays,
                    models: AttributionTally.models
                )
                conversions.append(
                    ConversionRow(
                        id: UUID.v7(at: Date(timeIntervalSince1970: Double(beacon.at) / 1000)), siteId: siteId, atMillis: beacon.at, day: day,
                        goal: beacon.goal, value: beacon.value, notificationId: beacon.notificationId, variantId: beacon.variantId,
                        previousConversionAt: beacon.previousConversionAt, touches: row.touches
                    )
                )
            }
            apply(row)
            raw.append(row)
        }
    }

    /// Adds a decided raw event to the rollups, cohorts and experiments.
    mutating func apply(_ row: RawEvent) {
        let notification = row.notificationId ?? noneId
        let variant = row.variantId ?? noneId
        minutes[
            RollupKey(siteId: row.siteId, bucket: row.atMillis / 60_000 * 60, notificationId: notification, variantId: variant), default: Counters()
        ]
        .count(row.type, value: row.value)
        hours[RollupKey(siteId: row.siteId, bucket: row.hour, notificationId: notification, variantId: variant), default: Counters()]
            .count(row.type, value: row.value)
        days[RollupKey(siteId: row.siteId, bucket: Int64(row.day), notificationId: notification, variantId: variant), default: Counters()]
            .count(row.type, value: row.value)
        if let variantId = row.variantId, let notificationId = row.notificationId, row.exposure || row.abConversion {
            let key = ExperimentKey(siteId: row.siteId, day: row.day, notificationId: notificationId, variantId: variantId)
            var counts = experiments[key] ?? (0, 0)
            if row.exposure { counts.exposures += 1 }
            if row.abConversion { counts.conversions += 1 }
            experiments[key] = counts
        }
        if let week = row.cohortWeek, let index = row.cohortIndex {
            let key = CohortKey(siteId: row.siteId, cohortWeek: week, weekIndex: index)
            if row.newVisitor { cohorts[key, default: CohortCounts()].newVisitors += 1 }
            if row.type == "conversion" {
                cohorts[key, default: CohortCounts()].conversions += 1
                cohorts[key, default: CohortCounts()].value += row.value ?? 0
            }
        }
    }

    static func touchesJSON(_ touches: [Touch]) -> String {
        var json = JSONWriter(capacity: 64 + touches.count * 120)
        json.beginArray()
        for touch in touches {
            json.beginObject()
            json.field("notificationId", touch.notificationId)
            json.field("variantId", touch.variantId)
            json.field("kind", touch.kind)
            json.field("at", touch.at)
            json.endObject()
        }
        json.endArray()
        return json.text
    }
}
