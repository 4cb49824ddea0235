import Foundation
import HeraldCore
import HeraldStorage
import Logging
import ServiceLifecycle
import Synchronization

/// Delivers events to consumer groups. Services write events with ``Outbox`` and register consumers;
/// which implementation carries them (the database itself, or Redis Streams later) is a deployment choice.
public protocol EventBus: Sendable {
    /// Tells the bus that a transaction holding new outbox events has committed, so local consumers wake at once.
    func didCommitEvents()
    /// The same, naming the event types committed, so that only the consumers of those types wake.
    func didCommitEvents(ofTypes types: Set<String>)
    /// Publishes events that go with no other change to the store (beacon batches), the way that makes them durable
    /// soonest, and returns once they are. The database bus appends them to the outbox in a transaction of their
    /// own; a bus with a durable log of its own may write them there directly.
    func publishDurably(_ events: [EventEnvelope]) async throws
    /// A long-running service that delivers events to `consumer` until shutdown.
    func consumerService(for consumer: any EventConsumer) -> any Service
    /// Deliveries that exhausted their retries, newest first.
    func deadLetters(group: String?) async throws -> [DeadLetter]
    /// Moves a dead letter back to the retry queue so it is delivered again soon.
    func requeue(group: String, eventId: UUID) async throws -> Bool
    /// How far behind each consumer group of this process is: events published but not yet delivered.
    func lag() async throws -> [ConsumerLag]
    /// Housekeeping the bus needs while it runs (pruning delivered events), if any.
    func maintenanceServices() -> [any Service]
}

extension EventBus {
    public func didCommitEvents(ofTypes types: Set<String>) { didCommitEvents() }
}

/// A consumer group's backlog.
public struct ConsumerLag: Sendable, Codable, Equatable {
    public var group: String
    /// Events of the group's types published after its position.
    public var pending: Int
    /// Deliveries waiting for a retry, and dead letters.
    public var retrying: Int
    public var dead: Int
    /// When the oldest undelivered event was published.
    public var oldestPendingAt: Date?

    public init(group: String, pending: Int, retrying: Int, dead: Int, oldestPendingAt: Date?) {
        self.group = group
        self.pending = pending
        self.retrying = retrying
        self.dead = dead
        self.oldestPendingAt = oldestPendingAt
    }
}

/// How long the database bus keeps what it has delivered.
public struct BusRetention: Sendable {
    /// Events every group has passed are deleted once older than this (dead letters' events are kept).
    public var events: TimeInterval
    /// Processed markers (the duplicate guard) are kept this long; a redelivery after it would be applied again.
    public var processedMarkers: TimeInterval
    /// How often to prune.
    public var interval: Duration

    public init(events: TimeInterval = 3 * 86_400, processedMarkers: TimeInterval = 7 * 86_400, interval: Duration = .seconds(60)) {
        self.events = events
        self.processedMarkers = processedMarkers
        self.interval = interval
    }
}

/// A delivery that failed `RetryPolicy.maxAttempts` times.
public struct DeadLetter: Sendable, Codable {
    public var group: String
    public var event: EventEnvelope
    public var attempts: Int
    public var lastError: String
    public var failedAt: Date

    public init(group: String, event: EventEnvelope, attempts: Int, lastError: String, failedAt: Date) {
        self.group = group
        self.event = event
        self.attempts = attempts
        self.lastError = lastError
        self.failedAt = failedAt
    }
}

/// Wakes waiting tasks (consumers, dispatchers) when there is new work; a signal with nobody waiting is kept
/// for the next wait, and a missed one only costs one poll interval. Waiting ends on cancellation too.
public final class WakeSignal: Sendable {
    private struct State {
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
        var pending = false
    }
    private let state = Mutex(State())

    public init() {}

    public func signalAll() {
        let continuations = state.withLock { state in
            let all = Array(state.waiters.values)
            state.waiters.removeAll()
            if all.isEmpty { state.pending = true }
            return all
        }
        for continuation in continuations { continuation.resume() }
    }

    /// Returns when signalled, after `timeout`, or when the task is cancelled, whichever comes first.
    public func wait(timeout: Duration) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let cancelled = Task.isCancelled
                    let resumeNow = self.state.withLock { state -> Bool in
                        if cancelled { return true }
                        if state.pending {
                            state.pending = false
                            return true
                        }
                        state.waiters[id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.resume(id)
            }
            await group.next()
            self.resume(id)
            group.cancelAll()
        }
    }

    private func resume(_ id: UUID) {
        let continuation = state.withLock { $0.waiters.removeValue(forKey: id) }
        continuation?.resume()
    }
}

