import Foundation
import HeraldCore
import HeraldStorage
import Logging
import NIOCore
import ServiceLifecycle

/// Ships raw events from the store to ClickHouse in large inserts (up to `batchSize` rows, otherwise whatever
/// arrived within `flushInterval`), each raw event exactly once.
///
/// Exactly once, without a second source of truth:
/// - Raw events are written only by the beacons consumer, one transaction at a time, so `seq` order is commit
///   order: a read of an organization's rows after a position never misses one that commits later.
/// - Each organization's rows are shipped in `seq` order, and every insert holds rows of one partition (one UTC
///   month), which ClickHouse writes as one part: the insert commits whole or not at all. So ClickHouse always holds
///   a prefix of each organization's rows, and `max(seq)` per organization in ClickHouse is where to resume. It is
///   read on start, after any failed insert and when another instance shipped meanwhile, once no insert of Herald's
///   is running there any more; it is never taken from the store.
/// - One instance ships at a time: on PostgreSQL each round runs in one transaction holding an advisory lock (freed
///   at once if the instance dies); `analytics.shipping` names the instance that shipped last, so one that takes
///   over reads the positions from ClickHouse again. SQLite is one process.
///
/// Row-level security: raw events are read per organization (the organizations in `analytics.tenants`), in one
/// transaction that switches tenant between reads, each with an explicit organization, so the reads are the same on
/// SQLite. Positions are per organization, so an organization that shows up late in `analytics.tenants` starts from
/// its own position and nothing of it is skipped.
///
/// When ClickHouse is down, nothing is lost: rows stay in the store (archiving keeps days not shipped yet), the
/// shipper retries with backoff and resumes from what ClickHouse holds.
public final class ClickHouseShipper: Service, Sendable {
    let database: any Database
    let client: ClickHouseClient
    let logger: Logger
    let store = ShippingStore()
    let retention = RetentionStore()
    /// This instance's token in `analytics.shipping`.
    let token = Int64.random(in: 1...Int64.max)
    /// How often idle organizations' positions (no rows, but read up to a newer `seq`) are recorded.
    static let idleRecordInterval: TimeInterval = 30

    init(database: any Database, client: ClickHouseClient, logger: Logger) {
        self.database = database
        self.client = client
        self.logger = logger
    }

    var configuration: ClickHouseConfiguration { client.configuration }

    /// The prefix of every insert's query id: inserts of this database still running in ClickHouse can be found.
    var queryIdPrefix: String { "herald-ship-\(configuration.database)-" }

    /// What the shipper knows between rounds.
    struct State {
        var schemaReady = false
        /// Per organization: every raw event of it up to here is in ClickHouse, and none after. nil: read from ClickHouse.
        var positions: [UUID: Int64]?
        var recorded: [UUID: Int64] = [:]
        var lastIdleRecord = Date.distantPast
        var rotation = 0
        var failures = 0
        var lastError = ""
        var waiting = false
    }

