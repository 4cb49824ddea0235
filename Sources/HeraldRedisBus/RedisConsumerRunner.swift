import Foundation
import HeraldCore
import HeraldEvents
import HeraldRedis
import HeraldSecurity
import Logging
import ServiceLifecycle

/// Runs one consumer group on Redis Streams in this process: reads new messages, applies them once, acknowledges
/// them, and retries or dead-letters what failed (see ``RedisEventBus``).
struct RedisConsumerRunner: Service {
    let bus: RedisEventBus
    let consumer: any EventConsumer

    /// One stream entry.
    struct Message: Sendable {
        var stream: String
        var id: String
        /// Nil when the entry cannot be read as an event (it is dead-lettered at once).
        var event: EventEnvelope?
        var fields: [String: RESPValue]
    }

    var streams: [String] { bus.streams(for: consumer.eventTypes) + [bus.retryStream(consumer.group)] }

    func run() async throws {
        var consumerLogger = bus.logger
        consumerLogger[metadataKey: "consumer"] = "\(consumer.group)"
        let logger = consumerLogger
        await cancelWhenGracefulShutdown {
            while !bus.local.started.isOpen && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await bus.redis.withDedicatedConnection { connection in
                        try await createGroups(connection)
                        var lastClaim = ContinuousClock.now - bus.options.claimInterval
                        while !Task.isCancelled {
                            if ContinuousClock.now - lastClaim >= bus.options.claimInterval {
                                try await retryPending(connection, logger: logger)
                                lastClaim = ContinuousClock.now
                            }
                            let messages = try await read(connection)
                            if !messages.isEmpty { try await process(messages, logger: logger) }
                            failures = 0
                        }
                    }
                } catch {
                    // Redis or the store is unreachable: wait and try again; unacknowledged messages stay pending.
                    failures += 1
                    if !Task.isCancelled { logger.warning("event consumer paused", metadata: ["error": "\(error)"]) }
                    try? await Task.sleep(for: .milliseconds(min(250 * (1 << min(failures, 6)), 15_000)))
                }
            }
        }
    }

    /// Creates the group on each stream it reads, from the stream's start, so nothing relayed before the group
    /// first ran is missed.
    func createGroups(_ connection: RedisConnection) async throws {
        let replies = try await connection.pipeline(
            streams.map { ["XGROUP", "CREATE", .string($0), .string(consumer.group), "0", "MKSTREAM"] }
        )
        for reply in replies {
            if case .error(let message) = reply, !message.hasPrefix("BUSYGROUP") { throw RedisReplyError(message: message) }
        }
    }

    func read(_ connection: RedisConnection) async throws -> [Message] {
        let keys = streams
        let blockMs = Int64(bus.options.block.seconds * 1000)
        let command: [RedisArgument] =
            [
                "XREADGROUP", "GROUP", .string(consumer.group), .string(bus.consumerName), "COUNT", .integer(Int64(bus.options.readCount)),
                "BLOCK", .integer(blockMs), "STREAMS",
            ] + keys.map { .string($0) } + keys.map { _ in ">" }
        let reply = try await connection.pipeline([command], timeout: bus.options.block + .seconds(10))[0]
        if case .error(let message) = reply {
            // The stream or group vanished (FLUSHALL, a Redis without persistence restarted): create them again.
            if message.hasPrefix("NOGROUP") {
                try await createGroups(connection)
                return []
            }
            throw RedisReplyError(message: message)
        }
        return Self.messages(in: reply)
    }

    /// Messages from an XREADGROUP reply (a map of stream to entries in RESP3, pairs in RESP2), oldest first.
    static func messages(in reply: RESPValue) -> [Message] {
        var perStream: [(String, RESPValue)] = []
        switch reply {
        case .map(let pairs): perStream = pairs.compactMap { key, value in key.string.map { ($0, value) } }
        case .array(let items):
            for item in items {
                if let parts = item.array, parts.count == 2, let key = parts[0].string { perStream.append((key, parts[1])) }
            }
        default: return []
        }
        var messages: [Message] = []
        for (stream, entries) in perStream { messages += Self.entries(entries, stream: stream) }
        // Streams interleave by entry id (publication time), so a read across streams still applies oldest first.
        return messages.sorted { Self.order($0.id) < Self.order($1.id) }
    }

    static func entries(_ value: RESPValue, stream: String) -> [Message] {
        (value.array ?? []).compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { return nil }
            // A claimed entry that was trimmed meanwhile comes back without fields.
            let fields = RedisEventBus.dictionary(parts[1])
            return Message(stream: stream, id: id, event: RedisEventBus.envelope(from: fields), fields: fields)
        }
    }

    static func order(_ id: String) -> (Int64, Int64) {
        let parts = id.split(separator: "-")
        return (Int64(parts.first ?? "") ?? 0, Int64(parts.dropFirst().first ?? "") ?? 0)
    }

    /// Applies messages of the group's types (in one transaction for a batch consumer), acknowledges what was applied
    /// or is not for this group, and leaves failures pending for a retry.
    func process(_ messages: [Message], logger: Logger) async throws {
        var done: [Message] = []
        var wanted: [(Message, EventEnvelope)] = []
        var ids = Set<UUID>()
        for message in messages {
            guard let event = message.event else {
                try await deadLetter(message, attempts: 1, error: "the stream entry is not an event envelope", logger: logger)
                continue
            }
            // One event in two entries (a beacon batch whose XADD reply was lost, then relayed from the outbox) is
            // applied with the first and acknowledged with it: a batch consumer prepares its work from every event
            // handed over, before the processed markers are checked.
            guard ids.insert(event.id).inserted else {
                done.append(message)
                continue
            }
            if consumer.eventTypes.contains(event.type) || consumer.eventTypes.contains(EventTypes.all) {
                wanted.append((message, event))
            } else {
                done.append(message)
            }
        }
        if let batchConsumer = consumer as? any BatchEventConsumer, wanted.count > 1 {
            let events = wanted.map(\.1)
            do {
                let prepared = try await batchConsumer.prepare(batch: events)
                try await bus.applier.applyBatch(events, to: batchConsumer, prepared: prepared)
                done += wanted.map(\.0)
                wanted = []
            } catch {
                logger.warning("event batch failed; applying its events one at a time", metadata: ["error": "\(error)"])
            }
        }
        for (message, event) in wanted {
            do {
                try await bus.applier.apply(event, to: consumer)
                done.append(message)
            } catch {
                bus.rememberError(error, group: consumer.group, eventId: event.id)
                logger.warning("event handler failed; will retry", metadata: ["event": "\(event.id)", "error": "\(error)"])
            }
        }
        try await acknowledge(done)
    }

    func acknowledge(_ messages: [Message]) async throws {
        guard !messages.isEmpty else { return }
        let byStream = Dictionary(grouping: messages, by: \.stream)
        let commands: [[RedisArgument]] = byStream.map { stream, messages in
            ["XACK", .string(stream), .string(consumer.group)] + messages.map { .string($0.id) }
        }
        for reply in try await bus.redis.pipeline(commands) {
            if case .error(let message) = reply { throw RedisReplyError(message: message) }
        }
    }

    /// Takes pending messages whose retry is due (any consumer's: one that died mid-batch leaves its messages
    /// pending), dead-letters those delivered `maxAttempts` times, and applies the rest.
    func retryPending(_ connection: RedisConnection, logger: Logger) async throws {
        let policy = bus.options.retryPolicy
        let minimumIdle = max(1, Int64(policy.baseDelay.seconds * 1000 * 0.8))
        for stream in streams {
            let reply = try await connection.pipeline([
                ["XPENDING", .string(stream), .string(consumer.group), "IDLE", .integer(minimumIdle), "-", "+", "100"]
            ])[0]
            if case .error(let message) = reply {
                if message.hasPrefix("NOGROUP") { continue }
                throw RedisReplyError(message: message)
            }
            var due: [String] = []
            var exhausted: [String: Int] = [:]
            for entry in reply.array ?? [] {
                guard let parts = entry.array, parts.count >= 4, let id = parts[0].string, let idle = parts[2].int, let count = parts[3].int else {
                    continue
                }
                if count >= Int64(policy.maxAttempts) {
                    exhausted[id] = Int(count)
                } else if Double(idle) / 1000 >= policy.delay(afterAttempt: Int(count)).seconds * 0.8 {
                    due.append(id)
                }
            }
            if !exhausted.isEmpty {
                let claimed = try await claim(stream: stream, ids: Array(exhausted.keys), minimumIdle: minimumIdle, connection)
                for message in claimed {
                    let reason = message.event.flatMap { bus.lastError(group: consumer.group, eventId: $0.id) } ?? "delivery failed"
                    try await deadLetter(message, attempts: exhausted[message.id] ?? policy.maxAttempts, error: reason, logger: logger)
                }
            }
            if !due.isEmpty {
                let claimed = try await claim(stream: stream, ids: due, minimumIdle: minimumIdle, connection)
                if !claimed.isEmpty { try await process(claimed, logger: logger) }
            }
        }
    }

    /// XCLAIMs entries for this consumer. An entry another consumer took meanwhile (its idle time reset) is not
    /// returned and stays with that consumer; one trimmed from the stream is dropped from the pending list by Redis.
    func claim(stream: String, ids: [String], minimumIdle: Int64, _ connection: RedisConnection) async throws -> [Message] {
        let reply = try await connection.send(
            ["XCLAIM", .string(stream), .string(consumer.group), .string(bus.consumerName), .integer(minimumIdle)] + ids.map { .string($0) }
        )
        return Self.entries(reply, stream: stream).filter { !$0.fields.isEmpty || $0.event != nil }
    }

    /// Moves a message to the group's dead-letter stream and acknowledges it, in one MULTI so neither happens alone.
    func deadLetter(_ message: Message, attempts: Int, error: String, logger: Logger) async throws {
        logger.error("event moved to dead letters", metadata: ["entry": "\(message.id)", "attempts": "\(attempts)", "error": "\(error)"])
        var fields: [RedisArgument] = []
        for (key, value) in message.fields.sorted(by: { $0.key < $1.key }) {
            if let text = value.string { fields += [.string(key), .string(text)] }
        }
        if message.event == nil { fields += ["raw_stream", .string(message.stream), "raw_id", .string(message.id)] }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        fields += ["attempts", .integer(Int64(attempts)), "error", .string(error), "failed_at", .integer(now)]
        let replies = try await bus.redis.pipeline([
            ["MULTI"],
            ["XADD", .string(bus.deadStream(consumer.group)), "*"] + fields,
            ["XACK", .string(message.stream), .string(consumer.group), .string(message.id)],
            ["EXEC"],
        ])
        if case .error(let text) = replies.last ?? .null { throw RedisReplyError(message: text) }
    }
}
