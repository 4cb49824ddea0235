import Foundation
import HeraldCore
import HeraldEvents

/// A change any service audits: written to the outbox in the transaction of the change (so it exists if and only
/// if the change committed) and appended by the Users service to the organization's hash-chained audit log.
/// Services never write the log's tables themselves.
public struct AuditRecorded: DomainEvent {
    public static let eventType = "audit.recorded"
    public static let schemaVersion = 1

    /// The audit record's id, chosen when the change is made.
    public var auditId: UUID
    public var organizationId: UUID
    /// `<entity>.<past-tense verb>`: `notification.published`, `webhook_endpoint.secret_rotated`.
    public var action: String
    /// The member who acted; nil for a site's secret key or Herald itself (`details.via` says which).
    public var actorUserId: UUID?
    public var targetType: String
    public var targetId: String
    /// Short facts about the change (names, changed fields); never secrets or personal data.
    public var details: [String: String]
    public var ip: String?
    public var userAgent: String?
    public var requestId: String?
    public var occurredAt: Date

    public init(
        auditId: UUID = .v7(), organizationId: UUID, action: String, actorUserId: UUID?, targetType: String, targetId: String,
        details: [String: String] = [:], ip: String? = nil, userAgent: String? = nil, requestId: String? = nil, occurredAt: Date = Date()
    ) {
        self.auditId = auditId
        self.organizationId = organizationId
        self.action = action
        self.actorUserId = actorUserId
        self.targetType = targetType
        self.targetId = targetId
        self.details = details
        self.ip = ip
        self.userAgent = userAgent
        self.requestId = requestId
        self.occurredAt = occurredAt
    }
}
