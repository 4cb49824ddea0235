import Foundation
import HeraldCore
import HeraldStorage

/// Billing's latest decision for an organization, as this service keeps it.
struct DeliveryHold: Sendable, Equatable {
    var paused: Bool
    /// `quota` or `payment`.
    var reason: String?
    var maxActiveCampaigns: Int64?
}

/// The delivery holds Billing decides (`billing.delivery_changed`); an older decision never replaces a newer one.
struct DeliveryHoldStore: Sendable {
    typealias T = NotificationsTables

    func apply(organizationId: UUID, _ hold: DeliveryHold, decidedAt: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.deliveryHolds) AS h (organization_id, paused, reason, max_active_campaigns, decided_at)
            VALUES (\(organizationId), \(hold.paused), \(hold.reason), \(hold.maxActiveCampaigns), \(decidedAt))
            ON CONFLICT (organization_id) DO UPDATE SET paused = excluded.paused, reason = excluded.reason,
                max_active_campaigns = excluded.max_active_campaigns, decided_at = excluded.decided_at
            WHERE excluded.decided_at >= h.decided_at
            """
        )
    }

    func find(organizationId: UUID, in tx: any SQLExecutor) async throws -> DeliveryHold? {
        guard let row = try await tx.queryFirst("SELECT * FROM \(T.deliveryHolds) WHERE organization_id = \(organizationId)") else { return nil }
        return DeliveryHold(paused: try row.get("paused"), reason: try row.get("reason"), maxActiveCampaigns: try row.get("max_active_campaigns"))
    }

    /// Published notifications across the organization's sites (the plan's active-campaign quota counts them all).
    func publishedCount(organizationId: UUID, in tx: any SQLExecutor) async throws -> Int64 {
        try await tx.queryFirst(
            "SELECT COUNT(*) AS n FROM \(T.notifications) WHERE organization_id = \(organizationId) AND status = 'published'"
        )?.get("n") ?? 0
    }
}
