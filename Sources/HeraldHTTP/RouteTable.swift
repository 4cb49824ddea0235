import Foundation

/// The API's paths and their methods (read from the OpenAPI document), so a request for a known path with
/// the wrong method gets 405 and an `Allow` header instead of 404.
public struct RouteTable: Sendable {
    struct Route: Sendable {
        /// Literal segments, or nil for a `{parameter}`.
        var segments: [String?]
        var methods: [String]
    }

    let routes: [Route]

    /// - Parameter paths: OpenAPI-style paths (`/sites/{siteId}`) and their methods in upper case.
    public init(paths: [String: [String]]) {
        routes = paths.map { path, methods in
            Route(
                segments: path.split(separator: "/").map { $0.hasPrefix("{") && $0.hasSuffix("}") ? nil : String($0) },
                methods: methods.sorted()
            )
        }
    }

    /// Reads the `paths` of an OpenAPI document.
    public init(openAPIDocument data: Data) {
        var paths: [String: [String]] = [:]
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        let verbs: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
        for (path, item) in (object?["paths"] as? [String: Any]) ?? [:] {
            let methods = ((item as? [String: Any]) ?? [:]).keys.filter { verbs.contains($0) }.map { $0.uppercased() }
            paths[path] = methods + (methods.contains("GET") ? ["HEAD"] : [])
        }
        self.init(paths: paths)
    }

    /// The methods the API offers for a concrete path, or nil when no documented path matches.
    public func allowedMethods(for path: String) -> [String]? {
        let parts = path.split(separator: "/").map(String.init)
        let matching = routes.filter { route in
            route.segments.count == parts.count && zip(route.segments, parts).allSatisfy { $0 == nil || $0 == $1 }
        }
        guard !matching.isEmpty else { return nil }
        // The router prefers literal segments (`/scim/v2/Users/.search` over `/scim/v2/Users/{id}`): only the most
        // specific documented paths answer for a concrete path.
        let fewest = matching.map { $0.segments.filter { $0 == nil }.count }.min() ?? 0
        let specific = matching.filter { $0.segments.filter { $0 == nil }.count == fewest }
        return Array(Set(specific.flatMap(\.methods))).sorted()
    }
}
