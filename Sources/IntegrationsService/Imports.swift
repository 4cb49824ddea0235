import AsyncHTTPClient
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldSecurity
import HeraldStorage
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Fetches recent orders from a store and records each as an activity (once: orders that already arrived by
/// webhook are skipped). Shopify is read through the GraphQL Admin API within its cost-based throttle,
/// WooCommerce through its REST API with the consumer key and secret.
struct OrderImporter: Sendable {
    let database: any Database
    let bus: any EventBus
    let client: ThirdPartyClient
    let cipher: FieldCipher
    let integrations: IntegrationStore
    let imports = ImportStore()
    let shopifyAdminOrigin: String?
    let logger: Logger

    func start(_ integration: Integration, count: Int) async throws -> ImportJob {
        let job = ImportJob(
            id: .v7(), integrationId: integration.id, status: "running", requested: count, imported: 0, skipped: 0, error: nil,
            startedAt: Date(), finishedAt: nil
        )
        try await database.transaction(.organization(integration.organizationId)) { tx in
            try await imports.insert(job, siteId: integration.siteId, organizationId: integration.organizationId, in: tx)
        }
        // The import runs after the request; its progress is in the job.
        Task { await run(job, integration) }
        return job
    }

    private func run(_ job: ImportJob, _ integration: Integration) async {
        var imported = 0
        var skipped = 0
        var failure: String?
        do {
            let orders: AsyncThrowingStream<(ActivityRequest, String), any Error> =
                integration.type == .shopify ? shopifyOrders(integration, count: job.requested) : wooOrders(integration, count: job.requested)
            for try await (request, key) in orders {
                let provenance = Provenance(
                    source: integration.type.rawValue, receivedAt: Date(), signatureVerified: false, integrationId: integration.id,
                    sourceEventId: key, authenticatedBy: "integration"
                )
                let result = try await database.transaction(.organization(integration.organizationId)) { tx in
                    try await InboundTransformer.record(
                        request, sourceKey: key, integration: integration, provenance: provenance, cipher: cipher, in: tx)
                }
                if case .recorded = result { imported += 1 } else { skipped += 1 }
                try await progress(job, imported: imported, skipped: skipped, status: "running", error: nil)
                bus.didCommitEvents()
            }
        } catch {
            failure = String(describing: error)
            logger.warning("import failed", metadata: ["integration": "\(integration.id)", "error": "\(error)"])
        }
        try? await progress(job, imported: imported, skipped: skipped, status: failure == nil ? "completed" : "failed", error: failure)
        try? await saveHealth(integration)
    }

    private func progress(_ job: ImportJob, imported: Int, skipped: Int, status: String, error: String?) async throws {
        let organizationId = try await database.transaction(.system) { try await integrations.organization(of: job.integrationId, in: $0) }
        guard let organizationId else { throw StorageError.other("the integration of import \(job.id) is gone") }
        try await database.transaction(.organization(organizationId)) { tx in
            try await imports.progress(job.id, imported: imported, skipped: skipped, status: status, error: error, in: tx)
        }
    }

    func saveHealth(_ integration: Integration) async throws {
        var updated = integration
        updated.health = client.health(integration)
        try await database.transaction(.organization(integration.organizationId)) { try await integrations.saveHealth(updated, in: $0) }
    }

    // MARK: Shopify

    static let ordersQuery = """
        query Orders($first: Int!, $after: String) {
          orders(first: $first, after: $after, sortKey: CREATED_AT, reverse: true) {
            edges { node { id createdAt customer { firstName lastName email }
              billingAddress { city province country } shippingAddress { city province country }
              lineItems(first: 1) { edges { node { title } } } } }
            pageInfo { hasNextPage endCursor }
          }
        }
        """

    func adminOrigin(_ shop: String) -> String { shopifyAdminOrigin ?? "https://\(shop)" }

    func shopifyOrders(_ integration: Integration, count: Int) -> AsyncThrowingStream<(ActivityRequest, String), any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    guard let shop = integration.config.shopDomain, let token = integration.secrets.accessToken else {
                        throw HeraldError.conflict(
                            "Connect the store first (OAuth install or an access token) to import orders.", slug: "not-connected")
                    }
                    let url = "\(adminOrigin(shop))/admin/api/\(integration.config.apiVersion ?? "2025-01")/graphql.json"
                    var remaining = count
                    var cursor: String?
                    while remaining > 0 {
                        let page = min(remaining, 50)
                        var variables: [String: JSONValue] = ["first": .number(Double(page))]
                        if let cursor { variables["after"] = .string(cursor) }
                        let body = try JSONEncoder().encode(JSONValue.object(["query": .string(Self.ordersQuery), "variables": .object(variables)]))
                        let reply = try await client.send(
                            .POST, url, headers: [("Content-Type", "application/json"), ("X-Shopify-Access-Token", token)], body: [UInt8](body),
                            for: integration
                        )
                        let json = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: reply.body))
                        let throttle = json.resolve(pointer: "/extensions/cost/throttleStatus")
                        if let errors = json.resolve(pointer: "/errors")?.arrayValue, !errors.isEmpty {
                            if errors.contains(where: { $0.resolve(pointer: "/extensions/code")?.stringValue == "THROTTLED" }) {
                                try await Task.sleep(for: Self.wait(needed: Double(page) * 3, throttle: throttle))
                                continue
                            }
                            throw ThirdPartyClient.Failure.status(reply.status, "GraphQL errors: \(errors.prefix(3))")
                        }
                        let edges = json.resolve(pointer: "/data/orders/edges")?.arrayValue ?? []
                        for edge in edges {
                            guard let order = edge.resolve(pointer: "/node"), let (request, key) = Self.shopifyOrder(order) else { continue }
                            continuation.yield((request, key))
                        }
                        remaining -= edges.count
                        guard json.resolve(pointer: "/data/orders/pageInfo/hasNextPage")?.boolValue == true, !edges.isEmpty else { break }
                        cursor = json.resolve(pointer: "/data/orders/pageInfo/endCursor")?.stringValue
                        // Stay inside the leaky bucket: wait until the next page's cost is available.
                        let requested = json.resolve(pointer: "/extensions/cost/requestedQueryCost")?.numberValue ?? Double(page) * 3
                        try await Task.sleep(for: Self.wait(needed: requested, throttle: throttle))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// How long until `needed` cost points are available, from Shopify's `throttleStatus`.
    static func wait(needed: Double, throttle: JSONValue?) -> Duration {
        guard let available = throttle?.resolve(pointer: "/currentlyAvailable")?.numberValue,
            let restore = throttle?.resolve(pointer: "/restoreRate")?.numberValue, restore > 0
        else { return .zero }
        let deficit = needed - available
        return deficit > 0 ? .milliseconds(Int(min(deficit / restore, 60) * 1000)) : .zero
    }

    static func shopifyOrder(_ order: JSONValue) -> (ActivityRequest, String)? {
        guard let gid = order.resolve(pointer: "/id")?.stringValue, let id = gid.split(separator: "/").last else { return nil }
        let address = order.resolve(pointer: "/billingAddress").flatMap { $0 == .null ? nil : $0 } ?? order.resolve(pointer: "/shippingAddress")
        var request = ActivityRequest()
        request.type = "purchase"
        request.firstName = InboundTransformer.string(order.resolve(pointer: "/customer/firstName"))
        request.lastName = InboundTransformer.string(order.resolve(pointer: "/customer/lastName"))
        request.email = InboundTransformer.string(order.resolve(pointer: "/customer/email"))
        request.city = InboundTransformer.string(address?.resolve(pointer: "/city"))
        request.region = InboundTransformer.string(address?.resolve(pointer: "/province"))
        request.country = InboundTransformer.string(address?.resolve(pointer: "/country"))
        request.productName = InboundTransformer.string(order.resolve(pointer: "/lineItems/edges/0/node/title"))
        request.occurredAt = InboundTransformer.date(order.resolve(pointer: "/createdAt")).map { min($0, Date()) }
        return (request, "order:\(id)")
    }

    // MARK: WooCommerce

    func wooOrders(_ integration: Integration, count: Int) -> AsyncThrowingStream<(ActivityRequest, String), any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    guard let store = integration.config.storeUrl, let key = integration.secrets.consumerKey,
                        let secret = integration.secrets.consumerSecret
                    else {
                        throw HeraldError.conflict("Add the REST API consumer key and secret to import orders.", slug: "not-connected")
                    }
                    let credentials = Data("\(key):\(secret)".utf8).base64EncodedString()
                    var page = 1
                    var remaining = count
                    while remaining > 0 {
                        let perPage = min(remaining, 100)
                        let url = "\(store)/wp-json/wc/v3/orders?per_page=\(perPage)&page=\(page)&orderby=date&order=desc"
                        let reply = try await client.send(.GET, url, headers: [("Authorization", "Basic \(credentials)")], for: integration)
                        let orders = try JSONDecoder().decode(JSONValue.self, from: Data(buffer: reply.body)).arrayValue ?? []
                        for order in orders {
                            if case .activity(let request, let key?) = InboundTransformer.woocommerce(
                                order, topic: "order.created", integration: integration)
                            {
                                continuation.yield((request, key))
                            }
                        }
                        remaining -= orders.count
                        if orders.count < perPage { break }
                        page += 1
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
