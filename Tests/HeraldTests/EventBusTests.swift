import Foundation
import HeraldCore
import HeraldEvents
import HeraldRedis
import HeraldRedisBus
import HeraldStorage
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing

struct Pinged: DomainEvent {
    static let eventType = "test.pinged"
    static let schemaVersion = 1
    var number: Int
}

/// Records what a consumer saw; optionally fails, and writes a row so rollbacks can be observed.
final class RecordingConsumer: EventConsumer {
    let group: String
    let eventTypes: Set<String> = [Pinged.eventType]
    let failing = Mutex<Bool>(false)
    let seen = Mutex<[Int]>([])

    init(group: String, failing: Bool = false) {
        self.group = group
        self.failing.withLock { $0 = failing }
    }

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        let number = try event.decode(Pinged.self).number
        try await tx.execute("INSERT INTO bus_test_applied (grp, number) VALUES (\(group), \(number))")
        if failing.withLock({ $0 }) { throw TestFailure("handler failed on purpose") }
        seen.withLock { $0.append(number) }
    }

    var numbers: [Int] { seen.withLock { $0 } }
}

/// Applies events in batches, writing a row per event, and records the size of each batch it was handed.
final class BatchRecordingConsumer: BatchEventConsumer {
    let group: String
    let eventTypes: Set<String> = [Pinged.eventType]
    let linger: Duration
    let batches = Mutex<[Int]>([])
    /// The ids of every event handed to `prepare`, in order.
    let prepared = Mutex<[UUID]>([])

    init(group: String, linger: Duration = .zero) {
        self.group = group
        self.linger = linger
    }

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        try await handle(batch: [event], in: tx)
    }

    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable {
        prepared.withLock { $0 += events.map(\.id) }
        return ()
    }

    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {
        for event in events {
            let number = try event.decode(Pinged.self).number
            try await tx.execute("INSERT INTO bus_test_applied (grp, number) VALUES (\(group), \(number))")
        }
        batches.withLock { $0.append(events.count) }
    }
}

/// Applies batches of at most four, each taking a while, and counts the batches prepared before the handling of an
/// earlier one had ended. A batch holding `failing` fails, so that the bus applies it one event at a time.
final class PreparingAheadConsumer: BatchEventConsumer {
    let group: String
    let eventTypes: Set<String> = [Pinged.eventType]
    let maxBatch = 4
    let preparesAhead: Bool
    let failing: Int?
    /// The first number of each prepared batch whose handling has not ended yet.
    let unfinished = Mutex<Set<Int>>([])
    let preparedWhileWriting = Mutex(0)
    let failedBatches = Mutex(0)

    init(group: String, preparesAhead: Bool, failing: Int? = nil) {
        self.group = group
        self.preparesAhead = preparesAhead
        self.failing = failing
    }

    func prepare(batch events: [EventEnvelope]) async throws -> any Sendable {
        let numbers = try events.map { try $0.decode(Pinged.self).number }
        unfinished.withLock { unfinished in
            if !unfinished.isEmpty { preparedWhileWriting.withLock { $0 += 1 } }
            if let first = numbers.first { unfinished.insert(first) }
        }
        return numbers
    }

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        try await handle(batch: [event], in: tx)
    }

    func handle(batch events: [EventEnvelope], in tx: any SQLExecutor) async throws {
        let numbers = try events.map { try $0.decode(Pinged.self).number }
        defer { unfinished.withLock { _ = $0.remove(numbers.first ?? -1) } }
        for number in numbers {
            try await tx.execute("INSERT INTO bus_test_applied (grp, number) VALUES (\(group), \(number))")
            if number == failing, numbers.count > 1 {
                failedBatches.withLock { $0 += 1 }
                throw TestFailure("batch with \(number) failed on purpose")
            }
        }
        // Long enough for the bus to prepare the next batch meanwhile, when it does.
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// Takes its time over each event: long enough for a shutdown to arrive in the middle.
final class SlowConsumer: EventConsumer {
    let group = "test.slow"
    let eventTypes: Set<String> = [Pinged.eventType]
    let started = Mutex(false)
    let finished = Mutex(false)

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        let number = try event.decode(Pinged.self).number
        // The write comes first, so a shutdown in the sleep shows whether the transaction rolled back.
        try await tx.execute("INSERT INTO bus_test_applied (grp, number) VALUES (\(group), \(number))")
        started.withLock { $0 = true }
        // Task.sleep throws when the task is cancelled: a cancelled handler never gets past it.
        try await Task.sleep(for: .seconds(5))
        finished.withLock { $0 = true }
    }
}

