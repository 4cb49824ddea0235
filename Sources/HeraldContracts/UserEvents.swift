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

    public init(userId: UUID) {
        self.userId = userId
    }
}

public struct OrganizationCreated: DomainEvent {
    public static let eventType = "organization.created"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var name: String
    public var createdBy: UUID

    public init(organizationId: UUID, name: String, createdBy: UUID) {
        self.organizationId = organizationId
        self.name = name
        self.createdBy = createdBy
    }
}

public struct OrganizationUpdated: DomainEvent {
    public static let eventType = "organization.updated"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var name: String

    public init(organizationId: UUID, name: String) {
        self.organizationId = organizationId
        self.name = name
    }
}

public struct MemberJoined: DomainEvent {
    public static let eventType = "member.joined"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var userId: UUID
    public var role: Role
    /// How the member joined: `created-organization`, `invitation`, `sso` (a first single sign-on) or `scim`
    /// (provisioning).
    public var via: String

    public init(organizationId: UUID, userId: UUID, role: Role, via: String) {
        self.organizationId = organizationId
        self.userId = userId
        self.role = role
        self.via = via
    }
}

public struct MemberRoleChanged: DomainEvent {
    public static let eventType = "member.role_changed"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var userId: UUID
    public var role: Role
    public var previousRole: Role

    public init(organizationId: UUID, userId: UUID, role: Role, previousRole: Role) {
        self.organizationId = organizationId
        self.userId = userId
        self.role = role
        self.previousRole = previousRole
    }
}

public struct MemberRemoved: DomainEvent {
    public static let eventType = "member.removed"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var userId: UUID

    public init(organizationId: UUID, userId: UUID) {
        self.organizationId = organizationId
        self.userId = userId
    }
}

public struct InvitationCreated: DomainEvent {
    public static let eventType = "invitation.created"
    public static let schemaVersion = 1
    public var organizationId: UUID
    public var invitationId: UUID
    public var role: Role
    public var expiresAt: Date

    public init(organizationId: UUID, invitationId: UUID, role: Role, expiresAt: Date) {
        self.organizationId = organizationId
        self.invitationId = invitationId
        self.role = role
        self.expiresAt = expiresAt
    }
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

    public init(siteId: UUID, organizationId: UUID, name: String, domain: String, timezone: String, publicKey: String) {
        self.siteId = siteId
        self.organizationId = organizationId
        self.name = name
        self.domain = domain
        self.timezone = timezone
        self.publicKey = publicKey
    }
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

    public init(siteId: UUID, organizationId: UUID, name: String, domain: String, timezone: String, publicKey: String) {
        self.siteId = siteId
        self.organizationId = organizationId
        self.name = name
        self.domain = domain
        self.timezone = timezone
        self.publicKey = publicKey
    }
}

public struct SiteDeleted: DomainEvent {
    public static let eventType = "site.deleted"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var organizationId: UUID

    public init(siteId: UUID, organizationId: UUID) {
        self.siteId = siteId
        self.organizationId = organizationId
    }
}

public struct SiteKeysRotated: DomainEvent {
    public static let eventType = "site.keys_rotated"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var organizationId: UUID
    /// The widget key is unchanged by a rotation of the secret key; carried so consumers can verify it.
    public var publicKey: String
    public var rotatedAt: Date

    public init(siteId: UUID, organizationId: UUID, publicKey: String, rotatedAt: Date) {
        self.siteId = siteId
        self.organizationId = organizationId
        self.publicKey = publicKey
        self.rotatedAt = rotatedAt
    }
}
