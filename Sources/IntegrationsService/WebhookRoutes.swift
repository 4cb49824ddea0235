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
    static let rotationOverlap: TimeInterval = 86_400

    func addWebhookRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let webhooks = router.group("sites/:siteId/webhooks")
        webhooks.get(use: listEndpoints)
        webhooks.post(use: createEndpoint)
        webhooks.get(":endpointId", use: getEndpoint)
        webhooks.put(":endpointId", use: updateEndpoint)
        webhooks.patch(":endpointId", use: updateEndpoint)
        webhooks.delete(":endpointId", use: deleteEndpoint)
        webhooks.post(":endpointId/rotate-secret", use: rotateEndpointSecret)
        webhooks.get(":endpointId/deliveries", use: listMessages)
        webhooks.post(":endpointId/deliveries/:messageId/resend", use: resendMessage)
    }

    /// Checks a receiver URL: http(s), and not an address inside Herald's network (after resolving the name).
    func checkReceiver(_ url: String?, field: String, into validator: inout Validator) async -> String? {
        guard let url = url?.trimmingCharacters(in: .whitespaces), !url.isEmpty, url.count <= 2000 else {
            validator.add(field, "is required: the https URL that receives Herald's events")
            return nil
        }
        do {
            _ = try await outbound.check(url)
            return url
        } catch {
            validator.add(field, error.description)
            return nil
        }
    }

    static func checkEventTypes(_ types: [String]?, into validator: inout Validator) -> [String]? {
        guard let types else { return nil }
        let unknown = types.filter { !OutboundEvents.types.contains($0) }
        if types.isEmpty || !unknown.isEmpty {
            validator.add("eventTypes", "must list one or more of \(OutboundEvents.types.joined(separator: ", "))")
            return nil
        }
        return Array(Set(types)).sorted()
    }

    func loadEndpoint(_ grant: SiteAccess, _ context: HeraldRequestContext, in tx: any SQLExecutor) async throws -> WebhookEndpoint {
        let id = try context.uuidParameter("endpointId", resource: "Webhook endpoint")
        guard let endpoint = try await endpoints.find(id, siteId: grant.siteId, in: tx), endpoint.kind == "webhook" else {
            throw HeraldError.notFound("Webhook endpoint \(id.lowercased)")
        }
        return endpoint
    }

    @Sendable func listEndpoints(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<EndpointBody>> {
        let grant = try await access.site(from: context, .contentRead)
        let list = try await database.transaction(grant.scope) { try await endpoints.list(siteId: grant.siteId, kind: "webhook", in: $0) }
        return JSONResponse(Page(items: list.map { EndpointBody($0) }))
    }

    @Sendable func getEndpoint(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<EndpointBody> {
        let grant = try await access.site(from: context, .contentRead)
        let endpoint = try await database.transaction(grant.scope) { try await loadEndpoint(grant, context, in: $0) }
        return JSONResponse(EndpointBody(endpoint))
    }

    @Sendable func createEndpoint(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<EndpointBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let url = await checkReceiver(reader.string("url"), field: "url", into: &reader.validator)
        let types = Self.checkEventTypes(reader.decode("eventTypes", as: [String].self), into: &reader.validator)
        if !reader.has("eventTypes") { reader.validator.add("eventTypes", "is required, such as [\"activity.captured\"]") }
        let description = reader.validator.optionalText(reader.string("description"), field: "description", maxLength: 200)
        try reader.validator.check()
        let now = Date()
        let secret = WebhookSignature.newSecret()
        let endpoint = WebhookEndpoint(
            id: .v7(at: now), siteId: grant.siteId, organizationId: grant.organizationId, kind: "webhook", url: url ?? "", description: description,
            eventTypes: types ?? [], status: "enabled", disabledReason: nil, secrets: [.init(secret: secret, createdAt: now)],
            consecutiveFailures: 0, createdAt: now, updatedAt: now
        )
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(grant.scope) { tx in
            try await endpoints.insert(endpoint, in: tx)
            try await AuditTrail.record(
                "webhook_endpoint.created", target: "webhook_endpoint", endpoint.id,
                details: ["url": endpoint.url, "eventTypes": endpoint.eventTypes.joined(separator: ",")], by: grant, meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return JSONResponse(EndpointBody(endpoint, secret: secret), status: .created, headers: [.cacheControl: "no-store"])
    }

    /// Changes the URL, event types, description, or `status` (`enabled` re-enables a disabled endpoint).
    @Sendable func updateEndpoint(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<EndpointBody> {
        let grant = try await access.site(from: context, .contentWrite)
        var reader = try await BodyReader(request: request, context: context)
        let url = reader.has("url") ? await checkReceiver(reader.string("url"), field: "url", into: &reader.validator) : nil
        let types = Self.checkEventTypes(reader.decode("eventTypes", as: [String].self), into: &reader.validator)
        let status = reader.string("status")
        if let status, !["enabled", "disabled"].contains(status) { reader.validator.add("status", "must be enabled or disabled") }
        let description = reader.validator.optionalText(reader.string("description"), field: "description", maxLength: 200)
        try reader.validator.check()
        let meta = RequestMeta(request: request, context: context)
        let fields = reader.object.keys.sorted().joined(separator: ",")
        let endpoint = try await database.transaction(grant.scope) { tx -> WebhookEndpoint in
            var endpoint = try await loadEndpoint(grant, context, in: tx)
            if let url { endpoint.url = url }
            if let types { endpoint.eventTypes = types }
            if let description { endpoint.description = description }
            if let status, status != endpoint.status {
                endpoint.status = status
                endpoint.disabledReason = status == "disabled" ? "disabled by a member" : nil
                endpoint.consecutiveFailures = 0
            }
            endpoint.updatedAt = Date()
            try await endpoints.update(endpoint, in: tx)
            try await AuditTrail.record(
                "webhook_endpoint.updated", target: "webhook_endpoint", endpoint.id,
                details: ["url": endpoint.url, "status": endpoint.status, "fields": fields], by: grant, meta: meta, in: tx
            )
            return endpoint
        }
        bus.didCommitEvents()
        return JSONResponse(EndpointBody(endpoint))
    }

    @Sendable func deleteEndpoint(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .contentWrite)
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(grant.scope) { tx in
            let endpoint = try await loadEndpoint(grant, context, in: tx)
            try await endpoints.delete(endpoint, in: tx)
            try await AuditTrail.record(
                "webhook_endpoint.deleted", target: "webhook_endpoint", endpoint.id, details: ["url": endpoint.url], by: grant, meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return Response(status: .noContent)
    }

    /// A new signing secret; the previous one keeps signing for 24 hours so receivers can switch without gaps.
    @Sendable func rotateEndpointSecret(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<EndpointBody> {
        let grant = try await access.site(from: context, .contentWrite)
        let now = Date()
        let secret = WebhookSignature.newSecret()
        let meta = RequestMeta(request: request, context: context)
        let endpoint = try await database.transaction(grant.scope) { tx -> WebhookEndpoint in
            var endpoint = try await loadEndpoint(grant, context, in: tx)
            var secrets = endpoint.secrets.filter { $0.expiresAt.map { $0 > now } ?? true }
            for index in secrets.indices where secrets[index].expiresAt == nil {
                secrets[index].expiresAt = now.addingTimeInterval(Self.rotationOverlap)
            }
            endpoint.secrets = [.init(secret: secret, createdAt: now)] + secrets
            endpoint.updatedAt = now
            try await endpoints.update(endpoint, in: tx)
            try await AuditTrail.record(
                "webhook_endpoint.secret_rotated", target: "webhook_endpoint", endpoint.id,
                details: ["previousSecretExpiresAt": ISO8601.string(from: now.addingTimeInterval(Self.rotationOverlap))], by: grant, meta: meta,
                in: tx
            )
            return endpoint
        }
        bus.didCommitEvents()
        return JSONResponse(EndpointBody(endpoint, secret: secret), headers: [.cacheControl: "no-store"])
    }

    /// The endpoint's messages, newest first, each with every attempt.
    @Sendable func listMessages(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<WebhookMessage>> {
        let grant = try await access.site(from: context, .contentRead)
        let limit = try request.limit(default: 50, max: 200)
        let list = try await database.transaction(grant.scope) { tx in
            let endpoint = try await loadEndpoint(grant, context, in: tx)
            return try await messages.list(endpointId: endpoint.id, limit: limit, in: tx)
        }
        return JSONResponse(Page(items: list))
    }

    /// Sends a dead or failed message again, now.
    @Sendable func resendMessage(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ResendBody> {
        let grant = try await access.site(from: context, .contentWrite)
        let messageId = context.parameters.get("messageId") ?? ""
        try await database.transaction(grant.scope) { tx in
            let endpoint = try await loadEndpoint(grant, context, in: tx)
            guard let message = try await messages.find(messageId, in: tx), message.endpointId == endpoint.id else {
                throw HeraldError.notFound("Message \(messageId.prefix(80))")
            }
            guard message.status != "pending" else {
                throw HeraldError.conflict("The message is still being delivered.", slug: "delivery-pending")
            }
            guard endpoint.status == "enabled" else {
                throw HeraldError.conflict(
                    "The endpoint is disabled; enable it first (PUT with {\"status\": \"enabled\"}).", slug: "endpoint-disabled")
            }
            let now = Date()
            try await messages.resend(messageId, now: now, in: tx)
            try await messages.enqueue(messageId, organizationId: grant.organizationId, at: now, in: tx)
        }
        dispatcher.wake()
        return JSONResponse(ResendBody(id: messageId, status: "pending"), status: .accepted)
    }
}
