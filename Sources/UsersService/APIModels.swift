import Foundation
import HeraldCore
import HeraldSecurity

// The JSON shapes of the Users API (camelCase, ISO 8601 dates). Documented in openapi.json.

struct UserBody: Encodable, Sendable {
    var id: UUID
    var email: String
    var name: String
    var createdAt: Date
    var updatedAt: Date

    init(_ account: Account) {
        id = account.id
        email = account.email
        name = account.name
        createdAt = account.createdAt
        updatedAt = account.updatedAt
    }
}

struct TokensBody: Encodable, Sendable {
    var accessToken: String
    var refreshToken: String
    var tokenType = "Bearer"
    var expiresIn: Int
    var user: UserBody?
}

struct SessionBody: Encodable, Sendable {
    var id: UUID
    var current: Bool
    var createdAt: Date
    var lastUsedAt: Date
    var expiresAt: Date
    var ip: String
    var userAgent: String
}

struct OrganizationBody: Encodable, Sendable {
    var id: UUID
    var name: String
    var role: Role
    var createdAt: Date
    var updatedAt: Date

    init(_ organization: Organization, role: Role) {
        id = organization.id
        name = organization.name
        self.role = role
        createdAt = organization.createdAt
        updatedAt = organization.updatedAt
    }
}

struct MemberBody: Encodable, Sendable {
    var userId: UUID
    var email: String
    var name: String
    var role: Role
    var joinedAt: Date

    init(_ member: Member) {
        userId = member.userId
        email = member.email
        name = member.name
        role = member.role
        joinedAt = member.joinedAt
    }
}

struct InvitationBody: Encodable, Sendable {
    var id: UUID
    var organizationId: UUID
    var email: String
    var role: Role
    var status: String
    var invitedBy: UUID
    var createdAt: Date
    var expiresAt: Date
    /// The secret to accept with; returned once, when the invitation is created.
    var token: String?

    init(_ invitation: Invitation, now: Date, token: String? = nil) {
        id = invitation.id
        organizationId = invitation.organizationId
        email = invitation.email
        role = invitation.role
        status = invitation.status(now: now)
        invitedBy = invitation.invitedBy
        createdAt = invitation.createdAt
        expiresAt = invitation.expiresAt
        self.token = token
    }
}

struct SiteBody: Encodable, Sendable {
    var id: UUID
    var organizationId: UUID
    var name: String
    var domain: String
    var timezone: String
    var publicKey: String
    /// The secret API key; returned only when the site is created or its keys are rotated.
    var secretKey: String?
    /// The snippet to paste into the site's pages.
    var embedSnippet: String
    var createdAt: Date
    var updatedAt: Date
    var keysRotatedAt: Date

    init(_ site: Site, secretKey: String? = nil, publicBaseURL: String) {
        id = site.id
        organizationId = site.organizationId
        name = site.name
        domain = site.domain
        timezone = site.timezone
        publicKey = site.publicKey
        self.secretKey = secretKey
        embedSnippet = "<script async src=\"\(publicBaseURL)/widget.js\" data-site=\"\(site.publicKey)\"></script>"
        createdAt = site.createdAt
        updatedAt = site.updatedAt
        keysRotatedAt = site.keysRotatedAt
    }
}
