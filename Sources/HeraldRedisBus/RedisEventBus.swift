import Foundation
import HeraldCore
import HeraldEvents
import HeraldRedis
import HeraldSecurity
import HeraldStorage
import Logging
import ServiceLifecycle
import Synchronization

/// The event bus for a deployment of several processes: the transactional outbox stays in each service's database,
/// a relay moves its events to Redis Streams, and consumer groups read them with XREADGROUP from any instance.
///
/// - Streams: `herald:events` carries every event in publication order; high-volume types (beacon batches) get a
///   stream of their own (`herald:events:<type>`), so groups that do not want them never read them. Order is kept
///   within a stream.
/// - Relay: a consumer group of the database bus (`bus.redis-relay`), so one instance at a time relays, in commit
///   order, and another takes over when its lease lapses. XADDs are pipelined per batch and trim the stream by age
///   (`MINID`). A crash between XADD and the relay's position repeats events in the stream, never loses them.
/// - Consumers: XREADGROUP on a connection of their own (blocking), XACK after the handler's transaction committed.
///   Every event id is recorded per group with the handler's writes (``EventApplier``), so a redelivered event is
///   applied once.
/// - Failures: an unacknowledged message stays pending; XPENDING shows each one's idle time and delivery count,
///   and a message due for a retry (exponential backoff from ``RetryPolicy``) is taken with XCLAIM by whichever
///   instance looks first, which also takes over the messages of a consumer that died mid-batch. After
///   `maxAttempts` deliveries it moves to the group's dead-letter stream, from which ``requeue(group:eventId:)``
///   sends it back through the group's retry stream.
public final class RedisEventBus: EventBus {
    public struct Options: Sendable {
        public var prefix = "herald:"
        public var retryPolicy = RetryPolicy()
        /// Types with a stream of their own.
        public var dedicatedTypes: Set<String> = ["widget.beacons_recorded"]
        /// Messages read per XREADGROUP.
        public var readCount = 200
        /// How long XREADGROUP waits for new messages.
        public var block: Duration = .seconds(1)
        /// How often each consumer looks for pending messages due for a retry or left by a dead consumer.
        public var claimInterval: Duration = .seconds(1)
        /// Stream entries older than this are trimmed when new ones are added.
        public var retention: TimeInterval = 3 * 86_400
        /// How long ``publishDurably(_:)`` waits for Redis to add a batch before it keeps the batch in the outbox
        /// instead: a Redis that hangs (rather than refusing connections) must not hold every beacon request for the
        /// whole command timeout while they pile up into 503s. An XADD that lands after all is applied once.
        public var durableAddTimeout: Duration = .seconds(1)

        public init() {}
    }

    public let redis: RedisClient
    public let local: DatabaseEventBus
    public let options: Options
    let logger: Logger
    let consumerName: String
    let groups = Mutex<[String: Set<String>]>([:])
    /// The last handler error per group and event id, so a dead letter says why (bounded; this process's only).
    let lastErrors = Mutex<[String: String]>([:])

    public init(redis: RedisClient, local: DatabaseEventBus, options: Options = Options(), logger: Logger) {
        self.redis = redis
        self.local = local
        self.options = options
        self.logger = logger
        self.consumerName = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
    }

    var applier: EventApplier { EventApplier(database: local.database) }

    func stream(for type: String) -> String {
        options.dedicatedTypes.contains(type) ? "\(options.prefix)events:\(type)" : "\(options.prefix)events"
    }

    func streams(for types: Set<String>) -> [String] {
        Array(Set(types.map(stream(for:)))).sorted()
    }

    func retryStream(_ group: String) -> String { "\(options.prefix)retry:\(group)" }
    func deadStream(_ group: String) -> String { "\(options.prefix)dead:\(group)" }

    public func didCommitEvents() {
        local.didCommitEvents()
    }

