import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage
import Logging

/// Writes beacon batches with group commit: requests arriving within a few milliseconds share one
/// transaction, and each request is answered only after its batch is durable. Throughput scales with the
/// batch size instead of one commit per beacon, and nothing acknowledged is lost.
actor BeaconWriter {
    struct Pending {
        var event: BeaconsRecorded
        var organizationId: UUID
        var continuation: CheckedContinuation<Void, any Error>
    }

    let database: any Database
    let bus: any EventBus
    let maxDelay: Duration
    let maxBatch: Int
    private var pending: [Pending] = []
    private var flushScheduled = false

    init(database: any Database, bus: any EventBus, maxDelay: Duration = .milliseconds(10), maxBatch: Int = 500) {
        self.database = database
        self.bus = bus
        self.maxDelay = maxDelay
        self.maxBatch = maxBatch
    }

    /// Returns once the batch is committed to the outbox.
    func write(_ event: BeaconsRecorded, organizationId: UUID) async throws {
        try await withCheckedThrowingContinuation { continuation in
            pending.append(Pending(event: event, organizationId: organizationId, continuation: continuation))
            if pending.count >= maxBatch {
                Task { await self.flush() }
            } else if !flushScheduled {
                flushScheduled = true
                let delay = maxDelay
                Task {
                    try? await Task.sleep(for: delay)
                    await self.flush()
                }
            }
        }
    }

    private func flush() async {
        flushScheduled = false
        let batch = pending
        pending.removeAll()
        guard !batch.isEmpty else { return }
        do {
            try await database.transaction(.system) { tx in
                for item in batch {
                    try await Outbox.append(item.event, organizationId: item.organizationId, siteId: item.event.siteId, in: tx)
                }
            }
            bus.didCommitEvents()
            for item in batch { item.continuation.resume() }
        } catch {
            for item in batch { item.continuation.resume(throwing: error) }
        }
    }
}
