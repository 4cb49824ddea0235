import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldSecurity
import HeraldStorage

/// Turns queued inbound deliveries into activities: one per source record, whichever way it arrived.
struct InboundTransformer: EventConsumer {
    let group = "integrations.inbound"
    let eventTypes: Set<String> = [IntegrationDeliveryReceived.eventType]
    let cipher: FieldCipher
    let bus: any EventBus
    let integrations: IntegrationStore
    let deliveries = DeliveryStore()

    /// The outcome of reading a payload.
    enum Outcome {
        case activity(ActivityRequest, sourceKey: String?)
        case ignored(String)
        case rejected(String)
    }

    func handle(_ event: EventEnvelope, in tx: any SQLExecutor) async throws {
        let received = try event.decode(IntegrationDeliveryReceived.self)
        guard let integration = try await integrations.find(received.integrationId, in: tx) else {
            try await deliveries.finish(received.deliveryId, status: "ignored", reason: "the integration was deleted", activityId: nil, in: tx)
            return
        }
        guard let sealed = Data(base64Encoded: received.payloadEncrypted) else {
            try await deliveries.finish(received.deliveryId, status: "rejected", reason: "the queued payload is unreadable", activityId: nil, in: tx)
            return
        }
        let text = try cipher.decrypt([UInt8](sealed), context: "integrations.delivery:\(received.deliveryId.lowercased)")
        let outcome = Self.read(text, topic: received.topic, integration: integration)
        switch outcome {
        case .ignored(let reason):
            try await deliveries.finish(received.deliveryId, status: "ignored", reason: reason, activityId: nil, in: tx)
        case .rejected(let reason):
            try await deliveries.finish(received.deliveryId, status: "rejected", reason: reason, activityId: nil, in: tx)
        case .activity(let request, let sourceKey):
            let provenance = Provenance(
                source: integration.type.rawValue, receivedAt: event.occurredAt, signatureVerified: true, integrationId: integration.id,
                sourceEventId: sourceKey ?? received.sourceDeliveryId, authenticatedBy: "integration"
            )
            let result = try await Self.record(
                request, sourceKey: sourceKey ?? "delivery:\(received.sourceDeliveryId ?? received.deliveryId.lowercased)",
                integration: integration, provenance: provenance, cipher: cipher, in: tx
            )
            switch result {
            case .recorded(let activityId):
                try await deliveries.finish(received.deliveryId, status: "accepted", reason: nil, activityId: activityId, in: tx)
            case .alreadyRecorded(let activityId):
                try await deliveries.finish(
                    received.deliveryId, status: "duplicate", reason: "\(sourceKey ?? "this record") already became an activity",
                    activityId: activityId,
                    in: tx
                )
            case .invalid(let reason):
                try await deliveries.finish(received.deliveryId, status: "rejected", reason: reason, activityId: nil, in: tx)
            }
        }
    }

    func didCommit(_ event: EventEnvelope) async {
        bus.didCommitEvents()
    }

    enum RecordResult {
        case recorded(UUID)
        case alreadyRecorded(UUID?)
        case invalid(String)
    }

    /// Validates the activity, claims its source record, and appends `activity.captured` in the same transaction.
    static func record(
        _ request: ActivityRequest, sourceKey: String, integration: Integration, provenance: Provenance, cipher: FieldCipher,
        in tx: any SQLExecutor
    ) async throws -> RecordResult {
        let activityId = UUID.v7()
        let event: ActivityCaptured
        do {
            event = try request.validated(id: activityId, siteId: integration.siteId, now: Date(), provenance: provenance, cipher: cipher)
        } catch let error as HeraldError {
            let fields = error.errors.map { "\($0.field) \($0.message)" }.joined(separator: "; ")
            return .invalid(fields.isEmpty ? error.detail : "the payload does not fit an activity: \(fields)")
        }
        let sourceRecords = SourceRecordStore()
        let claimed = try await sourceRecords.claim(
            integrationId: integration.id, sourceKey: sourceKey, organizationId: integration.organizationId, activityId: activityId, in: tx
        )
        guard claimed else {
            return .alreadyRecorded(try await sourceRecords.activity(integrationId: integration.id, sourceKey: sourceKey, in: tx))
        }
        try await Outbox.append(event, organizationId: integration.organizationId, siteId: integration.siteId, in: tx)
        return .recorded(activityId)
    }

    // MARK: Reading payloads

    static func read(_ text: String, topic: String?, integration: Integration) -> Outcome {
        guard let payload = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .object = payload else {
            return .rejected("the payload is not a JSON object")
        }
        switch integration.type {
        case .shopify: return shopify(payload, topic: topic ?? "", integration: integration)
        case .woocommerce: return woocommerce(payload, topic: topic ?? "", integration: integration)
        case .webhook: return mapped(payload, integration: integration)
        case .zapier: return .ignored("Zapier integrations receive no webhooks")
        }
    }

