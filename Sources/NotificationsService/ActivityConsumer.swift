import Foundation
import HeraldContracts
import HeraldEvents
import HeraldStorage

/// Stores each captured activity and pushes it to open pages.
struct ActivityConsumer: EventConsumer {
    let group = "notifications.activities"
    let eventTypes: Set<String> = [ActivityCaptured.eventType]
    let activities = ActivityStore()
    let feeds: FeedCache

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let organizationId = event.organizationId else { return }
        let activity = try event.decode(ActivityCaptured.self)
        _ = try await activities.insert(activity, organizationId: organizationId, in: tx)
    }

    func didCommit(_ event: EventEnvelope) async {
        guard let siteId = event.siteId, let activity = try? event.decode(ActivityCaptured.self) else { return }
        await feeds.invalidate(siteId: siteId, reason: .activity(activity.activityId))
    }
}
