import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

/// Who calls a SCIM endpoint: a provisioning token, which names its organization.
struct SCIMCaller: Sendable {
    var tokenId: UUID
    var organizationId: UUID
    var scope: TenantScope { .organization(organizationId) }
}

/// The password hash of accounts created by provisioning: no password matches it; they sign in through SSO.
let provisionedPasswordHash = "!scim-provisioned"

extension UsersService {
    /// Requests per minute one provisioning token may make.
    static let scimRequestsPerMinute = 1200

    func addSCIMRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let scim = router.group("scim/v2")
        scim.get("ServiceProviderConfig", use: scimServiceProviderConfig)
        scim.get("ResourceTypes", use: scimResourceTypes)
        scim.get("ResourceTypes/:resourceTypeId", use: scimResourceType)
        scim.get("Schemas", use: scimSchemas)
        scim.get("Schemas/:schemaId", use: scimSchema)
        scim.post(".search", use: scimRootSearch)
        scim.get("Users", use: scimListUsers)
        scim.post("Users", use: scimCreateUser)
        scim.post("Users/.search", use: scimSearchUsers)
        scim.get("Users/:scimUserId", use: scimGetUser)
        scim.put("Users/:scimUserId", use: scimReplaceUser)
        scim.patch("Users/:scimUserId", use: scimPatchUser)
        scim.delete("Users/:scimUserId", use: scimDeleteUser)
        scim.get("Groups", use: scimListGroups)
        scim.post("Groups", use: scimCreateGroup)
        scim.post("Groups/.search", use: scimSearchGroups)
        scim.get("Groups/:scimGroupId", use: scimGetGroup)
        scim.put("Groups/:scimGroupId", use: scimReplaceGroup)
        scim.patch("Groups/:scimGroupId", use: scimPatchGroup)
        scim.delete("Groups/:scimGroupId", use: scimDeleteGroup)
    }

    var scimBase: String { publicBaseURL + "/scim/v2" }

    // MARK: Authentication

    /// The provisioning token of the request, or 401; 429 past the per-token rate.
    func scimCaller(_ request: Request) async throws -> SCIMCaller {
        guard let header = request.headers[.authorization] else {
            throw SCIMError.unauthorized("Send the organization's SCIM token as 'Authorization: Bearer <token>'.")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw SCIMError.unauthorized("Use 'Authorization: Bearer <token>'.")
        }
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        guard secret.hasPrefix("scim_"), secret.utf8.count <= 128,
            let route = try await database.transaction(.system, { try await scim.route(secret: secret, in: $0) })
        else {
            throw SCIMError.unauthorized("The SCIM token is not valid. Create one under the organization's SCIM tokens.")
        }
        let caller = SCIMCaller(tokenId: route.tokenId, organizationId: route.organizationId)
        let now = Date()
        let hits = await rateLimiter.hit("scim:" + route.tokenId.lowercased, window: .seconds(60), now: now)
        if hits > Self.scimRequestsPerMinute {
            throw SCIMError.make(429, nil, "Too many SCIM requests for this token; slow down.", headers: [("Retry-After", "60")])
        }
        if hits == 1 {
            // Recorded at most about once a minute, so listing tokens shows which are in use.
            try await database.transaction(caller.scope) {
                try await scim.touchToken(route.tokenId, organizationId: route.organizationId, now: now, in: $0)
            }
        }
        return caller
    }

    func scimAudit(
        _ action: String, _ caller: SCIMCaller, targetType: String, targetId: UUID, details: [String: String] = [:], meta: RequestMeta,
        now: Date, in tx: any SQLExecutor
    ) async throws {
        var details = details
        details["scimTokenId"] = caller.tokenId.lowercased
        try await audit.append(
            AuditEntry(
                action: action, organizationId: caller.organizationId, targetType: targetType, targetId: targetId.lowercased,
                details: details, meta: meta),
            now: now, in: tx
        )
    }

    // MARK: Discovery (RFC 7644 §4)

    @Sendable func scimServiceProviderConfig(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        SCIMResponse.make([
            "schemas": .array([.string(SCIMSchema.serviceProviderConfig)]),
            "documentationUri": .string("https://github.com/herald/herald/blob/main/docs/SSO-SCIM.md"),
            "patch": .object(["supported": .bool(true)]),
            "bulk": .object(["supported": .bool(false), "maxOperations": .number(0), "maxPayloadSize": .number(0)]),
            "filter": .object(["supported": .bool(true), "maxResults": .number(Double(SCIMResponse.maxResults))]),
            "changePassword": .object(["supported": .bool(false)]),
            "sort": .object(["supported": .bool(false)]),
            "etag": .object(["supported": .bool(true)]),
            "authenticationSchemes": .array([
                .object([
                    "type": .string("oauthbearertoken"), "name": .string("OAuth Bearer Token"),
                    "description": .string("The organization's SCIM token, sent as 'Authorization: Bearer scim_…'."),
                    "primary": .bool(true),
                ])
            ]),
            "meta": .object([
                "resourceType": .string("ServiceProviderConfig"), "location": .string(scimBase + "/ServiceProviderConfig"),
            ]),
        ])
    }

    func scimResourceTypeDocuments() -> [[String: JSONValue]] {
        [("User", "/Users", SCIMSchema.user, "Provisioned users"), ("Group", "/Groups", SCIMSchema.group, "Groups of provisioned users")]
            .map { name, endpoint, schema, description in
                [
                    "schemas": .array([.string(SCIMSchema.resourceType)]),
                    "id": .string(name), "name": .string(name), "endpoint": .string(endpoint), "description": .string(description),
                    "schema": .string(schema),
                    "meta": .object(["resourceType": .string("ResourceType"), "location": .string(scimBase + "/ResourceTypes/" + name)]),
                ]
            }
    }

    @Sendable func scimResourceTypes(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let all = scimResourceTypeDocuments()
        return SCIMResponse.list(all, total: all.count, startIndex: 1)
    }

    @Sendable func scimResourceType(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let id = context.parameters.get("resourceTypeId") ?? ""
        guard let document = scimResourceTypeDocuments().first(where: { $0["id"] == .string(id) }) else {
            throw SCIMError.notFound("There is no resource type \(id.prefix(100)).")
        }
        return SCIMResponse.make(document)
    }

    func scimSchemaDocuments() -> [[String: JSONValue]] {
        var documents = [SCIMResourceSchema.user, SCIMResourceSchema.group].compactMap {
            $0.json(location: scimBase + "/Schemas/" + $0.id).objectValue
        }
        for var document in SCIMMetaSchemas.documents {
            let id = document["id"]?.stringValue ?? ""
            document["meta"] = .object(["resourceType": .string("Schema"), "location": .string(scimBase + "/Schemas/" + id)])
            documents.append(document)
        }
        return documents
    }

    @Sendable func scimSchemas(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let all = scimSchemaDocuments()
        return SCIMResponse.list(all, total: all.count, startIndex: 1)
    }

    @Sendable func scimSchema(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let id = context.parameters.get("schemaId") ?? ""
        guard let document = scimSchemaDocuments().first(where: { $0["id"] == .string(id) }) else {
            throw SCIMError.notFound("There is no schema \(id.prefix(200)).")
        }
        return SCIMResponse.make(document)
    }

    /// Searches users and groups at once (RFC 7644 §3.4.3): users first, then groups, one page over both.
    @Sendable func scimRootSearch(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let search = try await SCIMSearch(request: request, schema: SCIMSchema.user)
        var userLookup: SCIMStore.UserLookup? = .all
        var groupLookup: SCIMStore.GroupLookup? = .all
        if let filter = search.filter, !filter.isEmpty {
            let parsed = try SCIMFilter.parse(filter, schema: SCIMSchema.user)
            userLookup = try? userLookupFor(parsed)
            groupLookup = try? groupLookupFor(parsed)
            if userLookup == nil && groupLookup == nil {
                throw SCIMError.invalidFilter("Filter by userName, emails.value, displayName, externalId or id with eq.")
            }
        }
        let page = search.page
        let result = try await database.transaction(caller.scope) { tx -> (Int, [[String: JSONValue]]) in
            var documents: [[String: JSONValue]] = []
            var total = 0
            if let userLookup {
                let (count, users) = try await scim.users(
                    organizationId: caller.organizationId, lookup: userLookup, offset: page.offset, limit: page.count, in: tx)
                total += count
                for user in users {
                    let groups = try await scim.groups(ofUser: user.userId, organizationId: caller.organizationId, in: tx)
                    documents.append(search.projection.apply(userDocument(user, groups: groups)))
                }
            }
            if let groupLookup {
                let usersBefore = total
                let offset = max(0, page.offset - usersBefore)
                let (count, groups) = try await scim.groups(
                    organizationId: caller.organizationId, lookup: groupLookup, offset: offset, limit: page.count - documents.count, in: tx)
                total += count
                for group in groups {
                    let members = try await scim.members(ofGroup: group.id, organizationId: caller.organizationId, in: tx)
                    documents.append(search.projection.apply(groupDocument(group, members: members)))
                }
            }
            return (total, documents)
        }
        return SCIMResponse.list(result.1, total: result.0, startIndex: page.startIndex)
    }

    // MARK: Users

    func userLookupFor(_ filter: SCIMFilter) throws -> SCIMStore.UserLookup {
        switch filter.attribute {
        case "username": return .userName(filter.value)
        case "externalid": return .externalId(filter.value)
        case "emails.value": return .email(filter.value)
        // An id that is not a UUID names no user.
        case "id": return .id(UUID(text: filter.value) ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        default: throw SCIMError.invalidFilter("Users can be filtered by userName, externalId, emails.value or id with eq.")
        }
    }

    func groupLookupFor(_ filter: SCIMFilter) throws -> SCIMStore.GroupLookup {
        switch filter.attribute {
        case "displayname": return .displayName(filter.value)
        case "externalid": return .externalId(filter.value)
        case "id": return .id(UUID(text: filter.value) ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        default: throw SCIMError.invalidFilter("Groups can be filtered by displayName, externalId or id with eq.")
        }
    }

    func userLocation(_ id: UUID) -> String { scimBase + "/Users/" + id.lowercased }
    func groupLocation(_ id: UUID) -> String { scimBase + "/Groups/" + id.lowercased }

    func userDocument(_ record: SCIMUserRecord, groups: [SCIMGroupRecord]) -> [String: JSONValue] {
        var document = record.attributes
        document["schemas"] = .array([.string(SCIMSchema.user)])
        document["id"] = .string(record.userId.lowercased)
        if !groups.isEmpty {
            document["groups"] = .array(
                groups.map {
                    .object([
                        "value": .string($0.id.lowercased), "$ref": .string(groupLocation($0.id)), "display": .string($0.displayName),
                        "type": .string("direct"),
                    ])
                })
        }
        document["meta"] = SCIMResponse.meta(
            resourceType: "User", created: record.createdAt, lastModified: record.updatedAt, location: userLocation(record.userId),
            version: record.version)
        return document
    }

    func userResponse(_ record: SCIMUserRecord, status: HTTPResponse.Status = .ok, in tx: any SQLExecutor) async throws -> Response {
        let groups = try await scim.groups(ofUser: record.userId, organizationId: record.organizationId, in: tx)
        return SCIMResponse.make(
            userDocument(record, groups: groups), status: status, etag: SCIMResponse.etag(record.version),
            location: status == .created ? userLocation(record.userId) : nil)
    }

    func scimUserId(_ context: HeraldRequestContext) throws -> UUID {
        guard let text = context.parameters.get("scimUserId"), let id = UUID(text: text) else {
            throw SCIMError.notFound("There is no such user.")
        }
        return id
    }

    func loadUser(_ id: UUID, _ caller: SCIMCaller, in tx: any SQLExecutor) async throws -> SCIMUserRecord {
        guard let record = try await scim.user(id, organizationId: caller.organizationId, in: tx) else {
            throw SCIMError.notFound("User \(id.lowercased) is not provisioned in this organization.")
        }
        return record
    }

    /// The attributes of a user as Herald keeps them, checked: a userName, and an email address Herald can use.
    func validatedUser(_ attributes: [String: JSONValue]) throws -> (attributes: [String: JSONValue], email: String, name: String) {
        guard let userName = attributes["userName"]?.stringValue, !userName.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw SCIMError.invalidValue("userName is required.")
        }
        guard userName.utf8.count <= 256 else { throw SCIMError.invalidValue("userName is longer than 256 bytes.") }
        var emails: [[String: JSONValue]] = []
        if case .array(let items)? = attributes["emails"] { emails = items.compactMap(\.objectValue) }
        if emails.filter({ $0["primary"] == .bool(true) }).count > 1 {
            throw SCIMError.invalidValue("At most one email may be primary.")
        }
        let chosen = emails.first { $0["primary"] == .bool(true) } ?? emails.first
        let candidate = EmailAddress.normalize(chosen?["value"]?.stringValue ?? userName)
        guard EmailAddress.isPlausible(candidate), candidate.utf8.count <= 254 else {
            throw SCIMError.invalidValue("Herald needs an email address for every user: in emails (the primary one) or as the userName.")
        }
        var name = attributes["displayName"]?.stringValue ?? ""
        if name.isEmpty, case .object(let parts)? = attributes["name"] {
            name =
                parts["formatted"]?.stringValue
                ?? [parts["givenName"]?.stringValue, parts["familyName"]?.stringValue].compactMap { $0 }.joined(separator: " ")
        }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { name = String(candidate.split(separator: "@").first ?? "") }
        return (attributes, candidate, String(name.prefix(100)))
    }

    @Sendable func scimListUsers(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let query = request.uri.queryParameters
        let page = try SCIMPage(startIndex: query.get("startIndex"), count: query.get("count"))
        let projection = SCIMProjection(attributes: query.get("attributes"), excluded: query.get("excludedAttributes"), schema: SCIMSchema.user)
        return try await listUsers(caller, filter: query.get("filter"), page: page, projection: projection)
    }

    @Sendable func scimSearchUsers(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let search = try await SCIMSearch(request: request, schema: SCIMSchema.user)
        return try await listUsers(caller, filter: search.filter, page: search.page, projection: search.projection)
    }

    func listUsers(_ caller: SCIMCaller, filter: String?, page: SCIMPage, projection: SCIMProjection) async throws -> Response {
        var lookup = SCIMStore.UserLookup.all
        if let filter, !filter.isEmpty { lookup = try userLookupFor(try SCIMFilter.parse(filter, schema: SCIMSchema.user)) }
        let documents = try await database.transaction(caller.scope) { tx -> (Int, [[String: JSONValue]]) in
            let (total, users) = try await scim.users(
                organizationId: caller.organizationId, lookup: lookup, offset: page.offset, limit: page.count, in: tx)
            var documents: [[String: JSONValue]] = []
            for user in users {
                let groups = try await scim.groups(ofUser: user.userId, organizationId: caller.organizationId, in: tx)
                documents.append(projection.apply(userDocument(user, groups: groups)))
            }
            return (total, documents)
        }
        return SCIMResponse.list(documents.1, total: documents.0, startIndex: page.startIndex)
    }

    @Sendable func scimGetUser(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimUserId(context)
        let query = request.uri.queryParameters
        let projection = SCIMProjection(attributes: query.get("attributes"), excluded: query.get("excludedAttributes"), schema: SCIMSchema.user)
        return try await database.transaction(caller.scope) { tx in
            let record = try await loadUser(id, caller, in: tx)
            if SCIMResponse.notModified(request, version: record.version) {
                return Response(status: .notModified, headers: [.eTag: SCIMResponse.etag(record.version)])
            }
            let groups = try await scim.groups(ofUser: id, organizationId: caller.organizationId, in: tx)
            return SCIMResponse.make(projection.apply(userDocument(record, groups: groups)), etag: SCIMResponse.etag(record.version))
        }
    }

    /// Creates a provisioned user: the Herald account with that email (a new one without a password if there is
    /// none) and, when active, a membership with the role its groups grant (viewer to begin with).
    @Sendable func scimCreateUser(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let body = try await SCIMResponse.body(request)
        try SCIMSanitizer.checkSchemas(body, schema: .user)
        let (attributes, email, name) = try validatedUser(try SCIMSanitizer.attributes(body, schema: .user))
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        return try await write(caller.scope) { tx in
            var account = try await accounts.find(email: email, in: tx)
            let created = account == nil
            if account == nil {
                let fresh = Account(id: .v7(at: now), email: email, name: name, passwordHash: provisionedPasswordHash, createdAt: now, updatedAt: now)
                try await accounts.insert(fresh, in: tx)
                try await audit.append(
                    AuditEntry(
                        action: "auth.provisioned", subjectUserId: fresh.id, details: ["organizationId": caller.organizationId.lowercased], meta: meta
                    ),
                    now: now, in: tx)
                try await Outbox.append(UserCreated(userId: fresh.id), organizationId: nil, in: tx)
                account = fresh
            }
            guard let account else { throw SCIMError.make(500, nil, "The account could not be created.") }
            let record = SCIMUserRecord(
                organizationId: caller.organizationId, userId: account.id, attributes: attributes,
                active: attributes["active"] != .bool(false), version: 1, createdAt: now, updatedAt: now)
            if try await scim.user(account.id, organizationId: caller.organizationId, in: tx) != nil {
                throw SCIMError.uniqueness("A user with this email is already provisioned in this organization.")
            }
            try await scim.insertUser(record, email: email, in: tx)
            try await scimAudit(
                "scim.user.created", caller, targetType: "user", targetId: account.id,
                details: ["newAccount": String(created), "active": String(record.active)], meta: meta, now: now, in: tx)
            try await reconcileMembership(record, caller: caller, meta: meta, now: now, in: tx)
            return try await userResponse(record, status: .created, in: tx)
        }
    }

    @Sendable func scimReplaceUser(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimUserId(context)
        let body = try await SCIMResponse.body(request)
        try SCIMSanitizer.checkSchemas(body, schema: .user)
        let attributes = try SCIMSanitizer.attributes(body, schema: .user)
        return try await updateUser(id, caller: caller, request: request, context: context, action: "replaced") { _ in attributes }
    }

    @Sendable func scimPatchUser(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimUserId(context)
        let patch = try SCIMPatch(body: try await SCIMResponse.body(request))
        return try await updateUser(id, caller: caller, request: request, context: context, action: "patched") { current in
            var document = current
            try patch.apply(to: &document, schema: .user)
            return try SCIMSanitizer.attributes(document, schema: .user)
        }
    }

    /// Applies new attributes to a provisioned user: the account's profile when provisioning created it, and the
    /// membership when `active` changed.
    func updateUser(
        _ id: UUID, caller: SCIMCaller, request: Request, context: HeraldRequestContext, action: String,
        change: @Sendable ([String: JSONValue]) throws -> [String: JSONValue]
    ) async throws -> Response {
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        return try await write(caller.scope) { tx in
            var record = try await loadUser(id, caller, in: tx)
            // A request that is wrong whatever the version is a 400, before If-Match is compared.
            let (attributes, email, name) = try validatedUser(try change(record.attributes))
            try SCIMResponse.checkIfMatch(request, version: record.version)
            guard attributes != record.attributes else { return try await userResponse(record, in: tx) }
            let changed = Set(attributes.keys).union(record.attributes.keys).filter { attributes[$0] != record.attributes[$0] }.sorted()
            let wasActive = record.active
            record.attributes = attributes
            record.active = attributes["active"] != .bool(false)
            record.version += 1
            record.updatedAt = now
            try await scim.updateUser(record, email: email, in: tx)
            // The identity provider owns the profile of accounts provisioning created, as long as no other
            // organization shares them; an existing account keeps its own.
            if var account = try await accounts.find(id: id, in: tx), account.passwordHash == provisionedPasswordHash,
                account.email != email || account.name != name,
                try await otherOrganizations(of: id, caller: caller, in: tx).isEmpty
            {
                account.email = email
                account.name = name
                account.updatedAt = now
                do {
                    try await accounts.update(account, in: tx)
                } catch let error as HeraldError where error.status == 409 {
                    throw SCIMError.uniqueness("Another Herald account already uses this email.")
                }
            }
            var details = ["fields": changed.joined(separator: ","), "operation": action]
            if wasActive != record.active { details["active"] = String(record.active) }
            let verb = wasActive == record.active ? "scim.user.updated" : (record.active ? "scim.user.reactivated" : "scim.user.deactivated")
            try await scimAudit(verb, caller, targetType: "user", targetId: id, details: details, meta: meta, now: now, in: tx)
            try await reconcileMembership(record, caller: caller, meta: meta, now: now, in: tx)
            return try await userResponse(record, in: tx)
        }
    }

    @Sendable func scimDeleteUser(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimUserId(context)
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        try await write(caller.scope) { tx in
            var record = try await loadUser(id, caller, in: tx)
            try SCIMResponse.checkIfMatch(request, version: record.version)
            let groups = try await scim.groups(ofUser: id, organizationId: caller.organizationId, in: tx)
            record.active = false
            try await reconcileMembership(record, caller: caller, meta: meta, now: now, in: tx)
            try await scim.deleteUser(id, organizationId: caller.organizationId, in: tx)
            for group in groups {
                var changed = group
                changed.version += 1
                changed.updatedAt = now
                try await scim.updateGroup(changed, in: tx)
            }
            try await scimAudit("scim.user.deleted", caller, targetType: "user", targetId: id, meta: meta, now: now, in: tx)
        }
        return Response(status: .noContent)
    }

    /// Makes the membership follow the provisioned user: active users are members with the role their groups
    /// grant; inactive (or deleted) users are not members, and their sessions end when Herald has no other reason
    /// to keep them (no other organization, or an account provisioning created).
    func reconcileMembership(_ record: SCIMUserRecord, caller: SCIMCaller, meta: RequestMeta, now: Date, in tx: any SQLExecutor) async throws {
        let organizationId = caller.organizationId
        let current = try await organizations.role(of: record.userId, in: organizationId, tx: tx)
        if record.active {
            let target = try await roleFromGroups(record.userId, organizationId: organizationId, in: tx)
            if let current {
                guard current != .owner, current != target else { return }
                try await organizations.setRole(target, of: record.userId, in: organizationId, tx: tx)
                try await audit.append(
                    AuditEntry(
                        action: "member.role_changed", organizationId: organizationId, targetType: "user", targetId: record.userId.lowercased,
                        details: ["from": current.rawValue, "to": target.rawValue, "via": "scim", "scimTokenId": caller.tokenId.lowercased],
                        meta: meta),
                    now: now, in: tx)
                try await Outbox.append(
                    MemberRoleChanged(organizationId: organizationId, userId: record.userId, role: target, previousRole: current),
                    organizationId: organizationId, in: tx)
            } else {
                try await organizations.addMember(record.userId, to: organizationId, role: target, now: now, in: tx)
                try await audit.append(
                    AuditEntry(
                        action: "member.joined", organizationId: organizationId, targetType: "user", targetId: record.userId.lowercased,
                        details: ["role": target.rawValue, "via": "scim", "scimTokenId": caller.tokenId.lowercased], meta: meta),
                    now: now, in: tx)
                try await Outbox.append(
                    MemberJoined(organizationId: organizationId, userId: record.userId, role: target, via: "scim"),
                    organizationId: organizationId, in: tx)
            }
            return
        }
        guard let current else { return }
        // Removing an owner needs an owner in Herald (the permission matrix); a token, which an admin may create,
        // must not be a way around it.
        if current == .owner {
            throw SCIMError.mutability("This user is an owner of the organization; owners are removed in Herald, by an owner.")
        }
        try await organizations.removeMember(record.userId, from: organizationId, in: tx)
        let remaining = try await otherOrganizations(of: record.userId, caller: caller, in: tx)
        let account = try await accounts.find(id: record.userId, in: tx)
        let endSessions = remaining.isEmpty || account?.passwordHash == provisionedPasswordHash
        if endSessions {
            try await sessions.revokeAll(userId: record.userId, except: nil, reason: "scim_deprovisioned", now: now, in: tx)
        }
        try await audit.append(
            AuditEntry(
                action: "member.removed", organizationId: organizationId, targetType: "user", targetId: record.userId.lowercased,
                details: [
                    "role": current.rawValue, "via": "scim", "scimTokenId": caller.tokenId.lowercased, "sessionsEnded": String(endSessions),
                ],
                meta: meta),
            now: now, in: tx)
        try await Outbox.append(MemberRemoved(organizationId: organizationId, userId: record.userId), organizationId: organizationId, in: tx)
    }

    /// The organizations other than the caller's that a user belongs to.
    func otherOrganizations(of userId: UUID, caller: SCIMCaller, in tx: any SQLExecutor) async throws -> [UUID] {
        // The user's memberships are visible in the user's scope (row-level security in PostgreSQL).
        try await tx.setTenant(.organization(caller.organizationId, user: userId))
        let all = try await organizations.list(forUser: userId, in: tx)
        try await tx.setTenant(caller.scope)
        return all.map(\.0.id).filter { $0 != caller.organizationId }
    }

    /// The role a provisioned user's groups grant: the highest among them, viewer when none names a role.
    func roleFromGroups(_ userId: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> Role {
        try await scim.groups(ofUser: userId, organizationId: organizationId, in: tx).compactMap(\.role).max() ?? .viewer
    }

    /// The role a group's name grants: its last word, singular or plural (`Herald Admins`, `herald-member`,
    /// `Viewers`). Provisioning never grants the owner role.
    static func role(forGroupName name: String) -> Role? {
        let words = name.lowercased().split { !($0.isLetter || $0.isNumber) }
        switch words.last.map(String.init) {
        case "admin", "admins", "administrator", "administrators": return .admin
        case "member", "members", "editor", "editors": return .member
        case "viewer", "viewers", "reader", "readers": return .viewer
        default: return nil
        }
    }

    // MARK: Groups

    func groupDocument(_ group: SCIMGroupRecord, members: [UUID]) -> [String: JSONValue] {
        var document: [String: JSONValue] = [
            "schemas": .array([.string(SCIMSchema.group)]),
            "id": .string(group.id.lowercased),
            "displayName": .string(group.displayName),
            "meta": SCIMResponse.meta(
                resourceType: "Group", created: group.createdAt, lastModified: group.updatedAt, location: groupLocation(group.id),
                version: group.version),
        ]
        if let externalId = group.externalId { document["externalId"] = .string(externalId) }
        if !members.isEmpty {
            document["members"] = .array(
                members.map { .object(["value": .string($0.lowercased), "$ref": .string(userLocation($0)), "type": .string("User")]) })
        }
        return document
    }

    func groupResponse(_ group: SCIMGroupRecord, status: HTTPResponse.Status = .ok, in tx: any SQLExecutor) async throws -> Response {
        let members = try await scim.members(ofGroup: group.id, organizationId: group.organizationId, in: tx)
        return SCIMResponse.make(
            groupDocument(group, members: members), status: status, etag: SCIMResponse.etag(group.version),
            location: status == .created ? groupLocation(group.id) : nil)
    }

    func scimGroupId(_ context: HeraldRequestContext) throws -> UUID {
        guard let text = context.parameters.get("scimGroupId"), let id = UUID(text: text) else {
            throw SCIMError.notFound("There is no such group.")
        }
        return id
    }

    func loadGroup(_ id: UUID, _ caller: SCIMCaller, in tx: any SQLExecutor) async throws -> SCIMGroupRecord {
        guard let group = try await scim.group(id, organizationId: caller.organizationId, in: tx) else {
            throw SCIMError.notFound("Group \(id.lowercased) does not exist in this organization.")
        }
        return group
    }

    /// A group's attributes checked: its displayName and its members, which must be provisioned users.
    func validatedGroup(
        _ attributes: [String: JSONValue], caller: SCIMCaller, in tx: any SQLExecutor
    ) async throws -> (
        displayName: String, externalId: String?, members: [UUID]
    ) {
        guard let displayName = attributes["displayName"]?.stringValue, !displayName.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw SCIMError.invalidValue("displayName is required.")
        }
        guard displayName.utf8.count <= 256 else { throw SCIMError.invalidValue("displayName is longer than 256 bytes.") }
        var members: [UUID] = []
        if case .array(let items)? = attributes["members"] {
            for item in items {
                guard let value = item.objectValue?["value"]?.stringValue else { throw SCIMError.invalidValue("Each member needs a value.") }
                if let type = item.objectValue?["type"]?.stringValue, type.lowercased() == "group" {
                    throw SCIMError.invalidValue("Groups cannot contain groups in Herald.")
                }
                guard let id = UUID(text: value), try await scim.user(id, organizationId: caller.organizationId, in: tx) != nil else {
                    throw SCIMError.invalidValue("Member \(value.prefix(64)) is not a user provisioned in this organization.")
                }
                if !members.contains(id) { members.append(id) }
            }
        }
        if members.count > 10_000 { throw SCIMError.make(400, "tooMany", "A group has at most 10000 members.") }
        return (displayName, attributes["externalId"]?.stringValue, members)
    }

    @Sendable func scimListGroups(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let query = request.uri.queryParameters
        let page = try SCIMPage(startIndex: query.get("startIndex"), count: query.get("count"))
        let projection = SCIMProjection(attributes: query.get("attributes"), excluded: query.get("excludedAttributes"), schema: SCIMSchema.group)
        return try await listGroups(caller, filter: query.get("filter"), page: page, projection: projection)
    }

    @Sendable func scimSearchGroups(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let search = try await SCIMSearch(request: request, schema: SCIMSchema.group)
        return try await listGroups(caller, filter: search.filter, page: search.page, projection: search.projection)
    }

    func listGroups(_ caller: SCIMCaller, filter: String?, page: SCIMPage, projection: SCIMProjection) async throws -> Response {
        var lookup = SCIMStore.GroupLookup.all
        if let filter, !filter.isEmpty { lookup = try groupLookupFor(try SCIMFilter.parse(filter, schema: SCIMSchema.group)) }
        // Okta asks for groups without their members (excludedAttributes=members): skip reading them then.
        let withMembers = !(projection.excluded?.contains("members") ?? false)
        let documents = try await database.transaction(caller.scope) { tx -> (Int, [[String: JSONValue]]) in
            let (total, groups) = try await scim.groups(
                organizationId: caller.organizationId, lookup: lookup, offset: page.offset, limit: page.count, in: tx)
            var documents: [[String: JSONValue]] = []
            for group in groups {
                let members = withMembers ? try await scim.members(ofGroup: group.id, organizationId: caller.organizationId, in: tx) : []
                documents.append(projection.apply(groupDocument(group, members: members)))
            }
            return (total, documents)
        }
        return SCIMResponse.list(documents.1, total: documents.0, startIndex: page.startIndex)
    }

    @Sendable func scimGetGroup(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimGroupId(context)
        let query = request.uri.queryParameters
        let projection = SCIMProjection(attributes: query.get("attributes"), excluded: query.get("excludedAttributes"), schema: SCIMSchema.group)
        return try await database.transaction(caller.scope) { tx in
            let group = try await loadGroup(id, caller, in: tx)
            if SCIMResponse.notModified(request, version: group.version) {
                return Response(status: .notModified, headers: [.eTag: SCIMResponse.etag(group.version)])
            }
            let members = try await scim.members(ofGroup: id, organizationId: caller.organizationId, in: tx)
            return SCIMResponse.make(projection.apply(groupDocument(group, members: members)), etag: SCIMResponse.etag(group.version))
        }
    }

    @Sendable func scimCreateGroup(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let body = try await SCIMResponse.body(request)
        try SCIMSanitizer.checkSchemas(body, schema: .group)
        let attributes = try SCIMSanitizer.attributes(body, schema: .group)
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        return try await write(caller.scope) { tx in
            let (displayName, externalId, members) = try await validatedGroup(attributes, caller: caller, in: tx)
            let group = SCIMGroupRecord(
                id: .v7(at: now), organizationId: caller.organizationId, displayName: displayName, externalId: externalId,
                role: Self.role(forGroupName: displayName), version: 1, createdAt: now, updatedAt: now)
            try await scim.insertGroup(group, in: tx)
            try await scim.setMembers(ofGroup: group.id, organizationId: caller.organizationId, to: members, in: tx)
            try await scimAudit(
                "scim.group.created", caller, targetType: "scim_group", targetId: group.id,
                details: ["displayName": displayName, "role": group.role?.rawValue ?? "none", "members": String(members.count)],
                meta: meta, now: now, in: tx)
            try await reconcileUsers(members, caller: caller, meta: meta, now: now, in: tx)
            return try await groupResponse(group, status: .created, in: tx)
        }
    }

    @Sendable func scimReplaceGroup(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimGroupId(context)
        let body = try await SCIMResponse.body(request)
        try SCIMSanitizer.checkSchemas(body, schema: .group)
        let attributes = try SCIMSanitizer.attributes(body, schema: .group)
        return try await updateGroup(id, caller: caller, request: request, context: context, action: "replaced") { _ in attributes }
    }

    @Sendable func scimPatchGroup(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimGroupId(context)
        let patch = try SCIMPatch(body: try await SCIMResponse.body(request))
        return try await updateGroup(id, caller: caller, request: request, context: context, action: "patched") { current in
            var document = current
            try patch.apply(to: &document, schema: .group)
            return try SCIMSanitizer.attributes(document, schema: .group)
        }
    }

    func updateGroup(
        _ id: UUID, caller: SCIMCaller, request: Request, context: HeraldRequestContext, action: String,
        change: @Sendable ([String: JSONValue]) throws -> [String: JSONValue]
    ) async throws -> Response {
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        return try await write(caller.scope) { tx in
            var group = try await loadGroup(id, caller, in: tx)
            let before = try await scim.members(ofGroup: id, organizationId: caller.organizationId, in: tx)
            let current = groupDocument(group, members: before).filter { ["displayName", "externalId", "members"].contains($0.key) }
            let (displayName, externalId, members) = try await validatedGroup(try change(current), caller: caller, in: tx)
            try SCIMResponse.checkIfMatch(request, version: group.version)
            let role = Self.role(forGroupName: displayName)
            let added = Set(members).subtracting(before)
            let removed = Set(before).subtracting(members)
            guard displayName != group.displayName || externalId != group.externalId || !added.isEmpty || !removed.isEmpty else {
                return try await groupResponse(group, in: tx)
            }
            let roleChanged = role != group.role
            group.displayName = displayName
            group.externalId = externalId
            group.role = role
            group.version += 1
            group.updatedAt = now
            try await scim.updateGroup(group, in: tx)
            try await scim.setMembers(ofGroup: id, organizationId: caller.organizationId, to: members, in: tx)
            try await scimAudit(
                "scim.group.updated", caller, targetType: "scim_group", targetId: id,
                details: [
                    "displayName": displayName, "role": role?.rawValue ?? "none", "membersAdded": String(added.count),
                    "membersRemoved": String(removed.count), "operation": action,
                ],
                meta: meta, now: now, in: tx)
            let affected = roleChanged ? Set(before).union(members) : added.union(removed)
            for user in affected where added.contains(user) || removed.contains(user) {
                // The user's representation lists its groups: its version moves too.
                if var record = try await scim.user(user, organizationId: caller.organizationId, in: tx) {
                    record.version += 1
                    record.updatedAt = now
                    let email = try validatedUser(record.attributes).email
                    try await scim.updateUser(record, email: email, in: tx)
                }
            }
            try await reconcileUsers(Array(affected), caller: caller, meta: meta, now: now, in: tx)
            return try await groupResponse(group, in: tx)
        }
    }

    @Sendable func scimDeleteGroup(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let caller = try await scimCaller(request)
        let id = try scimGroupId(context)
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        try await write(caller.scope) { tx in
            let group = try await loadGroup(id, caller, in: tx)
            try SCIMResponse.checkIfMatch(request, version: group.version)
            let members = try await scim.members(ofGroup: id, organizationId: caller.organizationId, in: tx)
            try await scim.deleteGroup(id, organizationId: caller.organizationId, in: tx)
            try await scimAudit(
                "scim.group.deleted", caller, targetType: "scim_group", targetId: id,
                details: ["displayName": group.displayName, "members": String(members.count)], meta: meta, now: now, in: tx)
            try await reconcileUsers(members, caller: caller, meta: meta, now: now, in: tx)
        }
        return Response(status: .noContent)
    }

    func reconcileUsers(_ users: [UUID], caller: SCIMCaller, meta: RequestMeta, now: Date, in tx: any SQLExecutor) async throws {
        for user in Set(users) {
            guard let record = try await scim.user(user, organizationId: caller.organizationId, in: tx), record.active else { continue }
            try await reconcileMembership(record, caller: caller, meta: meta, now: now, in: tx)
        }
    }
}

