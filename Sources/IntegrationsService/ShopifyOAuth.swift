import Crypto
import Foundation
import HTTPTypes
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The Shopify app's credentials (HERALD_SHOPIFY_API_KEY, HERALD_SHOPIFY_API_SECRET, HERALD_SHOPIFY_SCOPES).
public struct ShopifyApp: Sendable {
    public var apiKey: String
    public var apiSecret: String
    public var scopes: String

    public init(apiKey: String, apiSecret: String, scopes: String = "read_orders,read_customers") {
        self.apiKey = apiKey
        self.apiSecret = apiSecret
        self.scopes = scopes
    }

    /// Shopify signs install and callback requests: hex HMAC-SHA256 of the other query parameters, sorted by
    /// name, as `name=value` joined with `&`.
    func verify(_ parameters: [(String, String)]) -> Bool {
        guard let hmac = parameters.first(where: { $0.0 == "hmac" })?.1, let expected = Self.hexBytes(hmac) else { return false }
        let message = parameters.filter { $0.0 != "hmac" && $0.0 != "signature" }
            .sorted { $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
        return HMAC<SHA256>.isValidAuthenticationCode(expected, authenticating: Data(message.utf8), using: SymmetricKey(data: Data(apiSecret.utf8)))
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

extension IntegrationsService {
    static let stateLifetime: TimeInterval = 600

    func requireShopifyApp() throws -> ShopifyApp {
        guard let app = options.shopifyApp else {
            throw HeraldError.unavailable(
                "The Shopify app is not configured on this Herald: set HERALD_SHOPIFY_API_KEY and HERALD_SHOPIFY_API_SECRET.")
        }
        return app
    }

    /// Creates a single-use `state` for the integration and returns Shopify's authorization URL.
    func authorizeURL(for integration: Integration, app: ShopifyApp) async throws -> AuthorizeBody {
        guard let shop = integration.config.shopDomain else { throw HeraldError.validation(field: "config.shopDomain", "is required") }
        let state = SecretToken.random(bytes: 24)
        let expires = Date().addingTimeInterval(Self.stateLifetime)
        let now = Date()
        try await database.transaction(.system) { tx in
            try await OAuthStateStore().insert(state, for: integration, expiresAt: expires, now: now, in: tx)
        }
        var components = URLComponents(string: "\(importer.adminOrigin(shop))/admin/oauth/authorize")
        components?.queryItems = [
            URLQueryItem(name: "client_id", value: app.apiKey), URLQueryItem(name: "scope", value: app.scopes),
            URLQueryItem(name: "redirect_uri", value: "\(options.publicBaseURL)/integrations/shopify/callback"),
            URLQueryItem(name: "state", value: state),
        ]
        return AuthorizeBody(authorizeUrl: components?.string ?? "", expiresAt: expires)
    }

    static func queryPairs(_ request: Request) -> [(String, String)] {
        (URLComponents(string: "http://x\(request.uri.description)")?.queryItems ?? []).map { ($0.name, $0.value ?? "") }
    }

    /// The install link from the Shopify admin: checked, then sent on to Shopify's consent screen.
    @Sendable func shopifyInstall(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let app = try requireShopifyApp()
        let parameters = Self.queryPairs(request)
        guard app.verify(parameters) else {
            throw HeraldError.unauthorized("The install request is not signed by Shopify (hmac does not match).")
        }
        let query = Dictionary(parameters, uniquingKeysWith: { first, _ in first })
        if let timestamp = query["timestamp"].flatMap(Double.init), abs(Date().timeIntervalSince1970 - timestamp) > 86_400 {
            throw HeraldError.unauthorized("The install request is more than a day old; start again from the Shopify admin.")
        }
        guard let shop = query["shop"]?.lowercased(), IntegrationConfig.isShopDomain(shop) else {
            throw HeraldError.validation(field: "shop", "must be a myshopify.com domain")
        }
        guard let route = try await database.transaction(.system, { try await integrations.route(shop: shop, in: $0) }) else {
            throw HeraldError.notFound("No Herald site has a Shopify integration for \(shop); create one first. The integration")
        }
        let (integrationId, organizationId) = route
        guard let integration = try await database.transaction(.organization(organizationId), { try await integrations.find(integrationId, in: $0) })
        else { throw HeraldError.notFound("The integration") }
        let authorize = try await authorizeURL(for: integration, app: app)
        return Response(status: .found, headers: [.location: authorize.authorizeUrl])
    }

    /// Shopify's redirect after consent: checks the signature, the single-use state and the shop, then trades
    /// the code for an access token, stored encrypted.
    @Sendable func shopifyCallback(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ConnectedBody> {
        let app = try requireShopifyApp()
        let parameters = Self.queryPairs(request)
        guard app.verify(parameters) else {
            throw HeraldError.unauthorized("The callback is not signed by Shopify (hmac does not match).")
        }
        let query = Dictionary(parameters, uniquingKeysWith: { first, _ in first })
        guard let state = query["state"], let code = query["code"], let shop = query["shop"]?.lowercased() else {
            throw HeraldError.badRequest("The callback needs code, shop and state.")
        }
        let now = Date()
        let claimed = try await database.transaction(.system) { try await OAuthStateStore().claim(state, now: now, in: $0) }
        guard let (integrationId, organizationId) = claimed else {
            throw HeraldError.unauthorized("The state is unknown, used or expired; start the installation again.")
        }
        let scope = TenantScope.organization(organizationId)
        guard var integration = try await database.transaction(scope, { try await integrations.find(integrationId, in: $0) }) else {
            throw HeraldError.notFound("The integration")
        }
        guard integration.config.shopDomain == shop else {
            throw HeraldError.forbidden(
                "The callback is for \(shop), but the installation was started for \(integration.config.shopDomain ?? "another shop").")
        }
        let body = try JSONEncoder().encode(["client_id": app.apiKey, "client_secret": app.apiSecret, "code": code])
        let reply: ThirdPartyClient.Reply
        do {
            reply = try await client.send(
                .POST, "\(importer.adminOrigin(shop))/admin/oauth/access_token", headers: [("Content-Type", "application/json")], body: [UInt8](body),
                for: integration
            )
        } catch {
            try? await importer.saveHealth(integration)
            throw HeraldError(status: 502, slug: "store-unavailable", title: "Bad gateway", detail: "Shopify did not exchange the code: \(error)")
        }
        let answer = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: reply.body))
        guard let token = answer?.resolve(pointer: "/access_token")?.stringValue, !token.isEmpty else {
            throw HeraldError(status: 502, slug: "store-unavailable", title: "Bad gateway", detail: "Shopify's answer had no access token.")
        }
        integration.secrets.accessToken = token
        integration.updatedAt = now
        let updated = integration
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(scope) { tx in
            try await integrations.update(updated, in: tx)
            var healthy = updated
            healthy.health = client.health(updated)
            try await integrations.saveHealth(healthy, in: tx)
            try await AuditTrail.record(
                "integration.connected", target: "integration", updated.id.lowercased, organizationId: organizationId, siteId: updated.siteId,
                actorUserId: nil, details: ["shop": shop, "via": "shopify_oauth"], meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return JSONResponse(
            ConnectedBody(
                status: "connected", integrationId: integration.id, shopDomain: shop, scope: answer?.resolve(pointer: "/scope")?.stringValue)
        )
    }
}
