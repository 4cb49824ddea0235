import AsyncHTTPClient
import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldMail
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging
import ServiceLifecycle

/// The Billing service: one subscription per organization (the seed's per-site paths show the site's organization's
/// subscription), usage metered from events on the bus, quotas with alerts and a hard limit, trials, and Stripe kept
/// in step when configured.
public struct BillingService: HeraldModule {
    public static let name = "billing"
    public static var migrations: MigrationSet { BillingMigrations.set }

    public struct Options: Sendable {
        public var policy = BillingPolicy()
        public var stripe: StripeConfiguration?
        /// Operator token for the trial-extension queue (`/operator/...`); those routes answer 404 without one.
        public var operatorToken: String?
        public var mail: any MailTransport = DisabledMailTransport()
        public var mailFrom: MailAddress?
        /// How often periods, trials and grace periods are checked.
        public var tickInterval: Duration = .seconds(60)
        /// The time, replaceable so tests can live through a month in seconds.
        public var now: @Sendable () -> Date = { Date() }

        public init() {}
    }

    let database: any Database
    let bus: any EventBus
    let access: AccessControl
    let cipher: FieldCipher
    let options: Options
    let logger: Logger
    let accounts = AccountStore()
    let usage = UsageStore()
    let invoices = InvoiceStore()
    let extensions = TrialExtensionStore()
    let stripe: StripeClient?
    let ticker: BillingTicker

    var policy: BillingPolicy { options.policy }

