import Foundation
import HeraldCore

/// What a plan allows in one billing period. nil means unlimited.
public struct Quotas: Codable, Sendable, Equatable {
    /// Notification impressions (popups actually shown to people, bots excluded) per monthly period.
    public var impressionsPerMonth: Int64?
    /// Published notifications at once.
    public var activeCampaigns: Int64?
    public var sites: Int64?
    /// Bytes the organization's data takes across services (raw analytics events, activities, deliveries).
    public var storageBytes: Int64?

    public init(impressionsPerMonth: Int64?, activeCampaigns: Int64?, sites: Int64?, storageBytes: Int64?) {
        self.impressionsPerMonth = impressionsPerMonth
        self.activeCampaigns = activeCampaigns
        self.sites = sites
        self.storageBytes = storageBytes
    }

    /// The quota of a metric by its API name.
    public func limit(_ metric: UsageMetric) -> Int64? {
        switch metric {
        case .impressions: impressionsPerMonth
        case .activeCampaigns: activeCampaigns
        case .sites: sites
        case .storageBytes: storageBytes
        }
    }
}

/// What Billing meters.
public enum UsageMetric: String, Codable, Sendable, CaseIterable {
    case impressions
    case activeCampaigns
    case sites
    case storageBytes
}

/// A plan of the catalogue. Prices are in the currency's minor unit (cents).
public struct Plan: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var monthlyPrice: Int64
    public var yearlyPrice: Int64
    public var quotas: Quotas

    public init(id: String, name: String, monthlyPrice: Int64, yearlyPrice: Int64, quotas: Quotas) {
        self.id = id
        self.name = name
        self.monthlyPrice = monthlyPrice
        self.yearlyPrice = yearlyPrice
        self.quotas = quotas
    }

    public func price(_ interval: BillingInterval) -> Int64 { interval == .month ? monthlyPrice : yearlyPrice }

    /// A plan's rank for upgrade or downgrade: the price of a month (a yearly price counts as a twelfth).
    var monthlyValue: Double { max(Double(monthlyPrice), Double(yearlyPrice) / 12) }
}

public enum BillingInterval: String, Codable, Sendable {
    case month
    case year
}

/// The plans an operator offers: Herald's defaults, or the operator's own file (HERALD_BILLING_PLANS_FILE).
public struct PlanCatalog: Sendable, Equatable {
    public var plans: [Plan]
    public var currency: String
    /// The plan a new organization tries, and for how long.
    public var trialPlanId: String
    public var trialDays: Int
    /// The plan an organization falls back to when its trial ends without a choice, or its subscription ends.
    public var fallbackPlanId: String

    public func plan(_ id: String) -> Plan? { plans.first { $0.id == id } }

    /// Herald's built-in catalogue.
    public static let standard = PlanCatalog(
        plans: [
            Plan(
                id: "free", name: "Free", monthlyPrice: 0, yearlyPrice: 0,
                quotas: Quotas(impressionsPerMonth: 1_000, activeCampaigns: 1, sites: 1, storageBytes: 100 * mebibyte)
            ),
            Plan(
                id: "starter", name: "Starter", monthlyPrice: 1_900, yearlyPrice: 19_000,
                quotas: Quotas(impressionsPerMonth: 10_000, activeCampaigns: 3, sites: 1, storageBytes: 1_024 * mebibyte)
            ),
            Plan(
                id: "growth", name: "Growth", monthlyPrice: 4_900, yearlyPrice: 49_000,
                quotas: Quotas(impressionsPerMonth: 50_000, activeCampaigns: 10, sites: 3, storageBytes: 5_120 * mebibyte)
            ),
            Plan(
                id: "scale", name: "Scale", monthlyPrice: 14_900, yearlyPrice: 149_000,
                quotas: Quotas(impressionsPerMonth: 250_000, activeCampaigns: 50, sites: 10, storageBytes: 25_600 * mebibyte)
            ),
            Plan(
                id: "enterprise", name: "Enterprise", monthlyPrice: 49_900, yearlyPrice: 499_000,
                quotas: Quotas(impressionsPerMonth: 2_000_000, activeCampaigns: nil, sites: nil, storageBytes: 102_400 * mebibyte)
            ),
        ],
        currency: "usd", trialPlanId: "growth", trialDays: 14, fallbackPlanId: "free"
    )

    static let mebibyte: Int64 = 1_048_576

    /// Reads an operator's catalogue: `{"currency": "usd", "trialPlan": "growth", "trialDays": 14, "fallbackPlan":
    /// "free", "plans": [{"id", "name", "monthlyPrice", "yearlyPrice", "quotas": {…}}]}`. Every problem is named.
    public static func load(json data: Data) throws -> PlanCatalog {
        struct File: Decodable {
            var currency: String?
            var trialPlan: String?
            var trialDays: Int?
            var fallbackPlan: String?
            var plans: [Plan]
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw PlanCatalogError("the plans file is not a valid catalogue: \(error)")
        }
        var catalog = PlanCatalog(
            plans: file.plans, currency: (file.currency ?? "usd").lowercased(), trialPlanId: file.trialPlan ?? "",
            trialDays: file.trialDays ?? 14, fallbackPlanId: file.fallbackPlan ?? ""
        )
        if catalog.trialPlanId.isEmpty { catalog.trialPlanId = catalog.plans.first?.id ?? "" }
        if catalog.fallbackPlanId.isEmpty { catalog.fallbackPlanId = catalog.plans.min { $0.monthlyValue < $1.monthlyValue }?.id ?? "" }
        try catalog.validate()
        return catalog
    }

    func validate() throws {
        guard !plans.isEmpty else { throw PlanCatalogError("the catalogue has no plans") }
        var seen = Set<String>()
        for plan in plans {
            guard plan.id.count <= 40, !plan.id.isEmpty,
                plan.id.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") })
            else { throw PlanCatalogError("plan id '\(plan.id)' must be 1–40 lower-case letters, digits, '-' or '_'") }
            guard seen.insert(plan.id).inserted else { throw PlanCatalogError("plan id '\(plan.id)' appears twice") }
            guard plan.monthlyPrice >= 0, plan.yearlyPrice >= 0 else { throw PlanCatalogError("plan '\(plan.id)' has a negative price") }
            for metric in UsageMetric.allCases where (plan.quotas.limit(metric) ?? 0) < 0 {
                throw PlanCatalogError("plan '\(plan.id)' has a negative \(metric.rawValue) quota")
            }
        }
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw PlanCatalogError("currency must be a three-letter ISO code such as usd")
        }
        guard plan(trialPlanId) != nil else { throw PlanCatalogError("the trial plan '\(trialPlanId)' is not in the catalogue") }
        guard plan(fallbackPlanId) != nil else { throw PlanCatalogError("the fallback plan '\(fallbackPlanId)' is not in the catalogue") }
        guard (0...365).contains(trialDays) else { throw PlanCatalogError("trialDays must be from 0 to 365") }
    }
}

public struct PlanCatalogError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