/// Records the trace context of each event it applies.
final class TraceRecordingConsumer: EventConsumer {
    let group = "test.traces"
    let eventTypes: Set<String> = [Pinged.eventType]
    let seen = Mutex<[(Int, String?)]>([])

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        let number = try event.decode(Pinged.self).number
        seen.withLock { $0.append((number, event.traceContext)) }
    }

    var contexts: [(Int, String?)] { seen.withLock { $0 } }
}

/// Which bus carries the events in a contract test: the database bus alone, or Redis Streams fed by the outbox relay.
enum BusKind: String, Sendable {
    case database
    case redis
}

/// One combination of store and bus the contract runs against.
struct BusCase: Sendable, CustomTestStringConvertible {
    var store: TestStore
    var kind: BusKind
    var testDescription: String { "\(store.rawValue) + \(kind.rawValue)" }

    static var available: [BusCase] {
        let redis = ProcessInfo.processInfo.environment["HERALD_TEST_REDIS_URL"].map { !$0.isEmpty } ?? false
        precondition(redis || ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] != "1", "HERALD_TEST_REDIS_URL is required")
        return TestStore.available.flatMap { store in [BusCase(store: store, kind: .database)] + (redis ? [BusCase(store: store, kind: .redis)] : [])
        }
    }
}

/// A bus under test, with what the contract needs beyond the protocol.
struct BusHarness: Sendable {
    var bus: any EventBus
    /// Services that must run for events to flow (the Redis relay).
    var carriers: [any Service]
    /// Makes the group forget how far it got, as a crash between applying and recording would.
    var forgetPosition: @Sendable (_ group: String, _ streams: [String]) async throws -> Void
    var redis: RedisClient?

    /// Retries come back within a second, so a delivery that failed under a loaded test run (the store refusing
    /// connections for a moment) is not left waiting past the test's deadline.
    static func make(
        _ kind: BusKind, database: any Database,
        retryPolicy: RetryPolicy = RetryPolicy(maxAttempts: 50, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
    ) throws -> BusHarness {
        let local = DatabaseEventBus(database: database, logger: testLogger, retryPolicy: retryPolicy, pollInterval: .milliseconds(20))
        switch kind {
        case .database:
            return BusHarness(
                bus: local, carriers: [],
                forgetPosition: { group, _ in
                    try await database.transaction(.system) { tx in
                        try await tx.execute(
                            "UPDATE \(Table("bus", "subscriptions")) SET position_tx = 0, position_seq = 0 WHERE group_name = \(group)")
                    }
                })
        case .redis:
            let url = try #require(ProcessInfo.processInfo.environment["HERALD_TEST_REDIS_URL"])
            let client = RedisClient(configuration: try RedisConfiguration(url: url), logger: testLogger)
            var options = RedisEventBus.Options()
            // Streams of their own per test, so parallel tests never see each other's events.
            options.prefix = "test:\(UUID().uuidString.prefix(8)):"
            options.retryPolicy = retryPolicy
            options.block = .milliseconds(100)
            options.claimInterval = .milliseconds(50)
            let bus = RedisEventBus(redis: client, local: local, options: options, logger: testLogger)
            let prefix = options.prefix
            return BusHarness(
                bus: bus, carriers: bus.maintenanceServices(),
                forgetPosition: { group, _ in
                    try await client.send(["XGROUP", "SETID", .string(prefix + "events"), .string(group), "0"])
                }, redis: client)
        }
    }
}

@Suite("Event bus contract (SQLite and PostgreSQL; database and Redis Streams)")
struct EventBusTests {
    static let testTable = MigrationSet(
        owner: "bus_test",
        migrations: [
            Migration(
                version: 1, name: "applied",
                sqlite: ["CREATE TABLE bus_test_applied (grp TEXT NOT NULL, number INTEGER NOT NULL)"],
                postgres: ["CREATE TABLE bus_test_applied (grp TEXT NOT NULL, number INTEGER NOT NULL)"]
            )
        ]
    )

