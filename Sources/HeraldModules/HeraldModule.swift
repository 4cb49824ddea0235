import HeraldEvents
import HeraldHTTP
import HeraldStorage
import Hummingbird
import ServiceLifecycle

/// What a Herald service contributes to a running process: its tables, its routes, the event consumers it
/// runs and its other long-running parts. The composition root iterates the modules the configuration selects,
/// and derives the list of migrations from the same catalogue, so nothing is kept in step by hand.
public protocol HeraldModule: Sendable {
    /// The service's name (`users`, `notifications`, …), as `--services` spells it.
    static var name: String { get }
    /// The service's migrations. Every set applies whichever services run, so one database has one schema.
    static var migrations: MigrationSet { get }
    /// Adds the service's routes.
    func addRoutes(to router: some RouterMethods<HeraldRequestContext>)
    /// The consumer groups this service runs on the event bus.
    var consumers: [any EventConsumer] { get }
    /// Other long-running parts (dispatchers, schedulers, caches' refreshers), started and stopped in order.
    var services: [any Service] { get }
    /// The tenant tables whose size Billing meters as the organization's storage with this service.
    var storageFootprint: StorageFootprint? { get }
    /// Outside systems this service needs to answer requests (ClickHouse for Analytics), checked by `/readyz`.
    var dependencies: [DependencyCheck] { get }
    /// Hot GET routes answered from memory on the event loop when they can be (``FastPathHandler``); each is also
    /// an ordinary route, which answers whenever the fast path declines.
    var fastRoutes: [any FastRoute] { get }
}

/// A dependency `/readyz` checks: its name in the answer, and a check that throws when it does not answer.
public struct DependencyCheck: Sendable {
    public var name: String
    public var check: @Sendable () async throws -> Void

    public init(_ name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }
}

extension HeraldModule {
    public var fastRoutes: [any FastRoute] { [] }
    public var consumers: [any EventConsumer] { [] }
    public var services: [any Service] { [] }
    public var storageFootprint: StorageFootprint? { nil }
    public var dependencies: [DependencyCheck] { [] }
}
