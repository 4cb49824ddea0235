import Foundation
import HeraldCore
import HeraldEvents
import HeraldSecurity

// Events the Users service publishes. Bodies never carry personal data (emails, names); consumers that need
// them ask the Users API. Documented in docs/EVENTS.md.

public struct UserCreated: DomainEvent {
    public static let eventType = "user.created"
    public static let schemaVersion = 1
    public var userId: UUID
}

public struct OrganizationCreated: DomainEvent {
    public static let eventType = "organization.created"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var name: String
    public var createdBy: UUID
}

public struct OrganizationUpdated: DomainEvent {
    public static let eventType = "organization.updated"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var name: String
}

public struct MemberJoined: DomainEvent {
    public static let eventType = "member.joined"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var userId: UUID
    public var role: Role
    /// How the member joined: `created-organization` or `invitation`.
    public var via: String
}

public struct MemberRoleChanged: DomainEvent {
    public static let eventType = "member.role_changed"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var userId: UUID
    public var role: Role
    public var previousRole: Role
}

public struct MemberRemoved: DomainEvent {
    public static let eventType = "member.removed"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var userId: UUID
}

public struct InvitationCreated: DomainEvent {
    public static let eventType = "invitation.created"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var invitationId: UUID
    public var role: Role
    public var expiresAt: Date
}

public struct SiteCreated: DomainEvent {
    public static let eventType = "site.created"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var organizationId: UUID
    public var name: String
    public var domain: String
    public var timezone: String
    public var publicKey: String
}

/// Same body as `site.created`, with the site's current values.
public struct SiteUpdated: DomainEvent {
    public static let eventType = "site.updated"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var organizationId: UUID
    public var name: String
    public var domain: String
    public var timezone: String
    public var publicKey: String
}

public struct SiteDeleted: DomainEvent {
    public static let eventType = "site.deleted"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var organizationId: UUID
}

public struct SiteKeysRotated: DomainEvent {
    public static let eventType = "site.keys_rotated"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var organizationId: UUID
    /// The widget key is unchanged by a rotation of the secret key; carried so consumers can verify it.
    public var publicKey: String
    public var rotatedAt: Date
}
