import Foundation
import HeraldContracts
import HeraldEvents
import HeraldStorage

/// Stores each captured activity and pushes it to open pages; a new one is also queued for the email recipients
/// of the notifications that show it by email, in the same transaction.
struct ActivityConsumer: EventConsumer {
    let group = "notifications.activities"
    let eventTypes: Set<String> = [ActivityCaptured.eventType]
    let activities = ActivityStore()
    let feeds: FeedCache
    let email: EmailFanout?
    let sender: EmailSender?

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let organizationId = event.organizationId else { return }
        let activity = try event.decode(ActivityCaptured.self)
        if try await activities.insert(activity, organizationId: organizationId, in: tx), let email {
            _ = try await email.fanOut(activity, organizationId: organizationId, now: Date(), in: tx)
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        guard let siteId = event.siteId, let activity = try? event.decode(ActivityCaptured.self) else { return }
        sender?.wake()
        await feeds.invalidate(siteId: siteId, reason: .activity(activity.activityId))
    }
}
