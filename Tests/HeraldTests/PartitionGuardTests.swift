import Foundation
import HeraldCore
import HeraldStorage
import Testing

@testable import AnalyticsService

/// The analytics ingest makes PostgreSQL's daily partition of every day it writes before writing it.
@Suite("Analytics partitions")
struct PartitionGuardTests {
    @Test(arguments: TestStore.available.filter { $0 == .postgres })
    func theIngestCreatesTheDailyPartitionsItNeeds(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            try await Migrator(database: database, logger: testLogger).migrate([AnalyticsService.migrations])
            let retention = RetentionStore()
            // 2031-01-01 and the day after: far beyond what maintenance creates ahead.
            let first = Int(Date(timeIntervalSince1970: 1_924_992_000).timeIntervalSince1970 / 86_400)
            let before = Set(try await database.transaction(.system) { try await retention.partitions(in: $0) })
            #expect(!before.contains("events_p20310101"))
            let guardian = PartitionGuard()
            await guardian.ensure(utcDays: [first, first + 1], database: database)
            let after = Set(try await database.transaction(.system) { try await retention.partitions(in: $0) })
            #expect(after.isSuperset(of: ["events_p20310101", "events_p20310102"]))
            // Known now: asking again costs nothing and changes nothing.
            await guardian.ensure(utcDays: [first], database: database)
            #expect(Set(try await database.transaction(.system) { try await retention.partitions(in: $0) }) == after)
        }
    }
}