    func publish(_ numbers: Range<Int>, bus: any EventBus, database: any Database) async throws {
        for number in numbers {
            try await database.transaction(.system) { tx in
                try await Outbox.append(Pinged(number: number), organizationId: nil, in: tx)
            }
            bus.didCommitEvents()
        }
    }

    func appliedRows(_ database: any Database, group: String) async throws -> [Int] {
        try await database.query("SELECT number FROM bus_test_applied WHERE grp = \(group) ORDER BY number").map { try $0.get("number") }
    }

    /// Runs consumers while `during` runs and then until `done` holds or the deadline passes.
    func run(
        _ consumers: [any EventConsumer],
        harness: BusHarness,
        timeout: Duration = .seconds(20),
        during: @Sendable () async throws -> Void = {},
        until done: @Sendable () async -> Bool
    ) async throws {
        let bus = harness.bus
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in consumers.map({ bus.consumerService(for: $0) }) + harness.carriers {
                group.addTask { try await service.run() }
            }
            try await during()
            let deadline = ContinuousClock.now + timeout
            while await !done(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            group.cancelAll()
        }
    }

    @Test(arguments: BusCase.available)
    func everyGroupGetsEveryEventOnce(_ busCase: BusCase) async throws {
        try await withHarness(busCase) { harness, database in
            let bus = harness.bus
            let a = RecordingConsumer(group: "test.a")
            let b = RecordingConsumer(group: "test.b")
            try await publish(0..<10, bus: bus, database: database)
            // Publish more while the consumers run, from concurrent transactions. On PostgreSQL an event becomes
            // visible once no older transaction runs anywhere in the cluster, and the rest of the suite runs its
            // migrations on the same server: under a loaded run that can hold an event back for many seconds.
            try await run(
                [a, b], harness: harness, timeout: .seconds(60),
                during: {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for batch in 0..<3 {
                            group.addTask { try await publish((10 + batch * 10)..<(20 + batch * 10), bus: bus, database: database) }
                        }
                        try await group.waitForAll()
                    }
                }
            ) {
                // Until both groups applied everything and the bus reports no backlog for either.
                // The Redis bus also lists its relay's group (events not yet on Redis).
                guard a.numbers.count >= 40 && b.numbers.count >= 40, let lag = try? await bus.lag().filter({ $0.group.hasPrefix("test.") })
                else { return false }
                return lag.map(\.group) == ["test.a", "test.b"] && lag.allSatisfy { $0.pending == 0 && $0.dead == 0 }
            }
            #expect(a.numbers.sorted() == Array(0..<40))
            #expect(b.numbers.sorted() == Array(0..<40))
            #expect(try await appliedRows(database, group: "test.a") == Array(0..<40))
            let lag = try await bus.lag().filter { $0.group.hasPrefix("test.") }
            #expect(lag.map(\.group) == ["test.a", "test.b"] && lag.allSatisfy { $0.pending == 0 && $0.dead == 0 }, "\(lag)")
        }
    }

