import Foundation
import HeraldCore
import HeraldStorage

struct InvoiceRecord: Sendable, Equatable {
    var id: String
    var organizationId: UUID
    var number: String?
    /// Stripe's invoice status (`draft`, `open`, `paid`, `uncollectible`, `void`), or `payment_failed` when the
    /// last attempt failed and the invoice is still open.
    var status: String
    var amountDue: Int64
    var amountPaid: Int64
    var currency: String
    var periodStart: Date?
    var periodEnd: Date?
    var hostedURL: String?
    var createdAt: Date
    var updatedAt: Date
    /// The Stripe event (its `created` time) that last set this row.
    var stripeEventCreated: Int64
}

/// Invoices mirrored from Stripe (webhooks and list calls), and the Stripe events already applied.
struct InvoiceStore: Sendable {
    typealias T = BillingTables

    /// Inserts or updates an invoice unless what is stored is newer or final: a paid or void invoice never goes back.
    func upsert(_ invoice: InvoiceRecord, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.invoices) AS i (id, organization_id, number, status, amount_due, amount_paid, currency, period_start, period_end,
                hosted_url, created_at, updated_at, stripe_event_created)
            VALUES (\(invoice.id), \(invoice.organizationId), \(invoice.number), \(invoice.status), \(invoice.amountDue), \(invoice.amountPaid),
                \(invoice.currency), \(invoice.periodStart), \(invoice.periodEnd), \(invoice.hostedURL), \(invoice.createdAt), \(invoice.updatedAt),
                \(invoice.stripeEventCreated))
            ON CONFLICT (id) DO UPDATE SET number = COALESCE(excluded.number, i.number), status = excluded.status,
                amount_due = excluded.amount_due, amount_paid = excluded.amount_paid, period_start = excluded.period_start,
                period_end = excluded.period_end, hosted_url = COALESCE(excluded.hosted_url, i.hosted_url), updated_at = excluded.updated_at,
                stripe_event_created = excluded.stripe_event_created
            WHERE i.status NOT IN ('paid', 'void') AND excluded.stripe_event_created >= i.stripe_event_created
            """
        )
    }

    func list(organizationId: UUID, limit: Int, before: Date?, in tx: any SQLExecutor) async throws -> [InvoiceRecord] {
        let cursor: SQL = before.map { "AND created_at < \($0)" } ?? ""
        return try await tx.query(
            """
            SELECT * FROM \(T.invoices) WHERE organization_id = \(organizationId) \(cursor)
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """
        ).map(Self.invoice)
    }

    func find(_ id: String, in tx: any SQLExecutor) async throws -> InvoiceRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.invoices) WHERE id = \(id)").map(Self.invoice)
    }

    /// Records a Stripe event id; false when it was applied before.
    func markStripeEvent(_ id: String, type: String, at: Date, in tx: any SQLExecutor) async throws -> Bool {
        !(try await tx.query(
            """
            INSERT INTO \(T.stripeEvents) (id, type, received_at) VALUES (\(id), \(type), \(at))
            ON CONFLICT (id) DO NOTHING RETURNING id
            """
        )).isEmpty
    }

    static func invoice(_ row: SQLRow) throws -> InvoiceRecord {
        InvoiceRecord(
            id: try row.get("id"), organizationId: try row.get("organization_id"), number: try row.get("number"), status: try row.get("status"),
            amountDue: try row.get("amount_due"), amountPaid: try row.get("amount_paid"), currency: try row.get("currency"),
            periodStart: try row.get("period_start"), periodEnd: try row.get("period_end"), hostedURL: try row.get("hosted_url"),
            createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at"), stripeEventCreated: try row.get("stripe_event_created")
        )
    }
}
