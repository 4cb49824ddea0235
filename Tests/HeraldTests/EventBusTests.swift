import Foundation
import HeraldCore
import HeraldEvents
import HeraldStorage
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

@Suite("Event bus (SQLite and PostgreSQL)")
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

    func publish(_ numbers: Range<Int>, bus: DatabaseEventBus, database: any Database) async throws {
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
        bus: DatabaseEventBus,
        timeout: Duration = .seconds(20),
        during: @Sendable () async throws -> Void = {},
        until done: @Sendable () async -> Bool
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for consumer in consumers {
                let service = bus.consumerService(for: consumer)
                group.addTask { try await service.run() }
            }
            try await during()
            let deadline = ContinuousClock.now + timeout
            while await !done(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            group.cancelAll()
        }
    }

    @Test(arguments: TestStore.available)
    func everyGroupGetsEveryEventOnce(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let bus = DatabaseEventBus(database: database, logger: testLogger, pollInterval: .milliseconds(50))
            let a = RecordingConsumer(group: "test.a")
            let b = RecordingConsumer(group: "test.b")
            try await publish(0..<10, bus: bus, database: database)
            // Publish more while the consumers run, from concurrent transactions.
            try await run(
                [a, b], bus: bus,
                during: {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for batch in 0..<3 {
                            group.addTask { try await publish((10 + batch * 10)..<(20 + batch * 10), bus: bus, database: database) }
                        }
                        try await group.waitForAll()
                    }
                }
            ) { a.numbers.count >= 40 && b.numbers.count >= 40 }
            #expect(a.numbers.sorted() == Array(0..<40))
            #expect(b.numbers.sorted() == Array(0..<40))
            #expect(try await appliedRows(database, group: "test.a") == Array(0..<40))
        }
    }

    @Test(arguments: TestStore.available)
    func redeliveryIsAppliedOnce(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let bus = DatabaseEventBus(database: database, logger: testLogger, pollInterval: .milliseconds(50))
            let consumer = RecordingConsumer(group: "test.once")
            try await publish(0..<5, bus: bus, database: database)
            try await run([consumer], bus: bus) { consumer.numbers.count >= 5 }
            // Forget the group's position, as a crash between handling and saving the position would.
            try await database.transaction(.system) { tx in
                try await tx.execute("UPDATE \(Table("bus", "subscriptions")) SET position_tx = 0, position_seq = 0 WHERE group_name = 'test.once'")
            }
            let again = RecordingConsumer(group: "test.once")
            try await run([again], bus: bus, timeout: .seconds(1)) { false }
            #expect(again.numbers.isEmpty)
            #expect(try await appliedRows(database, group: "test.once") == Array(0..<5))
        }
    }

    @Test(arguments: TestStore.available)
    func failuresRetryThenDeadLetterAndCanBeRequeued(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let bus = DatabaseEventBus(
                database: database, logger: testLogger,
                retryPolicy: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxDelay: .milliseconds(50)),
                pollInterval: .milliseconds(20)
            )
            let consumer = RecordingConsumer(group: "test.failing", failing: true)
            try await publish(7..<8, bus: bus, database: database)
            try await run([consumer], bus: bus) {
                await (try? bus.deadLetters(group: "test.failing"))?.isEmpty == false
            }
            let dead = try await bus.deadLetters(group: "test.failing")
            #expect(dead.count == 1)
            #expect(dead.first?.attempts == 3)
            #expect(dead.first?.lastError.contains("failed on purpose") == true)
            // Every failed attempt rolled back its writes.
            #expect(try await appliedRows(database, group: "test.failing").isEmpty)

            consumer.failing.withLock { $0 = false }
            let eventId = try #require(dead.first?.event.id)
            #expect(try await bus.requeue(group: "test.failing", eventId: eventId))
            try await run([consumer], bus: bus) { consumer.numbers == [7] }
            #expect(consumer.numbers == [7])
            #expect(try await bus.deadLetters(group: "test.failing").isEmpty)
            #expect(try await appliedRows(database, group: "test.failing") == [7])
        }
    }

    @Test(arguments: TestStore.available)
    func eventsPublishedBeforeARestartAreDeliveredAfterIt(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([Self.testTable])
            let bus = DatabaseEventBus(database: database, logger: testLogger)
            try await publish(0..<3, bus: bus, database: database)
        }
        // A new process: a new connection, a new bus, the same store.
        try await environment.withDatabase { database in
            let bus = DatabaseEventBus(database: database, logger: testLogger, pollInterval: .milliseconds(50))
            let consumer = RecordingConsumer(group: "test.durable")
            try await run([consumer], bus: bus) { consumer.numbers.count >= 3 }
            #expect(consumer.numbers == [0, 1, 2])
        }
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
