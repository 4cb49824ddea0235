import Foundation
import HeraldCore
import HeraldStorage
import Tracing

/// Applies delivered events to a consumer exactly once, whichever bus delivered them: each event id is recorded
/// for the group (`bus.processed`) in the same transaction as the handler's writes, so a redelivery (a crash
/// before the acknowledgement, a message claimed from a dead consumer) changes nothing.
public struct EventApplier: Sendable {
    public let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    static let processed = Table("bus", "processed")

    /// Applies one event in its tenant's scope unless the group already did; returns whether it was applied now.
    @discardableResult
    public func apply(_ event: EventEnvelope, to consumer: any EventConsumer) async throws -> Bool {
        // One span per consumed event, a child of the span that published it.
        try await withSpan("\(consumer.group) \(event.type)", context: TraceContext.context(from: event.traceContext), ofKind: .consumer) { span in
            span.attributes["messaging.system"] = "herald"
            span.attributes["messaging.operation.type"] = "process"
            span.attributes["messaging.destination.name"] = event.type
            span.attributes["messaging.consumer.group.name"] = consumer.group
            span.attributes["messaging.message.id"] = event.id.lowercased
            return try await applyTraced(event, to: consumer)
        }
    }

    private func applyTraced(_ event: EventEnvelope, to consumer: any EventConsumer) async throws -> Bool {
        let scope = event.organizationId.map { TenantScope.organization($0) } ?? .system
        let applied = try await database.transaction(scope) { tx -> Bool in
            let fresh = try await tx.query(
                """
                INSERT INTO \(Self.processed) (group_name, event_id, processed_at) VALUES (\(consumer.group), \(event.id), \(Date()))
                ON CONFLICT (group_name, event_id) DO NOTHING RETURNING event_id
                """
            )
            guard !fresh.isEmpty else { return false }
            try await consumer.handle(event, in: tx)
            return true
        }
        if applied { await consumer.didCommit(event) }
        return applied
    }

    /// Applies the events of a batch the group has not applied yet in one transaction (started in the system scope),
    /// then runs `alsoInTransaction` in it (a database bus moves its position there). Returns the events applied now.
    @discardableResult
    public func applyBatch(
        _ events: [EventEnvelope], to consumer: any BatchEventConsumer, prepared: any Sendable,
        alsoInTransaction: @Sendable (any SQLExecutor) async throws -> Void = { _ in }
    ) async throws -> [EventEnvelope] {
        // A batch is one span, linked to the spans that published its events (a span has one parent).
        try await withSpan("\(consumer.group) batch", context: .topLevel, ofKind: .consumer) { span in
            span.attributes["messaging.system"] = "herald"
            span.attributes["messaging.operation.type"] = "process"
            span.attributes["messaging.consumer.group.name"] = consumer.group
            span.attributes["messaging.batch.message_count"] = events.count
            for event in events.prefix(32) {
                guard event.traceContext != nil else { continue }
                span.addLink(SpanLink(context: TraceContext.context(from: event.traceContext), attributes: [:]))
            }
            return try await applyBatchTraced(events, to: consumer, prepared: prepared, alsoInTransaction: alsoInTransaction)
        }
    }

    private func applyBatchTraced(
        _ events: [EventEnvelope], to consumer: any BatchEventConsumer, prepared: any Sendable,
        alsoInTransaction: @Sendable (any SQLExecutor) async throws -> Void
    ) async throws -> [EventEnvelope] {
        let now = Date()
        let applied = try await database.transaction(.system) { tx in
            var fresh = Set<UUID>()
            if !consumer.recordsProcessed { fresh = Set(events.map(\.id)) }
            for start in stride(from: 0, to: consumer.recordsProcessed ? events.count : 0, by: 500) {
                let chunk = events[start..<min(start + 500, events.count)]
                let values = SQL.joined(chunk.map { "(\(consumer.group), \($0.id), \(now))" }, separator: ", ")
                let rows = try await tx.query(
                    """
                    INSERT INTO \(Self.processed) (group_name, event_id, processed_at) VALUES \(values)
                    ON CONFLICT (group_name, event_id) DO NOTHING RETURNING event_id
                    """
                )
                for row in rows { fresh.insert(try row.get("event_id")) }
            }
            // Each id once, even if a bus handed the same event over twice in one batch.
            var taken = Set<UUID>()
            let unapplied = events.filter { fresh.contains($0.id) && taken.insert($0.id).inserted }
            if !unapplied.isEmpty { try await consumer.handle(batch: unapplied, prepared: prepared, in: tx) }
            try await tx.setTenant(.system)
            try await alsoInTransaction(tx)
            return unapplied
        }
        await consumer.didCommit(batch: applied, prepared: prepared)
        return applied
    }
}