    static func string(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: return text.isEmpty ? nil : text
        case .number(let number)?: return Int64(exactly: number).map { String($0) } ?? String(number)
        default: return nil
        }
    }

    static func date(_ value: JSONValue?) -> Date? {
        switch value {
        case .string(let text)?:
            return ISO8601.date(from: text) ?? ISO8601.date(from: text + "Z")
        case .number(let seconds)?:
            return Date(timeIntervalSince1970: seconds > 1e11 ? seconds / 1000 : seconds)
        default:
            return nil
        }
    }

    /// Shopify `orders/create` (a purchase) and `customers/create` (a sign-up).
    static func shopify(_ payload: JSONValue, topic: String, integration: Integration) -> Outcome {
        let p = { (pointer: String) in payload.resolve(pointer: pointer) }
        switch topic {
        case "orders/create", "orders/paid":
            guard let id = string(p("/id")) else { return .rejected("the order has no id") }
            let address = p("/billing_address").flatMap { $0 == .null ? nil : $0 } ?? p("/shipping_address")
            var request = ActivityRequest()
            request.type = "purchase"
            request.firstName = string(p("/customer/first_name")) ?? string(address?.resolve(pointer: "/first_name"))
            request.lastName = string(p("/customer/last_name")) ?? string(address?.resolve(pointer: "/last_name"))
            request.email = string(p("/customer/email")) ?? string(p("/email"))
            request.city = string(address?.resolve(pointer: "/city"))
            request.region = string(address?.resolve(pointer: "/province"))
            request.country = string(address?.resolve(pointer: "/country"))
            request.productName = string(p("/line_items/0/title")) ?? string(p("/line_items/0/name"))
            request.occurredAt = date(p("/created_at")).map { min($0, Date()) }
            return .activity(request, sourceKey: "order:\(id)")
        case "customers/create":
            guard let id = string(p("/id")) else { return .rejected("the customer has no id") }
            var request = ActivityRequest()
            request.type = "signup"
            request.firstName = string(p("/first_name"))
            request.lastName = string(p("/last_name"))
            request.email = string(p("/email"))
            request.city = string(p("/default_address/city"))
            request.region = string(p("/default_address/province"))
            request.country = string(p("/default_address/country"))
            request.occurredAt = date(p("/created_at")).map { min($0, Date()) }
            return .activity(request, sourceKey: "customer:\(id)")
        default:
            return .ignored("topic \(topic.isEmpty ? "(none)" : topic) does not make activities")
        }
    }

    /// WooCommerce `order.created`.
    static func woocommerce(_ payload: JSONValue, topic: String, integration: Integration) -> Outcome {
        let p = { (pointer: String) in payload.resolve(pointer: pointer) }
        guard topic == "order.created" else {
            return .ignored("topic \(topic.isEmpty ? "(none)" : topic) does not make activities")
        }
        guard let id = string(p("/id")) else { return .rejected("the order has no id") }
        var request = ActivityRequest()
        request.type = "purchase"
        request.firstName = string(p("/billing/first_name")) ?? string(p("/shipping/first_name"))
        request.lastName = string(p("/billing/last_name"))
        request.email = string(p("/billing/email"))
        request.city = string(p("/billing/city")) ?? string(p("/shipping/city"))
        request.region = string(p("/billing/state")) ?? string(p("/shipping/state"))
        request.country = string(p("/billing/country")) ?? string(p("/shipping/country"))
        request.productName = string(p("/line_items/0/name"))
        if let product = string(p("/line_items/0/product_id")), let store = integration.config.storeUrl {
            request.productUrl = "\(store)/?post_type=product&p=\(product)"
        }
        request.occurredAt = (date(p("/date_created_gmt")) ?? date(p("/date_created"))).map { min($0, Date()) }
        return .activity(request, sourceKey: "order:\(id)")
    }

    /// A generic webhook, through the integration's mapping of activity fields to JSON Pointers.
    static func mapped(_ payload: JSONValue, integration: Integration) -> Outcome {
        let mapping = integration.config.mapping ?? [:]
        var missing: [String] = []
        func value(_ field: String) -> JSONValue? {
            guard let pointer = mapping[field] else { return nil }
            guard let found = payload.resolve(pointer: pointer), found != .null else {
                missing.append("\(field) (\(pointer))")
                return nil
            }
            return found
        }
        var request = ActivityRequest()
        request.type = string(value("type")) ?? integration.config.activityType ?? "custom"
        request.firstName = string(value("firstName"))
        request.lastName = string(value("lastName"))
        request.email = string(value("email"))
        request.city = string(value("city"))
        request.region = string(value("region"))
        request.country = string(value("country"))
        request.productName = string(value("productName"))
        request.productUrl = string(value("productUrl"))
        request.imageUrl = string(value("imageUrl"))
        if let rating = value("rating") {
            guard let number = rating.numberValue ?? string(rating).flatMap(Double.init), number.rounded() == number else {
                return .rejected("rating (\(mapping["rating"] ?? "")) is not a whole number")
            }
            request.rating = Int(number)
        }
        if let occurred = value("occurredAt") {
            guard let date = date(occurred) else { return .rejected("occurredAt (\(mapping["occurredAt"] ?? "")) is not a date") }
            request.occurredAt = min(date, Date())
        }
        let sourceId = string(value("sourceEventId"))
        if mapping["type"] != nil, missing.contains(where: { $0.hasPrefix("type ") }) {
            return .rejected("the payload has no activity type at \(mapping["type"] ?? "")")
        }
        // Fields the mapping names but the payload lacks: the payload does not fit; say which.
        let required = missing.filter { !$0.hasPrefix("sourceEventId") }
        if !required.isEmpty, required.count == mapping.keys.filter({ $0 != "sourceEventId" }).count {
            return .rejected("the payload has none of the mapped fields: \(required.joined(separator: ", "))")
        }
        return .activity(request, sourceKey: sourceId.map { "event:\($0)" })
    }
}
