import Foundation
import HeraldCore
import HeraldEvents

/// An organization's subscription changed: plan, billing interval, status or period. Published by Billing.
public struct SubscriptionChanged: DomainEvent {
    public static let eventType = "subscription.changed"
    public static let schemaVersion = 1

    public var organizationId: UUID
    public var planId: String
    /// `month` or `year`.
    public var interval: String
    /// `trialing`, `active`, `past_due`, `restricted` or `canceled`.
    public var status: String
    public var previousPlanId: String?
    public var previousStatus: String?
    public var currentPeriodStart: Date
    public var currentPeriodEnd: Date
    /// A downgrade waiting for the period's end.
    public var pendingPlanId: String?

    public init(
        organizationId: UUID, planId: String, interval: String, status: String, previousPlanId: String?, previousStatus: String?,
        currentPeriodStart: Date, currentPeriodEnd: Date, pendingPlanId: String?
    ) {
        self.organizationId = organizationId
        self.planId = planId
        self.interval = interval
        self.status = status
        self.previousPlanId = previousPlanId
        self.previousStatus = previousStatus
        self.currentPeriodStart = currentPeriodStart
        self.currentPeriodEnd = currentPeriodEnd
        self.pendingPlanId = pendingPlanId
    }
}

/// Usage of a quota crossed a threshold (80, 100 or 120 % by default), once per quota, threshold and period.
public struct UsageThresholdReached: DomainEvent {
    public static let eventType = "usage.threshold"
    public static let schemaVersion = 1

    public var organizationId: UUID
    /// `impressions`, `activeCampaigns`, `sites` or `storageBytes`.
    public var metric: String
    /// Percent of the quota: 80, 100, 120.
    public var threshold: Int
    public var usage: Int64
    public var quota: Int64
    public var planId: String
    public var periodStart: Date
    public var periodEnd: Date

    public init(
        organizationId: UUID, metric: String, threshold: Int, usage: Int64, quota: Int64, planId: String, periodStart: Date, periodEnd: Date
    ) {
        self.organizationId = organizationId
        self.metric = metric
        self.threshold = threshold
        self.usage = usage
        self.quota = quota
        self.planId = planId
        self.periodStart = periodStart
        self.periodEnd = periodEnd
    }
}

/// Whether an organization's popups may be shown. Billing pauses delivery at the hard limit of a quota or when a
/// payment stays unpaid past its grace period, and resumes it at the next period, on an upgrade or on payment.
/// Notifications keeps the latest state per organization and says so in the widget feed.
public struct DeliveryStatusChanged: DomainEvent {
    public static let eventType = "billing.delivery_changed"
    public static let schemaVersion = 1

    public var organizationId: UUID
    public var paused: Bool
    /// `quota` or `payment` when paused; nil when delivery resumes.
    public var reason: String?
    /// When the state was decided: consumers keep the latest one, whatever order events arrive in.
    public var decidedAt: Date
    /// The most published notifications the plan allows at once (nil: unlimited).
    public var maxActiveCampaigns: Int64?

    public init(organizationId: UUID, paused: Bool, reason: String?, decidedAt: Date, maxActiveCampaigns: Int64?) {
        self.organizationId = organizationId
        self.paused = paused
        self.reason = reason
        self.decidedAt = decidedAt
        self.maxActiveCampaigns = maxActiveCampaigns
    }
}

/// An invoice was paid, or its payment failed (from Stripe).
public struct InvoiceStatusChanged: DomainEvent {
    public static let eventType = "invoice.status_changed"
    public static let schemaVersion = 1

    public var organizationId: UUID
    public var invoiceId: String
    /// `paid`, `payment_failed`, `open`, `void`, `uncollectible`.
    public var status: String
    public var amountDue: Int64
    public var amountPaid: Int64
    public var currency: String

    public init(organizationId: UUID, invoiceId: String, status: String, amountDue: Int64, amountPaid: Int64, currency: String) {
        self.organizationId = organizationId
        self.invoiceId = invoiceId
        self.status = status
        self.amountDue = amountDue
        self.amountPaid = amountPaid
        self.currency = currency
    }
}

/// How much a service stores for an organization, reported periodically so Billing can meter storage without
/// reading other services' tables.
public struct StorageReported: DomainEvent {
    public static let eventType = "storage.reported"
    public static let schemaVersion = 1

    public var organizationId: UUID
    /// The reporting service: `analytics`, `notifications`, `integrations`.
    public var service: String
    public var bytes: Int64
    public var measuredAt: Date

    public init(organizationId: UUID, service: String, bytes: Int64, measuredAt: Date) {
        self.organizationId = organizationId
        self.service = service
        self.bytes = bytes
        self.measuredAt = measuredAt
    }
}
