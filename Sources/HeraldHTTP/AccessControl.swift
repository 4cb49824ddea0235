import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// A site and the organization that owns it.
public struct SiteRef: Sendable, Equatable {
    public var siteId: UUID
    public var organizationId: UUID

    public init(siteId: UUID, organizationId: UUID) {
        self.siteId = siteId
        self.organizationId = organizationId
    }
}

/// The facts authorization needs, answered by the Users service: memberships, site ownership, site keys and
/// live sessions. In one process it is a direct call; split into services, a client of the Users service.
public protocol AccessDirectory: Sendable {
    func role(of userId: UUID, in organizationId: UUID) async throws -> Role?
    func site(_ siteId: UUID) async throws -> SiteRef?
    func site(forSecretKey key: String) async throws -> SiteRef?
    func isSessionActive(_ sessionId: UUID, userId: UUID) async throws -> Bool
    /// The session behind a token an organization's own identity provider issued (a Clerk-style session token),
    /// when an organization accepts that provider's tokens on the API; nil when none does. Throws 401 when one does
    /// and the token fails its checks.
    func externalSession(token: String) async throws -> ExternalSession?
    /// The live session behind a dashboard cookie's secret, or nil.
    func browserSession(secret: String) async throws -> BrowserSession?
}

extension AccessDirectory {
    public func externalSession(token: String) async throws -> ExternalSession? { nil }
    public func browserSession(secret: String) async throws -> BrowserSession? { nil }
}

/// A Herald session standing for an identity provider's session, limited to the organization that trusts it.
public struct ExternalSession: Sendable, Equatable {
    public var userId: UUID
    public var sessionId: UUID
    public var organizationId: UUID

    public init(userId: UUID, sessionId: UUID, organizationId: UUID) {
        self.userId = userId
        self.sessionId = sessionId
        self.organizationId = organizationId
    }
}

/// Who may act on an organization, as decided by ``AccessControl``.
public struct OrganizationAccess: Sendable {
    public var organizationId: UUID
    public var userId: UUID
    public var role: Role
    /// The tenant scope for transactions on the organization's rows.
    public var scope: TenantScope { .organization(organizationId, user: userId) }
}

/// Who may act on a site, as decided by ``AccessControl``.
public struct SiteAccess: Sendable {
    public var site: SiteRef
    /// The user acting, or nil for a site key.
    public var userId: UUID?
    public var role: Role?
    public var siteId: UUID { site.siteId }
    public var organizationId: UUID { site.organizationId }
    public var scope: TenantScope { .organization(site.organizationId, user: userId) }
}

/// The one authorization layer: every handler asks it, with a permission from the matrix, before touching data.
///
/// A caller who is not a member of the owning organization gets 404, exactly as for a resource that does not
/// exist, so identifiers of other tenants reveal nothing. A member whose role lacks the permission gets 403.
public struct AccessControl: Sendable {
    public let directory: any AccessDirectory

    public init(directory: any AccessDirectory) {
        self.directory = directory
    }

    /// The caller's access to the organization named by a path parameter (`organizations/:orgId/…`). An id that
    /// is not a UUID names an organization that cannot exist: 404.
    public func organization(
        from context: HeraldRequestContext, parameter: String = "orgId", _ permission: Permission
    ) async throws -> OrganizationAccess {
        try await organization(try context.uuidParameter(parameter, resource: "Organization"), permission, context: context)
    }

    /// The caller's access to the site named by a path parameter (`sites/:siteId/…`), for a member's token or the
    /// site's own secret key. An id that is not a UUID names a site that cannot exist: 404.
    public func site(from context: HeraldRequestContext, parameter: String = "siteId", _ permission: Permission) async throws -> SiteAccess {
        try await site(try context.uuidParameter(parameter, resource: "Site"), permission, context: context)
    }

    /// The site whose secret key authenticated the call, for routes that only a site key may use (Zapier's REST
    /// hooks): the key names the site, so the path does not. A user's token is refused with 401.
    public func siteOfKey(from context: HeraldRequestContext, _ permission: Permission) async throws -> SiteAccess {
        if let failure = context.authenticationFailure { throw failure }
        guard case .siteKey(let siteId, _) = context.principal else {
            throw HeraldError.unauthorized("This endpoint needs the site's secret key: 'Authorization: Bearer sk_…'.")
        }
        return try await site(siteId, permission, context: context)
    }

    public func organization(
        _ organizationId: UUID, _ permission: Permission, context: HeraldRequestContext
    ) async throws
        -> OrganizationAccess
    {
        let (userId, _) = try context.requireUser()
        if let limited = context.sessionOrganization, limited != organizationId {
            throw HeraldError.notFound("Organization \(organizationId.lowercased)")
        }
        guard let role = try await directory.role(of: userId, in: organizationId) else {
            throw HeraldError.notFound("Organization \(organizationId.lowercased)")
        }
        guard role.permissions.contains(permission) else {
            throw HeraldError.forbidden("Your role (\(role.rawValue)) does not allow \(permission.rawValue) in this organization.")
        }
        return OrganizationAccess(organizationId: organizationId, userId: userId, role: role)
    }

    public func site(_ siteId: UUID, _ permission: Permission, context: HeraldRequestContext) async throws -> SiteAccess {
        if let failure = context.authenticationFailure { throw failure }
        switch context.principal {
        case .none:
            throw HeraldError.unauthorized()
        case .siteKey(let keySite, let organizationId):
            guard keySite == siteId else { throw HeraldError.notFound("Site \(siteId.lowercased)") }
            guard Permission.siteKeyPermissions.contains(permission) else {
                throw HeraldError.forbidden("A site's secret key cannot do this; use a member's access token.")
            }
            return SiteAccess(site: SiteRef(siteId: siteId, organizationId: organizationId), userId: nil, role: nil)
        case .user(let userId, _):
            guard let site = try await directory.site(siteId),
                context.sessionOrganization.map({ $0 == site.organizationId }) ?? true,
                let role = try await directory.role(of: userId, in: site.organizationId)
            else {
                throw HeraldError.notFound("Site \(siteId.lowercased)")
            }
            guard role.permissions.contains(permission) else {
                throw HeraldError.forbidden("Your role (\(role.rawValue)) does not allow \(permission.rawValue) on this site.")
            }
            return SiteAccess(site: site, userId: userId, role: role)
        }
    }
}
