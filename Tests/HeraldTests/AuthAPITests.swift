import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Auth API")
struct AuthAPITests {
    @Test(arguments: TestStore.available)
    func signupReturnsUserAndTokens(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let result = try await client.call(
                .post, "/auth/signup", json: ["email": "  Ann@Example.COM ", "password": "correct horse battery", "name": "Ann"]
            )
            #expect(result.status == .created)
            #expect(result.headers[.cacheControl] == "no-store")
            let user = try #require(result.json["user"] as? [String: Any])
            #expect(user["email"] as? String == "ann@example.com")
            #expect(user["name"] as? String == "Ann")
            #expect((user["id"] as? String)?.lowercased() == user["id"] as? String)
            #expect(result.json["expiresIn"] as? Int == 900)
            #expect(result["tokenType"] == "Bearer")
            let token = try #require(result["accessToken"])
            #expect(result["refreshToken"]?.hasPrefix("rt_") == true)

            let me = try await client.call(.get, "/users/me", token: token)
            #expect(me.status == .ok)
            #expect(me["email"] == "ann@example.com")
        }
    }

    @Test(arguments: TestStore.available)
    func signupValidationNamesEveryBadField(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let result = try await client.call(.post, "/auth/signup", json: ["email": "not-an-email", "password": "short"])
            expectProblem(result, .unprocessableContent)
            let fields = Set(((result.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["email", "password", "name"])

            let wrongType = try await client.call(.post, "/auth/signup", json: ["email": 42, "password": "long enough pass", "name": "X"])
            expectProblem(wrongType, .unprocessableContent)
            #expect(((wrongType.json["errors"] as? [[String: Any]])?.first?["field"] as? String) == "email")

            let tooLong = try await client.call(
                .post, "/auth/signup", json: ["email": "a@example.com", "password": String(repeating: "x", count: 257), "name": "X"]
            )
            expectProblem(tooLong, .unprocessableContent)
        }
    }

    @Test(arguments: TestStore.available)
    func duplicateEmailIsAConflict(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            _ = try await client.signup(email: "dup@example.com")
            let again = try await client.call(
                .post, "/auth/signup", json: ["email": "DUP@example.com", "password": "another passphrase", "name": "Dup"]
            )
            expectProblem(again, .conflict)
        }
    }

    @Test(arguments: TestStore.available)
    func loginDoesNotTellUnknownEmailFromWrongPassword(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let account = try await client.signup(email: "bob@example.com", password: "bob's passphrase")
            let wrong = try await client.call(.post, "/auth/login", json: ["email": "bob@example.com", "password": "not the password"])
            let unknown = try await client.call(.post, "/auth/login", json: ["email": "nobody@example.com", "password": "not the password"])
            expectProblem(wrong, .unauthorized)
            expectProblem(unknown, .unauthorized)
            #expect(wrong["detail"] == unknown["detail"])
            #expect(wrong["type"] == unknown["type"])
            #expect(wrong.headers[.wwwAuthenticate] == "Bearer realm=\"herald\"")

            let ok = try await client.call(.post, "/auth/login", json: ["email": "BOB@example.com", "password": "bob's passphrase"])
            #expect(ok.status == .ok)
            #expect(ok["accessToken"] != nil)
            #expect((ok.json["user"] as? [String: Any])?["id"] as? String == account.userId)
        }
    }

    @Test(arguments: TestStore.available)
    func refreshRotatesAndReuseRevokesTheSession(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let account = try await client.signup()
            let first = try await client.call(.post, "/auth/refresh", json: ["refreshToken": account.refresh])
            #expect(first.status == .ok)
            let rotated = try #require(first["refreshToken"])
            #expect(rotated != account.refresh)
            let newAccess = try #require(first["accessToken"])
            #expect(try await client.call(.get, "/users/me", token: newAccess).status == .ok)

            // Presenting the old token again means it was copied: the whole session ends.
            let reuse = try await client.call(.post, "/auth/refresh", json: ["refreshToken": account.refresh])
            expectProblem(reuse, .unauthorized)
            expectProblem(try await client.call(.post, "/auth/refresh", json: ["refreshToken": rotated]), .unauthorized)
            expectProblem(try await client.call(.get, "/users/me", token: newAccess), .unauthorized)
            expectProblem(try await client.call(.get, "/users/me", token: account.token), .unauthorized)
        }
    }

    @Test(arguments: TestStore.available)
    func aStaleAccessTokenDoesNotBlockPublicEndpoints(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let account = try await client.signup()
            let stale = "eyJhbGciOiJFZERTQSJ9.e30.x"
            let refreshed = try await client.call(.post, "/auth/refresh", json: ["refreshToken": account.refresh], token: stale)
            #expect(refreshed.status == .ok)
            let login = try await client.call(.post, "/auth/login", json: ["email": account.email, "password": "a long passphrase"], token: stale)
            #expect(login.status == .ok)
            #expect(try await client.call(.get, "/healthz", token: stale).status == .ok)
            // Routes that need a caller still refuse it, saying why.
            let me = try await client.call(.get, "/users/me", token: stale)
            expectProblem(me, .unauthorized)
            #expect(me["detail"]?.contains("refused") == true)
        }
    }

    @Test(arguments: TestStore.available)
    func logoutEndsTheSession(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let account = try await client.signup()
            let other = try await client.call(.post, "/auth/login", json: ["email": account.email, "password": "a long passphrase"])
            let otherToken = try #require(other["accessToken"])

            #expect(try await client.call(.post, "/auth/logout", token: account.token).status == .noContent)
            expectProblem(try await client.call(.get, "/users/me", token: account.token), .unauthorized)
            expectProblem(try await client.call(.post, "/auth/refresh", json: ["refreshToken": account.refresh]), .unauthorized)
            // Other sessions of the same user are untouched.
            #expect(try await client.call(.get, "/users/me", token: otherToken).status == .ok)

            // Logging out with only a refresh token works too.
            let otherRefresh = try #require(other["refreshToken"])
            #expect(try await client.call(.post, "/auth/logout", json: ["refreshToken": otherRefresh]).status == .noContent)
            expectProblem(try await client.call(.get, "/users/me", token: otherToken), .unauthorized)
            expectProblem(try await client.call(.post, "/auth/logout"), .unauthorized)
        }
    }

    @Test(arguments: TestStore.available)
    func repeatedFailuresAreRefusedWithRetryAfter(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let target = try await client.signup(email: "target@example.com")
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<11 {
                let result = try await client.call(.post, "/auth/login", json: ["email": "target@example.com", "password": "guess guess"])
                statuses.append(result.status)
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == .unauthorized })
            #expect(statuses.last == .tooManyRequests)
            let refused = try await client.call(.post, "/auth/login", json: ["email": "target@example.com", "password": "a long passphrase"])
            expectProblem(refused, .tooManyRequests)
            let retryAfter = try #require(refused.headers[.retryAfter].flatMap { Int($0) })
            #expect(retryAfter > 0 && retryAfter <= 900)
            // Re-authenticating to change the password shares the account's throttle, so a stolen access token
            // is no way around it.
            let change = try await client.call(
                .put, "/users/me", json: ["password": "a new passphrase", "currentPassword": "a long passphrase"], token: target.token
            )
            expectProblem(change, .tooManyRequests)
        }
    }

    @Test(arguments: TestStore.available)
    func changingThePasswordNeedsTheCurrentOneAndEndsOtherSessions(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let account = try await client.signup(password: "first passphrase")
            let second = try await client.call(.post, "/auth/login", json: ["email": account.email, "password": "first passphrase"])
            let secondToken = try #require(second["accessToken"])

            let missing = try await client.call(.put, "/users/me", json: ["password": "second passphrase"], token: account.token)
            expectProblem(missing, .unprocessableContent)
            let wrong = try await client.call(
                .put, "/users/me", json: ["password": "second passphrase", "currentPassword": "nope nope"], token: account.token
            )
            expectProblem(wrong, .forbidden)

            let changed = try await client.call(
                .put, "/users/me", json: ["password": "second passphrase", "currentPassword": "first passphrase", "name": "Renamed"],
                token: account.token
            )
            #expect(changed.status == .ok)
            #expect(changed["name"] == "Renamed")
            #expect(try await client.call(.get, "/users/me", token: account.token).status == .ok)
            expectProblem(try await client.call(.get, "/users/me", token: secondToken), .unauthorized)
            #expect(try await client.call(.post, "/auth/login", json: ["email": account.email, "password": "second passphrase"]).status == .ok)
        }
    }

    @Test(arguments: TestStore.available)
    func sessionsCanBeListedAndRevoked(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let account = try await client.signup()
            let second = try await client.call(.post, "/auth/login", json: ["email": account.email, "password": "a long passphrase"])
            let secondToken = try #require(second["accessToken"])
            let list = try await client.call(.get, "/users/me/sessions", token: account.token)
            #expect(list.items.count == 2)
            let other = try #require(list.items.first { ($0["current"] as? Bool) == false }?["id"] as? String)
            #expect(try await client.call(.delete, "/users/me/sessions/\(other)", token: account.token).status == .noContent)
            expectProblem(try await client.call(.get, "/users/me", token: secondToken), .unauthorized)

            let stranger = try await client.signup()
            expectProblem(try await client.call(.delete, "/users/me/sessions/\(other)", token: stranger.token), .notFound)
        }
    }
}
