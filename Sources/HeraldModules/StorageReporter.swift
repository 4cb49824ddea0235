import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage
import Logging
import ServiceLifecycle

/// Measures what each service of this process stores per organization and publishes `storage.reported`, so Billing
/// meters storage from events rather than from other services' tables.
///
/// An organization's size is published when it changed since this process last reported it (every size after a
/// restart), and as 0 when its rows are gone, so Billing's view never keeps a size that no longer exists.
public struct StorageReporter: Service {
    public struct Key: Hashable, Sendable {
        var service: String
        var organizationId: UUID
    }

    let database: any Database
    let bus: any EventBus
    let footprints: [(service: String, footprint: StorageFootprint)]
    let interval: Duration
    let started: ReadyGate
    let logger: Logger

    public init(
        database: any Database, bus: any EventBus, footprints: [(service: String, footprint: StorageFootprint)], interval: Duration,
        started: ReadyGate, logger: Logger
    ) {
        self.database = database
        self.bus = bus
        self.footprints = footprints
        self.interval = interval
        self.started = started
        self.logger = logger
    }

    public func run() async throws {
        // A service that returns early stops the whole process: with nothing to measure, wait for shutdown instead.
        guard !footprints.isEmpty else { return try await gracefulShutdown() }
        await cancelWhenGracefulShutdown {
            while !started.isOpen && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
            var reported: [Key: Int64] = [:]
            while !Task.isCancelled {
                do {
                    reported = try await report(after: reported)
                } catch {
                    logger.warning("could not report storage to billing", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Measures every footprint and publishes the sizes that differ from `previous`; returns what is now reported.
    public func report(after previous: [Key: Int64], now: Date = Date()) async throws -> [Key: Int64] {
        var current: [Key: Int64] = [:]
        for (service, footprint) in footprints {
            let sizes = try await footprint.bytesByOrganization(in: database)
            for (organizationId, bytes) in sizes { current[Key(service: service, organizationId: organizationId)] = bytes }
        }
        var changes = current.filter { previous[$0.key] != $0.value }
        for key in previous.keys where current[key] == nil && previous[key] != 0 {
            changes[key] = 0
            current[key] = 0
        }
        guard !changes.isEmpty else { return current }
        // A few hundred events per transaction keeps each commit short on a large installation.
        let ordered = changes.sorted { ($0.key.organizationId.uuidString, $0.key.service) < ($1.key.organizationId.uuidString, $1.key.service) }
        var index = 0
        while index < ordered.count {
            let chunk = ordered[index..<min(index + 500, ordered.count)]
            try await database.transaction(.system) { tx in
                for (key, bytes) in chunk {
                    let event = StorageReported(organizationId: key.organizationId, service: key.service, bytes: bytes, measuredAt: now)
                    try await Outbox.append(event, organizationId: key.organizationId, in: tx)
                }
            }
            index += chunk.count
        }
        bus.didCommitEvents()
        logger.debug("storage reported", metadata: ["organizations": "\(changes.count)"])
        return current
    }
}
