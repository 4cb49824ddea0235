import Foundation
import HTTPTypes
import HeraldHTTP
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Organizations, members and invitations API")
struct OrganizationAPITests {
    @Test(arguments: TestStore.available)
    func creatorIsOwnerAndSeesTheOrganization(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token, name: "Acme Inc")
            let list = try await client.call(.get, "/organizations", token: owner.token)
            #expect(list.status == .ok)
            #expect(list.items.count == 1)
            #expect(list.items.first?["role"] as? String == "owner")
            #expect(list.items.first?["name"] as? String == "Acme Inc")

            let renamed = try await client.call(.patch, "/organizations/\(org)", json: ["name": "Acme"], token: owner.token)
            #expect(renamed["name"] == "Acme")
            let members = try await client.call(.get, "/organizations/\(org)/members", token: owner.token)
            #expect(members.items.count == 1)
            #expect(members.items.first?["email"] as? String == owner.email)
        }
    }

    @Test(arguments: TestStore.available)
    func anotherTenantGets404ForEverything(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            let site = try await client.createSite(owner.token, organization: org)
            let stranger = try await client.signup()
            _ = try await client.createOrganization(stranger.token, name: "Other")

            for path in [
                "/organizations/\(org)", "/organizations/\(org)/members", "/organizations/\(org)/sites",
                "/organizations/\(org)/audit-logs", "/organizations/\(org)/invitations", "/sites/\(site.id)",
            ] {
                let result = try await client.call(.get, path, token: stranger.token)
                expectProblem(result, .notFound)
                #expect(!result.text.contains("Acme"), "\(path) leaked data")
            }
            expectProblem(try await client.call(.post, "/sites/\(site.id)/keys/rotate", token: stranger.token), .notFound)
            expectProblem(try await client.call(.patch, "/sites/\(site.id)", json: ["name": "pwned"], token: stranger.token), .notFound)
            expectProblem(
                try await client.call(.post, "/organizations/\(org)/invitations", json: ["email": "x@example.com"], token: stranger.token),
                .notFound
            )
            // The stranger's own list does not contain the organization.
            let list = try await client.call(.get, "/organizations", token: stranger.token)
            #expect(list.items.count == 1)
            #expect(list.items.first?["name"] as? String == "Other")
            // Identifiers that are not UUIDs are simply not found.
            expectProblem(try await client.call(.get, "/organizations/not-a-uuid", token: owner.token), .notFound)
            // No token at all: 401.
            expectProblem(try await client.call(.get, "/organizations/\(org)"), .unauthorized)
        }
    }

    @Test(arguments: TestStore.available)
    func invitationFlowAndRoleRules(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            let invitee = try await client.signup(email: "invitee@example.com")
            let intruder = try await client.signup(email: "intruder@example.com")

            let invitation = try await client.call(
                .post, "/organizations/\(org)/invitations", json: ["email": "Invitee@Example.com", "role": "admin"], token: owner.token
            )
            #expect(invitation.status == .created)
            #expect(invitation["status"] == "pending")
            #expect(invitation["email"] == "invitee@example.com")
            let token = try #require(invitation["token"])
            let duplicate = try await client.call(
                .post, "/organizations/\(org)/invitations", json: ["email": "invitee@example.com"], token: owner.token
            )
            expectProblem(duplicate, .conflict)
            let badRole = try await client.call(
                .post, "/organizations/\(org)/invitations", json: ["email": "z@example.com", "role": "superuser"], token: owner.token
            )
            expectProblem(badRole, .unprocessableContent)

            // Only the invited address can accept, and only once.
            expectProblem(try await client.call(.post, "/invitations/accept", json: ["token": token], token: intruder.token), .forbidden)
            let accepted = try await client.call(.post, "/invitations/accept", json: ["token": token], token: invitee.token)
            #expect(accepted.status == .ok)
            #expect((accepted.json["organization"] as? [String: Any])?["role"] as? String == "admin")
            expectProblem(try await client.call(.post, "/invitations/accept", json: ["token": token], token: invitee.token), .conflict)
            expectProblem(try await client.call(.post, "/invitations/accept", json: ["token": "inv_nope"], token: invitee.token), .notFound)

            // An admin may manage members but not owners.
            let members = try await client.call(.get, "/organizations/\(org)/members", token: invitee.token)
            #expect(members.items.count == 2)
            expectProblem(
                try await client.call(.patch, "/organizations/\(org)/members/\(owner.userId)", json: ["role": "viewer"], token: invitee.token),
                .forbidden
            )
            expectProblem(
                try await client.call(.patch, "/organizations/\(org)/members/\(invitee.userId)", json: ["role": "owner"], token: invitee.token),
                .forbidden
            )
            // The last owner can neither be demoted nor leave.
            expectProblem(
                try await client.call(.patch, "/organizations/\(org)/members/\(owner.userId)", json: ["role": "admin"], token: owner.token),
                .conflict
            )
            expectProblem(try await client.call(.delete, "/organizations/\(org)/members/\(owner.userId)", token: owner.token), .conflict)

            // Demoted to viewer, the invitee can read but not create sites.
            let demoted = try await client.call(
                .patch, "/organizations/\(org)/members/\(invitee.userId)", json: ["role": "viewer"], token: owner.token
            )
            #expect(demoted["role"] == "viewer")
            #expect(try await client.call(.get, "/organizations/\(org)/sites", token: invitee.token).status == .ok)
            expectProblem(
                try await client.call(.post, "/organizations/\(org)/sites", json: ["name": "S", "domain": "s.example.com"], token: invitee.token),
                .forbidden
            )
            expectProblem(try await client.call(.get, "/organizations/\(org)/audit-logs", token: invitee.token), .forbidden)

            // A member can leave; afterwards the organization is gone for them.
            #expect(try await client.call(.delete, "/organizations/\(org)/members/\(invitee.userId)", token: invitee.token).status == .noContent)
            expectProblem(try await client.call(.get, "/organizations/\(org)", token: invitee.token), .notFound)
        }
    }

    @Test(arguments: TestStore.available)
    func invitationsCanBeRevoked(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            let invitee = try await client.signup(email: "later@example.com")
            let invitation = try await client.call(
                .post, "/organizations/\(org)/invitations", json: ["email": "later@example.com"], token: owner.token
            )
            let id = try #require(invitation["id"])
            #expect(invitation["role"] == "member")
            #expect(try await client.call(.delete, "/organizations/\(org)/invitations/\(id)", token: owner.token).status == .noContent)
            let list = try await client.call(.get, "/organizations/\(org)/invitations", token: owner.token)
            #expect(list.items.first?["status"] as? String == "revoked")
            #expect(list.items.first?["token"] == nil)
            let gone = try await client.call(.post, "/invitations/accept", json: ["token": invitation["token"] ?? ""], token: invitee.token)
            expectProblem(gone, .gone)
        }
    }

    @Test(arguments: TestStore.available)
    func auditLogRecordsSecurityEventsAndVerifies(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            _ = try await client.call(.post, "/auth/login", json: ["email": owner.email, "password": "wrong password"])
            _ = try await client.call(.post, "/auth/login", json: ["email": owner.email, "password": "a long passphrase"])
            let site = try await client.createSite(owner.token, organization: org)
            _ = try await client.call(.post, "/sites/\(site.id)/keys/rotate", token: owner.token)
            _ = try await client.call(.post, "/organizations/\(org)/invitations", json: ["email": "i@example.com"], token: owner.token)

            let log = try await client.call(
                .get, "/organizations/\(org)/audit-logs?limit=100", token: owner.token, headers: [.requestId: "trace-abc"]
            )
            #expect(log.status == .ok)
            let actions = log.items.compactMap { $0["action"] as? String }
            for expected in [
                "auth.signup", "auth.login.failed", "auth.login.succeeded", "organization.created", "site.created", "site.keys_rotated",
                "invitation.created",
            ] {
                #expect(actions.contains(expected), "missing \(expected) in \(actions)")
            }
            let entry = try #require(log.items.first { $0["action"] as? String == "site.created" })
            // (The in-process test client has no socket, so the client address is checked by the live tests.)
            #expect(entry["requestId"] != nil)
            #expect(entry["actorUserId"] as? String == owner.userId)
            #expect((entry["hash"] as? String)?.count == 64)

            // Pagination walks back through the log.
            let firstPage = try await client.call(.get, "/organizations/\(org)/audit-logs?limit=2", token: owner.token)
            #expect(firstPage.items.count == 2)
            let cursor = try #require(firstPage["nextCursor"])
            let secondPage = try await client.call(.get, "/organizations/\(org)/audit-logs?limit=2&cursor=\(cursor)", token: owner.token)
            #expect(secondPage.items.count == 2)
            #expect(Set(secondPage.items.compactMap { $0["id"] as? String }).isDisjoint(with: firstPage.items.compactMap { $0["id"] as? String }))
            expectProblem(try await client.call(.get, "/organizations/\(org)/audit-logs?limit=0", token: owner.token), .unprocessableContent)

            let verify = try await client.call(.get, "/organizations/\(org)/audit-logs/verify", token: owner.token)
            #expect(verify.json["valid"] as? Bool == true)
            #expect((verify.json["checkedRecords"] as? Int ?? 0) >= 7)
        }
    }
}

