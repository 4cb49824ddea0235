import Foundation
import HTTPTypes
import HeraldHTTP
import Hummingbird
import HummingbirdTesting
import Testing

/// SCIM 2.0 provisioning (RFC 7643/7644) at /scim/v2, per organization through its token.
@Suite("SCIM provisioning")
struct SCIMTests {
    struct Org {
        var ownerToken: String
        var id: String
        var scimToken: String
    }

    static func organization(_ client: any TestClientProtocol, name: String = "Acme") async throws -> Org {
        let owner = try await client.signup()
        let org = try await client.createOrganization(owner.token, name: name)
        let created = try await client.call(.post, "/organizations/\(org)/scim-tokens", json: ["name": "Okta"], token: owner.token)
        try #require(created.status == .created, "token: \(created.text)")
        let token = try #require(created["token"])
        #expect(token.hasPrefix("scim_"))
        #expect(created["scimBaseUrl"] == "http://herald.test/scim/v2")
        return Org(ownerToken: owner.token, id: org, scimToken: token)
    }

    static func scimHeaders(_ extra: HTTPFields = [:]) -> HTTPFields {
        var headers = extra
        headers[.contentType] = "application/scim+json"
        return headers
    }

    static func createUser(
        _ client: any TestClientProtocol, _ org: Org, userName: String, email: String? = nil, extra: [String: Any] = [:]
    )
        async throws -> JSONResult
    {
        var body: [String: Any] = [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": userName,
            "name": ["givenName": "Ada", "familyName": "Lovelace"],
            "emails": [["value": email ?? userName, "type": "work", "primary": true]],
        ]
        body.merge(extra) { _, new in new }
        return try await client.call(.post, "/scim/v2/Users", json: body, token: org.scimToken, headers: scimHeaders())
    }

    static func expectSCIMError(
        _ result: JSONResult, _ status: HTTPResponse.Status, scimType: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == status, "expected \(status.code), got \(result.status.code): \(result.text)", sourceLocation: sourceLocation)
        #expect(result.headers[.contentType] == "application/scim+json", sourceLocation: sourceLocation)
        #expect((result.json["schemas"] as? [String]) == ["urn:ietf:params:scim:api:messages:2.0:Error"], sourceLocation: sourceLocation)
        #expect(result["status"] == String(status.code), sourceLocation: sourceLocation)
        if let scimType { #expect(result["scimType"] == scimType, sourceLocation: sourceLocation) }
    }