    public func run() async throws {
        logger.info("shipping raw events to ClickHouse", metadata: ["clickhouse": "\(configuration.description)"])
        await cancelWhenGracefulShutdown {
            var state = State()
            while !Task.isCancelled {
                let delay: TimeInterval
                do {
                    let more = try await self.cycle(&state)
                    if state.failures > 0 {
                        self.logger.info("ClickHouse answers again; shipping resumed", metadata: ["failures": "\(state.failures)"])
                    }
                    state.failures = 0
                    state.lastError = ""
                    delay = more ? 0 : self.configuration.flushInterval
                } catch is CancellationError {
                    break
                } catch {
                    if Task.isCancelled { break }
                    // The database or table may be what went missing: create them again (idempotent) before the next try.
                    state.schemaReady = false
                    state.failures += 1
                    let message = "\(error)"
                    if state.failures == 1 || message != state.lastError || state.failures % 20 == 0 {
                        self.logger.warning(
                            "could not ship raw events to ClickHouse; they stay in the store and shipping is retried",
                            metadata: ["error": "\(message)", "failures": "\(state.failures)"]
                        )
                    }
                    state.lastError = message
                    delay = min(30, 0.5 * pow(2, Double(min(state.failures - 1, 6)))) * Double.random(in: 0.8...1.2)
                }
                if delay > 0 { try? await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
            }
        }
    }

    /// One round: schema, then one batch under the shippers' lock. True when more rows are waiting.
    func cycle(_ state: inout State) async throws -> Bool {
        if !state.schemaReady {
            try await ensureSchema()
            state.schemaReady = true
        }
        guard database.dialect == .postgres else { return try await round(&state, in: nil) }
        return try await database.transaction(.system) { tx in
            guard try await self.store.lock(in: tx) else {
                if !state.waiting { self.logger.info("another instance ships raw events to ClickHouse now") }
                state.waiting = true
                state.positions = nil
                return false
            }
            state.waiting = false
            return try await self.round(&state, in: tx)
        }
    }

    /// Runs `body` in `tx` (PostgreSQL: the round's locked transaction) or in a short transaction of its own (SQLite,
    /// whose one connection is not held while ClickHouse works).
    func inStore<T: Sendable>(_ tx: (any SQLExecutor)?, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        if let tx { return try await body(tx) }
        return try await database.transaction(.system, body)
    }

    func round(_ state: inout State, in tx: (any SQLExecutor)?) async throws -> Bool {
        if try await inStore(tx, { try await self.store.lastShipper(in: $0) }) != token { state.positions = nil }
        let positions: [UUID: Int64]
        if let known = state.positions {
            positions = known
        } else {
            positions = try await loadPositions(&state, in: tx)
            state.positions = positions
        }
        return try await shipBatch(&state, positions: positions, in: tx)
    }

    /// Creates the database and table when missing (idempotent).
    func ensureSchema() async throws {
        try await client.execute(ClickHouseQueries.createDatabase(configuration.database), useDatabase: false)
        try await client.execute(ClickHouseQueries.createEvents)
    }

    /// Where each organization stands in ClickHouse, once no insert of Herald's into this database runs there (one
    /// whose answer was lost, or one of an instance that died, may still commit).
    func loadPositions(_ state: inout State, in tx: (any SQLExecutor)?) async throws -> [UUID: Int64] {
        let deadline = Date().addingTimeInterval(configuration.insertTimeout * 4)
        while try await client.runningQueries(prefix: queryIdPrefix) > 0 {
            guard Date() < deadline else {
                throw ClickHouseError(kind: .badAnswer, description: "an earlier insert of raw events is still running in ClickHouse")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        var positions: [UUID: Int64] = [:]
        for row in try await client.select(ClickHouseQueries.positions) {
            guard let organizationId = row["organization_id"].flatMap(ClickHouseSQL.uuid), let seq = row["seq"].flatMap(ClickHouseSQL.int64) else {
                throw ClickHouseError(kind: .badAnswer, description: "ClickHouse answered the shipping positions with an unreadable row")
            }
            positions[organizationId] = seq
        }
        // Record ClickHouse's truth (a new or emptied ClickHouse database starts from nothing, and archiving must know),
        // and that this instance ships now.
        let now = Date()
        let recorded = try await inStore(tx) { tx -> [UUID: Int64] in
            let all = Set(try await self.retention.organizations(in: tx)).union(positions.keys)
            let recorded = Dictionary(uniqueKeysWithValues: all.map { ($0, positions[$0] ?? 0) })
            try await self.store.record(recorded.map { (ShippingStore.target($0.key), $0.value) }, at: now, in: tx)
            try await self.store.claim(token: self.token, at: now, in: tx)
            return recorded
        }
        state.recorded = recorded
        logger.debug("ClickHouse shipping positions read", metadata: ["organizations": "\(positions.count)"])
        return positions
    }

    /// Reads up to `batchSize` waiting rows across organizations and ships them; true when the batch was full.
    func shipBatch(_ state: inout State, positions start: [UUID: Int64], in tx: (any SQLExecutor)?) async throws -> Bool {
        let limit = configuration.batchSize
        let rotation = state.rotation
        state.rotation &+= 1
        // One transaction, one organization's scope after another. `highest` is the largest seq read so far: an
        // organization read complete after it has no row below it that was not read (seq order is commit order).
        let read = try await inStore(tx) { tx -> (rows: [StoredRawEvent], complete: [(UUID, Int64)]) in
            let organizations = try await self.retention.organizations(in: tx)
            guard !organizations.isEmpty else { return ([], []) }
            let first = rotation % organizations.count
            var rows: [StoredRawEvent] = []
            var complete: [(UUID, Int64)] = []
            var highest: Int64 = 0
            for organizationId in organizations[first...] + organizations[..<first] {
                let budget = limit - rows.count
                guard budget > 0 else { break }
                try await tx.setTenant(.organization(organizationId))
                let page = try await self.store.pending(organizationId: organizationId, after: start[organizationId] ?? 0, limit: budget, in: tx)
                rows += page
                highest = max(highest, page.last?.seq ?? 0)
                if page.count < budget { complete.append((organizationId, highest)) }
            }
            try await tx.setTenant(.system)
            return (rows, complete)
        }
        var positions = start
        var highestShipped: Int64 = 0
        let rows = read.rows.sorted { $0.seq < $1.seq }
        var index = 0
        while index < rows.count {
            // One insert per run of rows in one partition, in seq order.
            let partition = ClickHouseQueries.partition(atMillis: rows[index].event.atMillis)
            var end = index + 1
            while end < rows.count, ClickHouseQueries.partition(atMillis: rows[end].event.atMillis) == partition { end += 1 }
            let run = rows[index..<end]
            do {
                try await client.insert(into: ClickHouseQueries.table, ndjson: Self.ndjson(run), queryId: queryIdPrefix + UUID().lowercased)
            } catch {
                // Whether it committed is ClickHouse's to say: read the positions again (once it no longer runs).
                state.positions = nil
                throw error
            }
            for stored in run { positions[stored.organizationId] = max(positions[stored.organizationId] ?? 0, stored.seq) }
            highestShipped = max(highestShipped, run.last?.seq ?? 0)
            state.positions = positions
            index = end
        }
        for (organizationId, highest) in read.complete {
            positions[organizationId] = max(positions[organizationId] ?? 0, highest)
        }
        state.positions = positions
        try await record(&state, positions: positions, highestShipped: highestShipped, in: tx)
        if !rows.isEmpty {
            logger.debug("shipped raw events to ClickHouse", metadata: ["rows": "\(rows.count)", "seq": "\(highestShipped)"])
        }
        return read.rows.count >= limit
    }

    /// Records changed positions in `analytics.shipping`: after every insert, and idle organizations' every 30 s.
    func record(_ state: inout State, positions: [UUID: Int64], highestShipped: Int64, in tx: (any SQLExecutor)?) async throws {
        let now = Date()
        guard highestShipped > 0 || now.timeIntervalSince(state.lastIdleRecord) >= Self.idleRecordInterval else { return }
        var changes = positions.filter { state.recorded[$0.key] != $0.value }.map { (target: ShippingStore.target($0.key), seq: $0.value) }
        if highestShipped > 0 { changes.append((ShippingStore.target, highestShipped)) }
        if highestShipped == 0 { state.lastIdleRecord = now }
        guard !changes.isEmpty else { return }
        try await inStore(tx) { try await self.store.record(changes, at: now, in: $0) }
        state.recorded.merge(positions) { $1 }
    }

    /// The rows as ClickHouse's JSONEachRow input: the archive's NDJSON, with `seq`, the organization, 0/1 flags, and
    /// the value as the bits of the double (see ``ClickHouseQueries/createEvents``).
    static func ndjson(_ rows: ArraySlice<StoredRawEvent>) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: rows.count * 640)
        for stored in rows {
            var event = stored.event
            let value = event.value
            event.value = nil
            var line = event.jsonLine(organizationId: stored.organizationId, seq: stored.seq, flagsAsNumbers: true)
            if let value, value.isFinite, line.last == "}" {
                line.removeLast()
                line += ",\"value_bits\":\(Int64(bitPattern: value.bitPattern))}"
            }
            buffer.writeString(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }
}
