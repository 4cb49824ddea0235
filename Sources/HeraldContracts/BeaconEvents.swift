import Foundation
import HeraldCore
import HeraldEvents
import Synchronization

// The widget's interactions travel from the Notifications service (which receives them) to Analytics and
// Billing (which count them) as `widget.beacons_recorded` events. Documented in docs/EVENTS.md.

/// Where a conversion's credit may go: something the visitor saw, hovered or clicked before converting, as
/// remembered by the visitor's own widget (Herald never links a visitor across days on the server).
public struct Touch: Codable, Sendable, Equatable {
    public var notificationId: UUID
    public var variantId: UUID?
    /// `impression`, `hover` or `click`.
    public var kind: String
    /// Milliseconds since 1970.
    public var at: Int64

    public init(notificationId: UUID, variantId: UUID?, kind: String, at: Int64) {
        self.notificationId = notificationId
        self.variantId = variantId
        self.kind = kind
        self.at = at
    }
}

/// One interaction the widget reported, as accepted.
public struct RecordedBeacon: Codable, Sendable, Equatable {
    /// `pageview`, `impression`, `hover`, `click`, `close` or `conversion`.
    public var type: String
    public var notificationId: UUID?
    public var variantId: UUID?
    public var activityId: UUID?
    /// Conversions: the goal passed to `Herald.track(goal)`, and its value (in the site's currency).
    public var goal: String?
    public var value: Double?
    public var path: String?
    /// When it happened (milliseconds since 1970; the visitor's clock, corrected when implausible).
    public var at: Int64
    /// Impressions: whether this is the visitor's first sight of the notification (its A/B exposure), when the
    /// widget knows; nil lets Analytics decide per visitor and day.
    public var exposure: Bool?
    /// Conversions: whether this is the visitor's first conversion after the exposure, when the widget knows.
    public var firstConversion: Bool?
    /// When this visitor first saw any notification of the site (its cohort), as the widget remembers.
    public var firstSeenAt: Int64?
    /// Conversions: when the visitor last converted before this one, as the widget remembers.
    public var previousConversionAt: Int64?
    /// Conversions: what the visitor saw or clicked before converting, oldest first.
    public var touches: [Touch]?

    public init(
        type: String, notificationId: UUID? = nil, variantId: UUID? = nil, activityId: UUID? = nil, goal: String? = nil,
        value: Double? = nil, path: String? = nil, at: Int64, exposure: Bool? = nil, firstConversion: Bool? = nil,
        firstSeenAt: Int64? = nil, previousConversionAt: Int64? = nil, touches: [Touch]? = nil
    ) {
        self.type = type
        self.notificationId = notificationId
        self.variantId = variantId
        self.activityId = activityId
        self.goal = goal
        self.value = value
        self.path = path
        self.at = at
        self.exposure = exposure
        self.firstConversion = firstConversion
        self.firstSeenAt = firstSeenAt
        self.previousConversionAt = previousConversionAt
        self.touches = touches
    }
}

/// One page's batch of beacons: who sent it (pseudonymously) and from where.
public struct Visit: Codable, Sendable, Equatable {
    /// The visitor id hashed with the site's salt of `day` (rotated daily, never stored in clear, never with an IP).
    public var visitor: String
    /// The widget's per-tab session id, hashed the same way.
    public var session: String?
    /// The site-local day (`yyyymmdd`) whose salt hashed the ids.
    public var day: Int
    /// `mobile`, `tablet` or `desktop`, from the User-Agent.
    public var device: String
    /// ISO 3166 country code from the configured header, when known.
    public var country: String?
    /// A self-declared crawler: counted apart, never in metrics or usage.
    public var bot: Bool
    /// The host of the page's referrer, without `www.`.
    public var referrer: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var utmCampaign: String?
    public var beacons: [RecordedBeacon]

    public init(
        visitor: String, session: String?, day: Int, device: String, country: String?, bot: Bool, referrer: String?,
        utmSource: String?, utmMedium: String?, utmCampaign: String?, beacons: [RecordedBeacon]
    ) {
        self.visitor = visitor
        self.session = session
        self.day = day
        self.device = device
        self.country = country
        self.bot = bot
        self.referrer = referrer
        self.utmSource = utmSource
        self.utmMedium = utmMedium
        self.utmCampaign = utmCampaign
        self.beacons = beacons
    }
}

