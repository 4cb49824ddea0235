import Foundation
import HeraldCore
import HeraldEvents
import HeraldStorage
import Logging
import ServiceLifecycle

/// Runs Analytics' background work from the job queue: exports, scheduled reports and their sends, and the
/// hourly maintenance. Jobs are leased, so several instances share the work and a crashed instance's jobs are
/// taken over when their lease runs out.
public final class AnalyticsWorker: Service, Sendable {
    let database: any Database
    let exports: ExportBuilder
    let deliveries: ReportDeliveries
    let maintenance: AnalyticsMaintenance
    let maintenanceInterval: TimeInterval
    let logger: Logger
    let jobs = JobStore()
    let signal = WakeSignal()
    /// How long a job is leased; long jobs extend it as they go.
    static let lease: TimeInterval = 300
    static let batch = 4

    init(
        database: any Database, exports: ExportBuilder, deliveries: ReportDeliveries, maintenance: AnalyticsMaintenance,
        maintenanceInterval: TimeInterval, logger: Logger
    ) {
        self.database = database
        self.exports = exports
        self.deliveries = deliveries
        self.maintenance = maintenance
        self.maintenanceInterval = maintenanceInterval
        self.logger = logger
    }

    /// Wakes the worker: a job became due now.
    func wake() { signal.signalAll() }

    public func run() async throws {
        // Until it is scheduled: on a new PostgreSQL database this service may start before the migrations that
        // create its tables have run, and without the job no partition would ever be created nor data archived.
        await cancelWhenGracefulShutdown {
            let since = ContinuousClock.now
            var scheduled = false
            var reported = false
            while !Task.isCancelled {
                if !scheduled {
                    do {
                        try await self.scheduleMaintenance()
                        scheduled = true
                    } catch {
                        if !reported && ContinuousClock.now - since > .seconds(60) {
                            self.logger.error("could not schedule analytics maintenance", metadata: ["error": "\(error)"])
                            reported = true
                        }
                    }
                }
                let worked = (try? await self.runDue()) ?? false
                if !worked { await self.signal.wait(timeout: .seconds(1)) }
            }
        }
    }

    /// The hourly maintenance job, first due a few seconds from now unless it exists.
    func scheduleMaintenance() async throws {
        try await database.transaction(.system) { tx in
            try await jobs.ensure(
                .maintenance, subject: "hourly", organizationId: JobStore.maintenanceOrganization, at: Date().addingTimeInterval(5), in: tx)
        }
    }

    /// Runs the jobs due now; true when there were some.
    func runDue(now: Date = Date()) async throws -> Bool {
        let due = try await database.transaction(.system) { try await jobs.claimDue(now: now, limit: Self.batch, lease: Self.lease, in: $0) }
        for job in due {
            do {
                switch job.kind {
                case .export: try await exports.build(job)
                case .schedule: try await deliveries.runSchedule(job, now: Date())
                case .delivery: try await deliveries.deliver(job, now: Date())
                case .maintenance:
                    try await maintenance.run()
                    try await database.transaction(.system) {
                        try await jobs.reschedule(job, at: Date().addingTimeInterval(maintenanceInterval), resetAttempts: true, in: $0)
                    }
                }
            } catch {
                // The lease runs out and the job comes back; back off so a failing job does not spin.
                logger.error("analytics job failed", metadata: ["job": "\(job.key)", "attempt": "\(job.attempts)", "error": "\(error)"])
                let delay = min(3600, 30 * pow(2, Double(min(job.attempts, 7))))
                try? await database.transaction(.system) {
                    try await jobs.reschedule(job, at: Date().addingTimeInterval(delay), resetAttempts: false, in: $0)
                }
            }
        }
        return !due.isEmpty
    }
}
