import Foundation
import HeraldCore
import HeraldHTTP

/// What Herald asks of Stripe: plans, customers, subscriptions and invoices. Each write carries an Idempotency-Key
/// named after the change it makes, so a retry after a timeout never creates or charges twice. Calls happen outside
/// database transactions; their results are applied in one afterwards.
struct StripeSync: Sendable {
    let client: StripeClient
    let catalog: PlanCatalog

    /// Herald's id for a plan and interval in Stripe (plans, not prices: both Stripe and localstripe accept them).
    static func stripePlanId(_ planId: String, _ interval: BillingInterval) -> String { "herald_\(planId)_\(interval.rawValue)" }

    /// Creates the Stripe plan for a catalogue plan unless it exists.
    func ensurePlan(_ plan: Plan, _ interval: BillingInterval) async throws -> String {
        let id = Self.stripePlanId(plan.id, interval)
        if try await client.get("/v1/plans/\(id)") != nil { return id }
        do {
            _ = try await client.post(
                "/v1/plans",
                form: [
                    ("id", id), ("amount", String(plan.price(interval))), ("currency", catalog.currency), ("interval", interval.rawValue),
                    ("product[name]", "Herald \(plan.name) (\(interval.rawValue)ly)"), ("metadata[herald_plan]", plan.id),
                ],
                idempotencyKey: "herald-plan-\(id)-\(plan.price(interval))"
            )
        } catch let error as StripeError where error.status == 409 {
            // Created by another instance in the meantime.
        }
        return id
    }

    /// The organization's Stripe customer, created once (the key makes a retried creation return the same one).
    func ensureCustomer(_ account: Account, email: String?) async throws -> String {
        if let id = account.stripeCustomerId { return id }
        var form: [(String, String)] = [("metadata[herald_organization_id]", account.organizationId.lowercased)]
        if let email { form.append(("email", email)) }
        let customer = try await client.post("/v1/customers", form: form, idempotencyKey: "herald-customer-\(account.organizationId.lowercased)")
        guard let id = customer["id"]?.stringValue else { throw StripeError(status: 502, type: "api_error", message: "a customer without an id") }
        return id
    }

    /// Sets the customer's billing email (Stripe sends receipts and invoices there).
    func updateEmail(_ email: String, customer: String) async throws {
        _ = try await client.post("/v1/customers/\(customer)", form: [("email", email)], idempotencyKey: "herald-email-\(customer)-\(email)")
    }

    /// Attaches a payment method (`pm_…`) and makes it the customer's default.
    func attachPaymentMethod(_ paymentMethod: String, customer: String) async throws {
        let attached = try await client.post(
            "/v1/payment_methods/\(paymentMethod)/attach", form: [("customer", customer)],
            idempotencyKey: "herald-attach-\(customer)-\(paymentMethod)"
        )
        let id = attached["id"]?.stringValue ?? paymentMethod
        _ = try await client.post(
            "/v1/customers/\(customer)", form: [("invoice_settings[default_payment_method]", id)],
            idempotencyKey: "herald-default-pm-\(customer)-\(id)"
        )
    }

    /// The state of a subscription as Stripe reports it.
    struct SubscriptionState: Sendable {
        var id: String
        var status: String
        var itemId: String?
        var planId: String?
        var periodStart: Date?
        var periodEnd: Date?
        var latestInvoice: String?
    }

    static func subscriptionState(_ object: JSONValue) -> SubscriptionState? {
        guard let id = object["id"]?.stringValue else { return nil }
        let item = object["items"]?["data"]?.arrayValue?.first
        return SubscriptionState(
            id: id, status: object["status"]?.stringValue ?? "incomplete", itemId: item?["id"]?.stringValue,
            planId: item?["plan"]?["id"]?.stringValue ?? object["plan"]?["id"]?.stringValue,
            periodStart: object["current_period_start"]?.int64Value.map { Date(timeIntervalSince1970: Double($0)) },
            periodEnd: object["current_period_end"]?.int64Value.map { Date(timeIntervalSince1970: Double($0)) },
            latestInvoice: object["latest_invoice"]?.stringValue ?? object["latest_invoice"]?["id"]?.stringValue
        )
    }