/// The embedded event bus: the outbox table is the durable log, and each consumer group keeps its position,
/// retries and dead letters in the same database. Events survive restarts because they are rows.
///
/// On PostgreSQL, concurrent transactions can commit out of sequence order; the log therefore records each
/// event's transaction id and a consumer only reads events of transactions older than every running one.
public final class DatabaseEventBus: EventBus {
    public let database: any Database
    let logger: Logger
    let retryPolicy: RetryPolicy
    let pollInterval: Duration
    let batchSize: Int
    let instanceId = UUID().lowercased
    let retention: BusRetention
    /// The groups this process consumes: their event types (for lag and wake-ups) and the signal their runner waits on.
    let groups = Mutex<[String: (types: Set<String>, signal: WakeSignal)]>([:])
    /// Consumers start delivering once this opens (after migrations have run).
    public let started: ReadyGate

    public init(
        database: any Database,
        logger: Logger,
        retryPolicy: RetryPolicy = RetryPolicy(),
        pollInterval: Duration = .milliseconds(500),
        batchSize: Int = 100,
        retention: BusRetention = BusRetention(),
        started: ReadyGate = ReadyGate(open: true)
    ) {
        self.started = started
        self.retention = retention
        self.database = database
        self.logger = logger
        self.retryPolicy = retryPolicy
        self.pollInterval = pollInterval
        self.batchSize = batchSize
    }

    public func didCommitEvents() {
        for signal in groups.withLock({ $0.values.map(\.signal) }) { signal.signalAll() }
    }

    /// Wakes only the groups that consume one of `types`: a burst of beacon commits must not send every other
    /// consumer round its read transaction.
    public func didCommitEvents(ofTypes types: Set<String>) {
        let signals = groups.withLock { groups in
            groups.values.filter { $0.types.contains(EventTypes.all) || !$0.types.isDisjoint(with: types) }.map(\.signal)
        }
        for signal in signals { signal.signalAll() }
    }

    /// Appends the events to the outbox in a transaction of their own and wakes their groups.
    public func publishDurably(_ events: [EventEnvelope]) async throws {
        guard !events.isEmpty else { return }
        try await database.transaction(.system) { tx in
            for event in events { try await Outbox.append(event, in: tx) }
        }
        didCommitEvents(ofTypes: Set(events.map(\.type)))
    }

    public func consumerService(for consumer: any EventConsumer) -> any Service {
        let signal = WakeSignal()
        groups.withLock { $0[consumer.group] = (consumer.eventTypes, signal) }
        return ConsumerRunner(bus: self, consumer: consumer, signal: signal)
    }

    public func lag() async throws -> [ConsumerLag] {
        let registered = groups.withLock { $0.mapValues(\.types) }
        // One transaction for every group: a scrape must not queue a dozen times for the store's connection.
        return try await database.read(.system) { tx in
            var result: [ConsumerLag] = []
            for (group, types) in registered.sorted(by: { $0.key < $1.key }) {
                let typeFilter: SQL =
                    types.contains(EventTypes.all) ? "" : "AND e.type IN (\(SQL.joined(types.sorted().map { "\($0)" }, separator: ", ")))"
                let row = try await tx.queryFirst(
                    """
                    SELECT
                      (SELECT COUNT(*) FROM \(Tables.events) e WHERE TRUE \(typeFilter)
                         AND (e.tx_id, e.seq) > (COALESCE(s.position_tx, 0), COALESCE(s.position_seq, 0))) AS pending,
                      (SELECT MIN(e.occurred_at) FROM \(Tables.events) e WHERE TRUE \(typeFilter)
                         AND (e.tx_id, e.seq) > (COALESCE(s.position_tx, 0), COALESCE(s.position_seq, 0))) AS oldest,
                      (SELECT COUNT(*) FROM \(Tables.retries) r WHERE r.group_name = \(group) AND r.dead = \(false)) AS retrying,
                      (SELECT COUNT(*) FROM \(Tables.retries) r WHERE r.group_name = \(group) AND r.dead = \(true)) AS dead
                    FROM (SELECT \(group) AS g) AS q LEFT JOIN \(Tables.subscriptions) s ON s.group_name = q.g
                    """
                )
                result.append(
                    ConsumerLag(
                        group: group, pending: try row?.get("pending") ?? 0, retrying: try row?.get("retrying") ?? 0,
                        dead: try row?.get("dead") ?? 0, oldestPendingAt: try row?.get("oldest")
                    )
                )
            }
            return result
        }
    }

