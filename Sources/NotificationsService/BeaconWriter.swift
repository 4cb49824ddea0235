import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import Logging
import Metrics
import Synchronization

/// Writes beacons with group commit: while one batch is being made durable, the pages that send beacons meanwhile
/// queue up and share the next one, and each request is answered only after its batch is durable. An idle writer
/// writes at once (no timer adds latency); under load a batch grows with the write time, so throughput scales with
/// the batch instead of one write per request. Each batch is one `widget.beacons_recorded` event per site, holding
/// every visit of that site in the batch, published with ``EventBus/publishDurably(_:)``: appended to the outbox in
/// a transaction of its own on the database bus, added straight to its stream on Redis.
///
/// Past `maxPending` waiting visits the writer refuses more with 503 and `Retry-After` instead of queueing
/// without bound: an accepted beacon is never dropped, a refused one is the client's to resend.
///
/// Not an actor: the fast path hands a visit over from the event loop with a completion and no task of its own (a
/// task per beacon request was a visible share of its CPU); one task per batch does the writing.
final class BeaconWriter: Sendable {
    struct Pending {
        var route: SiteRoute
        var visit: Visit
        /// Called once with the batch's outcome, from the writing task.
        var complete: @Sendable (Result<Void, any Error>) -> Void
    }

    let bus: any EventBus
    let logger: Logger
    let maxBatch: Int
    let maxPending: Int
    /// The visits waiting for the next batch, and whether a task is writing batches.
    private let state = Mutex<(pending: [Pending], flushing: Bool)>(([], false))
    /// `herald_beacon_events_total` by outcome: accepted and bot (both durable; bots are kept out of the reports),
    /// refused (503 under overload) and failed (the store did not answer): the client resends those.
    private let accepted = Counter(label: "herald_beacon_events_total", dimensions: [("outcome", "accepted")])
    private let bots = Counter(label: "herald_beacon_events_total", dimensions: [("outcome", "bot")])
    private let refused = Counter(label: "herald_beacon_events_total", dimensions: [("outcome", "refused")])
    private let failed = Counter(label: "herald_beacon_events_total", dimensions: [("outcome", "failed")])

    init(bus: any EventBus, logger: Logger, maxBatch: Int = 2000, maxPending: Int = 20_000) {
        self.bus = bus
        self.logger = logger
        self.maxBatch = maxBatch
        self.maxPending = maxPending
    }

    /// Returns once the visit is durable.
    func write(_ visit: Visit, route: SiteRoute) async throws {
        try await withCheckedThrowingContinuation { continuation in
            write(visit, route: route) { continuation.resume(with: $0) }
        }
    }

    /// Queues the visit for the next batch; `complete` gets the outcome once the batch is durable (or refused).
    func write(_ visit: Visit, route: SiteRoute, complete: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let start: Bool? = state.withLock { state in
            guard state.pending.count < maxPending else { return nil }
            state.pending.append(Pending(route: route, visit: visit, complete: complete))
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
        switch start {
        case nil:
            refused.increment(by: visit.beacons.count)
            complete(.failure(HeraldError.overloaded))
        case true?:
            Task { await self.flush() }
        case false?:
            break
        }
    }

    /// The next batch, or nil (and no longer flushing) when nothing is waiting.
    private func nextBatch() -> [Pending]? {
        state.withLock { state in
            guard !state.pending.isEmpty else {
                state.flushing = false
                return nil
            }
            // Usually everything waiting fits one batch: take the array whole rather than copying and then
            // removing it.
            guard state.pending.count > maxBatch else {
                defer { state.pending = [] }
                return state.pending
            }
            let batch = Array(state.pending.prefix(maxBatch))
            state.pending.removeFirst(batch.count)
            return batch
        }
    }

    /// Writes batches until nothing is waiting; visits that arrive during a write join the next batch.
    private func flush() async {
        while let batch = nextBatch() {
            let now = Date().unixMilliseconds
            var bySite: [UUID: (route: SiteRoute, visits: [Visit])] = [:]
            for item in batch { bySite[item.route.siteId, default: (item.route, [])].visits.append(item.visit) }
            let events = bySite.values.map { site in
                let batch = BeaconBatch(
                    siteId: site.route.siteId, timezone: site.route.clock.timeZone.identifier, receivedAt: now, visits: site.visits)
                let envelope = EventEnvelope(
                    type: BeaconBatch.eventType, version: BeaconBatch.schemaVersion, organizationId: site.route.organizationId,
                    siteId: site.route.siteId, data: batch.encodedJSON()
                )
                return (envelope: envelope, batch: batch)
            }
            do {
                // This process's consumers take the batches from memory instead of decoding them again (remembered
                // first: a consumer may read the event as soon as it is published).
                for event in events { RecentBeaconBatches.shared.remember(event.batch, eventId: event.envelope.id) }
                try await bus.publishDurably(events.map(\.envelope))
                // Counted before the answers go out: a client that reads the metrics right after its 202 sees it.
                let (people, robots) = batch.reduce(into: (0, 0)) { counts, item in
                    if item.visit.bot { counts.1 += item.visit.beacons.count } else { counts.0 += item.visit.beacons.count }
                }
                accepted.increment(by: people)
                bots.increment(by: robots)
                for item in batch { item.complete(.success(())) }
            } catch {
                failed.increment(by: batch.reduce(0) { $0 + $1.visit.beacons.count })
                logger.error("could not store beacons", metadata: ["error": "\(error)", "visits": "\(batch.count)"])
                for item in batch { item.complete(.failure(HeraldError.storeUnavailable)) }
            }
        }
    }
}

extension HeraldError {
    /// Too much is waiting to be written: the client should send again shortly.
    static let overloaded = HeraldError(
        status: 503, slug: "overloaded", title: "Service unavailable",
        detail: "Herald is receiving more beacons than it can store right now; nothing of this request was kept. Send it again after Retry-After.",
        headers: [("Retry-After", "2")]
    )

    /// The store refused the write: nothing was kept.
    static let storeUnavailable = HeraldError(
        status: 503, slug: "store-unavailable", title: "Service unavailable",
        detail: "Herald could not store these beacons; nothing of this request was kept. Send it again after Retry-After.",
        headers: [("Retry-After", "5")]
    )
}
