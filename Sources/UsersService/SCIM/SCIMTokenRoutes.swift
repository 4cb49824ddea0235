import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct SCIMTokenRequest: Decodable {
    var name: String?
}

/// A provisioning token as the Herald API shows it. The secret is in `token` once, when it is created.
struct SCIMTokenBody: Encodable, Sendable {
    var id: UUID
    var name: String
    var tokenPrefix: String
    var createdBy: UUID
    var createdAt: Date
    var lastUsedAt: Date?
    /// The base URL to give the identity provider.
    var scimBaseUrl: String
    var token: String?

    init(_ token: SCIMToken, scimBaseUrl: String, secret: String? = nil) {
        id = token.id
        name = token.name
        tokenPrefix = token.tokenPrefix
        createdBy = token.createdBy
        createdAt = token.createdAt
        lastUsedAt = token.lastUsedAt
        self.scimBaseUrl = scimBaseUrl
        self.token = secret
    }
}

extension UsersService {
    /// Tokens one organization may hold at once.
    static let maxSCIMTokens = 10

    func addSCIMTokenRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let tokens = router.group("organizations/:orgId/scim-tokens")
        tokens.get(use: listSCIMTokens)
        tokens.post(use: createSCIMToken)
        tokens.delete(":tokenId", use: deleteSCIMToken)
    }

    @Sendable func listSCIMTokens(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<SCIMTokenBody>> {
        let grant = try await access.organization(from: context, .membersManage)
        let list = try await database.transaction(grant.scope) { try await scim.tokens(organizationId: grant.organizationId, in: $0) }
        return JSONResponse(Page(items: list.map { SCIMTokenBody($0, scimBaseUrl: scimBase) }))
    }

    /// Creates a provisioning token. It lets an identity provider create, change and deprovision the
    /// organization's members (never owners), so only admins and owners may create one; its secret is shown once.
    @Sendable func createSCIMToken(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SCIMTokenBody> {
        let grant = try await access.organization(from: context, .membersManage)
        let body = try await BodyReader(request: request, context: context).decode(as: SCIMTokenRequest.self)
        var validator = Validator()
        let name = validator.requireText(body.name, field: "name", maxLength: 100)
        try validator.check()
        let now = Date()
        let secret = SecretToken.make(prefix: "scim_", bytes: 32)
        let token = SCIMToken(
            id: .v7(at: now), organizationId: grant.organizationId, name: name, tokenPrefix: String(secret.prefix(12)),
            createdBy: grant.userId, createdAt: now, lastUsedAt: nil)
        let meta = RequestMeta(request: request, context: context)
        try await write(grant.scope) { tx in
            if try await scim.tokens(organizationId: grant.organizationId, in: tx).count >= Self.maxSCIMTokens {
                throw HeraldError.conflict(
                    "This organization already has \(Self.maxSCIMTokens) SCIM tokens. Delete one first.", slug: "too-many-scim-tokens")
            }
            try await scim.insertToken(token, secret: secret, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "scim.token.created", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "scim_token", targetId: token.id.lowercased, details: ["name": name], meta: meta),
                now: now, in: tx)
        }
        return JSONResponse(SCIMTokenBody(token, scimBaseUrl: scimBase, secret: secret), status: .created, headers: tokenHeaders)
    }

    /// Deletes a token; the identity provider using it is refused from the next request.
    @Sendable func deleteSCIMToken(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.organization(from: context, .membersManage)
        let tokenId = try context.uuidParameter("tokenId", resource: "SCIM token")
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        try await write(grant.scope) { tx in
            guard let token = try await scim.token(tokenId, organizationId: grant.organizationId, in: tx) else {
                throw HeraldError.notFound("SCIM token \(tokenId.lowercased)")
            }
            try await scim.deleteToken(tokenId, organizationId: grant.organizationId, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "scim.token.deleted", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "scim_token", targetId: tokenId.lowercased, details: ["name": token.name], meta: meta),
                now: now, in: tx)
        }
        return Response(status: .noContent)
    }
}