/// A `POST …/.search` body (RFC 7644 §3.4.3).
struct SCIMSearch: Sendable {
    var filter: String?
    var page: SCIMPage
    var projection: SCIMProjection

    init(request: Request, schema: String) async throws {
        let body = try await SCIMResponse.body(request)
        func field(_ name: String) -> JSONValue? { body.first { $0.key.lowercased() == name.lowercased() }?.value }
        func names(_ name: String) throws -> [String]? {
            switch field(name) {
            case .none, .null?: return nil
            case .array(let items)?:
                return try items.map { item in
                    guard let text = item.stringValue else { throw SCIMError.invalidValue("\(name) must be a list of strings.") }
                    return text
                }
            case .string(let text)?: return text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            default: throw SCIMError.invalidValue("\(name) must be a list of strings.")
            }
        }
        func integer(_ name: String) throws -> Int? {
            switch field(name) {
            case .none, .null?: return nil
            case .number(let value)? where value.rounded() == value && abs(value) < 1e9: return Int(value)
            default: throw SCIMError.invalidValue("\(name) must be an integer.")
            }
        }
        switch field("filter") {
        case .none, .null?: filter = nil
        case .string(let text)?: filter = text
        default: throw SCIMError.invalidValue("filter must be a string.")
        }
        page = SCIMPage(startIndex: try integer("startIndex"), count: try integer("count"))
        projection = SCIMProjection(attributes: try names("attributes"), excluded: try names("excludedAttributes"), schema: schema)
    }
}