    public func maintenanceServices() -> [any Service] {
        [BusPruner(bus: self)]
    }

    /// Deletes delivered events older than the retention that every group has passed and no retry needs, and
    /// processed markers past theirs, in bounded chunks. Returns how many events and markers it deleted.
    @discardableResult
    public func prune(now: Date = Date()) async throws -> (events: Int, markers: Int) {
        let eventCutoff = now.addingTimeInterval(-retention.events)
        let markerCutoff = now.addingTimeInterval(-retention.processedMarkers)
        var events = 0
        var markers = 0
        while true {
            let deleted = try await database.transaction(.system) { tx in
                try await tx.query(
                    """
                    DELETE FROM \(Tables.events) WHERE seq IN (
                        SELECT e.seq FROM \(Tables.events) e
                        WHERE e.occurred_at < \(eventCutoff)
                          AND (e.tx_id, e.seq) < (SELECT position_tx, position_seq FROM \(Tables.subscriptions)
                                                  ORDER BY position_tx, position_seq LIMIT 1)
                          AND NOT EXISTS (SELECT 1 FROM \(Tables.retries) r WHERE r.event_seq = e.seq)
                        LIMIT 5000)
                    RETURNING seq
                    """
                ).count
            }
            events += deleted
            if deleted < 5000 { break }
        }
        while true {
            let deleted = try await database.transaction(.system) { tx in
                try await tx.query(
                    """
                    DELETE FROM \(Tables.processed) WHERE (group_name, event_id) IN (
                        SELECT group_name, event_id FROM \(Tables.processed) WHERE processed_at < \(markerCutoff) LIMIT 5000)
                    RETURNING event_id
                    """
                ).count
            }
            markers += deleted
            if deleted < 5000 { break }
        }
        return (events, markers)
    }

    public func deadLetters(group: String?) async throws -> [DeadLetter] {
        let filter: SQL = group.map { "AND r.group_name = \($0)" } ?? ""
        let rows = try await database.query(
            """
            SELECT r.group_name, r.attempts, r.last_error, r.updated_at, e.*
            FROM \(Tables.retries) r JOIN \(Tables.events) e ON e.seq = r.event_seq
            WHERE r.dead = \(true) \(filter)
            ORDER BY r.updated_at DESC LIMIT 500
            """
        )
        return try rows.map { row in
            DeadLetter(
                group: try row.get("group_name"),
                event: try Self.envelope(from: row),
                attempts: try row.get("attempts"),
                lastError: try row.get("last_error"),
                failedAt: try row.get("updated_at")
            )
        }
    }

    public func requeue(group: String, eventId: UUID) async throws -> Bool {
        let rows = try await database.query(
            """
            UPDATE \(Tables.retries) SET dead = \(false), attempts = 0, next_attempt_at = \(Date()), updated_at = \(Date())
            WHERE group_name = \(group) AND dead = \(true)
              AND event_seq = (SELECT seq FROM \(Tables.events) WHERE id = \(eventId))
            RETURNING event_seq
            """
        )
        if !rows.isEmpty { groups.withLock { $0[group]?.signal }?.signalAll() }
        return !rows.isEmpty
    }

    enum Tables {
        static let events = Table("bus", "events")
        static let subscriptions = Table("bus", "subscriptions")
        static let retries = Table("bus", "retries")
        static let processed = Table("bus", "processed")
    }

    static func envelope(from row: SQLRow) throws -> EventEnvelope {
        EventEnvelope(
            id: try row.get("id"),
            type: try row.get("type"),
            version: try row.get("version"),
            occurredAt: try row.get("occurred_at"),
            organizationId: try row.get("organization_id"),
            siteId: try row.get("site_id"),
            data: try row.get("data"),
            traceContext: try row.get("trace_context")
        )
    }
}