    func createSubscription(customer: String, stripePlan: String, organizationId: UUID, changeKey: String) async throws -> SubscriptionState {
        let object = try await client.post(
            "/v1/subscriptions",
            form: [("customer", customer), ("items[0][plan]", stripePlan), ("metadata[herald_organization_id]", organizationId.lowercased)],
            idempotencyKey: "herald-subscribe-\(organizationId.lowercased)-\(changeKey)"
        )
        guard let state = Self.subscriptionState(object) else {
            throw StripeError(status: 502, type: "api_error", message: "a subscription without an id")
        }
        return state
    }

    /// Moves the subscription's one item to another plan. Stripe prorates by default (`create_prorations`).
    func changePlan(subscription: String, item: String, stripePlan: String, changeKey: String) async throws -> SubscriptionState {
        let object = try await client.post(
            "/v1/subscriptions/\(subscription)", form: [("items[0][id]", item), ("items[0][plan]", stripePlan)],
            idempotencyKey: "herald-change-\(subscription)-\(stripePlan)-\(changeKey)"
        )
        guard let state = Self.subscriptionState(object) else {
            throw StripeError(status: 502, type: "api_error", message: "a subscription without an id")
        }
        return state
    }

    /// The customer's invoices, newest first as Stripe lists them.
    func invoices(customer: String, organizationId: UUID) async throws -> [InvoiceRecord] {
        guard let list = try await client.get("/v1/invoices", query: [("customer", customer), ("limit", "100")]) else { return [] }
        return (list["data"]?.arrayValue ?? []).compactMap { Self.invoice($0, organizationId: organizationId, eventCreated: 0) }
    }

    /// An invoice object as Herald keeps it. `number` and `hosted_invoice_url` are optional (not every server sends them).
    static func invoice(_ object: JSONValue, organizationId: UUID, eventCreated: Int64, failed: Bool = false) -> InvoiceRecord? {
        guard let id = object["id"]?.stringValue else { return nil }
        let created = Date(timeIntervalSince1970: Double(object["created"]?.int64Value ?? object["date"]?.int64Value ?? 0))
        var status = object["status"]?.stringValue ?? "open"
        if failed, status == "open" { status = "payment_failed" }
        return InvoiceRecord(
            id: id, organizationId: organizationId, number: object["number"]?.stringValue, status: status,
            amountDue: object["amount_due"]?.int64Value ?? 0, amountPaid: object["amount_paid"]?.int64Value ?? 0,
            currency: object["currency"]?.stringValue ?? "usd",
            periodStart: object["period_start"]?.int64Value.map { Date(timeIntervalSince1970: Double($0)) },
            periodEnd: object["period_end"]?.int64Value.map { Date(timeIntervalSince1970: Double($0)) },
            hostedURL: object["hosted_invoice_url"]?.stringValue, createdAt: created, updatedAt: Date(), stripeEventCreated: eventCreated
        )
    }
}

extension StripeError {
    /// The problem a site owner sees when Stripe refused or could not be reached.
    var problem: HeraldError {
        if isTransient { return .unavailable("Stripe could not be reached or failed (\(message)); nothing was changed, try again shortly.") }
        if status == 402 {
            return HeraldError(status: 402, slug: "payment-declined", title: "Payment declined", detail: "Stripe declined the payment: \(message)")
        }
        if message.localizedCaseInsensitiveContains("payment method") || message.localizedCaseInsensitiveContains("payment source") {
            return HeraldError(
                status: 402, slug: "payment-method-required", title: "Payment method required",
                detail: "The organization has no payment method in Stripe: send 'paymentMethod' (a pm_… id) with the plan change."
            )
        }
        return HeraldError(status: 502, slug: "stripe-refused", title: "Stripe refused the change", detail: "Stripe answered \(status): \(message)")
    }
}
