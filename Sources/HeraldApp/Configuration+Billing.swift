import BillingService
import Foundation

extension HeraldConfiguration {
    /// Reads the HERALD_BILLING_*, HERALD_STRIPE_* and HERALD_OPERATOR_TOKEN settings into `billingOptions`.
    static func readBilling(_ environment: [String: String], into options: inout BillingService.Options) throws {
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        if let path = value("HERALD_BILLING_PLANS_FILE") {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw ConfigurationError("HERALD_BILLING_PLANS_FILE: cannot read \(path): \(error.localizedDescription)")
            }
            do {
                options.policy.catalog = try PlanCatalog.load(json: data)
            } catch {
                throw ConfigurationError("HERALD_BILLING_PLANS_FILE (\(path)): \(error)")
            }
        }
        if let days = value("HERALD_BILLING_TRIAL_DAYS") {
            guard let number = Int(days), (0...365).contains(number) else {
                throw ConfigurationError("HERALD_BILLING_TRIAL_DAYS must be a number of days from 0 to 365 (default 14)")
            }
            options.policy.catalog.trialDays = number
        }
        if let text = value("HERALD_BILLING_ALERT_THRESHOLDS") {
            let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0.map { (1...1000).contains($0) } ?? false }) else {
                throw ConfigurationError("HERALD_BILLING_ALERT_THRESHOLDS must be comma-separated percents from 1 to 1000 (default 80,100,120)")
            }
            options.policy.alertThresholds = Array(Set(parts.compactMap { $0 })).sorted()
        }
        if let text = value("HERALD_BILLING_HARD_LIMIT_PERCENT") {
            guard let number = Int(text), (100...1000).contains(number) else {
                throw ConfigurationError("HERALD_BILLING_HARD_LIMIT_PERCENT must be a percent from 100 to 1000 (default 120)")
            }
            options.policy.hardLimitPercent = number
        }
        if let text = value("HERALD_BILLING_GRACE_DAYS") {
            guard let number = Int(text), (0...60).contains(number) else {
                throw ConfigurationError("HERALD_BILLING_GRACE_DAYS must be a number of days from 0 to 60 (default 7)")
            }
            options.policy.gracePeriod = .seconds(number * 86_400)
        }
        if let key = value("HERALD_STRIPE_SECRET_KEY") {
            guard key.hasPrefix("sk_") || key.hasPrefix("rk_") else {
                throw ConfigurationError("HERALD_STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_… or rk_…)")
            }
            let base = value("HERALD_STRIPE_API_URL") ?? "https://api.stripe.com"
            guard let url = URL(string: base), url.scheme == "https" || url.scheme == "http", url.host != nil else {
                throw ConfigurationError("HERALD_STRIPE_API_URL must be an http(s) URL such as https://api.stripe.com")
            }
            options.stripe = StripeConfiguration(secretKey: key, apiBase: base, webhookSecret: value("HERALD_STRIPE_WEBHOOK_SECRET"))
        } else if value("HERALD_STRIPE_WEBHOOK_SECRET") != nil {
            throw ConfigurationError("HERALD_STRIPE_WEBHOOK_SECRET is set but HERALD_STRIPE_SECRET_KEY is not")
        }
        if let token = try secret(environment, "HERALD_OPERATOR_TOKEN", minimum: 24) { options.operatorToken = token }
    }
}
