import Foundation
import HeraldCore
import HeraldSecurity

/// A plan as the API shows it.
struct PlanBody: Codable, Sendable, Equatable {
    var id: String
    var name: String
    var monthlyPrice: Int64
    var yearlyPrice: Int64
    var currency: String
    var quotas: QuotasBody

    init(_ plan: Plan, currency: String) {
        id = plan.id
        name = plan.name
        monthlyPrice = plan.monthlyPrice
        yearlyPrice = plan.yearlyPrice
        self.currency = currency
        quotas = QuotasBody(plan.quotas)
    }
}

/// Quotas with explicit nulls for unlimited.
struct QuotasBody: Codable, Sendable, Equatable {
    @Nullable var impressionsPerMonth: Int64?
    @Nullable var activeCampaigns: Int64?
    @Nullable var sites: Int64?
    @Nullable var storageBytes: Int64?

    init(_ quotas: Quotas) {
        impressionsPerMonth = quotas.impressionsPerMonth
        activeCampaigns = quotas.activeCampaigns
        sites = quotas.sites
        storageBytes = quotas.storageBytes
    }
}

struct UsageValuesBody: Encodable, Sendable {
    var impressions: Int64
    var activeCampaigns: Int64
    var sites: Int64
    var storageBytes: Int64

    init(_ usage: Usage) {
        impressions = usage.impressions
        activeCampaigns = usage.activeCampaigns
        sites = usage.sites
        storageBytes = usage.storageBytes
    }
}

struct DeliveryBody: Encodable, Sendable {
    var paused: Bool
    /// `quota` (impressions at the hard limit) or `payment` (unpaid past the grace period).
    @Nullable var reason: String?
}

/// `GET /sites/{siteId}/subscription`: the site's organization's subscription.
struct SubscriptionBody: Encodable, Sendable {
    var organizationId: UUID
    var siteId: UUID
    var plan: PlanBody
    var interval: String
    var status: String
    @Nullable var trialEndsAt: Date?
    var currentPeriodStart: Date
    var currentPeriodEnd: Date
    /// A downgrade that takes effect at the period's end.
    @Nullable var pendingPlan: PlanBody?
    @Nullable var pendingInterval: String?
    @Nullable var pastDueSince: Date?
    /// When delivery will be restricted if the invoice stays unpaid.
    @Nullable var graceEndsAt: Date?
    var delivery: DeliveryBody
    var quotas: QuotasBody
    /// The organization's usage in the current period.
    var usage: UsageValuesBody
    /// `stripe` when Stripe bills the organization, `none` for self-hosted use (metered and enforced, not billed).
    var billing: String
    @Nullable var stripeCustomerId: String?
    @Nullable var stripeSubscriptionId: String?

    init(_ account: Account, usage: Usage, siteId: UUID, policy: BillingPolicy, stripeEnabled: Bool) {
        let catalog = policy.catalog
        let plan = catalog.plan(account.planId) ?? catalog.plan(catalog.fallbackPlanId) ?? catalog.plans[0]
        organizationId = account.organizationId
        self.siteId = siteId
        self.plan = PlanBody(plan, currency: catalog.currency)
        interval = account.interval.rawValue
        status = account.status.rawValue
        trialEndsAt = account.status == .trialing ? account.trialEndsAt : nil
        currentPeriodStart = account.periodStart
        currentPeriodEnd = account.periodEnd
        pendingPlan = account.pendingPlanId.flatMap(catalog.plan).map { PlanBody($0, currency: catalog.currency) }
        pendingInterval = account.pendingPlanId == nil ? nil : (account.pendingInterval ?? account.interval).rawValue
        pastDueSince = account.pastDueSince
        graceEndsAt = account.status == .pastDue ? account.pastDueSince?.addingTimeInterval(policy.gracePeriod.seconds) : nil
        delivery = DeliveryBody(paused: account.deliveryPaused, reason: account.pauseReason)
        quotas = QuotasBody(plan.quotas)
        self.usage = UsageValuesBody(usage)
        billing = stripeEnabled ? "stripe" : "none"
        stripeCustomerId = account.stripeCustomerId
        stripeSubscriptionId = account.stripeSubscriptionId
    }
}

/// The answer to a plan change: the subscription now, and what the change did.
struct PlanChangeBody: Encodable, Sendable {
    var subscription: SubscriptionBody
    /// `now` (an upgrade, or leaving a trial) or `period_end` (a downgrade).
    var effective: String
    /// The prorated charge (or credit, negative) of an upgrade for the rest of the period, in minor units.
    var prorationAmount: Int64
    var currency: String
}

/// One metric of `GET /sites/{siteId}/usage`.
struct MetricBody: Encodable, Sendable {
    var metric: String
    /// The organization's usage in the current period (sites and campaigns: now).
    var usage: Int64
    /// This site's share, where it has one (impressions, active campaigns).
    @Nullable var site: Int64?
    @Nullable var quota: Int64?
    /// Usage as a whole percent of the quota; null when unlimited.
    @Nullable var percent: Int?
}

struct AlertBody: Encodable, Sendable {
    var metric: String
    var threshold: Int
    var usage: Int64
    var quota: Int64
    var sentAt: Date
}

struct UsageBody: Encodable, Sendable {
    var organizationId: UUID
    var siteId: UUID
    var planId: String
    var periodStart: Date
    var periodEnd: Date
    var metrics: [MetricBody]
    /// Percents at which the organization is told, once each per period.
    var alertThresholds: [Int]
    /// The percent of the impressions quota at which popups pause.
    var hardLimitPercent: Int
    var alerts: [AlertBody]
    var delivery: DeliveryBody
}

struct InvoiceBody: Encodable, Sendable {
    var id: String
    @Nullable var number: String?
    var status: String
    var amountDue: Int64
    var amountPaid: Int64
    var currency: String
    @Nullable var periodStart: Date?
    @Nullable var periodEnd: Date?
    @Nullable var hostedUrl: String?
    var createdAt: Date

    init(_ record: InvoiceRecord) {
        id = record.id
        number = record.number
        status = record.status
        amountDue = record.amountDue
        amountPaid = record.amountPaid
        currency = record.currency
        periodStart = record.periodStart
        periodEnd = record.periodEnd
        hostedUrl = record.hostedURL
        createdAt = record.createdAt
    }
}

struct TrialExtensionBody: Encodable, Sendable {
    var id: UUID
    var organizationId: UUID
    var siteId: UUID
    var days: Int
    var reason: String
    var status: String
    @Nullable var decidedBy: String?
    @Nullable var decisionNote: String?
    var createdAt: Date
    @Nullable var decidedAt: Date?

    init(_ record: TrialExtensionRecord) {
        id = record.id
        organizationId = record.organizationId
        siteId = record.siteId
        days = record.days
        reason = record.reason
        status = record.status
        decidedBy = record.decidedBy
        decisionNote = record.decisionNote
        createdAt = record.createdAt
        decidedAt = record.decidedAt
    }
}
