import Foundation
import HeraldCore
import HeraldHTTP
import HeraldModules
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging

extension BillingService {
    static let maxTrialExtensionDays = 30

    static func emailContext(_ organizationId: UUID) -> String { "billing.email:\(organizationId.lowercased)" }

    func addBillingRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let site = router.group("sites/:siteId")
        site.get("subscription", use: getSubscription)
        site.post("subscription", use: changeSubscription)
        site.get("usage", use: getUsage)
        site.get("invoices", use: listInvoices)
        site.post("subscription/trial-extensions", use: requestTrialExtension)
        site.get("subscription/trial-extensions", use: listTrialExtensions)
        router.get("billing/plans", use: listPlans)
        router.post("billing/stripe/webhook", use: receiveStripeWebhook)
        router.get("operator/trial-extensions", use: operatorListTrialExtensions)
        router.post("operator/trial-extensions/:extensionId/approve", use: operatorApproveTrialExtension)
        router.post("operator/trial-extensions/:extensionId/refuse", use: operatorRefuseTrialExtension)
    }

    @Sendable func listPlans(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<PlanBody>> {
        JSONResponse(Page(items: policy.catalog.plans.map { PlanBody($0, currency: policy.catalog.currency) }))
    }

    @Sendable func getSubscription(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SubscriptionBody> {
        let grant = try await access.site(from: context, .billingRead)
        let settled = try await database.transaction(grant.scope) { tx in try await settle(grant.organizationId, in: tx) }
        return JSONResponse(
            SubscriptionBody(settled.account, usage: settled.usage, siteId: grant.siteId, policy: policy, stripeEnabled: stripe != nil)
        )
    }

    @Sendable func getUsage(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<UsageBody> {
        let grant = try await access.site(from: context, .billingRead)
        let body = try await database.transaction(grant.scope) { tx -> UsageBody in
            let settled = try await settle(grant.organizationId, in: tx)
            let account = settled.account
            let site = try await usage.siteUsage(siteId: grant.siteId, periodStart: account.periodStart, in: tx)
            let quotas =
                policy.catalog.plan(account.planId)?.quotas ?? Quotas(impressionsPerMonth: nil, activeCampaigns: nil, sites: nil, storageBytes: nil)
            let metrics = UsageMetric.allCases.map { metric in
                let value = settled.usage.value(metric)
                let quota = quotas.limit(metric)
                let share: Int64? =
                    switch metric {
                    case .impressions: site.impressions
                    case .activeCampaigns: site.activeCampaigns
                    default: nil
                    }
                return MetricBody(
                    metric: metric.rawValue, usage: value, site: share, quota: quota, percent: quota.map { BillingPolicy.percent(value, of: $0) }
                )
            }
            let alerts = try await usage.alerts(organizationId: grant.organizationId, periodStart: account.periodStart, in: tx).map {
                AlertBody(metric: $0.metric, threshold: $0.threshold, usage: $0.usage, quota: $0.quota, sentAt: $0.createdAt)
            }
            return UsageBody(
                organizationId: grant.organizationId, siteId: grant.siteId, planId: account.planId, periodStart: account.periodStart,
                periodEnd: account.periodEnd, metrics: metrics, alertThresholds: policy.alertThresholds, hardLimitPercent: policy.hardLimitPercent,
                alerts: alerts, delivery: DeliveryBody(paused: account.deliveryPaused, reason: account.pauseReason)
            )
        }
        return JSONResponse(body)
    }

    @Sendable func listInvoices(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<InvoiceBody>> {
        let grant = try await access.site(from: context, .billingRead)
        let limit = try request.limit(default: 20, max: 100)
        var before: Date?
        if let cursor = request.uri.queryParameters.get("cursor") {
            guard let millis = Int64(cursor), millis > 0 else {
                throw HeraldError.validation(field: "cursor", "must be the nextCursor of a previous page")
            }
            before = Date(timeIntervalSince1970: Double(millis) / 1000)
        }
        // Stripe is the source of truth for invoices: refresh the mirror first (webhooks may be late or lost); when
        // Stripe cannot be reached, the mirror still answers.
        if let stripe, before == nil {
            let account = try await database.transaction(grant.scope) { tx in try await accounts.find(grant.organizationId, in: tx) }
            if let customer = account?.stripeCustomerId {
                do {
                    let fresh = try await StripeSync(client: stripe, catalog: policy.catalog).invoices(
                        customer: customer, organizationId: grant.organizationId)
                    try await database.transaction(grant.scope) { tx in
                        for invoice in fresh { try await invoices.upsert(invoice, in: tx) }
                    }
                } catch let error as StripeError {
                    logger.warning("billing: invoices not refreshed from Stripe", metadata: ["error": "\(error)"])
                }
            }
        }
        let records = try await database.transaction(grant.scope) { tx in
            try await invoices.list(organizationId: grant.organizationId, limit: limit + 1, before: before, in: tx)
        }
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last.map { String(Int64(($0.createdAt.timeIntervalSince1970 * 1000).rounded())) } : nil
        return JSONResponse(Page(items: page.map(InvoiceBody.init), nextCursor: next))
    }

    /// Changes the plan. An upgrade (or leaving a trial) applies at once, prorated; a downgrade waits for the period's
    /// end and is refused while usage exceeds the target plan's quotas.
    @Sendable func changeSubscription(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .billingManage)
        var reader = try await BodyReader(request: request, context: context)
        let planId = reader.string("plan")
        let intervalText = reader.string("interval")
        let email = reader.string("billingEmail").map(EmailAddress.normalize)
        let paymentMethod = reader.string("paymentMethod")
        if reader.isMissing("plan") { reader.validator.add("plan", "is required: one of \(policy.catalog.plans.map(\.id).joined(separator: ", "))") }
        let target = planId.flatMap(policy.catalog.plan)
        if planId != nil, target == nil {
            reader.validator.add("plan", "must be one of \(policy.catalog.plans.map(\.id).joined(separator: ", "))")
        }
        var interval: BillingInterval?
        if let intervalText {
            interval = BillingInterval(rawValue: intervalText)
            if interval == nil { reader.validator.add("interval", "must be month or year") }
        }
        if let email, !EmailAddress.isPlausible(email) { reader.validator.add("billingEmail", "must be an email address like billing@example.com") }
        if let paymentMethod,
            !(paymentMethod.hasPrefix("pm_") && paymentMethod.count <= 255
                && paymentMethod.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }))
        {
            reader.validator.add("paymentMethod", "must be a Stripe payment method id (pm_…)")
        }
        try reader.validator.check()
        guard let target else { throw HeraldError.validation(field: "plan", "is required") }
        let meta = RequestMeta(request: request, context: context)
        let now = options.now()

        // Decide in one transaction what the change is; call Stripe outside it.
        let decision: (account: Account, effective: String, proration: Int64) = try await database.transaction(grant.scope) { tx in
            let settled = try await settle(grant.organizationId, in: tx)
            var account = settled.account
            let targetInterval = interval ?? account.interval
            guard let current = policy.catalog.plan(account.planId) else { throw HeraldError.conflict("The current plan is no longer offered.") }
            if let email {
                account.billingEmail = try cipher.encrypt(email, context: Self.emailContext(grant.organizationId))
                try await accounts.update(account, in: tx)
            }
            let sameAsNow = current.id == target.id && account.interval == targetInterval
            if sameAsNow, account.status != .trialing {
                if account.pendingPlanId != nil {
                    // Choosing the current plan again cancels a downgrade that was waiting.
                    account.pendingPlanId = nil
                    account.pendingInterval = nil
                    account.updatedAt = now
                    try await accounts.update(account, in: tx)
                    try await publishChange(from: settled.account, to: account, in: tx)
                }
                return (account, "now", 0)
            }
            let upgrade = account.status == .trialing || policy.isUpgrade(from: current, account.interval, to: target, targetInterval)
            if !upgrade {
                let excess = policy.excess(of: settled.usage, for: target)
                if !excess.isEmpty {
                    throw HeraldError(
                        status: 409, slug: "usage-exceeds-plan", title: "Usage exceeds the plan's quotas",
                        detail: "The \(target.name) plan allows less than this organization uses now: "
                            + excess.map { "\($0.metric.rawValue) \($0.usage) (quota \($0.quota))" }.joined(separator: ", ")
                            + ". Reduce usage first (pause notifications, delete sites) or choose a larger plan.",
                        errors: excess.map {
                            FieldError(field: "plan", message: "\($0.metric.rawValue): using \($0.usage), \(target.id) allows \($0.quota)")
                        }
                    )
                }
                account.pendingPlanId = target.id
                account.pendingInterval = targetInterval
                account.updatedAt = now
                try await accounts.update(account, in: tx)
                try await publishChange(from: settled.account, to: account, in: tx)
                try await AuditTrail.record(
                    "subscription.downgrade_scheduled", target: "subscription", grant.organizationId,
                    details: ["plan": target.id, "interval": targetInterval.rawValue, "from": current.id], by: grant, meta: meta, in: tx
                )
                return (account, "period_end", 0)
            }
            let proration =
                account.status == .trialing
                ? 0 : policy.proration(from: current, account.interval, to: target, targetInterval, account: account, at: now)
            return (account, "now", proration)
        }
        var account = decision.account
        guard decision.effective == "now",
            account.planId != target.id || account.interval != (interval ?? account.interval) || account.status == .trialing
        else {
            return try await planChangeResponse(grant, effective: decision.effective, proration: 0, request: request, context: context)
        }
        let targetInterval = interval ?? account.interval

        // An upgrade: in Stripe first (when configured), then here.
        var state: StripeSync.SubscriptionState?
        if let stripe {
            let sync = StripeSync(client: stripe, catalog: policy.catalog)
            do {
                let stripePlan = try await sync.ensurePlan(target, targetInterval)
                let contact = try account.billingEmail.map { try cipher.decrypt($0, context: Self.emailContext(grant.organizationId)) }
                let customer = try await sync.ensureCustomer(account, email: contact)
                if account.stripeCustomerId == nil {
                    account.stripeCustomerId = customer
                    try await database.transaction(grant.scope) { tx in
                        try await accounts.routeCustomer(customer, to: grant.organizationId, in: tx)
                        if var stored = try await accounts.findForUpdate(grant.organizationId, dialect: database.dialect, in: tx) {
                            stored.stripeCustomerId = customer
                            try await accounts.update(stored, in: tx)
                        }
                    }
                }
                if let email, account.stripeCustomerId != nil { try await sync.updateEmail(email, customer: customer) }
                if let paymentMethod { try await sync.attachPaymentMethod(paymentMethod, customer: customer) }
                let changeKey = String(Int64(account.updatedAt.timeIntervalSince1970 * 1000))
                if let subscription = account.stripeSubscriptionId, let item = account.stripeItemId {
                    state = try await sync.changePlan(subscription: subscription, item: item, stripePlan: stripePlan, changeKey: changeKey)
                } else {
                    state = try await sync.createSubscription(
                        customer: customer, stripePlan: stripePlan, organizationId: grant.organizationId, changeKey: changeKey
                    )
                }
            } catch let error as StripeError {
                logger.warning("billing: Stripe refused a plan change", metadata: ["error": "\(error)"])
                throw error.problem
            }
            if let state, state.status == "incomplete" || state.status == "incomplete_expired" {
                throw HeraldError(
                    status: 402, slug: "payment-incomplete", title: "Payment incomplete",
                    detail:
                        "Stripe could not collect the first payment (subscription \(state.id) is \(state.status)); update the payment method and try again."
                )
            }
        }

        let applied = state
        try await database.transaction(grant.scope) { tx in
            let settled = try await settle(grant.organizationId, in: tx) { account in
                let wasTrial = account.status == .trialing
                account.planId = target.id
                account.interval = targetInterval
                account.pendingPlanId = nil
                account.pendingInterval = nil
                if wasTrial || account.interval != decision.account.interval {
                    // A paid period starts now when leaving a trial or changing the billing interval.
                    account.periodStart = now
                    account.periodEnd = BillingPolicy.periodEnd(from: now, interval: targetInterval)
                }
                account.status = .active
                account.trialEndsAt = nil
                if let applied {
                    // Stripe's answer is at least as new as any webhook snapshot sent before it (same second included):
                    // those arriving late must not undo the change.
                    account.stripeSyncedAt = max(account.stripeSyncedAt, Int64(now.timeIntervalSince1970) + 1)
                    account.stripeSubscriptionId = applied.id
                    account.stripeItemId = applied.itemId ?? account.stripeItemId
                    account.stripePlanId = applied.planId ?? StripeSync.stripePlanId(target.id, targetInterval)
                    if applied.status == "past_due" {
                        account.status = .pastDue
                        account.pastDueSince = account.pastDueSince ?? now
                    }
                    if let start = applied.periodStart, let end = applied.periodEnd, end > now {
                        account.periodStart = start
                        account.periodEnd = end
                    }
                }
            }
            try await AuditTrail.record(
                "subscription.upgraded", target: "subscription", grant.organizationId,
                details: [
                    "plan": target.id, "interval": targetInterval.rawValue, "from": decision.account.planId,
                    "status": settled.account.status.rawValue,
                ],
                by: grant, meta: meta, in: tx
            )
        }
        return try await planChangeResponse(grant, effective: "now", proration: decision.proration, request: request, context: context)
    }

    private func planChangeResponse(
        _ grant: SiteAccess, effective: String, proration: Int64, request: Request, context: HeraldRequestContext
    ) async throws -> Response {
        let settled = try await database.transaction(grant.scope) { tx in try await settle(grant.organizationId, in: tx) }
        let body = PlanChangeBody(
            subscription: SubscriptionBody(settled.account, usage: settled.usage, siteId: grant.siteId, policy: policy, stripeEnabled: stripe != nil),
            effective: effective, prorationAmount: proration, currency: policy.catalog.currency
        )
        return try JSONResponse(body).response(from: request, context: context)
    }

    // MARK: Trial extensions

    @Sendable func requestTrialExtension(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .billingManage)
        var reader = try await BodyReader(request: request, context: context)
        let days = reader.decode("days", as: Int.self)
        let reasonText = reader.string("reason")
        if reader.isMissing("days") { reader.validator.add("days", "is required: 1 to \(Self.maxTrialExtensionDays)") }
        if let days, !(1...Self.maxTrialExtensionDays).contains(days) {
            reader.validator.add("days", "must be from 1 to \(Self.maxTrialExtensionDays)")
        }
        let reason = reader.validator.requireText(reasonText, field: "reason", maxLength: 1_000)
        try reader.validator.check()
        let now = options.now()
        let record = TrialExtensionRecord(
            id: .v7(at: now), organizationId: grant.organizationId, siteId: grant.siteId, requestedBy: grant.userId, days: days ?? 0, reason: reason,
            status: "pending", decidedBy: nil, decisionNote: nil, createdAt: now, decidedAt: nil
        )
        try await database.transaction(grant.scope) { tx in
            let account = try await settle(grant.organizationId, in: tx).account
            guard account.status == .trialing else {
                throw HeraldError.conflict(
                    "Only a subscription on trial can ask for a longer trial (this one is \(account.status.rawValue)).", slug: "not-trialing")
            }
            guard try await extensions.pending(organizationId: grant.organizationId, in: tx) == nil else {
                throw HeraldError.conflict("A trial extension request is already waiting for an operator's decision.", slug: "extension-pending")
            }
            try await extensions.insert(record, in: tx)
            try await AuditTrail.record(
                "trial_extension.requested", target: "trial_extension", record.id, details: ["days": String(record.days)], by: grant,
                meta: RequestMeta(request: request, context: context), in: tx
            )
        }
        return try JSONResponse(TrialExtensionBody(record), status: .accepted).response(from: request, context: context)
    }

    @Sendable func listTrialExtensions(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<TrialExtensionBody>> {
        let grant = try await access.site(from: context, .billingRead)
        let records = try await database.transaction(grant.scope) { tx in try await extensions.list(organizationId: grant.organizationId, in: tx) }
        return JSONResponse(Page(items: records.map(TrialExtensionBody.init)))
    }

    /// The operator's bearer token (HERALD_OPERATOR_TOKEN), compared in constant time. Without one configured the
    /// operator routes do not exist (404).
    func requireOperator(_ request: Request) throws -> String {
        guard let expected = options.operatorToken, !expected.isEmpty else { throw HeraldError.notFound("Page") }
        guard SecretToken.bearerMatches(request.headers[.authorization], expected: expected) else {
            throw HeraldError.unauthorized("The operator token (HERALD_OPERATOR_TOKEN) is required: 'Authorization: Bearer <token>'.")
        }
        return "operator"
    }

    @Sendable func operatorListTrialExtensions(
        _ request: Request, context: HeraldRequestContext
    ) async throws -> JSONResponse<Page<TrialExtensionBody>> {
        _ = try requireOperator(request)
        let status = request.uri.queryParameters.get("status").map { String($0) } ?? "pending"
        guard ["pending", "approved", "refused"].contains(status) else {
            throw HeraldError.validation(field: "status", "must be pending, approved or refused")
        }
        let limit = try request.limit(default: 50, max: 200)
        let records = try await database.transaction(.system) { tx in try await extensions.list(status: status, limit: limit, in: tx) }
        return JSONResponse(Page(items: records.map(TrialExtensionBody.init)))
    }

    @Sendable func operatorApproveTrialExtension(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TrialExtensionBody> {
        try await decideTrialExtension(request, context: context, approve: true)
    }

    @Sendable func operatorRefuseTrialExtension(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<TrialExtensionBody> {
        try await decideTrialExtension(request, context: context, approve: false)
    }

    private func decideTrialExtension(
        _ request: Request, context: HeraldRequestContext, approve: Bool
    ) async throws -> JSONResponse<TrialExtensionBody> {
        let operatorName = try requireOperator(request)
        let id = try context.uuidParameter("extensionId", resource: "Trial extension")
        var note: String?
        if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
            var reader = try await BodyReader(request: request, context: context)
            note = reader.validator.optionalText(reader.string("note"), field: "note", maxLength: 1_000)
            try reader.validator.check()
        }
        let now = options.now()
        // Requests are found across organizations first (system scope), then decided in the organization's scope.
        guard let found = try await database.transaction(.system, { tx in try await extensions.find(id, in: tx) }) else {
            throw HeraldError.notFound("Trial extension")
        }
        let decided = try await database.transaction(.organization(found.organizationId)) { tx -> TrialExtensionRecord in
            guard try await extensions.decide(id, status: approve ? "approved" : "refused", by: operatorName, note: note, at: now, in: tx) else {
                throw HeraldError.conflict("This request was already \(found.status).", slug: "already-decided")
            }
            if approve {
                try await settle(found.organizationId, in: tx) { account in
                    guard account.status == .trialing, let end = account.trialEndsAt else { return }
                    account.trialEndsAt = end.addingTimeInterval(Double(found.days) * 86_400)
                }
            }
            try await AuditTrail.record(
                approve ? "trial_extension.approved" : "trial_extension.refused", target: "trial_extension", id.lowercased,
                organizationId: found.organizationId, siteId: found.siteId, actorUserId: nil,
                details: ["days": String(found.days), "via": "operator"], meta: RequestMeta(request: request, context: context), in: tx
            )
            return try await extensions.find(id, in: tx) ?? found
        }
        return JSONResponse(TrialExtensionBody(decided))
    }
}
