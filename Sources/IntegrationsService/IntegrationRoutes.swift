import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird

extension IntegrationsService {
    func addIntegrationRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let site = router.group("sites/:siteId/integrations")
        site.get(use: listIntegrations)
        site.post(use: createIntegration)
        site.get(":integrationId", use: getIntegration)
        site.put(":integrationId", use: updateIntegration)
        site.patch(":integrationId", use: updateIntegration)
        site.delete(":integrationId", use: deleteIntegration)
        site.get(":integrationId/deliveries", use: listDeliveries)
        site.post(":integrationId/imports", use: startImport)
        site.get(":integrationId/imports/:importId", use: getImport)
        site.post(":integrationId/shopify/authorize", use: authorizeShopify)
        router.get("integrations/shopify/install", use: shopifyInstall)
        router.get("integrations/shopify/callback", use: shopifyCallback)
        router.post("hooks/:token", use: receiveHook)
    }

    func loadIntegration(_ grant: SiteAccess, _ context: HeraldRequestContext, in tx: any SQLExecutor) async throws -> Integration {
        let id = try context.uuidParameter("integrationId", resource: "Integration")
        guard let integration = try await integrations.find(id, siteId: grant.siteId, in: tx) else {
            throw HeraldError.notFound("Integration \(id.lowercased)")
        }
        return integration
    }

    func body(_ integration: Integration, revealSecret: Bool = false) -> IntegrationBody {
        IntegrationBody(integration, health: client.health(integration), baseURL: options.publicBaseURL, revealSecret: revealSecret)
    }

    @Sendable func listIntegrations(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<IntegrationBody>> {
        let grant = try await access.site(from: context, .contentRead)
        let list = try await database.transaction(grant.scope) { try await integrations.list(siteId: grant.siteId, in: $0) }
        return JSONResponse(Page(items: list.map { body($0) }))
    }

    @Sendable func getIntegration(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<IntegrationBody> {
        let grant = try await access.site(from: context, .contentRead)
        let integration = try await database.transaction(grant.scope) { try await loadIntegration(grant, context, in: $0) }
        return JSONResponse(body(integration))
    }

    @Sendable func createIntegration(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<IntegrationBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let type = reader.decode("type", as: IntegrationType.self)
        if reader.isMissing("type") { reader.validator.add("type", "is required: one of shopify, woocommerce, zapier, webhook") }
        let name = reader.validator.requireText(reader.string("name") ?? type?.rawValue.capitalized, field: "name", maxLength: 100)
        var configObject: [String: JSONValue] = [:]
        if let config = reader.object["config"], config != .null {
            if let object = config.objectValue { configObject = object } else { reader.validator.add("config", "must be an object") }
        }
        guard let type else {
            try reader.validator.check()
            throw HeraldError.validation(field: "type", "is required")
        }
        let (config, secrets) = IntegrationConfig.validated(type: type, config: configObject, existing: nil, into: &reader.validator)
        try reader.validator.check()
        let now = Date()
        let integration = Integration(
            id: .v7(at: now), siteId: grant.siteId, organizationId: grant.organizationId, type: type, name: name, status: "active", config: config,
            secrets: secrets, health: Integration.Health(), createdAt: now, updatedAt: now
        )
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(grant.scope) { tx in
            try await integrations.insert(integration, in: tx)
            try await AuditTrail.record(
                "integration.created", target: "integration", integration.id, details: ["type": type.rawValue, "name": name], by: grant,
                meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return JSONResponse(body(integration, revealSecret: type == .webhook), status: .created, headers: [.cacheControl: "no-store"])
    }

    /// Renames, enables or disables, and changes settings (merged key by key; secrets are replaced only when given).
    @Sendable func updateIntegration(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<IntegrationBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let meta = RequestMeta(request: request, context: context)
        let integration = try await database.transaction(grant.scope) { tx -> Integration in
            var integration = try await loadIntegration(grant, context, in: tx)
            if let name = reader.string("name") { integration.name = reader.validator.requireText(name, field: "name", maxLength: 100) }
            if let status = reader.string("status") {
                if ["active", "disabled"].contains(status) {
                    integration.status = status
                } else {
                    reader.validator.add("status", "must be active or disabled")
                }
            }
            if reader.has("type"), reader.decode("type", as: IntegrationType.self) != integration.type {
                reader.validator.add("type", "cannot change; create a new integration instead")
            }
            if let config = reader.object["config"], config != .null {
                if let object = config.objectValue {
                    (integration.config, integration.secrets) = IntegrationConfig.validated(
                        type: integration.type, config: object, existing: (integration.config, integration.secrets), into: &reader.validator
                    )
                } else {
                    reader.validator.add("config", "must be an object")
                }
            }
            try reader.validator.check()
            integration.updatedAt = Date()
            try await integrations.update(integration, in: tx)
            // Field names only: a config object may carry credentials.
            try await AuditTrail.record(
                "integration.updated", target: "integration", integration.id,
                details: ["name": integration.name, "fields": reader.object.keys.sorted().joined(separator: ",")], by: grant, meta: meta, in: tx
            )
            return integration
        }
        bus.didCommitEvents()
        return JSONResponse(body(integration))
    }

    @Sendable func deleteIntegration(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .contentWrite)
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(grant.scope) { tx in
            let integration = try await loadIntegration(grant, context, in: tx)
            try await integrations.delete(integration, in: tx)
            try await AuditTrail.record(
                "integration.deleted", target: "integration", integration.id,
                details: ["type": integration.type.rawValue, "name": integration.name], by: grant, meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return Response(status: .noContent)
    }

    /// Every delivery the integration received, newest first: accepted, duplicate, ignored or rejected with the reason.
    @Sendable func listDeliveries(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<InboundDelivery>> {
        let grant = try await access.site(from: context, .contentRead)
        let limit = try request.limit(default: 50, max: 200)
        var before: TimeCursor?
        if let cursor = request.uri.queryParameters.get("cursor") {
            guard let parsed = TimeCursor(cursor) else { throw HeraldError.validation(field: "cursor", "must be the nextCursor of a previous page") }
            before = parsed
        }
        let list = try await database.transaction(grant.scope) { tx in
            let integration = try await loadIntegration(grant, context, in: tx)
            return try await deliveries.list(integrationId: integration.id, limit: limit, before: before, in: tx)
        }
        let next = list.count == limit ? list.last.map { TimeCursor(date: $0.receivedAt, id: $0.id).text } : nil
        return JSONResponse(Page(items: list, nextCursor: next))
    }

    /// Imports the store's most recent orders (`{"count": 50}`, up to 250) in the background.
    @Sendable func startImport(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ImportJob> {
        let grant = try await access.site(from: context, .contentWrite)
        var count = 50
        if request.headers[.contentLength].map({ $0 != "0" }) ?? false {
            var reader = try await BodyReader(request: request, context: context)
            if reader.has("count") {
                let value = reader.decode("count", as: Int.self)
                if let value, (1...250).contains(value) {
                    count = value
                } else {
                    reader.validator.add("count", "must be a whole number from 1 to 250")
                }
            }
            try reader.validator.check()
        }
        let integration = try await database.transaction(grant.scope) { try await loadIntegration(grant, context, in: $0) }
        guard integration.type == .shopify || integration.type == .woocommerce else {
            throw HeraldError.conflict("Only Shopify and WooCommerce integrations import orders.", slug: "import-unsupported")
        }
        if integration.type == .shopify && integration.secrets.accessToken == nil {
            throw HeraldError.conflict(
                "Connect the Shopify store first (POST …/shopify/authorize, or set config.accessToken).", slug: "not-connected")
        }
        if integration.type == .woocommerce && integration.secrets.consumerKey == nil {
            throw HeraldError.conflict("Add config.consumerKey and config.consumerSecret (WooCommerce REST API keys) first.", slug: "not-connected")
        }
        let job = try await importer.start(integration, count: count)
        return JSONResponse(
            job, status: .accepted,
            headers: [.location: "/sites/\(grant.siteId.lowercased)/integrations/\(integration.id.lowercased)/imports/\(job.id.lowercased)"])
    }

    @Sendable func getImport(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ImportJob> {
        let grant = try await access.site(from: context, .contentRead)
        let importId = try context.uuidParameter("importId", resource: "Import")
        let job = try await database.transaction(grant.scope) { tx -> ImportJob? in
            let integration = try await loadIntegration(grant, context, in: tx)
            return try await imports.find(importId, integrationId: integration.id, in: tx)
        }
        guard let job else { throw HeraldError.notFound("Import \(importId.lowercased)") }
        return JSONResponse(job)
    }

    @Sendable func authorizeShopify(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<AuthorizeBody> {
        let grant = try await access.site(from: context, .contentWrite)
        let app = try requireShopifyApp()
        let integration = try await database.transaction(grant.scope) { try await loadIntegration(grant, context, in: $0) }
        guard integration.type == .shopify else {
            throw HeraldError.conflict("Only Shopify integrations are connected with OAuth.", slug: "not-shopify")
        }
        return JSONResponse(try await authorizeURL(for: integration, app: app))
    }
}