/// Runs one consumer group: reads new events in commit order, applies each once, retries failures with backoff.
///
/// Each round costs the store as little as it can, because every beacon commit starts one: the group is registered
/// once, its lease is renewed only when half of it has run out (while it holds the lease, nobody else moves its
/// position, so the position is kept in memory), and due retries are looked for at most once per poll interval.
struct ConsumerRunner: Service {
    let bus: DatabaseEventBus
    let consumer: any EventConsumer
    /// Signalled when events of the group's types commit in this process.
    let signal: WakeSignal
    var database: any Database { bus.database }
    typealias Tables = DatabaseEventBus.Tables

    /// The group's lease as this runner holds it: valid until `until` (by this process's clock), at `position`.
    struct Lease {
        var until: Date
        var position: (tx: Int64, seq: Int64)
    }

    func run() async throws {
        var consumerLogger = bus.logger
        consumerLogger[metadataKey: "consumer"] = "\(consumer.group)"
        let logger = consumerLogger
        await cancelWhenGracefulShutdown {
            while !bus.started.isOpen && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
            var failures = 0
            var registered = false
            var lease: Lease?
            var retriesLookedAt: ContinuousClock.Instant?
            while !Task.isCancelled {
                do {
                    if !registered {
                        try await register()
                        registered = true
                    }
                    let delivered = try await deliverNewEvents(lease: &lease, logger: logger)
                    let progressed = delivered > 0
                    var retried = false
                    if retriesLookedAt.map({ ContinuousClock.now - $0 >= bus.pollInterval }) ?? true {
                        retried = try await deliverDueRetries(logger: logger)
                        // A full page of retries may have more behind it: look again next round.
                        retriesLookedAt = retried ? nil : ContinuousClock.now
                    }
                    failures = 0
                    if !progressed && !retried {
                        await signal.wait(timeout: bus.pollInterval)
                    } else if let batchConsumer = consumer as? any BatchEventConsumer, batchConsumer.linger > .zero,
                        delivered < batchConsumer.maxBatch
                    {
                        try? await Task.sleep(for: batchConsumer.linger)
                    }
                } catch {
                    // The store is unreachable or the lease was lost: wait and try again, never stop the process.
                    registered = false
                    lease = nil
                    failures += 1
                    logger.warning("event consumer paused", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(min(250 * (1 << min(failures, 6)), 15_000)))
                }
            }
        }
    }

    private func register() async throws {
        try await database.transaction(.system) { tx in
            try await tx.execute(
                "INSERT INTO \(Tables.subscriptions) (group_name) VALUES (\(consumer.group)) ON CONFLICT (group_name) DO NOTHING"
            )
        }
    }

    /// How long a lease lasts, and how much of it must remain for the runner to go on without renewing it.
    static let leaseDuration: TimeInterval = 30
    static let leaseRenewalMargin: TimeInterval = 15

    /// Takes (or renews) the group's lease and returns it, or nil when another instance holds it.
    private func claim(_ tx: any SQLExecutor) async throws -> Lease? {
        let now = Date()
        let until = now.addingTimeInterval(Self.leaseDuration)
        let row = try await tx.queryFirst(
            """
            UPDATE \(Tables.subscriptions) SET lease_owner = \(bus.instanceId), lease_until = \(until)
            WHERE group_name = \(consumer.group)
              AND (lease_owner IS NULL OR lease_owner = \(bus.instanceId) OR lease_until < \(now))
            RETURNING position_tx, position_seq
            """
        )
        guard let row else { return nil }
        return Lease(until: until, position: (try row.get("position_tx"), try row.get("position_seq")))
    }

