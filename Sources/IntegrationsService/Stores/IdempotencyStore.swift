import Foundation
import HeraldCore
import HeraldStorage

/// Answers to requests that carried an `Idempotency-Key`, per site, so a retried request gets the first answer.
struct IdempotencyStore: Sendable {
    typealias T = IntegrationsTables

    /// A stored answer to a key.
    struct Answer: Sendable {
        var requestHash: String
        var status: Int
        var body: String
    }

    /// Records the answer to a key; false when a concurrent request with the same key recorded one first.
    func insert(
        key: String, siteId: UUID, organizationId: UUID, requestHash: String, status: Int, response: String, now: Date, in tx: any SQLExecutor
    ) async throws -> Bool {
        let inserted = try await tx.query(
            """
            INSERT INTO \(T.idempotencyKeys) (site_id, key, organization_id, request_hash, status, response, created_at)
            VALUES (\(siteId), \(key), \(organizationId), \(requestHash), \(status), \(response), \(now))
            ON CONFLICT (site_id, key) DO NOTHING RETURNING key
            """
        )
        return !inserted.isEmpty
    }

    /// The answer recorded for a key since `since`.
    func find(key: String, siteId: UUID, since: Date, in tx: any SQLExecutor) async throws -> Answer? {
        try await tx.queryFirst(
            """
            SELECT request_hash, status, response FROM \(T.idempotencyKeys)
            WHERE site_id = \(siteId) AND key = \(key) AND created_at > \(since)
            """
        ).map { Answer(requestHash: try $0.get("request_hash"), status: try $0.get("status"), body: try $0.get("response")) }
    }
}
