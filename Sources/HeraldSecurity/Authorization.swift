import Foundation
import HeraldCore

/// A member's role in an organization. Roles are ordered: each includes the permissions of the ones below it.
public enum Role: String, APIEnum, Comparable {
    case viewer
    case member
    case admin
    case owner

    var rank: Int {
        switch self {
        case .viewer: 0
        case .member: 1
        case .admin: 2
        case .owner: 3
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    /// The permission matrix (documented in docs/SECURITY.md). One table, read by one authorization layer.
    public var permissions: Set<Permission> {
        switch self {
        case .viewer:
            [.organizationRead, .membersRead, .sitesRead, .contentRead, .analyticsRead]
        case .member:
            Role.viewer.permissions.union([.contentWrite, .activitiesWrite])
        case .admin:
            Role.member.permissions.union([
                .organizationUpdate, .membersManage, .invitationsManage, .sitesManage, .siteKeysRotate, .auditRead, .billingRead,
            ])
        case .owner:
            Role.admin.permissions.union([.ownersManage, .organizationDelete, .billingManage])
        }
    }
}

/// Something a caller may be allowed to do.
public enum Permission: String, Sendable, CaseIterable {
    case organizationRead
    case organizationUpdate
    case organizationDelete
    case membersRead
    /// Change roles below owner, remove members.
    case membersManage
    /// Grant or revoke the owner role.
    case ownersManage
    case invitationsManage
    case sitesRead
    case sitesManage
    case siteKeysRotate
    case auditRead
    /// Read notifications, templates, integrations and webhooks.
    case contentRead
    /// Create and change notifications, templates, integrations and webhooks.
    case contentWrite
    /// Record activities (also allowed to a site's secret key).
    case activitiesWrite
    case analyticsRead
    case billingRead
    case billingManage
    /// Subscribe and remove Zapier REST hooks: what a Zap does with the site's secret key.
    case zapierHooksManage

    /// What a site's secret API key may do, on its own site only.
    public static let siteKeyPermissions: Set<Permission> = [.activitiesWrite, .contentRead, .zapierHooksManage]
}
