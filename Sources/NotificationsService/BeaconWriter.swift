import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldStorage
import Logging

/// Writes beacon batches with group commit: while one transaction is being committed, the requests that
/// arrive meanwhile queue up and share the next one, and each request is answered only after its batch is
/// durable. An idle writer commits at once (no timer adds latency); under load the batch grows with the commit
/// time, so throughput scales with the batch size instead of one commit per beacon, and nothing acknowledged is lost.
actor BeaconWriter {
    struct Pending {
        var event: BeaconsRecorded
        var organizationId: UUID
        var continuation: CheckedContinuation<Void, any Error>
    }

    let database: any Database
    let bus: any EventBus
    let maxBatch: Int
    private var pending: [Pending] = []
    private var flushing = false

    init(database: any Database, bus: any EventBus, maxBatch: Int = 500) {
        self.database = database
        self.bus = bus
        self.maxBatch = maxBatch
    }

    /// Returns once the batch is committed to the outbox.
    func write(_ event: BeaconsRecorded, organizationId: UUID) async throws {
        try await withCheckedThrowingContinuation { continuation in
            pending.append(Pending(event: event, organizationId: organizationId, continuation: continuation))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    /// Commits batches until nothing is waiting; requests that arrive during a commit join the next batch.
    private func flush() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
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
        flushing = false
    }
}
