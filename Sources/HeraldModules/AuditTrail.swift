import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldStorage

/// How a service audits a change: an ``AuditRecorded`` event in the change's own transaction, which the Users
/// service appends to the organization's hash-chained audit log. A service never reads or writes another's tables,
/// and the record exists if and only if the change committed.
///
/// ```swift
/// try await AuditTrail.record("notification.published", target: "notification", notification.id, by: grant, meta: meta, in: tx)
/// ```
public enum AuditTrail {
    /// Records a change made on a site by a member (or the site's secret key).
    public static func record(
        _ action: String, target type: String, _ id: UUID, details: [String: String] = [:], by grant: SiteAccess, meta: RequestMeta,
        in tx: any SQLExecutor
    ) async throws {
        var details = details
        details["siteId"] = grant.siteId.lowercased
        if grant.userId == nil { details["via"] = "site_key" }
        try await record(
            action, target: type, id.lowercased, organizationId: grant.organizationId, siteId: grant.siteId, actorUserId: grant.userId,
            details: details, meta: meta, in: tx
        )
    }

    /// Records a change in an organization; `actorUserId` nil means Herald itself (a dispatcher, a callback).
    public static func record(
        _ action: String, target type: String, _ id: String, organizationId: UUID, siteId: UUID? = nil, actorUserId: UUID?,
        details: [String: String] = [:], meta: RequestMeta, in tx: any SQLExecutor
    ) async throws {
        let event = AuditRecorded(
            organizationId: organizationId, action: action, actorUserId: actorUserId, targetType: type, targetId: id, details: details,
            ip: meta.ip.isEmpty ? nil : meta.ip, userAgent: meta.userAgent.isEmpty ? nil : meta.userAgent,
            requestId: meta.requestId.isEmpty ? nil : meta.requestId
        )
        try await Outbox.append(event, organizationId: organizationId, siteId: siteId, in: tx)
    }
}
