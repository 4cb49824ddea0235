import Foundation
import HeraldCore
import Hummingbird
import NIOFoundationCompat
import ServiceLifecycle
import Testing

@testable import HeraldApp

/// The router and the OpenAPI document list the same operations: a route nobody documented, or a documented path
/// that answers 404, fails here rather than in a client's hands.
@Suite("Routes and the OpenAPI document")
struct RouteDocumentationTests {
    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationIsRouted() async throws {
        let environment = try await TestEnvironment.make(.sqlite)
        let composition = try await compose(environment.configuration(), logger: testLogger)
        let routed = Set(
            composition.router.routes.filter { $0.method != .head }.map { route in
                let segments = "\(route.path)".split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                return "\(route.method.rawValue) /" + segments.joined(separator: "/")
            }
        )

        let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: OpenAPIDocument.bytes)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let verbs: Set<String> = ["get", "put", "post", "delete", "patch", "options"]
        let documented = Set(paths.flatMap { path, item in item.keys.filter(verbs.contains).map { "\($0.uppercased()) \(path)" } })

        #expect(routed.subtracting(documented).sorted() == [], "routes missing from the OpenAPI document")
        #expect(documented.subtracting(routed).sorted() == [], "documented operations no route answers")
        #expect(documented.count > 50)

        // The modules own clients that their services close: run them and stop at once.
        let group = ServiceGroup(services: composition.services, logger: testLogger)
        async let running: Void = group.run()
        await group.triggerGracefulShutdown()
        try await running
    }
}
