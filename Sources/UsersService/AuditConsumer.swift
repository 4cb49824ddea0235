import Foundation
import HeraldContracts
import HeraldEvents
import HeraldHTTP
import HeraldStorage

/// Appends the changes other services audit (``AuditRecorded``) to the organization's hash-chained log. The event
/// was written with the change, so the log holds a change if and only if it committed; the consumer's processed
/// marker commits with the append, so a redelivered event is not appended twice.
struct AuditConsumer: EventConsumer {
    let group = "users.audit"
    let eventTypes: Set<String> = [AuditRecorded.eventType]
    let audit = AuditLogStore()

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        let recorded = try event.decode(AuditRecorded.self)
        // The envelope's tenant is the transaction's; a body naming another organization is not trusted.
        guard let organizationId = event.organizationId, organizationId == recorded.organizationId else { return }
        let entry = AuditEntry(
            action: recorded.action, organizationId: organizationId, actorUserId: recorded.actorUserId, targetType: recorded.targetType,
            targetId: recorded.targetId, details: recorded.details,
            meta: RequestMeta(ip: recorded.ip ?? "", userAgent: recorded.userAgent ?? "", requestId: recorded.requestId ?? "")
        )
        try await audit.append(entry, id: recorded.auditId, now: recorded.occurredAt, in: tx)
    }
}
