import Foundation
import HTTPTypes
import HeraldCore
import HeraldHTTP
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("HTTP behaviour shared by every endpoint")
struct HTTPBehaviourTests {
    @Test(arguments: TestStore.available)
    func badBodiesAreClientErrors(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let malformed = try await client.call(.post, "/auth/signup", raw: "{\"email\": ")
            expectProblem(malformed, .badRequest)
            let notObject = try await client.call(.post, "/auth/signup", raw: "[1,2,3]")
            expectProblem(notObject, .badRequest)
            let empty = try await client.call(.post, "/auth/login", raw: "")
            expectProblem(empty, .badRequest)
            let wrongType = try await client.call(.post, "/auth/login", raw: "email=a", headers: [.contentType: "application/x-www-form-urlencoded"])
            expectProblem(wrongType, .unsupportedMediaType)
            let huge = try await client.call(
                .post, "/auth/signup",
                raw: "{\"email\":\"a@example.com\",\"password\":\"passpass\",\"name\":\"" + String(repeating: "x", count: 300_000) + "\"}"
            )
            expectProblem(huge, .contentTooLarge)
            let nullField = try await client.call(.post, "/auth/login", raw: "{\"email\":null,\"password\":\"x\"}")
            expectProblem(nullField, .unprocessableContent)
            // PostgreSQL text cannot hold U+0000: refused up front on every store, naming the field.
            let nul = try await client.call(
                .post, "/auth/signup", raw: #"{"email":"nul@example.com","password":"passpass\\u0000","name":"N\u0000"}"#
            )
            expectProblem(nul, .unprocessableContent)
            #expect((nul.json["errors"] as? [[String: Any]])?.first?["field"] as? String == "name")
            let escapedBackslash = try await client.call(
                .post, "/auth/signup", raw: #"{"email":"nul@example.com","password":"passpass\\u0000","name":"N"}"#
            )
            #expect(escapedBackslash.status == .created)
        }
    }

    @Test(arguments: TestStore.available)
    func unknownRoutesAre404AndWrongMethods405(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            expectProblem(try await client.call(.get, "/no/such/thing"), .notFound)
            let wrongMethod = try await client.call(.delete, "/auth/signup")
            expectProblem(wrongMethod, .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "POST")
            let withParameter = try await client.call(.put, "/organizations/\(UUID().lowercased)/audit-logs")
            expectProblem(withParameter, .methodNotAllowed)
            #expect(withParameter.headers[.allow]?.contains("GET") == true)
        }
    }

    @Test(arguments: TestStore.available)
    func everyResponseCarriesSecurityHeadersAndARequestId(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            for result in [try await client.call(.get, "/healthz"), try await client.call(.get, "/missing")] {
                #expect(result.headers[.xContentTypeOptions] == "nosniff")
                #expect(result.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
                #expect(result.headers[.referrerPolicy] == "no-referrer")
                #expect(result.headers[.requestId]?.isEmpty == false)
            }
            let echoed = try await client.call(.get, "/healthz", headers: [.requestId: "client-trace-42"])
            #expect(echoed.headers[.requestId] == "client-trace-42")
            let hostile = try await client.call(.get, "/healthz", headers: [.requestId: "bad id\twith spaces"])
            #expect(hostile.headers[.requestId] != "bad id\twith spaces")
            let problem = try await client.call(.get, "/missing", headers: [.requestId: "trace-7"])
            #expect(problem["requestId"] == "trace-7")
        }
    }

    @Test(arguments: TestStore.available)
    func healthReadinessAndDocuments(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            #expect(try await client.call(.get, "/healthz")["status"] == "ok")
            let ready = try await client.call(.get, "/readyz")
            #expect(ready.status == .ok)
            #expect((ready.json["checks"] as? [String: String])?["migrations"] == "ok")

            let jwks = try await client.call(.get, "/.well-known/jwks.json")
            #expect(jwks.status == .ok)
            let keys = try #require(jwks.json["keys"] as? [[String: Any]])
            #expect(keys.first?["kty"] as? String == "OKP")
            #expect(keys.first?["alg"] as? String == "EdDSA")
            #expect(keys.first?["d"] == nil, "the private key must never be published")

            let openapi = try await client.call(.get, "/openapi.json")
            #expect(openapi.status == .ok)
            #expect(openapi["openapi"]?.hasPrefix("3.1") == true)
        }
    }

    @Test(arguments: TestStore.available)
    func malformedCredentialsAre401(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            expectProblem(try await client.call(.get, "/users/me", headers: [.authorization: "Basic abc"]), .unauthorized)
            expectProblem(try await client.call(.get, "/users/me", token: "not.a.jwt"), .unauthorized)
            let noToken = try await client.call(.get, "/users/me")
            expectProblem(noToken, .unauthorized)
            #expect(noToken.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
        }
    }
}