    /// Events that change nothing else in the store (beacon batches) go straight to their stream: Redis's append-only
    /// file makes them durable (docs/DEPLOYMENT.md: `appendfsync always`), and neither the database nor the relay is
    /// in their way. When Redis cannot take them they go to the outbox instead, and the relay sends them on once it
    /// is back, so an answer never waits for Redis to return and nothing is lost. An XADD whose reply was lost and
    /// which the outbox then repeats reaches each group twice under one event id, and is applied once.
    public func publishDurably(_ events: [EventEnvelope]) async throws {
        do {
            try await publish(events, timeout: options.durableAddTimeout)
        } catch {
            // The relay's backlog (herald_bus_lag_events{group="bus.redis-relay"}) shows what waits there.
            logger.warning("cannot add events to Redis; keeping them in the outbox for the relay", metadata: ["error": "\(error)"])
            try await local.publishDurably(events)
        }
    }

    public func consumerService(for consumer: any EventConsumer) -> any Service {
        groups.withLock { $0[consumer.group] = consumer.eventTypes }
        return RedisConsumerRunner(bus: self, consumer: consumer)
    }

    public func maintenanceServices() -> [any Service] {
        [local.consumerService(for: OutboxRelay(bus: self))] + local.maintenanceServices()
    }

    // MARK: Publishing

    /// XADDs events in one pipeline, in order; each entry carries the whole envelope.
    func publish(_ events: [EventEnvelope], timeout: Duration? = nil) async throws {
        guard !events.isEmpty else { return }
        let minimum = Int64((Date().timeIntervalSince1970 - options.retention) * 1000)
        let commands: [[RedisArgument]] = events.map { event in
            [
                "XADD", .string(stream(for: event.type)), "MINID", "~", .string("\(minimum)-0"), "*",
            ] + Self.fields(of: event)
        }
        for reply in try await redis.pipeline(commands, timeout: timeout) {
            if case .error(let message) = reply { throw RedisReplyError(message: message) }
        }
    }

    static func fields(of event: EventEnvelope) -> [RedisArgument] {
        [
            "id", .string(event.id.lowercased), "type", .string(event.type), "v", .integer(Int64(event.version)), "at",
            .integer(Int64((event.occurredAt.timeIntervalSince1970 * 1000).rounded())), "org", .string(event.organizationId?.lowercased ?? ""),
            "site", .string(event.siteId?.lowercased ?? ""), "data", .string(event.data), "tp", .string(event.traceContext ?? ""),
        ]
    }

