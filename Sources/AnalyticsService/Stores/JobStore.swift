import Foundation
import HeraldCore
import HeraldStorage

/// A unit of background work: an export to build, a scheduled report to run, a report to send, maintenance.
struct Job: Sendable, Equatable {
    enum Kind: String, Sendable {
        case export
        case schedule
        case delivery
        case maintenance
    }

    var kind: Kind
    /// The export, scheduled report or delivery the job is about (`maintenance` has a fixed id).
    var subject: String
    var organizationId: UUID
    var attempts: Int

    /// The row's key: one job per subject and kind, so enqueueing twice only moves the due time.
    var key: String { "\(kind.rawValue):\(subject)" }
}

/// The queue of due work across tenants (`analytics.jobs`). It holds identifiers and times only; the work's data
/// stays in tenant tables. A worker leases a job while it runs, so a crashed worker's jobs come back when the
/// lease ends, and two instances never run the same job at once.
struct JobStore: Sendable {
    typealias T = AnalyticsTables
    static let maintenanceOrganization = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    /// Adds a job, or moves an existing one's due time (and clears its lease).
    func enqueue(_ kind: Job.Kind, subject: String, organizationId: UUID, at due: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.jobs) (id, kind, organization_id, due_at, lease_until, attempts)
            VALUES (\("\(kind.rawValue):\(subject)"), \(kind.rawValue), \(organizationId), \(due), NULL, 0)
            ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, lease_until = NULL
            """
        )
    }

    /// Adds a job unless one with the same key exists (recurring work that must exist exactly once).
    func ensure(_ kind: Job.Kind, subject: String, organizationId: UUID, at due: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.jobs) (id, kind, organization_id, due_at, lease_until, attempts)
            VALUES (\("\(kind.rawValue):\(subject)"), \(kind.rawValue), \(organizationId), \(due), NULL, 0)
            ON CONFLICT (id) DO NOTHING
            """
        )
    }

    /// Leases up to `limit` due jobs for `lease`, counting an attempt on each.
    func claimDue(now: Date, limit: Int, lease: TimeInterval, in tx: any SQLExecutor) async throws -> [Job] {
        let rows = try await tx.query(
            """
            UPDATE \(T.jobs) SET lease_until = \(now.addingTimeInterval(lease)), attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM \(T.jobs) WHERE due_at <= \(now) AND (lease_until IS NULL OR lease_until < \(now))
                ORDER BY due_at LIMIT \(limit))
            RETURNING id, kind, organization_id, attempts
            """
        )
        return try rows.compactMap { row in
            let id: String = try row.get("id")
            guard let kind = Job.Kind(rawValue: try row.get("kind")), let colon = id.firstIndex(of: ":") else { return nil }
            return Job(
                kind: kind, subject: String(id[id.index(after: colon)...]), organizationId: try row.get("organization_id"),
                attempts: try row.get("attempts")
            )
        }
    }

    /// Keeps a running job's lease alive.
    func extendLease(_ job: Job, until: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.jobs) SET lease_until = \(until) WHERE id = \(job.key)")
    }

    /// Runs the job again at `due`, keeping its attempt count (a retry), or resetting it (the next occurrence).
    func reschedule(_ job: Job, at due: Date, resetAttempts: Bool, in tx: any SQLExecutor) async throws {
        if resetAttempts {
            try await tx.execute("UPDATE \(T.jobs) SET due_at = \(due), lease_until = NULL, attempts = 0 WHERE id = \(job.key)")
        } else {
            try await tx.execute("UPDATE \(T.jobs) SET due_at = \(due), lease_until = NULL WHERE id = \(job.key)")
        }
    }

    func complete(_ job: Job, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.jobs) WHERE id = \(job.key)")
    }

    func remove(_ kind: Job.Kind, subject: String, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.jobs) WHERE id = \("\(kind.rawValue):\(subject)")")
    }

    /// The next time any job is due, to sleep until then.
    func nextDue(in tx: any SQLExecutor) async throws -> Date? {
        try await tx.queryFirst("SELECT MIN(due_at) AS due FROM \(T.jobs)")?.get("due", as: Date?.self)
    }
}
