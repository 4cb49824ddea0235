import Foundation
import HeraldContracts
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import Hummingbird

/// The internal API other services' processes ask instead of reading the Users tables (`DirectoryContract`).
/// Routed always, as the OpenAPI document lists it; without HERALD_INTERNAL_TOKEN it answers 404.
extension UsersService {
    func addInternalRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let directory = UsersDirectory(database: database, sessions: sessions, externalTokens: nil)
        let internalRoutes = router.group("internal/v1")
        internalRoutes.get("organizations/:orgId/members/:userId/role") { request, context -> JSONResponse<DirectoryContract.RoleBody> in
            try requireInternalCaller(request)
            let organizationId = try context.uuidParameter("orgId", resource: "Membership")
            let userId = try context.uuidParameter("userId", resource: "Membership")
            guard let role = try await directory.role(of: userId, in: organizationId) else { throw HeraldError.notFound("Membership") }
            return JSONResponse(DirectoryContract.RoleBody(role: role), headers: [.cacheControl: "no-store"])
        }
        internalRoutes.get("sites/:siteId") { request, context -> JSONResponse<DirectoryContract.SiteBody> in
            try requireInternalCaller(request)
            let siteId = try context.uuidParameter("siteId", resource: "Site")
            guard let site = try await directory.site(siteId) else { throw HeraldError.notFound("Site") }
            return JSONResponse(
                DirectoryContract.SiteBody(siteId: site.siteId, organizationId: site.organizationId), headers: [.cacheControl: "no-store"])
        }
        internalRoutes.post("site-keys/lookup") { request, context -> JSONResponse<DirectoryContract.SiteBody> in
            try requireInternalCaller(request)
            let body = try await BodyReader(request: request, context: context).decode(as: DirectoryContract.SiteKeyLookup.self)
            guard let site = try await directory.site(forSecretKey: body.secretKey) else { throw HeraldError.notFound("Site key") }
            return JSONResponse(
                DirectoryContract.SiteBody(siteId: site.siteId, organizationId: site.organizationId), headers: [.cacheControl: "no-store"])
        }
        internalRoutes.get("users/:userId/sessions/:sessionId") { request, context -> JSONResponse<DirectoryContract.SessionBody> in
            try requireInternalCaller(request)
            let userId = try context.uuidParameter("userId", resource: "Session")
            let sessionId = try context.uuidParameter("sessionId", resource: "Session")
            let active = try await directory.isSessionActive(sessionId, userId: userId)
            return JSONResponse(DirectoryContract.SessionBody(active: active), headers: [.cacheControl: "no-store"])
        }
        // Provider session tokens and dashboard cookies are checked here, where the provider's keys are cached and
        // the sessions live; a refused provider token is a 401 whose detail says why.
        let delegating = access.directory
        internalRoutes.post("delegated-sessions/lookup") { request, context -> JSONResponse<DirectoryContract.DelegatedSessionBody> in
            try requireInternalCaller(request)
            let body = try await BodyReader(request: request, context: context).decode(as: DirectoryContract.DelegatedSessionLookup.self)
            guard body.credential.utf8.count <= 16_384 else { throw HeraldError.notFound("Session") }
            let found: DirectoryContract.DelegatedSessionBody?
            switch body.kind {
            case .providerToken:
                do {
                    found = try await delegating.externalSession(token: body.credential).map {
                        DirectoryContract.DelegatedSessionBody(userId: $0.userId, sessionId: $0.sessionId, organizationId: $0.organizationId)
                    }
                } catch let error as HeraldError where error.status == 401 {
                    // The token's own refusal, told apart from a caller without the internal token (401).
                    throw HeraldError(status: 422, slug: "credential-refused", title: "Unprocessable Content", detail: error.detail)
                }
            case .browserCookie:
                found = try await delegating.browserSession(secret: body.credential).map {
                    DirectoryContract.DelegatedSessionBody(userId: $0.userId, sessionId: $0.sessionId, organizationId: $0.organizationId)
                }
            }
            guard let found else { throw HeraldError.notFound("Session") }
            return JSONResponse(found, headers: [.cacheControl: "no-store"])
        }
    }

    /// Another Herald service, presenting HERALD_INTERNAL_TOKEN; compared in constant time.
    func requireInternalCaller(_ request: Request) throws {
        guard let expected = internalToken else {
            throw HeraldError(
                status: 404, slug: "not-found", title: "Not found",
                detail: "The internal API is off: HERALD_INTERNAL_TOKEN is not set on this Users service."
            )
        }
        guard SecretToken.bearerMatches(request.headers[.authorization], expected: expected) else {
            throw HeraldError.unauthorized("The internal API needs the internal token: 'Authorization: Bearer <HERALD_INTERNAL_TOKEN>'.")
        }
    }
}
