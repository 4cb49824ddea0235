import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct OrganizationRequest: Decodable {
    var name: String?
}

struct MemberUpdateRequest: Decodable {
    var role: Role?
}

struct InvitationRequest: Decodable {
    var email: String?
    var role: Role?
}

struct AcceptInvitationRequest: Decodable {
    var token: String?
}

struct AcceptedInvitationBody: Encodable, Sendable {
    var organization: OrganizationBody
}

extension UsersService {
    func addOrganizationRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.get("organizations", use: listOrganizations)
        router.post("organizations", use: createOrganization)
        router.post("invitations/accept", use: acceptInvitation)
        let organization = router.group("organizations/:orgId")
        organization.get(use: getOrganization)
        organization.patch(use: updateOrganization)
        organization.get("members", use: listMembers)
        organization.patch("members/:userId", use: updateMember)
        organization.delete("members/:userId", use: removeMember)
        organization.get("invitations", use: listInvitations)
        organization.post("invitations", use: createInvitation)
        organization.delete("invitations/:invitationId", use: revokeInvitation)
        organization.get("audit-logs", use: listAuditLogs)
        organization.get("audit-logs/verify", use: verifyAuditLogs)
    }

    // MARK: Organizations

    @Sendable func listOrganizations(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<OrganizationBody>> {
        let (userId, _) = try context.requireUser()
        let list = try await database.transaction(.user(userId)) { try await organizations.list(forUser: userId, in: $0) }
        let visible = list.filter { entry in context.sessionOrganization.map { entry.0.id == $0 } ?? true }
        return JSONResponse(Page(items: visible.map { OrganizationBody($0.0, role: $0.1) }))
    }

    @Sendable func createOrganization(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<OrganizationBody> {
        let (userId, _) = try context.requireUnlimitedUser()
        let body = try await BodyReader(request: request, context: context).decode(as: OrganizationRequest.self)
        var validator = Validator()
        let name = validator.requireText(body.name, field: "name", maxLength: 100)
        try validator.check()
        let now = Date()
        let organization = Organization(id: .v7(at: now), name: name, createdBy: userId, createdAt: now, updatedAt: now)
        let meta = RequestMeta(request: request, context: context)
        try await write(.organization(organization.id, user: userId)) { tx in
            try await organizations.insert(organization, in: tx)
            try await organizations.addMember(userId, to: organization.id, role: .owner, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "organization.created", organizationId: organization.id, actorUserId: userId,
                    targetType: "organization", targetId: organization.id.lowercased, details: ["name": name], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                OrganizationCreated(organizationId: organization.id, name: name, createdBy: userId),
                organizationId: organization.id,
                in: tx
            )
            try await Outbox.append(
                MemberJoined(organizationId: organization.id, userId: userId, role: .owner, via: "created-organization"),
                organizationId: organization.id,
                in: tx
            )
        }
        return JSONResponse(OrganizationBody(organization, role: .owner), status: .created)
    }

    @Sendable func getOrganization(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<OrganizationBody> {
        let grant = try await access.organization(from: context, .organizationRead)
        guard let organization = try await database.transaction(grant.scope, { try await organizations.find(grant.organizationId, in: $0) })
        else { throw HeraldError.notFound("Organization \(grant.organizationId.lowercased)") }
        return JSONResponse(OrganizationBody(organization, role: grant.role))
    }

    @Sendable func updateOrganization(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<OrganizationBody> {
        let grant = try await access.organization(from: context, .organizationUpdate)
        let body = try await BodyReader(request: request, context: context).decode(as: OrganizationRequest.self)
        var validator = Validator()
        let name = validator.requireText(body.name, field: "name", maxLength: 100)
        try validator.check()
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        let organization = try await write(grant.scope) { tx -> Organization in
            guard var organization = try await organizations.find(grant.organizationId, in: tx) else {
                throw HeraldError.notFound("Organization \(grant.organizationId.lowercased)")
            }
            try await organizations.rename(organization.id, to: name, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "organization.updated", organizationId: organization.id, actorUserId: grant.userId,
                    targetType: "organization", targetId: organization.id.lowercased,
                    details: ["name": name, "previousName": organization.name], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(OrganizationUpdated(organizationId: organization.id, name: name), organizationId: organization.id, in: tx)
            organization.name = name
            organization.updatedAt = now
            return organization
        }
        return JSONResponse(OrganizationBody(organization, role: grant.role))
    }

    // MARK: Members

    @Sendable func listMembers(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<MemberBody>> {
        let grant = try await access.organization(from: context, .membersRead)
        let members = try await database.transaction(grant.scope) { try await organizations.members(of: grant.organizationId, in: $0) }
        return JSONResponse(Page(items: members.map(MemberBody.init)))
    }

    /// Changes a member's role. Granting or taking away the owner role is for owners; the last owner stays.
    @Sendable func updateMember(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<MemberBody> {
        let grant = try await access.organization(from: context, .membersManage)
        let targetId = try context.uuidParameter("userId", resource: "Member")
        let body = try await BodyReader(request: request, context: context).decode(as: MemberUpdateRequest.self)
        guard let role = body.role else {
            throw HeraldError.validation(field: "role", "is required: one of owner, admin, member, viewer")
        }
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        let member = try await write(grant.scope) { tx -> Member in
            guard var member = try await organizations.members(of: grant.organizationId, in: tx).first(where: { $0.userId == targetId })
            else { throw HeraldError.notFound("Member \(targetId.lowercased)") }
            if (member.role == .owner || role == .owner) && !grant.role.permissions.contains(.ownersManage) {
                throw HeraldError.forbidden("Only an owner can grant or take away the owner role.")
            }
            guard member.role != role else { return member }
            if member.role == .owner, try await organizations.ownerCount(of: grant.organizationId, in: tx) <= 1 {
                throw HeraldError.conflict("This is the organization's last owner. Make someone else an owner first.", slug: "last-owner")
            }
            try await organizations.setRole(role, of: targetId, in: grant.organizationId, tx: tx)
            try await audit.append(
                AuditEntry(
                    action: "member.role_changed", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "user", targetId: targetId.lowercased, details: ["from": member.role.rawValue, "to": role.rawValue], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                MemberRoleChanged(organizationId: grant.organizationId, userId: targetId, role: role, previousRole: member.role),
                organizationId: grant.organizationId,
                in: tx
            )
            member.role = role
            return member
        }
        return JSONResponse(MemberBody(member))
    }

    /// Removes a member, or lets a member leave. The last owner cannot leave.
    @Sendable func removeMember(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let targetId = try context.uuidParameter("userId", resource: "Member")
        let (userId, _) = try context.requireUser()
        let leaving = targetId == userId
        let grant = try await access.organization(from: context, leaving ? .organizationRead : .membersManage)
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        try await write(grant.scope) { tx in
            guard let role = try await organizations.role(of: targetId, in: grant.organizationId, tx: tx) else {
                throw HeraldError.notFound("Member \(targetId.lowercased)")
            }
            if role == .owner && !leaving && !grant.role.permissions.contains(.ownersManage) {
                throw HeraldError.forbidden("Only an owner can remove an owner.")
            }
            if role == .owner, try await organizations.ownerCount(of: grant.organizationId, in: tx) <= 1 {
                throw HeraldError.conflict("This is the organization's last owner. Make someone else an owner first.", slug: "last-owner")
            }
            try await organizations.removeMember(targetId, from: grant.organizationId, in: tx)
            try await audit.append(
                AuditEntry(
                    action: leaving ? "member.left" : "member.removed", organizationId: grant.organizationId, actorUserId: userId,
                    targetType: "user", targetId: targetId.lowercased, details: ["role": role.rawValue], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                MemberRemoved(organizationId: grant.organizationId, userId: targetId), organizationId: grant.organizationId, in: tx)
        }
        return Response(status: .noContent)
    }

    // MARK: Invitations

    @Sendable func listInvitations(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<InvitationBody>> {
        let grant = try await access.organization(from: context, .invitationsManage)
        let now = Date()
        let list = try await database.transaction(grant.scope) { try await invitations.list(organizationId: grant.organizationId, in: $0) }
        return JSONResponse(Page(items: list.map { InvitationBody($0, now: now) }))
    }

    /// Invites someone by email. The response carries the acceptance token once; it is what the invitee
    /// presents to `POST /invitations/accept` after signing in with that email.
    @Sendable func createInvitation(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<InvitationBody> {
        let grant = try await access.organization(from: context, .invitationsManage)
        let body = try await BodyReader(request: request, context: context).decode(as: InvitationRequest.self)
        var validator = Validator()
        let email = validator.requireEmail(body.email)
        try validator.check()
        let role = body.role ?? .member
        if role == .owner && !grant.role.permissions.contains(.ownersManage) {
            throw HeraldError.forbidden("Only an owner can invite another owner.")
        }
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        let token = SecretToken.make(prefix: "inv_")
        let invitation = Invitation(
            id: .v7(at: now), organizationId: grant.organizationId, email: email, role: role, invitedBy: grant.userId,
            createdAt: now, expiresAt: now.addingTimeInterval(Self.invitationLifetime), acceptedAt: nil, revokedAt: nil
        )
        try await write(grant.scope) { tx in
            if let existing = try await accounts.find(email: email, in: tx),
                try await organizations.role(of: existing.id, in: grant.organizationId, tx: tx) != nil
            {
                throw HeraldError.conflict("\(email) is already a member of this organization.", slug: "already-member")
            }
            if try await invitations.hasPending(email: email, organizationId: grant.organizationId, now: now, in: tx) {
                throw HeraldError.conflict(
                    "\(email) already has a pending invitation. Revoke it first to send a new one.",
                    slug: "already-invited"
                )
            }
            try await invitations.insert(invitation, token: token, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "invitation.created", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "invitation", targetId: invitation.id.lowercased, details: ["role": role.rawValue], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                InvitationCreated(organizationId: grant.organizationId, invitationId: invitation.id, role: role, expiresAt: invitation.expiresAt),
                organizationId: grant.organizationId,
                in: tx
            )
        }
        return JSONResponse(InvitationBody(invitation, now: now, token: token), status: .created)
    }

    @Sendable func revokeInvitation(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.organization(from: context, .invitationsManage)
        let invitationId = try context.uuidParameter("invitationId", resource: "Invitation")
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        try await write(grant.scope) { tx in
            guard let invitation = try await invitations.find(invitationId, organizationId: grant.organizationId, in: tx) else {
                throw HeraldError.notFound("Invitation \(invitationId.lowercased)")
            }
            guard invitation.status(now: now) == "pending" else {
                throw HeraldError.conflict("The invitation is already \(invitation.status(now: now)).", slug: "invitation-not-pending")
            }
            try await invitations.revoke(invitationId, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "invitation.revoked", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "invitation", targetId: invitationId.lowercased, meta: meta),
                now: now,
                in: tx
            )
        }
        return Response(status: .noContent)
    }

    /// Accepts an invitation as the signed-in user, whose email must be the one invited.
    @Sendable func acceptInvitation(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<AcceptedInvitationBody> {
        let (userId, _) = try context.requireUnlimitedUser()
        let body = try await BodyReader(request: request, context: context).decode(as: AcceptInvitationRequest.self)
        var validator = Validator()
        let token = validator.requireText(body.token, field: "token", maxLength: 200)
        try validator.check()
        let account = try await currentAccount(context)
        guard let route = try await database.transaction(.system, { try await invitations.route(token: token, in: $0) }) else {
            throw HeraldError.notFound("Invitation")
        }
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        let result = try await write(.organization(route.organizationId, user: userId)) { tx -> (Organization, Role) in
            guard let invitation = try await invitations.find(route.invitationId, organizationId: route.organizationId, in: tx),
                let organization = try await organizations.find(route.organizationId, in: tx)
            else { throw HeraldError.notFound("Invitation") }
            switch invitation.status(now: now) {
            case "accepted": throw HeraldError.conflict("This invitation has already been accepted.", slug: "invitation-used")
            case "revoked": throw HeraldError(status: 410, slug: "invitation-revoked", title: "Gone", detail: "This invitation was revoked.")
            case "expired":
                throw HeraldError(status: 410, slug: "invitation-expired", title: "Gone", detail: "This invitation has expired. Ask for a new one.")
            default: break
            }
            guard try await invitations.matchesEmail(invitation.id, email: account.email, in: tx) else {
                throw HeraldError.forbidden("This invitation was sent to another email address. Sign in with that address to accept it.")
            }
            try await organizations.addMember(userId, to: route.organizationId, role: invitation.role, now: now, in: tx)
            try await invitations.markAccepted(invitation.id, by: userId, now: now, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "invitation.accepted", organizationId: route.organizationId, actorUserId: userId,
                    targetType: "invitation", targetId: invitation.id.lowercased, details: ["role": invitation.role.rawValue], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                MemberJoined(organizationId: route.organizationId, userId: userId, role: invitation.role, via: "invitation"),
                organizationId: route.organizationId,
                in: tx
            )
            return (organization, invitation.role)
        }
        return JSONResponse(AcceptedInvitationBody(organization: OrganizationBody(result.0, role: result.1)))
    }

    // MARK: Audit log

    @Sendable func listAuditLogs(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<AuditRecord>> {
        let grant = try await access.organization(from: context, .auditRead)
        let limit = try request.limit(default: 50, max: 200)
        var before: Int64?
        if let cursor = request.uri.queryParameters.get("cursor") {
            guard let value = Int64(cursor), value > 0 else {
                throw HeraldError.validation(field: "cursor", "must be the nextCursor of a previous page")
            }
            before = value
        }
        let records = try await database.transaction(grant.scope) {
            try await audit.list(organizationId: grant.organizationId, before: before, limit: limit, in: $0)
        }
        let next = records.count == limit ? records.last.map { String($0.sequence) } : nil
        return JSONResponse(Page(items: records, nextCursor: next))
    }

    @Sendable func verifyAuditLogs(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<AuditChain.Verification> {
        let grant = try await access.organization(from: context, .auditRead)
        let result = try await database.transaction(grant.scope) { try await audit.verify(organizationId: grant.organizationId, in: $0) }
        return JSONResponse(result)
    }
}