/// The beacons one site received in one durable commit (schema version 2 of `widget.beacons_recorded`).
public struct BeaconBatch: DomainEvent {
    public static let eventType = "widget.beacons_recorded"
    public static let schemaVersion = 2

    public var siteId: UUID
    /// The site's time zone when the beacons arrived: days and hours are the site's.
    public var timezone: String
    /// Milliseconds since 1970.
    public var receivedAt: Int64
    public var visits: [Visit]

    public init(siteId: UUID, timezone: String, receivedAt: Int64, visits: [Visit]) {
        self.siteId = siteId
        self.timezone = timezone
        self.receivedAt = receivedAt
        self.visits = visits
    }

    /// The event's JSON, written directly: this runs for every beacon, where `JSONEncoder` costs an order of magnitude more.
    public func encodedJSON() -> String {
        var json = JSONWriter(capacity: 256 + visits.count * 400)
        json.beginObject()
        json.field("siteId", siteId)
        json.field("timezone", timezone)
        json.field("receivedAt", receivedAt)
        json.key("visits")
        json.beginArray()
        for visit in visits {
            json.beginObject()
            json.field("visitor", visit.visitor)
            json.field("session", visit.session)
            json.field("day", Int64(visit.day))
            json.field("device", visit.device)
            json.field("country", visit.country)
            json.field("bot", visit.bot)
            json.field("referrer", visit.referrer)
            json.field("utmSource", visit.utmSource)
            json.field("utmMedium", visit.utmMedium)
            json.field("utmCampaign", visit.utmCampaign)
            json.key("beacons")
            json.beginArray()
            for beacon in visit.beacons {
                json.beginObject()
                json.field("type", beacon.type)
                json.field("notificationId", beacon.notificationId)
                json.field("variantId", beacon.variantId)
                json.field("activityId", beacon.activityId)
                json.field("goal", beacon.goal)
                json.field("value", beacon.value)
                json.field("path", beacon.path)
                json.field("at", beacon.at)
                json.field("exposure", beacon.exposure)
                json.field("firstConversion", beacon.firstConversion)
                json.field("firstSeenAt", beacon.firstSeenAt)
                json.field("previousConversionAt", beacon.previousConversionAt)
                if let touches = beacon.touches {
                    json.key("touches")
                    json.beginArray()
                    for touch in touches {
                        json.beginObject()
                        json.field("notificationId", touch.notificationId)
                        json.field("variantId", touch.variantId)
                        json.field("kind", touch.kind)
                        json.field("at", touch.at)
                        json.endObject()
                    }
                    json.endArray()
                }
                json.endObject()
            }
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return json.text
    }
}

/// Version 1 of `widget.beacons_recorded`: one page's beacons with the visitor id in clear. No longer written;
/// consumers still read it so events published before an upgrade are counted.
public struct BeaconsRecordedV1: DomainEvent {
    public static let eventType = "widget.beacons_recorded"
    public static let schemaVersion = 1

    public struct Beacon: Codable, Sendable, Equatable {
        public var type: String
        public var notificationId: UUID?
        public var variantId: UUID?
        public var activityId: UUID?
        public var goal: String?
        public var path: String?
        public var occurredAt: Date
    }

