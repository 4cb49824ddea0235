import Foundation
import HeraldStorage

/// Names for sets of event types.
public enum EventTypes {
    /// In ``EventConsumer/eventTypes``: every event, whatever its type (the Redis relay forwards them all).
    public static let all = "*"
}

/// A consumer group's handler. Delivery is at least once; Herald makes handling effectively once by
/// recording each event id in the same transaction as the handler's writes.
public protocol EventConsumer: Sendable {
    /// Consumer group name, unique across Herald: `<service>.<purpose>`. Each group sees every event once.
    var group: String { get }
    /// The event types this group receives.
    var eventTypes: Set<String> { get }
    /// Applies the event inside `tx`, which runs in the event's tenant scope. Throwing rolls back and schedules a retry.
    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws
    /// Runs after the handler's transaction committed: for in-memory effects such as cache refreshes.
    func didCommit(_ event: EventEnvelope) async
}

extension EventConsumer {
    public func didCommit(_ event: EventEnvelope) async {}
}

/// A consumer that applies many events in one transaction: the high-volume groups (beacons, usage metering),
/// where one transaction per event would be the bottleneck.
///
/// The bus hands it the events it has not yet applied, in commit order, in one transaction that starts in the
/// system scope; the handler switches to each event's tenant with `SQLExecutor.setTenant(_:)` before writing
/// tenant rows. If the batch fails, the bus falls back to applying its events one at a time with
/// `handle(_:in:)`, so one poisoned event is retried and dead-lettered alone.
public protocol BatchEventConsumer: EventConsumer {
    /// The most events handed over at once.
    var maxBatch: Int { get }
    /// Whether the bus records each applied event id for this group (the duplicate guard). A group whose handling is
    /// harmless to repeat (the Redis relay: consumers deduplicate) skips those writes on its batches.
    var recordsProcessed: Bool { get }
    /// After a round that found fewer than `maxBatch` events, the database bus waits this long before reading again,
    /// so that a steady stream of small commits (a beacon commit every few milliseconds) is applied in a few large
    /// transactions instead of many small ones. The events wait at most this much longer.
    var linger: Duration { get }
    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws

    /// Runs before the batch's transaction: decoding and computing here keeps the store (SQLite has one writer)
    /// held only for the writes. Whatever it returns is handed to ``handle(batch:prepared:in:)`` and
    /// ``didCommit(batch:prepared:)``.
    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable
    /// Whether ``prepare(batch:)`` may run before the batches ahead of it have committed: it only computes, or sets
    /// up what is harmless to set up twice (never mail, never a publish). The database bus then prepares the next
    /// batch while the one before is being written, so under load the consumer's decoding overlaps the store's work
    /// on another core instead of waiting for it.
    var preparesAhead: Bool { get }
    /// Applies the events this group has not applied yet (a subset of the prepared batch when some were redelivered).
    func handle(batch events: [EventEnvelope], prepared: any Sendable, in tx: any SQLExecutor) async throws
    /// Runs after the batch's transaction committed, for in-memory effects (caches of what the store now holds).
    func didCommit(batch events: [EventEnvelope], prepared: any Sendable) async
}

extension BatchEventConsumer {
    public var maxBatch: Int { 200 }
    public var recordsProcessed: Bool { true }
    public var linger: Duration { .zero }
    public var preparesAhead: Bool { false }

    public func prepare(batch events: [EventEnvelope]) async throws -> any Sendable { () }

    public func handle(batch events: [EventEnvelope], prepared: any Sendable, in tx: any SQLExecutor) async throws {
        try await handle(batch: events, in: tx)
    }

    public func didCommit(batch events: [EventEnvelope], prepared: any Sendable) async {
        for event in events { await didCommit(event) }
    }

    /// A single event is a batch of one, in the event's tenant scope (already set by the bus).
    public func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        try await handle(batch: [event], in: tx)
    }
}

/// How a failed delivery is retried before it is moved to the dead-letter list.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int = 10, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(300)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Exponential backoff with ±20 % jitter so retries of many events do not arrive in lockstep.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 20)
        let base = min(baseDelay * (1 << exponent), maxDelay)
        let jitter = Double.random(in: 0.8...1.2)
        return base * jitter
    }
}
