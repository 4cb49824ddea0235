import Foundation
import HeraldEvents
import HeraldStorage

/// Turns subscribed events into messages, one per matching endpoint.
struct OutboundFanout: EventConsumer {
    let group = "integrations.outbound"
    let eventTypes = Set(OutboundEvents.types)
    let endpoints: EndpointStore
    let messages = WebhookMessageStore()
    let dispatcher: WebhookDispatcher

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        guard let organizationId = event.organizationId else { return }
        // A site's event goes to that site's endpoints; an organization's (billing) to every site's.
        let candidates =
            if let siteId = event.siteId {
                try await endpoints.list(siteId: siteId, in: tx)
            } else {
                try await endpoints.list(organizationId: organizationId, in: tx)
            }
        let targets = candidates.filter { $0.status == "enabled" && $0.eventTypes.contains(event.type) }
        guard !targets.isEmpty else { return }
        let payload = try OutboundEvents.payload(for: event)
        let now = Date()
        for endpoint in targets {
            let id = OutboundEvents.messageId(endpoint: endpoint.id, event: event.id)
            let inserted = try await messages.insert(
                id, endpointId: endpoint.id, siteId: endpoint.siteId, organizationId: organizationId, event: event, payload: payload, now: now,
                in: tx
            )
            if inserted { try await messages.enqueue(id, organizationId: organizationId, at: now, in: tx) }
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        dispatcher.wake()
    }
}
