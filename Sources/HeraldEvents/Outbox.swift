import Foundation
import HeraldStorage

/// The transactional outbox: events are rows written in the same transaction as the change that caused them,
/// so a change and its event commit or roll back together. Every bus implementation delivers from here.
public enum Outbox {
    static let events = Table("bus", "events")

    /// Appends an event inside the caller's transaction.
    /// The event carries the trace of the task appending it (a request's span, a consumed event's span).
    public static func append(_ envelope: EventEnvelope, in tx: any SQLExecutor) async throws {
        let traceContext = envelope.traceContext ?? TraceContext.current()
        // PostgreSQL stores the document as `json` (migration 3): bound as text and checked by json's own input,
        // never converted to jsonb. SQLite stores text.
        let data: SQL = tx.dialect == .postgres ? "CAST(\(envelope.data) AS json)" : "\(envelope.data)"
        try await tx.execute(
            """
            INSERT INTO \(events) (id, type, version, occurred_at, organization_id, site_id, data, trace_context)
            VALUES (\(envelope.id), \(envelope.type), \(envelope.version), \(envelope.occurredAt),
                    \(envelope.organizationId), \(envelope.siteId), \(data), \(traceContext))
            """
        )
    }

    /// Encodes and appends a domain event inside the caller's transaction.
    @discardableResult
    public static func append<E: DomainEvent>(
        _ event: E,
        organizationId: UUID?,
        siteId: UUID? = nil,
        in tx: any SQLExecutor
    ) async throws -> EventEnvelope {
        let envelope = try EventEnvelope(event, organizationId: organizationId, siteId: siteId)
        try await append(envelope, in: tx)
        return envelope
    }

    /// The bus's own tables: the event log (outbox), consumer positions, retries and dead letters, processed ids.
    public static let migrations = MigrationSet(
        owner: "bus",
        migrations: [
            BusMigrations.v1,
            BusMigrations.v2,
            BusMigrations.v3,
        ]
    )
}

/// The bus's migrations, one file each under `Migrations/`.
enum BusMigrations {}
