import Foundation
import HeraldCore
import HeraldSecurity

/// The rules of billing, pure functions of an account, the catalogue and the time: periods, trials, plan changes,
/// thresholds, the hard limit and grace periods. The service applies them in transactions; tests call them directly.
public struct BillingPolicy: Sendable {
    public var catalog: PlanCatalog
    /// Percents of a quota at which the organization is told, each once per period.
    public var alertThresholds: [Int]
    /// The percent of the impressions quota at which delivery pauses.
    public var hardLimitPercent: Int
    /// How long a failed payment may stay unpaid before delivery is restricted.
    public var gracePeriod: Duration

    public init(
        catalog: PlanCatalog = .standard, alertThresholds: [Int] = [80, 100, 120], hardLimitPercent: Int = 120,
        gracePeriod: Duration = .seconds(7 * 86_400)
    ) {
        self.catalog = catalog
        self.alertThresholds = alertThresholds.sorted()
        self.hardLimitPercent = hardLimitPercent
        self.gracePeriod = gracePeriod
    }

    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .gmt
        return calendar
    }()

    /// The end of a period that starts at `start`: a month (or year) later, on the same day of the month where there
    /// is one (a period from 31 January ends on the last day of February).
    static func periodEnd(from start: Date, interval: BillingInterval) -> Date {
        let component: Calendar.Component = interval == .month ? .month : .year
        return utc.date(byAdding: component, value: 1, to: start) ?? start.addingTimeInterval(interval == .month ? 30 * 86_400 : 365 * 86_400)
    }

    /// The start of the period that ends at `start` (for impressions that arrive after a period rolled over).
    static func previousPeriodStart(before start: Date, interval: BillingInterval) -> Date {
        let component: Calendar.Component = interval == .month ? .month : .year
        return utc.date(byAdding: component, value: -1, to: start) ?? start
    }

    /// A new organization's account: on trial of the trial plan, its first period starting now.
    func newAccount(organizationId: UUID, at now: Date) -> Account {
        let trial = catalog.trialDays > 0
        let planId = trial ? catalog.trialPlanId : catalog.fallbackPlanId
        return Account(
            organizationId: organizationId, planId: planId, interval: .month, status: trial ? .trialing : .active,
            trialEndsAt: trial ? now.addingTimeInterval(Double(catalog.trialDays) * 86_400) : nil, periodStart: now,
            periodEnd: Self.periodEnd(from: now, interval: .month), pendingPlanId: nil, pendingInterval: nil, pastDueSince: nil,
            deliveryPaused: false, pauseReason: nil, billingEmail: nil, stripeCustomerId: nil, stripeSubscriptionId: nil, stripeItemId: nil,
            stripePlanId: nil,
            stripeSyncedAt: 0, createdAt: now, updatedAt: now
        )
    }

    /// Brings an account up to `now`: ends a trial, rolls periods forward (applying a downgrade that waited for the
    /// period's end), and restricts delivery when a payment stayed unpaid past the grace period. Returns whether the
    /// period changed (usage restarts then).
    func advance(_ account: inout Account, to now: Date) -> Bool {
        var periodChanged = false
        if account.status == .trialing, let trialEnd = account.trialEndsAt, trialEnd <= now {
            // A trial that ends without a paid subscription falls back to the fallback plan, in a new period.
            account.status = .active
            account.planId = account.stripeSubscriptionId == nil ? catalog.fallbackPlanId : account.planId
            account.interval = .month
            account.periodStart = trialEnd
            account.periodEnd = Self.periodEnd(from: trialEnd, interval: .month)
            periodChanged = true
        }
        var guardCount = 0
        while account.periodEnd <= now, guardCount < 1_000 {
            guardCount += 1
            account.periodStart = account.periodEnd
            if let pending = account.pendingPlanId {
                account.planId = pending
                account.interval = account.pendingInterval ?? account.interval
                account.pendingPlanId = nil
                account.pendingInterval = nil
            }
            account.periodEnd = Self.periodEnd(from: account.periodStart, interval: account.interval)
            periodChanged = true
        }
        if account.status == .pastDue, let since = account.pastDueSince, since.addingTimeInterval(gracePeriod.seconds) <= now {
            account.status = .restricted
        }
        if account.status == .canceled, account.planId != catalog.fallbackPlanId {
            account.planId = catalog.fallbackPlanId
        }
        return periodChanged
    }

    /// Whether delivery must be paused, and why: a payment past its grace period, or impressions at the hard limit.
    func pause(for account: Account, usage: Usage) -> String? {
        if account.status == .restricted { return "payment" }
        if let quota = catalog.plan(account.planId)?.quotas.impressionsPerMonth, Self.percent(usage.impressions, of: quota) >= hardLimitPercent {
            return "quota"
        }
        return nil
    }

    /// Usage as a whole percent of a quota (a zero quota is at 100 % with no usage and beyond with any).
    static func percent(_ usage: Int64, of quota: Int64) -> Int {
        if quota <= 0 { return usage > 0 ? Int.max : 100 }
        let value = (Double(usage) * 100 / Double(quota)).rounded(.down)
        return value >= Double(Int.max) ? Int.max : Int(value)
    }

    /// The thresholds a metric's usage has reached.
    func thresholdsReached(usage: Int64, quota: Int64?) -> [Int] {
        guard let quota else { return [] }
        let percent = Self.percent(usage, of: quota)
        return alertThresholds.filter { percent >= $0 }
    }

    /// What is over the target plan's quotas: a downgrade is refused while any is.
    func excess(of usage: Usage, for plan: Plan) -> [(metric: UsageMetric, usage: Int64, quota: Int64)] {
        UsageMetric.allCases.compactMap { metric in
            guard let quota = plan.quotas.limit(metric), usage.value(metric) > quota else { return nil }
            return (metric, usage.value(metric), quota)
        }
    }

    /// Whether moving to `target` costs more per month than `current`.
    func isUpgrade(from current: Plan, _ currentInterval: BillingInterval, to target: Plan, _ targetInterval: BillingInterval) -> Bool {
        let now = Double(current.price(currentInterval)) / (currentInterval == .month ? 1 : 12)
        let next = Double(target.price(targetInterval)) / (targetInterval == .month ? 1 : 12)
        if next != now { return next > now }
        return targetInterval == .year && currentInterval == .month
    }

    /// The prorated amount of an upgrade made at `now`: the new price minus the old one for the unused part of the
    /// period, in minor units (what Stripe's `create_prorations` charges on the next invoice).
    func proration(
        from current: Plan, _ currentInterval: BillingInterval, to target: Plan, _ targetInterval: BillingInterval, account: Account, at now: Date
    )
        -> Int64
    {
        let length = account.periodEnd.timeIntervalSince(account.periodStart)
        guard length > 0 else { return 0 }
        let remaining = max(0, min(1, account.periodEnd.timeIntervalSince(now) / length))
        let difference = Double(target.price(targetInterval) - current.price(currentInterval))
        return Int64((difference * remaining).rounded())
    }
}
