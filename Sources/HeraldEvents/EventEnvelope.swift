import Foundation
import HeraldCore

/// A fact one service announces to the others: a type, a schema version and a JSON body.
public protocol DomainEvent: Codable, Sendable {
    /// Dotted name, `<entity>.<past-tense verb>`: `site.created`.
    static var eventType: String { get }
    /// Bumped when the body changes incompatibly; consumers check it.
    static var schemaVersion: Int { get }
}

/// The envelope every event travels in, on every bus implementation. Documented in docs/EVENTS.md.
public struct EventEnvelope: Codable, Sendable, Equatable {
    public var id: UUID
    public var type: String
    public var version: Int
    public var occurredAt: Date
    /// The tenant the event belongs to; `nil` only for events about a user outside any organization.
    public var organizationId: UUID?
    public var siteId: UUID?
    /// The event body as JSON text.
    public var data: String
    /// The W3C `traceparent` of the activity that published the event, so the consumers' spans join its trace.
    public var traceContext: String?

    public init(
        id: UUID = .v7(),
        type: String,
        version: Int,
        occurredAt: Date = Date(),
        organizationId: UUID?,
        siteId: UUID?,
        data: String,
        traceContext: String? = nil
    ) {
        self.id = id
        self.type = type
        self.version = version
        self.occurredAt = occurredAt
        self.organizationId = organizationId
        self.siteId = siteId
        self.data = data
        self.traceContext = traceContext
    }

    public init<E: DomainEvent>(_ event: E, organizationId: UUID?, siteId: UUID? = nil, occurredAt: Date = Date()) throws {
        let data = try JSONEncoder.herald.encode(event)
        self.init(
            type: E.eventType,
            version: E.schemaVersion,
            occurredAt: occurredAt,
            organizationId: organizationId,
            siteId: siteId,
            data: String(decoding: data, as: UTF8.self)
        )
    }

    /// Decodes the body as `E`, checking type and schema version.
    public func decode<E: DomainEvent>(_ type: E.Type) throws -> E {
        guard self.type == E.eventType else {
            throw EventBusError.unexpectedEvent("expected \(E.eventType), got \(self.type)")
        }
        guard self.version == E.schemaVersion else {
            throw EventBusError.unexpectedEvent("\(self.type) version \(self.version) is not the supported version \(E.schemaVersion)")
        }
        return try JSONDecoder.herald.decode(E.self, from: Data(data.utf8))
    }
}

public enum EventBusError: Error, Sendable, CustomStringConvertible {
    case unexpectedEvent(String)
    /// Another instance took over the consumer group: this one must stop applying its events.
    case leaseLost(group: String)

    public var description: String {
        switch self {
        case .unexpectedEvent(let reason): reason
        case .leaseLost(let group): "another instance took over the consumer group \(group)"
        }
    }
}
