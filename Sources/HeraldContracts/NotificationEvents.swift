import Foundation
import HeraldCore
import HeraldEvents

/// A notification's lifecycle. `status` is `draft`, `published` or `paused`.
public struct NotificationChanged: Codable, Sendable, Equatable {
    public var notificationId: UUID
    public var siteId: UUID
    public var name: String
    public var type: String
    public var status: String

    public init(notificationId: UUID, siteId: UUID, name: String, type: String, status: String) {
        self.notificationId = notificationId
        self.siteId = siteId
        self.name = name
        self.type = type
        self.status = status
    }
}

public struct NotificationCreated: DomainEvent {
    public static let eventType = "notification.created"
    public static let schemaVersion = 1
    public var notification: NotificationChanged
    public init(notification: NotificationChanged) { self.notification = notification }
}

public struct NotificationUpdated: DomainEvent {
    public static let eventType = "notification.updated"
    public static let schemaVersion = 1
    public var notification: NotificationChanged
    public init(notification: NotificationChanged) { self.notification = notification }
}

public struct NotificationPublished: DomainEvent {
    public static let eventType = "notification.published"
    public static let schemaVersion = 1
    public var notification: NotificationChanged
    public init(notification: NotificationChanged) { self.notification = notification }
}

public struct NotificationPaused: DomainEvent {
    public static let eventType = "notification.paused"
    public static let schemaVersion = 1
    public var notification: NotificationChanged
    public init(notification: NotificationChanged) { self.notification = notification }
}

public struct NotificationDeleted: DomainEvent {
    public static let eventType = "notification.deleted"
    public static let schemaVersion = 1
    public var notification: NotificationChanged
    public init(notification: NotificationChanged) { self.notification = notification }
}

/// One interaction the widget reported.
public struct Beacon: Codable, Sendable, Equatable {
    /// `impression`, `hover`, `click`, `close` or `conversion`.
    public var type: String
    public var notificationId: UUID?
    public var variantId: UUID?
    public var activityId: UUID?
    /// For conversions: the goal passed to `Herald.track(goal)`.
    public var goal: String?
    /// The page path the interaction happened on.
    public var path: String?
    /// When it happened, by the visitor's clock.
    public var occurredAt: Date

    public init(
        type: String, notificationId: UUID?, variantId: UUID?, activityId: UUID?, goal: String?, path: String?, occurredAt: Date
    ) {
        self.type = type
        self.notificationId = notificationId
        self.variantId = variantId
        self.activityId = activityId
        self.goal = goal
        self.path = path
        self.occurredAt = occurredAt
    }
}

/// A batch of widget interactions from one page view, accepted by the beacon endpoint.
/// The visitor id is the widget's random first-party id; no IP address is recorded.
public struct BeaconsRecorded: DomainEvent {
    public static let eventType = "widget.beacons_recorded"
    public static let schemaVersion = 1
    public var siteId: UUID
    public var visitorId: String
    public var receivedAt: Date
    public var beacons: [Beacon]

    public init(siteId: UUID, visitorId: String, receivedAt: Date, beacons: [Beacon]) {
        self.siteId = siteId
        self.visitorId = visitorId
        self.receivedAt = receivedAt
        self.beacons = beacons
    }
}
