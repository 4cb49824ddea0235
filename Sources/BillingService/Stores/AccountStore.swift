import Foundation
import HeraldCore
import HeraldStorage

/// A subscription's state. `restricted`: a payment stayed unpaid past its grace period and delivery is paused.
enum SubscriptionStatus: String, Codable, Sendable {
    case trialing
    case active
    case pastDue = "past_due"
    case restricted
    case canceled
}

/// One organization's subscription, as Billing keeps it.
struct Account: Sendable, Equatable {
    var organizationId: UUID
    var planId: String
    var interval: BillingInterval
    var status: SubscriptionStatus
    var trialEndsAt: Date?
    var periodStart: Date
    var periodEnd: Date
    var pendingPlanId: String?
    var pendingInterval: BillingInterval?
    var pastDueSince: Date?
    var deliveryPaused: Bool
    var pauseReason: String?
    var billingEmail: [UInt8]?
    var stripeCustomerId: String?
    var stripeSubscriptionId: String?
    var stripeItemId: String?
    /// The Stripe plan the Stripe subscription is on; differs from the plan while a change waits to be pushed.
    var stripePlanId: String?
    /// The `created` time of the last Stripe subscription event applied: older ones arriving late are ignored.
    var stripeSyncedAt: Int64
    var createdAt: Date
    var updatedAt: Date
}

/// The subscriptions (`billing.accounts`) and the Stripe customer routes of webhooks.
struct AccountStore: Sendable {
    typealias T = BillingTables

    func find(_ organizationId: UUID, in tx: any SQLExecutor) async throws -> Account? {
        guard let row = try await tx.queryFirst("SELECT * FROM \(T.accounts) WHERE organization_id = \(organizationId)") else { return nil }
        return try Self.account(row)
    }

    /// The account, locked for the rest of the transaction on PostgreSQL (SQLite has one writer).
    func findForUpdate(_ organizationId: UUID, dialect: SQLDialect, in tx: any SQLExecutor) async throws -> Account? {
        let lock: SQL = dialect == .postgres ? " FOR UPDATE" : ""
        guard let row = try await tx.queryFirst("SELECT * FROM \(T.accounts) WHERE organization_id = \(organizationId)\(lock)") else {
            return nil
        }
        return try Self.account(row)
    }

    /// Inserts the account unless one exists (two first requests at once create one).
    func insertIfAbsent(_ account: Account, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.accounts) (organization_id, plan_id, interval, status, trial_ends_at, current_period_start, current_period_end,
                delivery_paused, stripe_synced_at, created_at, updated_at)
            VALUES (\(account.organizationId), \(account.planId), \(account.interval.rawValue), \(account.status.rawValue),
                \(account.trialEndsAt), \(account.periodStart), \(account.periodEnd), \(account.deliveryPaused), \(account.stripeSyncedAt),
                \(account.createdAt), \(account.updatedAt))
            ON CONFLICT (organization_id) DO NOTHING
            """
        )
    }

    func update(_ account: Account, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.accounts) SET plan_id = \(account.planId), interval = \(account.interval.rawValue), status = \(account.status.rawValue),
                trial_ends_at = \(account.trialEndsAt), current_period_start = \(account.periodStart), current_period_end = \(account.periodEnd),
                pending_plan_id = \(account.pendingPlanId), pending_interval = \(account.pendingInterval?.rawValue),
                past_due_since = \(account.pastDueSince), delivery_paused = \(account.deliveryPaused), pause_reason = \(account.pauseReason),
                billing_email = \(account.billingEmail), stripe_customer_id = \(account.stripeCustomerId),
                stripe_subscription_id = \(account.stripeSubscriptionId), stripe_item_id = \(account.stripeItemId), stripe_plan_id = \(account.stripePlanId),
                stripe_synced_at = \(account.stripeSyncedAt), updated_at = \(account.updatedAt)
            WHERE organization_id = \(account.organizationId)
            """
        )
    }

    /// Organizations whose period ended, trial ended or grace period may have run out by `now` (system scope).
    func due(at now: Date, graceStartedBefore: Date, limit: Int, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query(
            """
            SELECT organization_id FROM \(T.accounts)
            WHERE current_period_end <= \(now) OR (status = 'trialing' AND trial_ends_at <= \(now))
                OR (status = 'past_due' AND past_due_since <= \(graceStartedBefore))
            ORDER BY current_period_end LIMIT \(limit)
            """
        ).map { try $0.get("organization_id") }
    }

    /// Accounts whose Stripe subscription is not on the plan Herald holds (a downgrade applied at a period's end, or a
    /// push that failed): the ticker pushes them again.
    func outOfStep(limit: Int, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query(
            """
            SELECT organization_id FROM \(T.accounts)
            WHERE stripe_subscription_id IS NOT NULL AND status <> 'canceled'
                AND (stripe_plan_id IS NULL OR stripe_plan_id <> 'herald_' || plan_id || '_' || interval)
            LIMIT \(limit)
            """
        ).map { try $0.get("organization_id") }
    }

    func routeCustomer(_ customerId: String, to organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.customers) (stripe_customer_id, organization_id) VALUES (\(customerId), \(organizationId))
            ON CONFLICT (stripe_customer_id) DO NOTHING
            """
        )
    }

    /// The organization a Stripe customer belongs to (system scope: the webhook knows no tenant yet).
    func organization(ofCustomer customerId: String, in tx: any SQLExecutor) async throws -> UUID? {
        try await tx.queryFirst("SELECT organization_id FROM \(T.customers) WHERE stripe_customer_id = \(customerId)")?.get("organization_id")
    }

    static func account(_ row: SQLRow) throws -> Account {
        Account(
            organizationId: try row.get("organization_id"),
            planId: try row.get("plan_id"),
            interval: BillingInterval(rawValue: try row.get("interval")) ?? .month,
            status: SubscriptionStatus(rawValue: try row.get("status")) ?? .active,
            trialEndsAt: try row.get("trial_ends_at"),
            periodStart: try row.get("current_period_start"),
            periodEnd: try row.get("current_period_end"),
            pendingPlanId: try row.get("pending_plan_id"),
            pendingInterval: (try row.get("pending_interval", as: String?.self)).flatMap(BillingInterval.init(rawValue:)),
            pastDueSince: try row.get("past_due_since"),
            deliveryPaused: try row.get("delivery_paused"),
            pauseReason: try row.get("pause_reason"),
            billingEmail: try row.get("billing_email"),
            stripeCustomerId: try row.get("stripe_customer_id"),
            stripeSubscriptionId: try row.get("stripe_subscription_id"),
            stripeItemId: try row.get("stripe_item_id"),
            stripePlanId: try row.get("stripe_plan_id"),
            stripeSyncedAt: try row.get("stripe_synced_at"),
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }
}