    public var siteId: UUID
    public var visitorId: String
    public var receivedAt: Date
    public var beacons: [Beacon]
}

extension BeaconBatch {
    /// Reads the event's JSON with ``JSONReader``: the Analytics and Billing consumers read every beacon, and
    /// `JSONDecoder` was the largest cost of applying them.
    public init(json text: String) throws {
        var text = text
        let node = try text.withUTF8 { try JSONReader.read($0) }
        func fail(_ what: String) -> EventBusError { EventBusError.unexpectedEvent("\(BeaconBatch.eventType): \(what)") }
        func uuid(_ node: JSONNode?) -> UUID? { node?.string.flatMap { UUID(text: $0) } }
        guard let siteId = uuid(node["siteId"]), let timezone = node["timezone"]?.string, let receivedAt = node["receivedAt"]?.int64,
            let visitNodes = node["visits"]?.array
        else { throw fail("siteId, timezone, receivedAt and visits are required") }
        var visits: [Visit] = []
        visits.reserveCapacity(visitNodes.count)
        for visit in visitNodes {
            guard let visitor = visit["visitor"]?.string, let day = visit["day"]?.int64, let device = visit["device"]?.string,
                let beaconNodes = visit["beacons"]?.array
            else { throw fail("a visit needs visitor, day, device and beacons") }
            var beacons: [RecordedBeacon] = []
            beacons.reserveCapacity(beaconNodes.count)
            for beacon in beaconNodes {
                guard let type = beacon["type"]?.string, let at = beacon["at"]?.int64 else { throw fail("a beacon needs type and at") }
                var touches: [Touch]?
                if let list = beacon["touches"]?.array {
                    touches = try list.map { touch in
                        guard let notificationId = uuid(touch["notificationId"]), let kind = touch["kind"]?.string, let at = touch["at"]?.int64 else {
                            throw fail("a touch needs notificationId, kind and at")
                        }
                        return Touch(notificationId: notificationId, variantId: uuid(touch["variantId"]), kind: kind, at: at)
                    }
                }
                beacons.append(
                    RecordedBeacon(
                        type: type, notificationId: uuid(beacon["notificationId"]), variantId: uuid(beacon["variantId"]),
                        activityId: uuid(beacon["activityId"]), goal: beacon["goal"]?.string, value: beacon["value"]?.number,
                        path: beacon["path"]?.string, at: at, exposure: beacon["exposure"]?.bool, firstConversion: beacon["firstConversion"]?.bool,
                        firstSeenAt: beacon["firstSeenAt"]?.int64, previousConversionAt: beacon["previousConversionAt"]?.int64, touches: touches
                    )
                )
            }
            visits.append(
                Visit(
                    visitor: visitor, session: visit["session"]?.string, day: Int(day), device: device, country: visit["country"]?.string,
                    bot: visit["bot"]?.bool ?? false, referrer: visit["referrer"]?.string, utmSource: visit["utmSource"]?.string,
                    utmMedium: visit["utmMedium"]?.string, utmCampaign: visit["utmCampaign"]?.string, beacons: beacons
                )
            )
        }
        self.init(siteId: siteId, timezone: timezone, receivedAt: receivedAt, visits: visits)
    }
}

/// The beacon batches this process committed lately, by event id. Two groups read each batch (the analytics
/// ingest and the impression meter), usually within a fraction of a second and in the same process: they take the
/// batch from here instead of decoding the event's JSON again, which was a tenth of the CPU of beacon ingest. The
/// event in the store stays the truth: a batch not found here (another process wrote it, a restart, an old
/// redelivery) is decoded from it as before. Holds at most `capacity` beacons, forgetting the oldest batches first:
/// the default, about four seconds of beacons at 50,000 a second (some tens of megabytes), also covers a consumer
/// that fell a few seconds behind, which otherwise had to decode again just when it could least afford it.
public final class RecentBeaconBatches: Sendable {
    /// The one shared by the beacon writer and the consumers of this process.
    public static let shared = RecentBeaconBatches()

    private struct State {
        var batches: [UUID: BeaconBatch] = [:]
        var order: [(id: UUID, beacons: Int)] = []
        var head = 0
        var beacons = 0
    }
    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int = 200_000) {
        self.capacity = capacity
    }

    /// Remembers a batch once the event carrying it committed.
    public func remember(_ batch: BeaconBatch, eventId: UUID) {
        let size = batch.visits.reduce(0) { $0 + $1.beacons.count }
        guard size <= capacity else { return }
        state.withLock { state in
            state.batches[eventId] = batch
            state.order.append((eventId, size))
            state.beacons += size
            while state.beacons > capacity, state.head < state.order.count {
                let oldest = state.order[state.head]
                state.head += 1
                state.beacons -= oldest.beacons
                state.batches[oldest.id] = nil
            }
            // Compact the queue once its forgotten part dominates.
            if state.head > 1024 && state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    public func batch(eventId: UUID) -> BeaconBatch? {
        state.withLock { $0.batches[eventId] }
    }
}
