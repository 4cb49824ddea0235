import Foundation
import HeraldCore
import HeraldStorage

/// One inbound delivery as the owner sees it.
struct InboundDelivery: Sendable, Encodable {
    var id: UUID
    var integrationId: UUID
    var receivedAt: Date
    var sourceDeliveryId: String?
    var topic: String?
    /// `received` (queued), `accepted` (became an activity), `duplicate`, `ignored` or `rejected`.
    var status: String
    var reason: String?
    var activityId: UUID?
    var signatureVerified: Bool
    var processedAt: Date?
}

struct DeliveryStore: Sendable {
    typealias T = IntegrationsTables

    func insert(_ delivery: InboundDelivery, siteId: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.inboundDeliveries) (id, integration_id, site_id, organization_id, received_at, source_delivery_id, topic, status,
                reason, activity_id, signature_verified, processed_at)
            VALUES (\(delivery.id), \(delivery.integrationId), \(siteId), \(organizationId), \(delivery.receivedAt), \(delivery.sourceDeliveryId),
                \(delivery.topic), \(delivery.status), \(delivery.reason), \(delivery.activityId), \(delivery.signatureVerified), \(delivery.processedAt))
            """
        )
    }

    func finish(_ id: UUID, status: String, reason: String?, activityId: UUID?, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.inboundDeliveries) SET status = \(status), reason = \(reason), activity_id = \(activityId), processed_at = \(Date())
            WHERE id = \(id)
            """
        )
    }

    func list(integrationId: UUID, limit: Int, before: TimeCursor?, in tx: any SQLExecutor) async throws -> [InboundDelivery] {
        let cursor: SQL = before.map { "AND (received_at, id) < (\($0.date), \($0.id))" } ?? ""
        return try await tx.query(
            """
            SELECT * FROM \(T.inboundDeliveries) WHERE integration_id = \(integrationId) \(cursor)
            ORDER BY received_at DESC, id DESC LIMIT \(limit)
            """
        ).map { row in
            InboundDelivery(
                id: try row.get("id"), integrationId: try row.get("integration_id"), receivedAt: try row.get("received_at"),
                sourceDeliveryId: try row.get("source_delivery_id"), topic: try row.get("topic"), status: try row.get("status"),
                reason: try row.get("reason"), activityId: try row.get("activity_id"), signatureVerified: try row.get("signature_verified"),
                processedAt: try row.get("processed_at")
            )
        }
    }
}