    /// Events with nothing else to commit (beacon batches) reach every group once, whichever way the bus makes them
    /// durable: the outbox on the database bus, the stream itself on Redis, where one published twice (an XADD whose
    /// reply was lost, then kept in the outbox) is applied once.
    @Test(arguments: BusCase.available)
    func durablyPublishedEventsReachEveryGroupOnce(_ busCase: BusCase) async throws {
        try await withHarness(busCase) { harness, database in
            let bus = harness.bus
            let a = RecordingConsumer(group: "test.a")
            let b = RecordingConsumer(group: "test.b")
            let c = BatchRecordingConsumer(group: "test.c")
            let envelopes = try (0..<10).map { try EventEnvelope(Pinged(number: $0), organizationId: nil) }
            // Published before the consumers start, so the batch consumer takes them in one batch, with both copies of
            // a repeated one. The database bus never repeats one (the outbox holds each id once); Redis may.
            for envelope in envelopes { try await bus.publishDurably([envelope]) }
            if busCase.kind == .redis { try await bus.publishDurably([envelopes[3]]) }
            try await run([a, b, c], harness: harness) {
                let applied = (try? await appliedRows(database, group: "test.c").count) ?? 0
                return a.numbers.count >= 10 && b.numbers.count >= 10 && applied >= 10
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(a.numbers.sorted() == Array(0..<10))
            #expect(b.numbers.sorted() == Array(0..<10))
            #expect(try await appliedRows(database, group: "test.c") == Array(0..<10))
            // Work prepared from a batch (a beacon batch's rows) never sees one event twice.
            let prepared = c.prepared.withLock { $0 }
            #expect(Set(prepared).count == prepared.count, "prepare saw \(prepared.count) events, \(Set(prepared).count) distinct")
            let inOutbox: Int =
                try await database.query(
                    "SELECT COUNT(*) AS n FROM \(Table("bus", "events")) WHERE type = \(Pinged.eventType)"
                ).first?.get("n") ?? -1
            // Redis took them directly: nothing went through the outbox.
            #expect(inOutbox == (busCase.kind == .redis ? 0 : 10))
        }
    }

    /// While Redis cannot take them, durably published events are kept in the outbox (for the relay to send on once
    /// Redis is back), and the caller still gets its answer.
    @Test(arguments: TestStore.available)
    func eventsRedisCannotTakeAreKeptInTheOutbox(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let local = DatabaseEventBus(database: database, logger: testLogger)
            // Nothing listens on port 1: every connection is refused at once.
            let client = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:1/0"), logger: testLogger)
            let bus = RedisEventBus(redis: client, local: local, logger: testLogger)
            let envelope = try EventEnvelope(Pinged(number: 7), organizationId: nil)
            try await bus.publishDurably([envelope])
            let kept: [UUID] = try await database.query(
                "SELECT id FROM \(Table("bus", "events")) WHERE type = \(Pinged.eventType)"
            ).map { try $0.get("id") }
            #expect(kept == [envelope.id])
        }
    }

    /// A Redis that accepts connections and then stops answering (a stalled server, a network black hole) costs a
    /// beacon batch the durable-add timeout, not the command timeout: the batch goes to the outbox and the call
    /// returns.
    @Test(arguments: TestStore.available)
    func eventsAHangingRedisDoesNotTakeAreKeptInTheOutboxSoon(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AnswersOnceHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)
        try await environment.withDatabase { database in
            let local = DatabaseEventBus(database: database, logger: testLogger)
            // A command timeout far longer than the test allows: only the durable-add timeout can end the wait.
            let client = RedisClient(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(port)/0?timeout=60"), logger: testLogger)
            var options = RedisEventBus.Options()
            options.durableAddTimeout = .milliseconds(300)
            let bus = RedisEventBus(redis: client, local: local, options: options, logger: testLogger)
            let envelope = try EventEnvelope(Pinged(number: 8), organizationId: nil)
            let started = ContinuousClock.now
            try await bus.publishDurably([envelope])
            #expect(ContinuousClock.now - started < .seconds(10))
            let kept: [UUID] = try await database.query(
                "SELECT id FROM \(Table("bus", "events")) WHERE type = \(Pinged.eventType)"
            ).map { try $0.get("id") }
            #expect(kept == [envelope.id])
        }
    }