    /// An envelope from a stream entry's fields.
    static func envelope(from fields: [String: RESPValue]) -> EventEnvelope? {
        guard let id = fields["id"]?.string.flatMap(UUID.init(uuidString:)), let type = fields["type"]?.string,
            let version = fields["v"]?.int, let at = fields["at"]?.int, let data = fields["data"]?.string
        else { return nil }
        return EventEnvelope(
            id: id, type: type, version: Int(version), occurredAt: Date(timeIntervalSince1970: Double(at) / 1000),
            organizationId: fields["org"]?.string.flatMap(UUID.init(uuidString:)), siteId: fields["site"]?.string.flatMap(UUID.init(uuidString:)),
            data: data, traceContext: fields["tp"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        )
    }

    // MARK: Operations

    public func lag() async throws -> [ConsumerLag] {
        let registered = groups.withLock { $0 }
        var result: [ConsumerLag] = []
        for (group, types) in registered.sorted(by: { $0.key < $1.key }) {
            var pending = 0
            var retrying = 0
            for key in streams(for: types) + [retryStream(group)] {
                let reply: RESPValue
                do {
                    reply = try await redis.send(["XINFO", "GROUPS", .string(key)])
                } catch let error as RedisReplyError where error.message.contains("no such key") {
                    continue
                }
                for info in reply.array ?? [] {
                    let fields = Self.dictionary(info)
                    guard fields["name"]?.string == group else { continue }
                    // `lag` is null when Redis cannot tell (after trimming or XDEL): count the entries not read.
                    pending += Int(fields["lag"]?.int ?? 0)
                    retrying += Int(fields["pending"]?.int ?? 0)
                }
            }
            let dead = Int(try await redis.send(["XLEN", .string(deadStream(group))]).int ?? 0)
            result.append(ConsumerLag(group: group, pending: pending, retrying: retrying, dead: dead, oldestPendingAt: nil))
        }
        // The relay is a group of the database bus: its backlog is what has not reached Redis yet.
        return result + (try await local.lag())
    }

    public func deadLetters(group: String?) async throws -> [DeadLetter] {
        let names = group.map { [$0] } ?? groups.withLock { Array($0.keys) }.sorted()
        var letters: [DeadLetter] = []
        for name in names {
            let reply = try await redis.send(["XREVRANGE", .string(deadStream(name)), "+", "-", "COUNT", "500"])
            for entry in reply.array ?? [] {
                guard let parts = entry.array, parts.count == 2 else { continue }
                let fields = Self.dictionary(parts[1])
                guard let event = Self.envelope(from: fields) else { continue }
                letters.append(
                    DeadLetter(
                        group: name, event: event, attempts: Int(fields["attempts"]?.int ?? 0), lastError: fields["error"]?.string ?? "",
                        failedAt: Date(timeIntervalSince1970: Double(fields["failed_at"]?.int ?? 0) / 1000)
                    )
                )
            }
        }
        return letters.sorted { $0.failedAt > $1.failedAt }
    }

    public func requeue(group: String, eventId: UUID) async throws -> Bool {
        let reply = try await redis.send(["XRANGE", .string(deadStream(group)), "-", "+"])
        for entry in reply.array ?? [] {
            guard let parts = entry.array, parts.count == 2, let entryId = parts[0].string else { continue }
            let fields = Self.dictionary(parts[1])
            guard fields["id"]?.string == eventId.lowercased, let event = Self.envelope(from: fields) else { continue }
            // Only this group reads its retry stream: the other groups, which applied the event, never see it again.
            let replies = try await redis.pipeline([
                ["XADD", .string(retryStream(group)), "*"] + Self.fields(of: event),
                ["XDEL", .string(deadStream(group)), .string(entryId)],
            ])
            if case .error(let message) = replies[0] { throw RedisReplyError(message: message) }
            return true
        }
        return false
    }

    /// A RESP3 map or a RESP2 flat array of field, value pairs, as a dictionary.
    static func dictionary(_ value: RESPValue) -> [String: RESPValue] {
        var result: [String: RESPValue] = [:]
        if case .map(let pairs) = value {
            for (key, value) in pairs { if let name = key.string { result[name] = value } }
            return result
        }
        let items = value.array ?? []
        for index in stride(from: 0, to: items.count - 1, by: 2) {
            if let name = items[index].string { result[name] = items[index + 1] }
        }
        return result
    }

    func rememberError(_ error: any Error, group: String, eventId: UUID) {
        let message = String(String(describing: error).prefix(1000))
        lastErrors.withLock { errors in
            if errors.count > 10_000 { errors.removeAll() }
            errors["\(group)|\(eventId.lowercased)"] = message
        }
    }

    func lastError(group: String, eventId: UUID) -> String? {
        lastErrors.withLock { $0["\(group)|\(eventId.lowercased)"] }
    }
}

/// Relays the outbox to Redis: a group of the database bus that receives every event type.
struct OutboxRelay: BatchEventConsumer {
    let bus: RedisEventBus
    let group = "bus.redis-relay"
    let eventTypes: Set<String> = [EventTypes.all]
    var maxBatch: Int { 1000 }
    /// A repeated XADD is harmless (consumers deduplicate by event id), so the relay's batches write no markers.
    var recordsProcessed: Bool { false }

    /// Publishes before the database records the batch as relayed. While Redis is unreachable the relay waits and
    /// tries again rather than failing the batch: a failed batch would send its events to the database bus's
    /// retries, out of order.
    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable {
        try await publishPatiently(events)
        return ()
    }

    func handle(batch events: [EventEnvelope], prepared: any Sendable, in tx: any SQLExecutor) async throws {}

    /// The one-at-a-time path the database bus takes after a failed batch.
    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {
        try await publishPatiently(events)
    }

    private func publishPatiently(_ events: [EventEnvelope]) async throws {
        var failures = 0
        while true {
            do {
                try await bus.publish(events)
                if failures > 0 { bus.logger.info("relaying events to Redis again") }
                return
            } catch {
                try Task.checkCancellation()
                failures += 1
                if failures == 1 { bus.logger.warning("cannot relay events to Redis; retrying", metadata: ["error": "\(error)"]) }
                try await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5000)))
            }
        }
    }
}
