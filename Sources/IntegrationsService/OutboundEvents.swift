import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents

/// An endpoint becomes disabled after too many failures in a row or a `410 Gone`.
public struct WebhookEndpointDisabled: DomainEvent {
    public static let eventType = "webhook_endpoint.disabled"
    public static let schemaVersion = 1
    public var endpointId: UUID
    public var siteId: UUID
    public var url: String
    public var reason: String
}

/// When and how outbound deliveries are retried.
public struct WebhookRetryPolicy: Sendable {
    /// Delay before each attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then dead letter.
    public var schedule: [TimeInterval]
    /// Failed messages in a row after which an endpoint is disabled.
    public var disableAfter: Int

    public init(schedule: [TimeInterval] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000], disableAfter: Int = 50) {
        self.schedule = schedule
        self.disableAfter = disableAfter
    }

    /// The delay before attempt `n + 1` after `n` failed attempts, with ±10 % jitter; nil when exhausted.
    func delay(afterAttempts attempts: Int) -> TimeInterval? {
        guard attempts < schedule.count else { return nil }
        let base = schedule[attempts]
        return base == 0 ? 0 : base * Double.random(in: 0.9...1.1)
    }
}

/// The events customers can subscribe to, and the body each sends.
enum OutboundEvents {
    static let types: [String] = [
        ActivityCaptured.eventType, NotificationPublished.eventType, NotificationPaused.eventType, WebhookEndpointDisabled.eventType,
        UsageThresholdReached.eventType, SubscriptionChanged.eventType,
    ]

    /// The public projection of an event: never an encrypted or personal field that is not meant for the customer's systems.
    static func data(for event: EventEnvelope) throws -> JSONValue {
        let raw = try JSONDecoder().decode(JSONValue.self, from: Data(event.data.utf8))
        guard event.type == ActivityCaptured.eventType, case .object(var fields) = raw else { return raw }
        fields["lastNameEncrypted"] = nil
        fields["emailEncrypted"] = nil
        return .object(fields)
    }

    /// `{"type", "timestamp", "data"}`, the payload shape the Standard Webhooks specification recommends.
    static func payload(for event: EventEnvelope) throws -> String {
        let body = JSONValue.object([
            "type": .string(event.type), "timestamp": .string(ISO8601.string(from: event.occurredAt)), "data": try data(for: event),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(body), as: UTF8.self)
    }

    static func messageId(endpoint: UUID, event: UUID) -> String {
        // Stable for an (endpoint, event) pair, so a redelivered event maps to the same message.
        "msg_" + String((endpoint.lowercased + event.lowercased).replacingOccurrences(of: "-", with: "").prefix(64))
    }
}