    public init(database: any Database, bus: any EventBus, access: AccessControl, cipher: FieldCipher, options: Options, logger: Logger) {
        self.database = database
        self.bus = bus
        self.access = access
        self.cipher = cipher
        self.options = options
        self.logger = logger
        self.stripe = options.stripe.map { StripeClient(configuration: $0, http: .shared, logger: logger) }
        self.ticker = BillingTicker(interval: options.tickInterval, logger: logger)
    }

    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        addBillingRoutes(to: router)
    }

    public var consumers: [any EventConsumer] {
        [
            AccountConsumer(service: self),
            ImpressionMeter(service: self),
            AlertMailer(service: self),
        ]
    }

    public var services: [any Service] { [ticker.service(self)] }

    /// What a settlement changed, for events published after it.
    struct Settlement: Sendable {
        var account: Account
        var usage: Usage
    }

    /// The account of an organization, created on trial when it has none (organizations that existed before
    /// Billing, or whose `organization.created` event is still on its way).
    func ensureAccount(_ organizationId: UUID, in tx: any SQLExecutor) async throws -> Account {
        if let account = try await accounts.findForUpdate(organizationId, dialect: database.dialect, in: tx) { return account }
        let account = policy.newAccount(organizationId: organizationId, at: options.now())
        try await accounts.insertIfAbsent(account, in: tx)
        let stored = try await accounts.findForUpdate(organizationId, dialect: database.dialect, in: tx) ?? account
        try await publishChange(from: nil, to: stored, in: tx)
        return stored
    }

    /// Brings an organization's account up to now inside `tx` (which must be in the organization's scope): periods,
    /// trial, grace, alerts for every threshold reached, and delivery paused or resumed. Every change is published.
    @discardableResult
    func settle(_ organizationId: UUID, in tx: any SQLExecutor, adjust: ((inout Account) throws -> Void)? = nil) async throws -> Settlement {
        let before = try await ensureAccount(organizationId, in: tx)
        var account = before
        let now = options.now()
        _ = policy.advance(&account, to: now)
        try adjust?(&account)
        let current = try await usage.usage(organizationId: organizationId, periodStart: account.periodStart, in: tx)
        try await announceThresholds(account, current, at: now, in: tx)
        let reason = policy.pause(for: account, usage: current)
        account.deliveryPaused = reason != nil
        account.pauseReason = reason
        if account != before {
            account.updatedAt = now
            try await accounts.update(account, in: tx)
            try await publishChange(from: before, to: account, in: tx)
        }
        return Settlement(account: account, usage: current)
    }

    /// The account as it stands now: read as stored while its period, trial and grace are current, settled first
    /// when one of them ran out. Metering needs the current period before it counts, without a full settlement.
    func currentAccount(_ organizationId: UUID, in tx: any SQLExecutor) async throws -> Account {
        let stored = try await ensureAccount(organizationId, in: tx)
        var advanced = stored
        _ = policy.advance(&advanced, to: options.now())
        return advanced == stored ? stored : try await settle(organizationId, in: tx).account
    }

    /// Records and publishes each threshold reached this period that was not announced yet.
    private func announceThresholds(_ account: Account, _ current: Usage, at now: Date, in tx: any SQLExecutor) async throws {
        guard let plan = policy.catalog.plan(account.planId) else { return }
        var reached: [(UsageMetric, Int64, Int)] = []
        for metric in UsageMetric.allCases {
            guard let quota = plan.quotas.limit(metric) else { continue }
            for threshold in policy.thresholdsReached(usage: current.value(metric), quota: quota) { reached.append((metric, quota, threshold)) }
        }
        guard !reached.isEmpty else { return }
        // One read of what was announced, so a settled account past its thresholds costs no further writes.
        let announced = try await usage.announced(organizationId: account.organizationId, periodStart: account.periodStart, in: tx)
        for (metric, quota, threshold) in reached where !announced.contains(AlertKey(metric: metric.rawValue, threshold: threshold)) {
            let value = current.value(metric)
            let fresh = try await usage.recordAlert(
                organizationId: account.organizationId, periodStart: account.periodStart, metric: metric, threshold: threshold, usage: value,
                quota: quota, at: now, in: tx
            )
            guard fresh else { continue }
            logger.info(
                "usage threshold reached",
                metadata: ["organization": "\(account.organizationId)", "metric": "\(metric.rawValue)", "threshold": "\(threshold)"]
            )
            try await Outbox.append(
                UsageThresholdReached(
                    organizationId: account.organizationId, metric: metric.rawValue, threshold: threshold, usage: value, quota: quota,
                    planId: account.planId, periodStart: account.periodStart, periodEnd: account.periodEnd
                ),
                organizationId: account.organizationId, in: tx
            )
        }
    }

    /// Publishes `subscription.changed` when the plan, status or period moved, and `billing.delivery_changed` when
    /// delivery paused or resumed.
    func publishChange(from before: Account?, to after: Account, in tx: any SQLExecutor) async throws {
        let subscriptionMoved =
            before == nil || before?.planId != after.planId || before?.status != after.status || before?.interval != after.interval
            || before?.periodStart != after.periodStart || before?.pendingPlanId != after.pendingPlanId
        if subscriptionMoved {
            try await Outbox.append(
                SubscriptionChanged(
                    organizationId: after.organizationId, planId: after.planId, interval: after.interval.rawValue, status: after.status.rawValue,
                    previousPlanId: before?.planId, previousStatus: before?.status.rawValue, currentPeriodStart: after.periodStart,
                    currentPeriodEnd: after.periodEnd, pendingPlanId: after.pendingPlanId
                ),
                organizationId: after.organizationId, in: tx
            )
        }
        let limitsMoved =
            before.map { policy.catalog.plan($0.planId)?.quotas.activeCampaigns } != policy.catalog.plan(after.planId)?.quotas.activeCampaigns
        if before == nil || before?.deliveryPaused != after.deliveryPaused || before?.pauseReason != after.pauseReason || limitsMoved {
            try await Outbox.append(
                DeliveryStatusChanged(
                    organizationId: after.organizationId, paused: after.deliveryPaused, reason: after.pauseReason, decidedAt: options.now(),
                    maxActiveCampaigns: policy.catalog.plan(after.planId)?.quotas.activeCampaigns
                ),
                organizationId: after.organizationId, in: tx
            )
            if before?.deliveryPaused != after.deliveryPaused {
                logger.notice(
                    after.deliveryPaused ? "delivery paused" : "delivery resumed",
                    metadata: ["organization": "\(after.organizationId)", "reason": "\(after.pauseReason ?? "-")"]
                )
            }
        }
    }

    /// Settles every account whose period, trial or grace period ran out (the ticker's work).
    func settleDue() async throws -> Int {
        let now = options.now()
        let due = try await database.transaction(.system) { tx in
            try await accounts.due(at: now, graceStartedBefore: now.addingTimeInterval(-policy.gracePeriod.seconds), limit: 500, in: tx)
        }
        for organizationId in due {
            try await database.transaction(.organization(organizationId)) { tx in
                _ = try await settle(organizationId, in: tx)
            }
        }
        return due.count
    }
}

/// Checks periods, trials and grace periods on a timer (and when woken).
final class BillingTicker: Sendable {
    let interval: Duration
    let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init(interval: Duration, logger: Logger) {
        self.interval = interval
        self.logger = logger
        (wakeups, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func wake() { continuation.yield() }

    func service(_ billing: BillingService) -> some Service {
        TickerService(ticker: self, billing: billing)
    }

    struct TickerService: Service {
        let ticker: BillingTicker
        let billing: BillingService

        func run() async throws {
            let interval = ticker.interval
            let wakeups = ticker.wakeups
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        ticker.wake()
                    }
                }
                group.addTask {
                    for await _ in wakeups.cancelOnGracefulShutdown() {
                        do {
                            _ = try await billing.settleDue()
                        } catch {
                            ticker.logger.error("billing: settling due accounts failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }
}
