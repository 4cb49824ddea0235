import Foundation
import HeraldContracts
import HeraldEvents
import HeraldStorage

/// Stores each captured activity and pushes it to open pages; a new one is also queued, in the same transaction, for
/// the email recipients and push subscribers of the notifications that show it on those channels.
struct ActivityConsumer: EventConsumer {
    let group = "notifications.activities"
    let eventTypes: Set<String> = [ActivityCaptured.eventType]
    let activities = ActivityStore()
    let feeds: FeedCache
    let channels: ChannelFanout
    /// Wake each channel's sender once deliveries were committed.
    let senders: [@Sendable () -> Void]

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let organizationId = event.organizationId else { return }
        let activity = try event.decode(ActivityCaptured.self)
        if try await activities.insert(activity, organizationId: organizationId, in: tx) {
            _ = try await channels.fanOut(activity, organizationId: organizationId, now: Date(), in: tx)
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        guard let siteId = event.siteId, let activity = try? event.decode(ActivityCaptured.self) else { return }
        for wake in senders { wake() }
        await feeds.invalidate(siteId: siteId, reason: .activity(activity.activityId))
    }
}
