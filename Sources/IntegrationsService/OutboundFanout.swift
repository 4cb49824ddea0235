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
        guard let siteId = event.siteId, let organizationId = event.organizationId else { return }
        let targets = try await endpoints.list(siteId: siteId, in: tx).filter { $0.status == "enabled" && $0.eventTypes.contains(event.type) }
        guard !targets.isEmpty else { return }
        let payload = try OutboundEvents.payload(for: event)
        let now = Date()
        for endpoint in targets {
            let id = OutboundEvents.messageId(endpoint: endpoint.id, event: event.id)
            let inserted = try await messages.insert(
                id, endpointId: endpoint.id, siteId: siteId, organizationId: organizationId, event: event, payload: payload, now: now, in: tx
            )
            if inserted { try await messages.enqueue(id, organizationId: organizationId, at: now, in: tx) }
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        dispatcher.wake()
    }
}
