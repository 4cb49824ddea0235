import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage

/// An activity as the Notifications service keeps it: displayable fields in clear, the rest encrypted.
struct ActivityRecord: Sendable {
    var id: UUID
    var siteId: UUID
    var type: String
    var firstName: String?
    var city: String?
    var region: String?
    var country: String?
    var productName: String?
    var productUrl: String?
    var imageUrl: String?
    var rating: Int?
    var occurredAt: Date
    var provenance: Provenance
}

struct ActivityStore: Sendable {
    typealias T = NotificationsTables

    /// Stores an activity once (a redelivered event changes nothing).
    func insert(_ event: ActivityCaptured, organizationId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        let rows = try await tx.query(
            """
            INSERT INTO \(T.activities) (id, site_id, organization_id, type, first_name, city, region, country, product_name, product_url,
                image_url, rating, last_name_encrypted, email_encrypted, occurred_at, provenance, recorded_at)
            VALUES (\(event.activityId), \(event.siteId), \(organizationId), \(event.type), \(event.firstName), \(event.city), \(event.region),
                \(event.country), \(event.productName), \(event.productUrl), \(event.imageUrl), \(event.rating), \(event.lastNameEncrypted),
                \(event.emailEncrypted), \(event.occurredAt), \(try SQLJSON(encoding: event.provenance)), \(Date()))
            ON CONFLICT (id) DO NOTHING RETURNING id
            """
        )
        return !rows.isEmpty
    }

    func recent(siteId: UUID, since: Date, limit: Int, in tx: any SQLExecutor) async throws -> [ActivityRecord] {
        try await tx.query(
            """
            SELECT * FROM \(T.activities) WHERE site_id = \(siteId) AND occurred_at >= \(since)
            ORDER BY occurred_at DESC, id DESC LIMIT \(limit)
            """
        ).map(decode)
    }

    func list(siteId: UUID, before: TimeCursor?, limit: Int, in tx: any SQLExecutor) async throws -> [ActivityRecord] {
        let cursor: SQL = before.map { "AND (occurred_at, id) < (\($0.date), \($0.id))" } ?? ""
        return try await tx.query(
            "SELECT * FROM \(T.activities) WHERE site_id = \(siteId) \(cursor) ORDER BY occurred_at DESC, id DESC LIMIT \(limit)"
        ).map(decode)
    }

    func count(siteId: UUID, type: String, since: Date, in tx: any SQLExecutor) async throws -> Int {
        try await tx.queryFirst(
            "SELECT COUNT(*) AS n FROM \(T.activities) WHERE site_id = \(siteId) AND type = \(type) AND occurred_at >= \(since)"
        )?.get("n") ?? 0
    }

    /// Counts per product URL, for page-scoped counters.
    func countByProduct(siteId: UUID, type: String, since: Date, in tx: any SQLExecutor) async throws -> [(url: String, count: Int, name: String?)] {
        try await tx.query(
            """
            SELECT product_url, COUNT(*) AS n, MAX(product_name) AS name FROM \(T.activities)
            WHERE site_id = \(siteId) AND type = \(type) AND occurred_at >= \(since) AND product_url IS NOT NULL
            GROUP BY product_url ORDER BY n DESC LIMIT 200
            """
        ).map { (try $0.get("product_url"), try $0.get("n"), try $0.get("name")) }
    }

    func decode(_ row: SQLRow) throws -> ActivityRecord {
        let provenanceText: String = try row.get("provenance")
        return ActivityRecord(
            id: try row.get("id"),
            siteId: try row.get("site_id"),
            type: try row.get("type"),
            firstName: try row.get("first_name"),
            city: try row.get("city"),
            region: try row.get("region"),
            country: try row.get("country"),
            productName: try row.get("product_name"),
            productUrl: try row.get("product_url"),
            imageUrl: try row.get("image_url"),
            rating: try row.get("rating"),
            occurredAt: try row.get("occurred_at"),
            provenance: try JSONDecoder.herald.decode(Provenance.self, from: Data(provenanceText.utf8))
        )
    }
}
