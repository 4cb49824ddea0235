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
    /// The A/B test's arms, when it has one (absent in events published before tests were announced).
    public var variants: [ExperimentVariant]?

    public init(notificationId: UUID, siteId: UUID, name: String, type: String, status: String, variants: [ExperimentVariant]? = nil) {
        self.notificationId = notificationId
        self.siteId = siteId
        self.name = name
        self.type = type
        self.status = status
        self.variants = variants
    }
}

/// One arm of a notification's A/B test, as other services see it. The first arm is the control.
public struct ExperimentVariant: Codable, Sendable, Equatable {
    public var id: UUID
    public var name: String
    /// Relative share of visitors, 1–100: the split a sample-ratio check expects.
    public var weight: Int

    public init(id: UUID, name: String, weight: Int) {
        self.id = id
        self.name = name
        self.weight = weight
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
