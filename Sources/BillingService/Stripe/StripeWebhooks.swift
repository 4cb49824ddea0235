import Crypto
import Foundation
import HTTPTypes
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldStorage
import Hummingbird
import Logging
import NIOCore

/// `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">[,v1=…]`, keyed with the endpoint's signing
/// secret as written; a signature older (or newer) than the tolerance is refused, so a captured request cannot be
/// replayed later.
enum StripeSignature {
    enum Failure: Error, Equatable, CustomStringConvertible {
        case missing
        case malformed
        case stale(seconds: Int)
        case noMatch

        var description: String {
            switch self {
            case .missing: "the Stripe-Signature header is missing"
            case .malformed: "the Stripe-Signature header has no t= timestamp or no v1= signature"
            case .stale(let seconds): "the signature's timestamp is \(seconds) s away from now (tolerance 300 s)"
            case .noMatch: "no v1 signature matches the payload and the signing secret"
            }
        }
    }

    static func verify(header: String?, body: [UInt8], secret: String, tolerance: TimeInterval, now: Date) throws(Failure) {
        guard let header, !header.isEmpty else { throw .missing }
        var timestamp: String?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let key = pair[0].trimmingCharacters(in: .whitespaces)
            if key == "t" { timestamp = String(pair[1]) } else if key == "v1" { signatures.append(String(pair[1])) }
        }
        guard let timestamp, let seconds = Int64(timestamp), !signatures.isEmpty else { throw .malformed }
        let skew = now.timeIntervalSince1970 - Double(seconds)
        guard abs(skew) <= tolerance else { throw .stale(seconds: Int(skew)) }
        var content = Data("\(timestamp).".utf8)
        content.append(contentsOf: body)
        let key = SymmetricKey(data: Data(secret.utf8))
        for signature in signatures {
            guard let mac = Self.hexBytes(signature) else { continue }
            if HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: content, using: key) { return }
        }
        throw .noMatch
    }

    static func hexBytes(_ text: String) -> Data? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0, !digits.isEmpty else { return nil }
        var bytes = Data(capacity: digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The header for a body, as Stripe writes it (tests and tools).
    static func sign(body: [UInt8], secret: String, timestamp: Int64) -> String {
        var content = Data("\(timestamp).".utf8)
        content.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=" + Array(mac).hexString
    }
}

struct StripeWebhookReceipt: Encodable, Sendable {
    var received: Bool
    /// True when this event id was applied before (Stripe delivers at least once).
    var duplicate: Bool
    /// False for event types Herald does not act on, and for customers that are not Herald's.
    var applied: Bool
}

extension BillingService {
    static let maxWebhookBody = 512 * 1024

