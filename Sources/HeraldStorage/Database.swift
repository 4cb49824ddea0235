import Foundation
import HeraldCore
import Synchronization

/// Whose rows a transaction may see. PostgreSQL enforces this with row-level security policies keyed on
/// per-transaction settings; SQLite relies on the repositories' `WHERE` clauses alone.
public struct TenantScope: Sendable, Equatable {
    /// The organization whose tenant-scoped rows are visible.
    public var organizationId: UUID?
    /// The signed-in user, for rows that belong to a user across organizations (their memberships).
    public var userId: UUID?

    public init(organizationId: UUID? = nil, userId: UUID? = nil) {
        self.organizationId = organizationId
        self.userId = userId
    }

    /// No tenant: tenant-scoped tables show no rows. Used for global tables (accounts, sessions, the event log).
    public static let system = TenantScope()

    public static func organization(_ id: UUID, user: UUID? = nil) -> TenantScope {
        TenantScope(organizationId: id, userId: user)
    }

    public static func user(_ id: UUID) -> TenantScope {
        TenantScope(userId: id)
    }
}

/// Runs statements inside one transaction. Never keep it beyond the closure that received it.
public protocol SQLExecutor: Sendable {
    var dialect: SQLDialect { get }
    /// Runs a statement and returns its rows.
    func query(_ sql: SQL) async throws -> [SQLRow]
    /// Switches the transaction to another tenant's rows (PostgreSQL's row-level security settings; SQLite has
    /// none). For batch consumers that write several tenants' rows in one transaction.
    func setTenant(_ scope: TenantScope) async throws
}

extension SQLExecutor {
    /// Runs a statement whose rows are not needed.
    public func execute(_ sql: SQL) async throws {
        _ = try await query(sql)
    }

    /// Runs a statement and returns its first row, if any.
    public func queryFirst(_ sql: SQL) async throws -> SQLRow? {
        try await query(sql).first
    }
}

/// A store Herald keeps its state in: the embedded SQLite file or a PostgreSQL server.
public protocol Database: Sendable {
    var dialect: SQLDialect { get }

    /// Runs `body` in one transaction with the tenant settings of `scope`; commits when it returns and rolls
    /// back when it throws.
    func transaction<T: Sendable>(
        _ scope: TenantScope,
        _ body: (any SQLExecutor) async throws -> T
    ) async throws -> T

    /// Runs `body` in a transaction that only reads. On the embedded store it runs on a connection of its own beside
    /// the writer's (WAL lets it read the last commit while a write goes on), so reads do not queue for the writer;
    /// PostgreSQL runs it like any transaction. A write in `body` fails.
    func read<T: Sendable>(
        _ scope: TenantScope,
        _ body: (any SQLExecutor) async throws -> T
    ) async throws -> T

    /// Checks that the store answers.
    func ping() async throws

    /// Releases the store's connections. Only needed when the store is not run as a service.
    func shutdown() async

    /// How many connections transactions hold and wait for now, for `herald_db_pool_connections`.
    var poolUse: PoolUse { get }
}

/// A store's connection pool at one moment.
public struct PoolUse: Sendable, Equatable {
    /// Connections a transaction holds.
    public var inUse: Int
    /// Transactions waiting for a connection.
    public var waiting: Int
    /// The most connections the pool opens.
    public var capacity: Int

    public init(inUse: Int, waiting: Int, capacity: Int) {
        self.inUse = inUse
        self.waiting = waiting
        self.capacity = capacity
    }
}

/// Counts transactions that asked for a connection and those that hold one. Two relaxed atomics per transaction:
/// cheap enough to stay on for every store.
final class PoolCounter: Sendable {
    private let asked = Atomic<Int>(0)
    private let holding = Atomic<Int>(0)
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// A transaction asks for a connection; pair with ``released()``.
    func requested() { asked.wrappingAdd(1, ordering: .relaxed) }
    /// A transaction got its connection; pair with ``returned()``.
    func leased() { holding.wrappingAdd(1, ordering: .relaxed) }
    func returned() { holding.wrappingSubtract(1, ordering: .relaxed) }
    func released() { asked.wrappingSubtract(1, ordering: .relaxed) }

    var use: PoolUse {
        let inUse = holding.load(ordering: .relaxed)
        return PoolUse(inUse: inUse, waiting: max(0, asked.load(ordering: .relaxed) - inUse), capacity: capacity)
    }
}

extension Database {
    public func read<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        try await transaction(scope, body)
    }

    /// A read in its own read-only transaction (see ``read(_:_:)``).
    public func read(_ sql: SQL, scope: TenantScope = .system) async throws -> [SQLRow] {
        try await read(scope) { try await $0.query(sql) }
    }

    /// A read or write in the system scope, in its own transaction.
    public func query(_ sql: SQL, scope: TenantScope = .system) async throws -> [SQLRow] {
        try await transaction(scope) { try await $0.query(sql) }
    }
}