@Suite("Sites API")
struct SiteAPITests {
    @Test(arguments: TestStore.available)
    func siteKeysAreShownOnceAndRotate(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            let created = try await client.call(
                .post, "/organizations/\(org)/sites",
                json: ["name": "Shop", "domain": "https://Shop.Example.com/products?x=1", "timezone": "Europe/Paris"], token: owner.token
            )
            #expect(created.status == .created)
            #expect(created["domain"] == "shop.example.com")
            #expect(created["timezone"] == "Europe/Paris")
            #expect(created["publicKey"]?.hasPrefix("pk_") == true)
            let secret = try #require(created["secretKey"])
            #expect(secret.hasPrefix("sk_"))
            #expect(created["embedSnippet"]?.contains("data-site=\"\(created["publicKey"] ?? "")\"") == true)
            let id = try #require(created["id"])

            let fetched = try await client.call(.get, "/sites/\(id)", token: owner.token)
            #expect(fetched.status == .ok)
            #expect(fetched["secretKey"] == nil)
            let list = try await client.call(.get, "/organizations/\(org)/sites", token: owner.token)
            #expect(list.items.count == 1)
            #expect(list.items.first?["secretKey"] == nil)

            // The secret key authenticates as its site (allowed only what site keys may do).
            expectProblem(try await client.call(.get, "/sites/\(id)", token: secret), .forbidden)
            expectProblem(try await client.call(.get, "/users/me", token: secret), .unauthorized)
            expectProblem(try await client.call(.get, "/sites/\(id)", token: "sk_forged"), .unauthorized)
            let other = try await client.createSite(owner.token, organization: org, domain: "other.example.com")
            expectProblem(try await client.call(.get, "/sites/\(other.id)", token: secret), .notFound)

            let rotated = try await client.call(.post, "/sites/\(id)/keys/rotate", token: owner.token)
            #expect(rotated.status == .ok)
            let newSecret = try #require(rotated["secretKey"])
            #expect(newSecret != secret)
            #expect(rotated["publicKey"] == created["publicKey"])
            expectProblem(try await client.call(.get, "/sites/\(id)", token: secret), .unauthorized)
            expectProblem(try await client.call(.get, "/sites/\(id)", token: newSecret), .forbidden)
        }
    }

    @Test(arguments: TestStore.available)
    func siteValidationUpdateAndDelete(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            let bad = try await client.call(
                .post, "/organizations/\(org)/sites", json: ["name": "", "domain": "not a domain", "timezone": "Mars/Olympus"], token: owner.token
            )
            expectProblem(bad, .unprocessableContent)
            let fields = Set(((bad.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["name", "domain", "timezone"])

            let site = try await client.createSite(owner.token, organization: org)
            let updated = try await client.call(
                .patch, "/sites/\(site.id)", json: ["name": "Renamed", "timezone": "America/Chicago"], token: owner.token)
            #expect(updated["name"] == "Renamed")
            #expect(updated["timezone"] == "America/Chicago")
            #expect(updated["domain"] == "shop.example.com")

            #expect(try await client.call(.delete, "/sites/\(site.id)", token: owner.token).status == .noContent)
            expectProblem(try await client.call(.get, "/sites/\(site.id)", token: owner.token), .notFound)
            expectProblem(try await client.call(.get, "/sites/\(site.id)", token: site.secretKey), .unauthorized)
        }
    }
}
