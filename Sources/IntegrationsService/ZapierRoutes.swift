import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird

/// Zapier's REST hooks. A Zap authenticates with the site's secret key (`Authorization: Bearer sk_…`),
/// subscribes a hook URL to an event, and can create activities.
extension IntegrationsService {
    func addZapierRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.get("zapier/me", use: zapierMe)
        router.post("zapier/hooks", use: zapierSubscribe)
        router.delete("zapier/hooks/:hookId", use: zapierUnsubscribe)
        router.get("zapier/samples/:event", use: zapierSamples)
        router.post("zapier/actions/activities", use: zapierCreateActivity)
    }

    /// Zapier's connection test: the site of the secret key.
    @Sendable func zapierMe(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ZapierMe> {
        let grant = try await access.siteOfKey(from: context, .contentRead)
        return JSONResponse(ZapierMe(siteId: grant.siteId, organizationId: grant.organizationId))
    }

    @Sendable func zapierSubscribe(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ZapierHook> {
        let site = try await access.siteOfKey(from: context, .zapierHooksManage)
        var reader = try await BodyReader(request: request, context: context)
        let url = await checkReceiver(reader.string("hookUrl"), field: "hookUrl", into: &reader.validator)
        let event = reader.string("event")
        if event == nil || !OutboundEvents.types.contains(event ?? "") {
            reader.validator.add("event", "must be one of \(OutboundEvents.types.joined(separator: ", "))")
        }
        try reader.validator.check()
        let now = Date()
        let endpoint = WebhookEndpoint(
            id: .v7(at: now), siteId: site.siteId, organizationId: site.organizationId, kind: "zapier", url: url ?? "",
            description: "Zapier REST hook",
            eventTypes: [event ?? ""], status: "enabled", disabledReason: nil, secrets: [.init(secret: WebhookSignature.newSecret(), createdAt: now)],
            consecutiveFailures: 0, createdAt: now, updatedAt: now
        )
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(site.scope) { tx in
            try await endpoints.insert(endpoint, in: tx)
            try await AuditTrail.record(
                "webhook_endpoint.created", target: "webhook_endpoint", endpoint.id,
                details: ["kind": "zapier", "url": endpoint.url, "eventTypes": endpoint.eventTypes.joined(separator: ",")], by: site, meta: meta,
                in: tx
            )
        }
        bus.didCommitEvents()
        return JSONResponse(ZapierHook(id: endpoint.id), status: .created)
    }

    @Sendable func zapierUnsubscribe(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let site = try await access.siteOfKey(from: context, .zapierHooksManage)
        let id = try context.uuidParameter("hookId", resource: "Hook")
        let meta = RequestMeta(request: request, context: context)
        try await database.transaction(site.scope) { tx in
            guard let endpoint = try await endpoints.find(id, siteId: site.siteId, in: tx), endpoint.kind == "zapier" else {
                throw HeraldError.notFound("Hook \(id.lowercased)")
            }
            try await endpoints.delete(endpoint, in: tx)
            try await AuditTrail.record(
                "webhook_endpoint.deleted", target: "webhook_endpoint", endpoint.id, details: ["kind": "zapier", "url": endpoint.url], by: site,
                meta: meta, in: tx
            )
        }
        bus.didCommitEvents()
        return Response(status: .noContent)
    }

    /// Example bodies for a trigger, in the shape the hook receives, so a Zap can map fields before a real event.
    @Sendable func zapierSamples(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<[JSONValue]> {
        let site = try await access.siteOfKey(from: context, .contentRead)
        let event = context.parameters.get("event") ?? ""
        guard let sample = Self.sample(event, siteId: site.siteId, organizationId: site.organizationId) else {
            throw HeraldError.notFound("Trigger \(event.prefix(60))")
        }
        return JSONResponse([sample])
    }

    static func sample(_ event: String, siteId: UUID, organizationId: UUID) -> JSONValue? {
        let now = ISO8601.string(from: Date())
        let site = JSONValue.string(siteId.lowercased)
        let data: JSONValue
        switch event {
        case ActivityCaptured.eventType:
            data = .object([
                "activityId": .string("01936d3a-0000-7000-8000-000000000001"), "siteId": site, "type": .string("purchase"),
                "firstName": .string("Sarah"), "city": .string("Austin"), "region": .string("TX"), "country": .string("US"),
                "productName": .string("Blue Hoodie"), "productUrl": .string("https://shop.example.com/products/blue-hoodie"),
                "occurredAt": .string(now),
                "provenance": .object([
                    "source": .string("api"), "receivedAt": .string(now), "signatureVerified": .bool(false), "authenticatedBy": .string("site-key"),
                ]),
            ])
        case NotificationPublished.eventType, NotificationPaused.eventType:
            data = .object([
                "notification": .object([
                    "notificationId": .string("01936d3a-0000-7000-8000-000000000002"), "siteId": site, "name": .string("Recent purchases"),
                    "type": .string("recent_activity"), "status": .string(event == NotificationPublished.eventType ? "published" : "paused"),
                ])
            ])
        case WebhookEndpointDisabled.eventType:
            data = .object([
                "endpointId": .string("01936d3a-0000-7000-8000-000000000003"), "siteId": site, "url": .string("https://hooks.example.com/herald"),
                "reason": .string("the receiver answered 410 Gone"),
            ])
        case UsageThresholdReached.eventType, SubscriptionChanged.eventType:
            // Billing's events are built from their contract types, so a sample cannot drift from what is sent.
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
            let end = start.addingTimeInterval(30 * 86_400)
            let envelope =
                event == UsageThresholdReached.eventType
                ? try? EventEnvelope(
                    UsageThresholdReached(
                        organizationId: organizationId, metric: "impressions", threshold: 80, usage: 40_000, quota: 50_000, planId: "growth",
                        periodStart: start, periodEnd: end),
                    organizationId: organizationId)
                : try? EventEnvelope(
                    SubscriptionChanged(
                        organizationId: organizationId, planId: "growth", interval: "month", status: "active", previousPlanId: "starter",
                        previousStatus: "active", currentPeriodStart: start, currentPeriodEnd: end, pendingPlanId: nil),
                    organizationId: organizationId)
            guard let envelope, let projected = try? OutboundEvents.data(for: envelope) else { return nil }
            data = projected
        default:
            return nil
        }
        return .object(["type": .string(event), "timestamp": .string(now), "data": data])
    }

    /// Creates an activity from a Zap, exactly as the events API does, recorded with source `zapier`.
    @Sendable func zapierCreateActivity(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let site = try await access.siteOfKey(from: context, .activitiesWrite)
        return try await capture(request, context: context, grant: site, source: "zapier")
    }
}