    /// The same against a real Redis that stops answering writes: `CLIENT PAUSE … WRITE` holds the XADD (on a server
    /// of this test's own, so the suite's other Redis tests do not stall). The batch goes to the outbox within the
    /// durable-add timeout, long before the pause ends; the timed-out connection is closed, so once Redis answers
    /// again the next batch goes to its stream on a fresh connection and no reply is read as another command's.
    @Test func eventsAPausedRedisDoesNotTakeAreKeptInTheOutboxAndTheNextGoToRedis() async throws {
        guard let url = ProcessInfo.processInfo.environment["HERALD_TEST_REDIS_PAUSABLE_URL"], !url.isEmpty else {
            precondition(
                ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] != "1", "HERALD_TEST_REDIS_PAUSABLE_URL is required")
            return
        }
        let environment = try await TestEnvironment.make(.sqlite)
        let admin = RedisClient(configuration: try RedisConfiguration(url: url), logger: testLogger)
        try await environment.withDatabase { database in
            let local = DatabaseEventBus(database: database, logger: testLogger)
            let client = RedisClient(configuration: try RedisConfiguration(url: url + "?timeout=60"), logger: testLogger)
            var options = RedisEventBus.Options()
            options.durableAddTimeout = .milliseconds(300)
            options.prefix = "paused-\(UUID().uuidString.prefix(8)):"
            let bus = RedisEventBus(redis: client, local: local, options: options, logger: testLogger)
            func outbox() async throws -> [UUID] {
                try await database.query("SELECT id FROM \(Table("bus", "events")) WHERE type = \(Pinged.eventType)").map { try $0.get("id") }
            }
            // A connection made before the pause, as in a running server.
            try await bus.publishDurably([try EventEnvelope(Pinged(number: 0), organizationId: nil)])
            #expect(try await outbox().isEmpty)

            _ = try await admin.send(["CLIENT", "PAUSE", "4000", "WRITE"])
            let held = try EventEnvelope(Pinged(number: 1), organizationId: nil)
            let started = ContinuousClock.now
            try await bus.publishDurably([held])
            let waited = ContinuousClock.now - started
            #expect(waited < .seconds(3), "the batch waited \(waited), as long as the pause, not the durable-add timeout")
            #expect(try await outbox() == [held.id])

            _ = try await admin.send(["CLIENT", "UNPAUSE"])
            let next = try EventEnvelope(Pinged(number: 2), organizationId: nil)
            try await bus.publishDurably([next])
            #expect(try await outbox() == [held.id], "Redis answers again: the next batch goes to its stream")
            // Every bulk string of the stream's entries: ids, field names and values.
            func strings(_ value: RESPValue) -> [String] {
                switch value {
                case .bulkString(let bytes): [String(decoding: bytes, as: UTF8.self)]
                case .array(let values): values.flatMap(strings)
                default: []
                }
            }
            let stream = strings(try await admin.send(["XRANGE", .string(options.prefix + "events"), "-", "+"]))
            #expect(stream.contains(next.id.lowercased), "the next batch is in the stream: \(stream)")
        }
    }

    /// A shutdown in the middle of an event hands it back: the handler's transaction rolls back (nothing half
    /// applied), the event stays in the log (or pending on Redis), and the next consumer of the group applies it once.
    @Test(arguments: BusCase.available)
    func aShutdownHandsBackTheEventInHand(_ busCase: BusCase) async throws {
        try await withHarness(busCase) { harness, database in
            let slow = SlowConsumer()
            let group = ServiceGroup(
                // Shut down in reverse order: the consumer first, as in Herald's own service group.
                services: harness.carriers + [harness.bus.consumerService(for: slow)], gracefulShutdownSignals: [], cancellationSignals: [],
                logger: testLogger
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await publish(7..<8, bus: harness.bus, database: database)
                let deadline = ContinuousClock.now + .seconds(20)
                while !slow.started.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
                #expect(slow.started.withLock { $0 })
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(!slow.finished.withLock { $0 })
            #expect(try await appliedRows(database, group: "test.slow").isEmpty, "a cancelled handler left its write behind")

            let next = RecordingConsumer(group: "test.slow")
            try await run([next], harness: harness) { next.numbers == [7] }
            #expect(next.numbers == [7])
            #expect(try await appliedRows(database, group: "test.slow") == [7])
        }
    }

    /// The publisher's W3C traceparent travels in the envelope on both buses, so the consumer's span joins its trace.
    @Test(arguments: BusCase.available)
    func theTraceContextTravelsWithTheEvent(_ busCase: BusCase) async throws {
        try await withHarness(busCase) { harness, database in
            let consumer = TraceRecordingConsumer()
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            try await database.transaction(.system) { tx in
                let traced = try EventEnvelope(Pinged(number: 1), organizationId: nil)
                var envelope = traced
                envelope.traceContext = traceparent
                try await Outbox.append(envelope, in: tx)
                // Outside any span and with no tracer, an event carries no trace.
                try await Outbox.append(Pinged(number: 2), organizationId: nil, in: tx)
            }
            harness.bus.didCommitEvents()
            try await run([consumer], harness: harness) { consumer.contexts.count >= 2 }
            #expect(consumer.contexts.sorted { $0.0 < $1.0 }.map(\.1) == [traceparent, nil])
        }
    }

    @Test(arguments: BusCase.available)
    func redeliveryIsAppliedOnce(_ busCase: BusCase) async throws {
        try await withHarness(busCase) { harness, database in
            let consumer = RecordingConsumer(group: "test.once")
            try await publish(0..<5, bus: harness.bus, database: database)
            try await run([consumer], harness: harness) { consumer.numbers.count >= 5 }
            // Forget the group's position, as a crash between handling and saving the position would.
            try await harness.forgetPosition("test.once", [])
            let again = RecordingConsumer(group: "test.once")
            try await run([again], harness: harness, timeout: .seconds(1)) { false }
            #expect(again.numbers.isEmpty)
            #expect(try await appliedRows(database, group: "test.once") == Array(0..<5))
        }
    }

    @Test(arguments: BusCase.available)
    func failuresRetryThenDeadLetterAndCanBeRequeued(_ busCase: BusCase) async throws {
        let environment = try await TestEnvironment.make(busCase.store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let harness = try BusHarness.make(
                busCase.kind, database: database, retryPolicy: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(50)))
            let bus = harness.bus
            let consumer = RecordingConsumer(group: "test.failing", failing: true)
            // A healthy group sees the same event once, whatever happens to the failing one.
            let healthy = RecordingConsumer(group: "test.healthy")
            try await publish(7..<8, bus: bus, database: database)
            try await run([consumer, healthy], harness: harness) {
                await (try? bus.deadLetters(group: "test.failing"))?.isEmpty == false
            }
            let dead = try await bus.deadLetters(group: "test.failing")
            #expect(dead.count == 1)
            #expect(dead.first?.attempts == 3)
            #expect(dead.first?.lastError.contains("failed on purpose") == true, "\(dead)")
            // Every failed attempt rolled back its writes.
            #expect(try await appliedRows(database, group: "test.failing").isEmpty)
            #expect(try await bus.lag().first { $0.group == "test.failing" }?.dead == 1)

            consumer.failing.withLock { $0 = false }
            let eventId = try #require(dead.first?.event.id)
            #expect(try await bus.requeue(group: "test.failing", eventId: eventId))
            #expect(try await !bus.requeue(group: "test.failing", eventId: UUID()))
            try await run([consumer, healthy], harness: harness) { consumer.numbers == [7] }
            #expect(consumer.numbers == [7])
            #expect(healthy.numbers == [7])
            #expect(try await bus.deadLetters(group: "test.failing").isEmpty)
            #expect(try await appliedRows(database, group: "test.failing") == [7])
        }
    }

    @Test(arguments: BusCase.available)
    func eventsPublishedBeforeARestartAreDeliveredAfterIt(_ busCase: BusCase) async throws {
        let environment = try await TestEnvironment.make(busCase.store)
        let prefix = Mutex<String?>(nil)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let harness = try BusHarness.make(busCase.kind, database: database)
            try await publish(0..<3, bus: harness.bus, database: database)
            if let redisBus = harness.bus as? RedisEventBus {
                // Relayed to Redis before the restart, with no consumer group yet.
                let streamPrefix = redisBus.options.prefix
                prefix.withLock { $0 = streamPrefix }
                let redis = try #require(harness.redis)
                try await run([], harness: harness) {
                    (try? await redis.send(["XLEN", .string(streamPrefix + "events")]).int) ?? 0 >= 3
                }
            }
        }
        // A new process: a new connection, a new bus, the same store (and the same streams).
        try await environment.withDatabase { database in
            var harness = try BusHarness.make(busCase.kind, database: database)
            if let redisBus = harness.bus as? RedisEventBus, let redis = harness.redis, let previous = prefix.withLock({ $0 }) {
                var options = redisBus.options
                options.prefix = previous
                let bus = RedisEventBus(redis: redis, local: redisBus.local, options: options, logger: testLogger)
                harness.bus = bus
                harness.carriers = bus.maintenanceServices()
            }
            let consumer = RecordingConsumer(group: "test.durable")
            try await run([consumer], harness: harness) { consumer.numbers.count >= 3 }
            #expect(consumer.numbers == [0, 1, 2])
        }
    }

    /// A runner keeps its group's lease (and position) in memory between renewals; if another instance took the
    /// group over meanwhile, the position no longer moves for it and the batch it applied rolls back with it.
    @Test(arguments: TestStore.available)
    func aRunnerThatLostItsLeaseAppliesNothingUntilItHasItAgain(store: TestStore) async throws {
        let subscriptions = Table("bus", "subscriptions")
        try await withDatabaseBus(store, consumer: BatchRecordingConsumer(group: "test.lease")) { bus, database in
            try await publish(0..<3, bus: bus, database: database)
            try await waitUntil { try await appliedRows(database, group: "test.lease") == [0, 1, 2] }
            // Another instance takes the group over (as after this one stalled past its lease).
            try await database.transaction(.system) { tx in
                try await tx.execute(
                    """
                    UPDATE \(subscriptions) SET lease_owner = 'another-instance', lease_until = \(Date().addingTimeInterval(60))
                    WHERE group_name = 'test.lease'
                    """
                )
            }
            try await publish(3..<6, bus: bus, database: database)
            try await Task.sleep(for: .milliseconds(800))
            #expect(try await appliedRows(database, group: "test.lease") == [0, 1, 2])
            // The other instance's lease runs out: this one claims the group again and goes on from its position.
            try await database.transaction(.system) { tx in
                try await tx.execute(
                    "UPDATE \(subscriptions) SET lease_until = \(Date().addingTimeInterval(-1)) WHERE group_name = 'test.lease'"
                )
            }
            try await waitUntil { try await appliedRows(database, group: "test.lease") == Array(0..<6) }
            #expect(try await appliedRows(database, group: "test.lease") == Array(0..<6))
        }
    }

    /// Commits that name their event types wake the groups of those types at once, not at the next poll. (SQLite only:
    /// on PostgreSQL a committed event can stay invisible for a moment while any older transaction on the cluster runs,
    /// and then the next poll is what delivers it, by design.)
    @Test(arguments: TestStore.available.filter { $0 == .sqlite })
    func aTypedCommitWakesTheGroupsOfItsTypes(store: TestStore) async throws {
        // Polling alone would take 60 s to see the event.
        try await withDatabaseBus(store, consumer: BatchRecordingConsumer(group: "test.typed"), pollInterval: .seconds(60)) { bus, database in
            try await Task.sleep(for: .milliseconds(300))
            try await database.transaction(.system) { tx in
                try await Outbox.append(Pinged(number: 1), organizationId: nil, in: tx)
            }
            bus.didCommitEvents(ofTypes: [Pinged.eventType])
            try await waitUntil(.seconds(20)) { try await appliedRows(database, group: "test.typed") == [1] }
            #expect(try await appliedRows(database, group: "test.typed") == [1])
        }
    }

    /// A lingering batch consumer takes a stream of small commits in a few batches rather than one per commit.
    @Test(arguments: TestStore.available)
    func aLingeringConsumerGathersSmallCommitsIntoFewBatches(store: TestStore) async throws {
        let linger = Duration.seconds(2)
        let consumer = BatchRecordingConsumer(group: "test.linger", linger: linger)
        let publishing = Mutex(Duration.zero)
        try await withDatabaseBus(store, consumer: consumer) { bus, database in
            let started = ContinuousClock.now
            for number in 0..<10 {
                try await publish(number..<(number + 1), bus: bus, database: database)
                try await Task.sleep(for: .milliseconds(30))
            }
            publishing.withLock { $0 = ContinuousClock.now - started }
            try await waitUntil { try await appliedRows(database, group: "test.linger") == Array(0..<10) }
        }
        let batches = consumer.batches.withLock { $0 }
        #expect(batches.reduce(0, +) == 10)
        // The first commit, then one batch per linger while the commits go on (about 0.3 s, far longer on a machine
        // busy with the rest of the suite), then the rest: a batch per commit would be ten.
        let elapsed = publishing.withLock { $0 }
        let allowed = 2 + Int((elapsed / linger).rounded(.up))
        #expect(batches.count <= allowed, "ten commits over \(elapsed) were applied in \(batches)")
    }

    /// A consumer that prepares ahead has its next batch prepared while the one before is written, and still gets
    /// every event once and in order, also when a batch fails and is applied one event at a time. One that does not
    /// never has a batch prepared before the one ahead of it committed.
    @Test(arguments: TestStore.available, [true, false])
    func aConsumerThatPreparesAheadOverlapsItsBatches(store: TestStore, ahead: Bool) async throws {
        for failing in [nil, 9] as [Int?] {
            let group = "test.ahead.\(ahead).\(failing.map(String.init) ?? "none")"
            let consumer = PreparingAheadConsumer(group: group, preparesAhead: ahead, failing: failing)
            try await withDatabaseBus(store, consumer: consumer) { bus, database in
                // One commit: the consumer finds all twenty at once.
                try await database.transaction(.system) { tx in
                    for number in 0..<20 { try await Outbox.append(Pinged(number: number), organizationId: nil, in: tx) }
                }
                bus.didCommitEvents()
                try await waitUntil { try await appliedRows(database, group: group).count >= 20 }
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await appliedRows(database, group: group) == Array(0..<20))
            }
            let overlapped = consumer.preparedWhileWriting.withLock { $0 }
            if ahead {
                #expect(overlapped > 0, "no batch was prepared while another was written (failing: \(String(describing: failing)))")
            } else {
                #expect(overlapped == 0)
            }
            #expect(consumer.failedBatches.withLock { $0 } == (failing == nil ? 0 : 1))
        }
    }

    /// A bus of `busCase` over a migrated test table, for `body`.
    func withHarness(_ busCase: BusCase, _ body: @Sendable (BusHarness, any Database) async throws -> Void) async throws {
        let environment = try await TestEnvironment.make(busCase.store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            try await body(try BusHarness.make(busCase.kind, database: database), database)
        }
    }

    /// Runs `consumer` on a database bus over a migrated test table of `store` while `body` runs.
    func withDatabaseBus(
        _ store: TestStore, consumer: any EventConsumer, pollInterval: Duration = .milliseconds(20),
        _ body: @Sendable (DatabaseEventBus, any Database) async throws -> Void
    ) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let bus = DatabaseEventBus(database: database, logger: testLogger, pollInterval: pollInterval)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await bus.consumerService(for: consumer).run() }
                try await body(bus, database)
                group.cancelAll()
            }
        }
    }

    func waitUntil(_ timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    @Test(arguments: TestStore.available)
    func anEventCommitsOrRollsBackWithItsChange(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            await #expect(throws: TestFailure.self) {
                try await database.transaction(.system) { tx in
                    try await Outbox.append(Pinged(number: 1), organizationId: nil, in: tx)
                    throw TestFailure("the change failed")
                }
            }
            let count: Int = try await database.query("SELECT COUNT(*) AS n FROM \(Table("bus", "events"))").first?.get("n") ?? -1
            #expect(count == 0)
        }
    }
}

/// A fake Redis that answers the connection's handshake (one pipeline) with +OK and then never answers again.
final class AnswersOnceHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let answered = Mutex(false)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered.withLock({ $0 }) else { return }
        answered.withLock { $0 = true }
        // One +OK per command of the handshake (HELLO, CLIENT SETNAME…): each starts a line with "*".
        let text = String(buffer: unwrapInboundIn(data))
        let commands = text.components(separatedBy: "\r\n").filter { $0.hasPrefix("*") }.count
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: String(repeating: "+OK\r\n", count: commands))), promise: nil)
    }
}