    /// Reads the group's next events and applies them; returns how many it delivered.
    private func deliverNewEvents(lease: inout Lease?, logger: Logger) async throws -> Int {
        let types = Array(consumer.eventTypes)
        let batchConsumer = consumer as? any BatchEventConsumer
        // A consumer that prepares ahead gets two batches' worth at once: the second is prepared while the first is
        // written (see `deliver(_:to:from:lease:logger:)`).
        let limit = batchConsumer.map { $0.maxBatch * ($0.preparesAhead ? 2 : 1) } ?? bus.batchSize
        let held = lease.flatMap { $0.until.timeIntervalSinceNow > Self.leaseRenewalMargin ? $0 : nil }
        let readNext: (any SQLExecutor) async throws -> (Lease?, [(EventEnvelope, Int64, Int64)]) = { tx in
            let current: Lease
            if let held {
                current = held
            } else {
                guard let claimed = try await claim(tx) else { return (nil, []) }
                current = claimed
            }
            let position = current.position
            let typeFilter: SQL =
                types.contains(EventTypes.all) ? "" : "AND type IN (\(SQL.joined(types.map { "\($0)" }, separator: ", ")))"
            // Only transactions older than every running one are complete; see DatabaseEventBus.
            let visible: SQL =
                tx.dialect == .postgres
                ? "AND tx_id < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"
                : ""
            let rows = try await tx.query(
                """
                SELECT * FROM \(Tables.events)
                WHERE (tx_id, seq) > (\(position.tx), \(position.seq)) \(visible)
                  \(typeFilter)
                ORDER BY tx_id, seq
                LIMIT \(limit)
                """
            )
            return (current, try rows.map { (try DatabaseEventBus.envelope(from: $0), try $0.get("tx_id"), try $0.get("seq")) })
        }
        // With the lease in hand the round only reads: on SQLite that need not wait for the writer's connection.
        let (current, batch) = try await held == nil ? database.transaction(.system, readNext) : database.read(.system, readNext)
        lease = current
        guard !batch.isEmpty, let current else { return 0 }
        if let batchConsumer {
            return try await deliver(batch, to: batchConsumer, lease: &lease, from: current, logger: logger)
        }
        try await deliverOneByOne(batch[...], lease: &lease, from: current, logger: logger)
        return batch.count
    }

    /// Applies `batch` to a batch consumer, `maxBatch` events per transaction. When the consumer prepares ahead, the
    /// next part is prepared while the one before is written. Moves `lease`'s position past each part that commits.
    private func deliver(
        _ batch: [(EventEnvelope, Int64, Int64)], to batchConsumer: any BatchEventConsumer, lease: inout Lease?, from current: Lease,
        logger: Logger
    ) async throws -> Int {
        let parts = stride(from: 0, to: batch.count, by: batchConsumer.maxBatch).map {
            batch[$0..<min($0 + batchConsumer.maxBatch, batch.count)]
        }
        var delivered = 0
        var preparedAhead: (any Sendable)?
        for (index, part) in parts.enumerated() {
            guard let last = part.last else { continue }
            let events = part.map(\.0)
            // Until the position below commits, a failure must make the next round read it from the store again.
            lease = nil
            do {
                let prepared: any Sendable
                if let preparedAhead {
                    prepared = preparedAhead
                } else {
                    prepared = try await batchConsumer.prepare(batch: events)
                }
                preparedAhead = nil
                if index + 1 < parts.count {
                    async let applied = applyBatch(events, prepared: prepared, consumer: batchConsumer, advancingTo: (last.1, last.2))
                    // A failure here is not this part's: the next part prepares again in its turn.
                    preparedAhead = try? await batchConsumer.prepare(batch: parts[index + 1].map(\.0))
                    _ = try await applied
                } else {
                    try await applyBatch(events, prepared: prepared, consumer: batchConsumer, advancingTo: (last.1, last.2))
                }
            } catch EventBusError.leaseLost(let group) {
                throw EventBusError.leaseLost(group: group)
            } catch {
                // One bad event must not hold back the rest: apply them one by one, so only it is retried. The parts
                // after it are read again next round.
                logger.warning("event batch failed; applying its events one at a time", metadata: ["error": "\(error)"])
                try await deliverOneByOne(part, lease: &lease, from: current, logger: logger)
                return delivered + part.count
            }
            lease = Lease(until: current.until, position: (last.1, last.2))
            delivered += part.count
        }
        return delivered
    }

    /// Applies each event in a transaction of its own (retrying those that fail later), then moves the position.
    private func deliverOneByOne(
        _ batch: ArraySlice<(EventEnvelope, Int64, Int64)>, lease: inout Lease?, from current: Lease, logger: Logger
    ) async throws {
        guard let last = batch.last else { return }
        lease = nil
        for (event, _, seq) in batch {
            do {
                try await apply(event)
            } catch {
                try await scheduleRetry(seq: seq, attempts: 1, error: error, logger: logger)
            }
        }
        try await database.transaction(.system) { tx in
            try await advance(to: (last.1, last.2), in: tx)
        }
        lease = Lease(until: current.until, position: (last.1, last.2))
    }