    /// Stripe's webhooks: verified, deduplicated by event id, and safe out of order (a subscription event older than
    /// the last one applied is ignored; a paid invoice never becomes unpaid again).
    @Sendable func receiveStripeWebhook(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        guard let configuration = options.stripe else { throw HeraldError.notFound("Stripe billing (not configured)") }
        guard let secret = configuration.webhookSecret, !secret.isEmpty else {
            throw HeraldError.unavailable("Stripe webhooks need HERALD_STRIPE_WEBHOOK_SECRET (the endpoint's signing secret).")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxWebhookBody)
        } catch {
            throw HeraldError.payloadTooLarge(limit: Self.maxWebhookBody)
        }
        let body = Array(buffer.readableBytesView)
        let signatureHeader = HTTPField.Name("Stripe-Signature").flatMap { request.headers[$0] }
        do {
            try StripeSignature.verify(
                header: signatureHeader, body: body, secret: secret, tolerance: configuration.webhookTolerance,
                now: options.now()
            )
        } catch {
            logger.warning("billing: Stripe webhook refused", metadata: ["reason": "\(error)"])
            throw HeraldError(status: 400, slug: "bad-signature", title: "Signature check failed", detail: "Stripe webhook refused: \(error).")
        }
        guard let event = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), let id = event["id"]?.stringValue,
            let type = event["type"]?.stringValue, let object = event["data"]?["object"], object.objectValue != nil
        else {
            throw HeraldError.badRequest("The webhook body is not a Stripe event: expected {\"id\", \"type\", \"data\": {\"object\": …}}.")
        }
        let created = event["created"]?.int64Value ?? Int64(options.now().timeIntervalSince1970)
        let receipt = try await database.transaction(.system) { tx -> StripeWebhookReceipt in
            let customer = object["customer"]?.stringValue ?? (object["object"]?.stringValue == "customer" ? object["id"]?.stringValue : nil)
            guard let customer, let organizationId = try await accounts.organization(ofCustomer: customer, in: tx) else {
                return StripeWebhookReceipt(received: true, duplicate: false, applied: false)
            }
            guard try await invoices.markStripeEvent(id, type: type, at: options.now(), in: tx) else {
                return StripeWebhookReceipt(received: true, duplicate: true, applied: false)
            }
            try await tx.setTenant(.organization(organizationId))
            let applied = try await apply(type: type, object: object, created: created, organizationId: organizationId, in: tx)
            return StripeWebhookReceipt(received: true, duplicate: false, applied: applied)
        }
        logger.info(
            "billing: Stripe webhook",
            metadata: ["id": "\(id)", "type": "\(type)", "applied": "\(receipt.applied)", "duplicate": "\(receipt.duplicate)"])
        return try JSONResponse(receipt).response(from: request, context: context)
    }

    private func apply(type: String, object: JSONValue, created: Int64, organizationId: UUID, in tx: any SQLExecutor) async throws -> Bool {
        let now = options.now()
        switch type {
        case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
            guard let state = StripeSync.subscriptionState(object) else { return false }
            try await settle(organizationId, in: tx) { account in
                // Out of order: an older snapshot than the last applied, or another subscription than ours, changes nothing.
                guard created >= account.stripeSyncedAt else { return }
                if let current = account.stripeSubscriptionId, current != state.id, type != "customer.subscription.created" { return }
                account.stripeSyncedAt = created
                if type == "customer.subscription.deleted" || state.status == "canceled" {
                    account.status = .canceled
                    account.stripeSubscriptionId = nil
                    account.stripeItemId = nil
                    account.stripePlanId = nil
                    account.pendingPlanId = nil
                    return
                }
                account.stripeSubscriptionId = state.id
                account.stripeItemId = state.itemId ?? account.stripeItemId
                if let stripePlan = state.planId {
                    account.stripePlanId = stripePlan
                    if let (planId, interval) = Self.herald(stripePlan: stripePlan), policy.catalog.plan(planId) != nil, account.pendingPlanId == nil
                    {
                        account.planId = planId
                        account.interval = interval
                    }
                }
                if let start = state.periodStart, let end = state.periodEnd, end > start {
                    account.periodStart = start
                    account.periodEnd = end
                }
                switch state.status {
                case "active":
                    account.status = .active
                    account.pastDueSince = nil
                    account.trialEndsAt = nil
                case "past_due":
                    if account.status != .restricted { account.status = .pastDue }
                    account.pastDueSince = account.pastDueSince ?? now
                case "unpaid":
                    account.status = .restricted
                    account.pastDueSince = account.pastDueSince ?? now
                default:
                    break
                }
            }
            return true
        case "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.created", "invoice.finalized", "invoice.updated",
            "invoice.voided", "invoice.marked_uncollectible":
            let failed = type == "invoice.payment_failed"
            var paid = type == "invoice.paid" || type == "invoice.payment_succeeded"
            guard var invoice = StripeSync.invoice(object, organizationId: organizationId, eventCreated: created, failed: failed) else {
                return false
            }
            if paid { invoice.status = "paid" }
            paid = paid || invoice.status == "paid"
            let existing = try await invoices.find(invoice.id, in: tx)
            try await invoices.upsert(invoice, in: tx)
            let alreadyPaid = existing?.status == "paid"
            if paid {
                try await settle(organizationId, in: tx) { account in
                    guard account.status == .pastDue || account.status == .restricted else { return }
                    account.status = .active
                    account.pastDueSince = nil
                }
            } else if failed, !alreadyPaid {
                try await settle(organizationId, in: tx) { account in
                    guard account.status == .active || account.status == .trialing else { return }
                    account.status = .pastDue
                    account.pastDueSince = account.pastDueSince ?? now
                }
            }
            if paid || failed {
                try await Outbox.append(
                    InvoiceStatusChanged(
                        organizationId: organizationId, invoiceId: invoice.id, status: paid ? "paid" : (alreadyPaid ? "paid" : "payment_failed"),
                        amountDue: invoice.amountDue, amountPaid: invoice.amountPaid, currency: invoice.currency
                    ),
                    organizationId: organizationId, in: tx
                )
            }
            return true
        default:
            return false
        }
    }

    /// Herald's plan and interval from a Stripe plan id it created (`herald_<plan>_<interval>`).
    static func herald(stripePlan: String) -> (String, BillingInterval)? {
        guard stripePlan.hasPrefix("herald_"), let separator = stripePlan.lastIndex(of: "_") else { return nil }
        let planId = String(stripePlan[stripePlan.index(stripePlan.startIndex, offsetBy: 7)..<separator])
        guard let interval = BillingInterval(rawValue: String(stripePlan[stripePlan.index(after: separator)...])), !planId.isEmpty else { return nil }
        return (planId, interval)
    }
}