    @Test(arguments: TestStore.available)
    func usersLifecycleWithFilterPaginationPatchAndETags(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let org = try await Self.organization(client)
            let created = try await Self.createUser(client, org, userName: "ada@example.com", extra: ["externalId": "okta-1"])
            #expect(created.status == .created, "\(created.text)")
            #expect(created.headers[.contentType] == "application/scim+json")
            let id = try #require(created["id"])
            let meta = try #require(created.json["meta"] as? [String: Any])
            #expect(meta["resourceType"] as? String == "User")
            #expect(meta["location"] as? String == "http://herald.test/scim/v2/Users/\(id)")
            #expect(created.headers[.location] == "http://herald.test/scim/v2/Users/\(id)")
            let etag = try #require(created.headers[.eTag])
            #expect(etag.hasPrefix("W/\""))
            #expect(meta["version"] as? String == etag)

            // A new account has no password: it signs in through single sign-on only.
            let login = try await client.call(.post, "/auth/login", json: ["email": "ada@example.com", "password": "!scim-provisioned"])
            expectProblem(login, .unauthorized)
            // Uniqueness: the same userName (case-insensitive) is a 409 uniqueness.
            Self.expectSCIMError(try await Self.createUser(client, org, userName: "ADA@example.com"), .conflict, scimType: "uniqueness")
            // The user is a member of the organization, as a viewer.
            let members = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(members.items.contains { $0["email"] as? String == "ada@example.com" && $0["role"] as? String == "viewer" })

            // Filters: userName (case-insensitive attribute name and value), externalId, emails.value.
            for filter in [
                "userName eq \"ADA@example.com\"", "USERNAME eq \"ada@example.com\"", "externalId eq \"okta-1\"",
                "emails.value eq \"ada@example.com\"",
            ] {
                let query = filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                let found = try await client.call(.get, "/scim/v2/Users?filter=\(query)", token: org.scimToken)
                #expect(found.status == .ok, "\(filter): \(found.text)")
                #expect(found.json["totalResults"] as? Int == 1, "\(filter)")
            }
            let none = try await client.call(.get, "/scim/v2/Users?filter=userName%20eq%20%22nobody%22", token: org.scimToken)
            #expect(none.json["totalResults"] as? Int == 0)
            Self.expectSCIMError(
                try await client.call(.get, "/scim/v2/Users?filter=userName%20co%20%22ada%22", token: org.scimToken), .badRequest,
                scimType: "invalidFilter")
            Self.expectSCIMError(
                try await client.call(.get, "/scim/v2/Users?filter=title%20eq%20%22x%22", token: org.scimToken), .badRequest,
                scimType: "invalidFilter")

            // Pagination.
            for index in 0..<3 { _ = try await Self.createUser(client, org, userName: "user\(index)@example.com") }
            let page = try await client.call(.get, "/scim/v2/Users?startIndex=2&count=2", token: org.scimToken)
            #expect(page.json["totalResults"] as? Int == 4)
            #expect(page.json["itemsPerPage"] as? Int == 2)
            #expect(page.json["startIndex"] as? Int == 2)
            #expect((page.json["Resources"] as? [[String: Any]])?.count == 2)
            let countOnly = try await client.call(.get, "/scim/v2/Users?count=0", token: org.scimToken)
            #expect(countOnly.json["totalResults"] as? Int == 4)
            #expect((countOnly.json["Resources"] as? [Any])?.count == 0)

            // PATCH: replace with a path, add with a value filter, and without a path.
            let patch: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    ["op": "Replace", "path": "name.givenName", "value": "Augusta"],
                    ["op": "add", "path": "emails[type eq \"home\"].value", "value": "ada@home.example.com"],
                    ["op": "replace", "value": ["displayName": "Ada L."]],
                ],
            ]
            let patched = try await client.call(
                .patch, "/scim/v2/Users/\(id)", json: patch, token: org.scimToken, headers: Self.scimHeaders([.ifMatch: etag]))
            #expect(patched.status == .ok, "\(patched.text)")
            #expect((patched.json["name"] as? [String: Any])?["givenName"] as? String == "Augusta")
            #expect((patched.json["emails"] as? [[String: Any]])?.count == 2)
            #expect(patched["displayName"] == "Ada L.")
            // A value made primary makes the others not primary (RFC 7644 §3.5.2).
            let primary: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [["op": "replace", "path": "emails[type eq \"home\"].primary", "value": true]],
            ]
            let switched = try await client.call(.patch, "/scim/v2/Users/\(id)", json: primary, token: org.scimToken)
            let primaries = ((switched.json["emails"] as? [[String: Any]]) ?? []).filter { $0["primary"] as? Bool == true }
            #expect(primaries.map { $0["value"] as? String } == ["ada@home.example.com"], "\(switched.text)")
            let back: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [["op": "replace", "path": "emails[type eq \"work\"].primary", "value": true]],
            ]
            let restored = try await client.call(.patch, "/scim/v2/Users/\(id)", json: back, token: org.scimToken)
            let workPrimary = ((restored.json["emails"] as? [[String: Any]]) ?? []).filter { $0["primary"] as? Bool == true }
            #expect(workPrimary.map { $0["value"] as? String } == ["ada@example.com"], "\(restored.text)")
            #expect(patched.headers[.eTag] != etag)
            // The old ETag no longer matches: 412.
            Self.expectSCIMError(
                try await client.call(
                    .patch, "/scim/v2/Users/\(id)", json: patch, token: org.scimToken, headers: Self.scimHeaders([.ifMatch: etag])),
                .preconditionFailed)
            // attributes / excludedAttributes.
            let only = try await client.call(.get, "/scim/v2/Users/\(id)?attributes=userName", token: org.scimToken)
            #expect(only["userName"] == "ada@example.com")
            #expect(only["id"] == id)
            #expect(only.json["name"] == nil)
            let without = try await client.call(.get, "/scim/v2/Users/\(id)?excludedAttributes=name", token: org.scimToken)
            #expect(without.json["name"] == nil)
            #expect(without["userName"] == "ada@example.com")

            // Remove without a path is a noTarget error; a malformed body is invalidSyntax.
            let noPath: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "remove"]],
            ]
            Self.expectSCIMError(
                try await client.call(.patch, "/scim/v2/Users/\(id)", json: noPath, token: org.scimToken), .badRequest, scimType: "noTarget")
            Self.expectSCIMError(
                try await client.call(.post, "/scim/v2/Users", raw: "{not json", token: org.scimToken), .badRequest, scimType: "invalidSyntax")

            // DELETE: the user is gone from SCIM and from the organization.
            #expect(try await client.call(.delete, "/scim/v2/Users/\(id)", token: org.scimToken).status == .noContent)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Users/\(id)", token: org.scimToken), .notFound)
            let after = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(!after.items.contains { $0["email"] as? String == "ada@example.com" })

            // Every change is in the audit log.
            let audit = try await client.call(.get, "/organizations/\(org.id)/audit-logs?limit=100", token: org.ownerToken)
            let actions = Set(audit.items.compactMap { $0["action"] as? String })
            for action in ["scim.token.created", "scim.user.created", "scim.user.updated", "scim.user.deleted", "member.joined", "member.removed"] {
                #expect(actions.contains(action), "missing \(action) in \(actions)")
            }
            #expect(!audit.text.contains("ada@example.com"), "the audit log carries no email addresses")
            let verified = try await client.call(.get, "/organizations/\(org.id)/audit-logs/verify", token: org.ownerToken)
            #expect(verified.json["valid"] as? Bool == true)
        }
    }

    @Test(arguments: TestStore.available)
    func deprovisioningEndsTheUsersSessions(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let org = try await Self.organization(client)
            let person = try await client.signup(email: "grace@example.com")
            let created = try await Self.createUser(client, org, userName: "grace@example.com")
            #expect(created.status == .created)
            #expect(created["id"] == person.userId, "an existing account with that email is provisioned")
            #expect(try await client.call(.get, "/organizations/\(org.id)", token: person.token).status == .ok)

            let deactivate: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [["op": "replace", "value": ["active": false]]],
            ]
            let patched = try await client.call(.patch, "/scim/v2/Users/\(person.userId)", json: deactivate, token: org.scimToken)
            #expect(patched.status == .ok, "\(patched.text)")
            #expect(patched.json["active"] as? Bool == false)
            // The access token of the existing session is refused, and so is its refresh token.
            expectProblem(try await client.call(.get, "/users/me", token: person.token), .unauthorized)
            expectProblem(try await client.call(.post, "/auth/refresh", json: ["refreshToken": person.refresh]), .unauthorized)
            // Still listed by SCIM (inactive), no longer a member.
            let members = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(!members.items.contains { $0["userId"] as? String == person.userId })
            // An owner is not removed by provisioning: an admin's token is no way around the role matrix.
            let ownerId = try #require(
                (try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)).items.first {
                    $0["role"] as? String == "owner"
                }?["userId"] as? String)
            let ownerEmail = try #require(
                (try await client.call(.get, "/users/me", token: org.ownerToken))["email"])
            let adopted = try await Self.createUser(client, org, userName: ownerEmail)
            #expect(adopted["id"] == ownerId)
            Self.expectSCIMError(
                try await client.call(.patch, "/scim/v2/Users/\(ownerId)", json: deactivate, token: org.scimToken), .badRequest,
                scimType: "mutability")
            Self.expectSCIMError(
                try await client.call(.delete, "/scim/v2/Users/\(ownerId)", token: org.scimToken), .badRequest, scimType: "mutability")
            #expect(try await client.call(.get, "/users/me", token: org.ownerToken).status == .ok)
            // Reactivated: a member again.
            let reactivate: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [["op": "replace", "path": "active", "value": "True"]],
            ]
            #expect(try await client.call(.patch, "/scim/v2/Users/\(person.userId)", json: reactivate, token: org.scimToken).status == .ok)
            let again = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(again.items.contains { $0["userId"] as? String == person.userId })
        }
    }

    @Test(arguments: TestStore.available)
    func groupsGrantRolesAndTenantsAreIsolated(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let org = try await Self.organization(client)
            let other = try await Self.organization(client, name: "Other")
            let user = try await Self.createUser(client, org, userName: "linus@example.com")
            let userId = try #require(user["id"])
            let group = try await client.call(
                .post, "/scim/v2/Groups",
                json: ["schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Herald Admins", "members": [["value": userId]]],
                token: org.scimToken, headers: Self.scimHeaders())
            #expect(group.status == .created, "\(group.text)")
            let groupId = try #require(group["id"])
            var members = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(members.items.first { $0["userId"] as? String == userId }?["role"] as? String == "admin")
            let withGroups = try await client.call(.get, "/scim/v2/Users/\(userId)", token: org.scimToken)
            #expect((withGroups.json["groups"] as? [[String: Any]])?.first?["value"] as? String == groupId)

            // Removing the member by a value filter takes the role away again.
            let remove: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [["op": "remove", "path": "members[value eq \"\(userId)\"]"]],
            ]
            let patched = try await client.call(.patch, "/scim/v2/Groups/\(groupId)", json: remove, token: org.scimToken)
            #expect(patched.status == .ok, "\(patched.text)")
            #expect(patched.json["members"] == nil)
            members = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(members.items.first { $0["userId"] as? String == userId }?["role"] as? String == "viewer")

            // Another organization's token sees none of it, and cannot touch it.
            let list = try await client.call(.get, "/scim/v2/Users", token: other.scimToken)
            #expect(list.json["totalResults"] as? Int == 0)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Users/\(userId)", token: other.scimToken), .notFound)
            Self.expectSCIMError(try await client.call(.delete, "/scim/v2/Users/\(userId)", token: other.scimToken), .notFound)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Groups/\(groupId)", token: other.scimToken), .notFound)
            let filtered = try await client.call(.get, "/scim/v2/Users?filter=userName%20eq%20%22linus@example.com%22", token: other.scimToken)
            #expect(filtered.json["totalResults"] as? Int == 0)
            // A group of the other organization cannot take this organization's user.
            let stolen = try await client.call(
                .post, "/scim/v2/Groups", json: ["displayName": "Admins", "members": [["value": userId]]], token: other.scimToken)
            Self.expectSCIMError(stolen, .badRequest, scimType: "invalidValue")

            // Bad tokens: 401 in SCIM's error shape; a user's access token is not a SCIM token.
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Users"), .unauthorized)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Users", token: "scim_nope"), .unauthorized)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Users", token: org.ownerToken), .unauthorized)
            // An unknown SCIM path is a SCIM 404.
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/\(UUID().uuidString)", token: org.scimToken), .notFound)

            // Deleting the token stops it at once; the token list never shows secrets.
            let tokens = try await client.call(.get, "/organizations/\(org.id)/scim-tokens", token: org.ownerToken)
            #expect(tokens.items.count == 1)
            #expect(tokens.items.first?["token"] == nil)
            let tokenId = try #require(tokens.items.first?["id"] as? String)
            // Only the organization's admins see its tokens.
            expectProblem(try await client.call(.get, "/organizations/\(org.id)/scim-tokens", token: other.ownerToken), .notFound)
            #expect(try await client.call(.delete, "/organizations/\(org.id)/scim-tokens/\(tokenId)", token: org.ownerToken).status == .noContent)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Users", token: org.scimToken), .unauthorized)
        }
    }

    @Test(arguments: TestStore.available)
    func discoveryDescribesTheServer(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let config = try await client.call(.get, "/scim/v2/ServiceProviderConfig")
            #expect(config.status == .ok)
            #expect((config.json["patch"] as? [String: Any])?["supported"] as? Bool == true)
            #expect((config.json["etag"] as? [String: Any])?["supported"] as? Bool == true)
            let types = try await client.call(.get, "/scim/v2/ResourceTypes")
            #expect(types.json["totalResults"] as? Int == 2)
            #expect(try await client.call(.get, "/scim/v2/ResourceTypes/User").status == .ok)
            let schemas = try await client.call(.get, "/scim/v2/Schemas")
            let names = Set(((schemas.json["Resources"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
            #expect(names == ["User", "Group", "ServiceProviderConfig", "ResourceType", "Schema"])
            #expect(try await client.call(.get, "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").status == .ok)
            Self.expectSCIMError(try await client.call(.get, "/scim/v2/Schemas/urn:nope"), .notFound)
            Self.expectSCIMError(try await client.call(.post, "/scim/v2/ServiceProviderConfig", json: [:]), .methodNotAllowed)
        }
    }
}

extension SCIMTests {
    @Test(arguments: TestStore.available)
    func identityProviderDialects(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let org = try await Self.organization(client)
            let user = try await Self.createUser(client, org, userName: "entra@example.com")
            let id = try #require(user["id"])
            // Entra ID: capitalised ops, attributes Herald does not keep, the enterprise extension, work email by filter.
            let entra: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    ["op": "Replace", "path": "title", "value": "Engineer"],
                    ["op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"],
                    ["op": "Replace", "path": "emails[type eq \"work\"].value", "value": "entra@example.com"],
                    ["op": "Replace", "path": "name.familyName", "value": "Hopper"],
                ],
            ]
            let patched = try await client.call(.patch, "/scim/v2/Users/\(id)", json: entra, token: org.scimToken)
            #expect(patched.status == .ok, "\(patched.text)")
            #expect(patched.json["title"] == nil)
            #expect((patched.json["name"] as? [String: Any])?["familyName"] as? String == "Hopper")
            // An attribute no schema defines is an invalidPath.
            let unknown: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "add", "path": "favouriteColour", "value": "x"]],
            ]
            Self.expectSCIMError(
                try await client.call(.patch, "/scim/v2/Users/\(id)", json: unknown, token: org.scimToken), .badRequest, scimType: "invalidPath")
            // A body naming another resource's schema is invalidSyntax.
            let wrong = try await client.call(
                .post, "/scim/v2/Users", json: ["schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x@example.com"],
                token: org.scimToken)
            Self.expectSCIMError(wrong, .badRequest, scimType: "invalidSyntax")

            // Okta: a group renamed with its id in the value, members added by value.
            let group = try await client.call(.post, "/scim/v2/Groups", json: ["displayName": "Engineering"], token: org.scimToken)
            let groupId = try #require(group["id"])
            let okta: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    ["op": "replace", "value": ["id": groupId, "displayName": "Engineering Members"]],
                    ["op": "add", "path": "members", "value": [["value": id, "display": "entra@example.com"]]],
                ],
            ]
            let renamed = try await client.call(.patch, "/scim/v2/Groups/\(groupId)", json: okta, token: org.scimToken)
            #expect(renamed.status == .ok, "\(renamed.text)")
            #expect(renamed["displayName"] == "Engineering Members")
            let members = try await client.call(.get, "/organizations/\(org.id)/members", token: org.ownerToken)
            #expect(members.items.first { $0["userId"] as? String == id }?["role"] as? String == "member")
            // Entra removes members with a value list.
            let entraRemove: [String: Any] = [
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [["op": "Remove", "path": "members", "value": [["value": id]]]],
            ]
            let removed = try await client.call(.patch, "/scim/v2/Groups/\(groupId)", json: entraRemove, token: org.scimToken)
            #expect(removed.status == .ok, "\(removed.text)")
            #expect(removed.json["members"] == nil)
        }
    }
}

extension SCIMTests {
    @Test(arguments: TestStore.available)
    func provisionedPersonalDataIsEncryptedAtRest(store: TestStore) async throws {
        let marker = UUID().uuidString.lowercased().prefix(8)
        let email = "provisioned-\(marker)@example.org"
        let userName = "login-\(marker)@corp.example.org"
        let externalId = "okta-ext-\(marker)"
        let family = "Quxworth\(marker)"
        try await withApp(store) { client, environment in
            let org = try await Self.organization(client)
            let created = try await Self.createUser(
                client, org, userName: userName, email: email,
                extra: ["externalId": externalId, "name": ["givenName": "Zebediah", "familyName": family], "displayName": "Zeb \(family)"])
            #expect(created.status == .created, "\(created.text)")
            let found = try await client.call(
                .get, "/scim/v2/Users?filter=externalId%20eq%20%22\(externalId)%22", token: org.scimToken)
            #expect(found.json["totalResults"] as? Int == 1)
            let everything = try await StoredBytes.dump(environment)
            #expect(everything.count > 1000)
            for secret in [email, userName, externalId, family, org.scimToken] {
                #expect(!everything.contains(secret), "\(secret) is stored in clear")
            }
        }
    }
}