    /// Moves the group's position. Fails (rolling its transaction back) when another instance holds the lease now.
    /// A batch consumer's events are applied in that same transaction, so they are rolled back with it; a one-at-a-time
    /// consumer's events committed each in its own transaction before, and the processed markers keep the new holder
    /// from applying them again.
    private func advance(to position: (tx: Int64, seq: Int64), in tx: any SQLExecutor) async throws {
        let moved = try await tx.queryFirst(
            """
            UPDATE \(Tables.subscriptions) SET position_tx = \(position.tx), position_seq = \(position.seq)
            WHERE group_name = \(consumer.group) AND lease_owner = \(bus.instanceId)
            RETURNING group_name
            """
        )
        guard moved != nil else { throw EventBusError.leaseLost(group: consumer.group) }
    }

    /// Applies the events of a batch this group has not applied yet and moves the group's position past them, in one
    /// transaction. Returns the events it applied.
    @discardableResult
    private func applyBatch(
        _ events: [EventEnvelope], prepared: any Sendable, consumer: any BatchEventConsumer, advancingTo position: (tx: Int64, seq: Int64)
    ) async throws -> [EventEnvelope] {
        try await EventApplier(database: database).applyBatch(events, to: consumer, prepared: prepared) { tx in
            try await advance(to: position, in: tx)
        }
    }

    private func deliverDueRetries(logger: Logger) async throws -> Bool {
        let due: [(EventEnvelope, Int64, Int)] = try await database.read(.system) { tx in
            let rows = try await tx.query(
                """
                SELECT r.event_seq, r.attempts, e.* FROM \(Tables.retries) r JOIN \(Tables.events) e ON e.seq = r.event_seq
                WHERE r.group_name = \(consumer.group) AND r.dead = \(false) AND r.next_attempt_at <= \(Date())
                ORDER BY r.next_attempt_at LIMIT 50
                """
            )
            return try rows.map { (try DatabaseEventBus.envelope(from: $0), try $0.get("event_seq"), try $0.get("attempts")) }
        }
        for (event, seq, attempts) in due {
            do {
                try await apply(event)
                try await database.transaction(.system) { tx in
                    try await tx.execute("DELETE FROM \(Tables.retries) WHERE group_name = \(consumer.group) AND event_seq = \(seq)")
                }
            } catch {
                try await scheduleRetry(seq: seq, attempts: attempts + 1, error: error, logger: logger)
            }
        }
        return !due.isEmpty
    }

    /// Applies one event unless this group already did; the processed marker commits with the handler's writes.
    private func apply(_ event: EventEnvelope) async throws {
        try await EventApplier(database: database).apply(event, to: consumer)
    }

    private func scheduleRetry(seq: Int64, attempts: Int, error: any Error, logger: Logger) async throws {
        let dead = attempts >= bus.retryPolicy.maxAttempts
        let delay = bus.retryPolicy.delay(afterAttempt: attempts)
        let next = Date().addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
        let message = String(String(describing: error).prefix(1000))
        if dead {
            logger.error("event moved to dead letters", metadata: ["seq": "\(seq)", "attempts": "\(attempts)", "error": "\(message)"])
        } else {
            logger.warning("event handler failed; will retry", metadata: ["seq": "\(seq)", "attempts": "\(attempts)", "error": "\(message)"])
        }
        try await database.transaction(.system) { tx in
            try await tx.execute(
                """
                INSERT INTO \(Tables.retries) (group_name, event_seq, attempts, next_attempt_at, last_error, dead, updated_at)
                VALUES (\(consumer.group), \(seq), \(attempts), \(next), \(message), \(dead), \(Date()))
                ON CONFLICT (group_name, event_seq) DO UPDATE SET
                    attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
                    last_error = excluded.last_error, dead = excluded.dead, updated_at = excluded.updated_at
                """
            )
        }
    }
}

/// Prunes the event log on an interval, once consumers have started.
struct BusPruner: Service {
    let bus: DatabaseEventBus

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !bus.started.isOpen && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
            while !Task.isCancelled {
                do {
                    let (events, markers) = try await bus.prune()
                    if events + markers > 0 {
                        bus.logger.info("pruned the event log", metadata: ["events": "\(events)", "markers": "\(markers)"])
                    }
                } catch {
                    bus.logger.warning("could not prune the event log", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: bus.retention.interval)
            }
        }
    }
}
