import Foundation
import HeraldCore
import HeraldStorage

/// An import of recent orders, as the owner follows it.
struct ImportJob: Sendable, Encodable {
    var id: UUID
    var integrationId: UUID
    /// `running`, `completed` or `failed`.
    var status: String
    var requested: Int
    var imported: Int
    var skipped: Int
    var error: String?
    var startedAt: Date
    var finishedAt: Date?
}

/// Import jobs and their progress.
struct ImportStore: Sendable {
    typealias T = IntegrationsTables

    func insert(_ job: ImportJob, siteId: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.imports) (id, integration_id, site_id, organization_id, status, requested, started_at)
            VALUES (\(job.id), \(job.integrationId), \(siteId), \(organizationId), \(job.status), \(job.requested), \(job.startedAt))
            """
        )
    }

    func find(_ id: UUID, integrationId: UUID, in tx: any SQLExecutor) async throws -> ImportJob? {
        try await tx.queryFirst("SELECT * FROM \(T.imports) WHERE id = \(id) AND integration_id = \(integrationId)").map { row in
            ImportJob(
                id: try row.get("id"), integrationId: try row.get("integration_id"), status: try row.get("status"),
                requested: try row.get("requested"), imported: try row.get("imported"), skipped: try row.get("skipped"),
                error: try row.get("error"), startedAt: try row.get("started_at"), finishedAt: try row.get("finished_at")
            )
        }
    }

    /// Records progress; a status other than `running` also records when the job finished.
    func progress(_ jobId: UUID, imported: Int, skipped: Int, status: String, error: String?, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.imports) SET status = \(status), imported = \(imported), skipped = \(skipped), error = \(error),
                finished_at = \(status == "running" ? nil : Date())
            WHERE id = \(jobId)
            """
        )
    }
}
