import Foundation
import HeraldCore
import HeraldStorage

/// Which source records (orders, customers) already became an activity, whichever way they came in.
struct SourceRecordStore: Sendable {
    typealias T = IntegrationsTables

    /// Claims a source record for an activity; false when it was claimed before.
    func claim(
        integrationId: UUID, sourceKey: String, organizationId: UUID, activityId: UUID, in tx: any SQLExecutor
    ) async throws -> Bool {
        let claimed = try await tx.query(
            """
            INSERT INTO \(T.sourceRecords) (integration_id, source_key, organization_id, activity_id)
            VALUES (\(integrationId), \(sourceKey), \(organizationId), \(activityId))
            ON CONFLICT (integration_id, source_key) DO NOTHING RETURNING activity_id
            """
        )
        return !claimed.isEmpty
    }

    /// The activity a source record became.
    func activity(integrationId: UUID, sourceKey: String, in tx: any SQLExecutor) async throws -> UUID? {
        try await tx.queryFirst(
            "SELECT activity_id FROM \(T.sourceRecords) WHERE integration_id = \(integrationId) AND source_key = \(sourceKey)"
        )?.get("activity_id")
    }
}
