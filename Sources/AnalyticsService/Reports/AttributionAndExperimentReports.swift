import Foundation
import HeraldContracts
import HeraldCore

struct AttributedNotification: Codable, Sendable, Equatable {
    var notificationId: UUID
    @Nullable var name: String? = nil
    /// Conversions credited to the notification (fractional under linear and time-decay).
    var conversions: Double
    var value: Double
}

struct AttributionModelResult: Codable, Sendable, Equatable {
    var model: String
    var notifications: [AttributedNotification]
}

struct AttributionCounts: Codable, Sendable, Equatable {
    /// Conversions in the range.
    var total: Int
    /// Counted: the visitor had not converted in the window before, and saw, hovered or clicked a notification in it.
    var attributed: Int
    /// Counted, but no notification was seen in the window.
    var unattributed: Int
    /// Not counted: the same visitor converted within the window before (once per visitor per window).
    var repeatWithinWindow: Int
    var attributedValue: Double
}

/// `GET /sites/{siteId}/analytics/attribution`.
struct AttributionReport: Codable, Sendable, Equatable {
    var siteId: UUID
    var timezone: String
    var from: String
    var to: String
    var windowDays: Int
    var halfLifeDays: Double
    var conversions: AttributionCounts
    var models: [AttributionModelResult]
    var source: String

    var tables: [ReportTable] {
        var tables = [
            ReportTable(
                title: "Conversions (window \(windowDays) days)", columns: ["Total", "Attributed", "Unattributed", "Repeat within window", "Value"],
                rows: [
                    [
                        Cell.int(conversions.total), Cell.int(conversions.attributed), Cell.int(conversions.unattributed),
                        Cell.int(conversions.repeatWithinWindow), Cell.number(conversions.attributedValue),
                    ]
                ]
            )
        ]
        for model in models {
            tables.append(
                ReportTable(
                    title: "Model: \(model.model.replacingOccurrences(of: "_", with: " "))", columns: ["Notification", "Conversions", "Value"],
                    rows: model.notifications.map { [$0.name ?? $0.notificationId.lowercased, Cell.number($0.conversions), Cell.number($0.value)] },
                    chart: 1
                )
            )
        }
        return tables
    }
}

struct VariantResult: Codable, Sendable, Equatable {
    var variantId: UUID
    @Nullable var name: String? = nil
    @Nullable var weight: Int? = nil
    var control: Bool
    var exposures: Int
    var conversions: Int
    var conversionRate: Double
    /// Against the control: rate difference and relative lift with their confidence intervals, and the
    /// two-sided p-value of a pooled two-proportion z-test. Absent for the control and below the minimum sample.
    @Nullable var difference: Double? = nil
    @Nullable var differenceInterval: [Double]? = nil
    @Nullable var lift: Double? = nil
    @Nullable var liftInterval: [Double]? = nil
    @Nullable var pValue: Double? = nil
    var significant: Bool
}

struct SampleRatioCheck: Codable, Sendable, Equatable {
    var chiSquared: Double
    var pValue: Double
    /// The split differs from the weights more than chance allows (p < 0.001): the assignment is broken and
    /// no result can be trusted.
    var flagged: Bool
}

struct ExperimentResult: Codable, Sendable, Equatable {
    var notificationId: UUID
    @Nullable var name: String? = nil
    @Nullable var status: String? = nil
    var variants: [VariantResult]
    @Nullable var sampleRatioMismatch: SampleRatioCheck? = nil
    /// `not_enough_data`, `sample_ratio_mismatch`, `no_significant_difference` or `winner`.
    var verdict: String
    @Nullable var winner: UUID? = nil
    var message: String
}

/// `GET /sites/{siteId}/analytics/ab-tests`.
struct ExperimentReport: Codable, Sendable, Equatable {
    var siteId: UUID
    var timezone: String
    var from: String
    var to: String
    var confidenceLevel: Double
    var minimumExposuresPerVariant: Int
    var minimumConversionsPerVariant: Int
    var tests: [ExperimentResult]
    var source: String

    var tables: [ReportTable] {
        tests.map { test in
            ReportTable(
                title: "\(test.name ?? test.notificationId.lowercased): \(test.verdict.replacingOccurrences(of: "_", with: " "))",
                columns: ["Variant", "Exposures", "Conversions", "Rate", "Lift", "p-value"],
                rows: test.variants.map {
                    [
                        ($0.name ?? $0.variantId.lowercased) + ($0.control ? " (control)" : ""), Cell.int($0.exposures), Cell.int($0.conversions),
                        Cell.percent($0.conversionRate), $0.lift.map(Cell.percent) ?? "", $0.pValue.map { Cell.number($0, decimals: 4) } ?? "",
                    ]
                },
                chart: 3
            )
        }
    }
}

extension ReportEngine {
    func attribution(_ site: ReportSite, _ query: ReportQuery) async throws -> AttributionReport {
        let models = query.model == "all" ? AttributionTally.models : [query.model]
        var tally: AttributionTally
        if query.windowDays == AttributionTally.rollupWindowDays, query.halfLifeDays == AttributionTally.rollupHalfLifeDays,
            let kept = try await reader.keptAttribution(siteId: site.siteId, organizationId: site.organizationId, days: query.days)
        {
            tally = kept
        } else {
            // Another window or half-life: credit the range's conversions from their raw rows.
            let clock = site.clock
            let start = clock.startOfDay(dayKey: query.fromDay) * 1000
            let end = clock.startOfDay(dayKey: LocalTime.dayKey(days: (LocalTime.days(dayKey: query.toDay) ?? 0) + 1)) * 1000 - 1
            tally = AttributionTally()
            for conversion in try await reader.conversions(siteId: site.siteId, organizationId: site.organizationId, millis: start...end) {
                tally.add(conversion, windowDays: query.windowDays, halfLifeDays: query.halfLifeDays, models: models)
            }
        }
        let names = try await notificationNames(site)
        var counts = AttributionCounts(
            total: tally.total, attributed: tally.attributed, unattributed: tally.unattributed, repeatWithinWindow: tally.repeatWithinWindow,
            attributedValue: tally.attributedValue
        )
        counts.attributedValue = (counts.attributedValue * 100).rounded() / 100
        return AttributionReport(
            siteId: site.siteId, timezone: site.timezone, from: LocalTime.isoDate(dayKey: query.fromDay), to: LocalTime.isoDate(dayKey: query.toDay),
            windowDays: query.windowDays, halfLifeDays: query.halfLifeDays, conversions: counts,
            models: models.map { model in
                AttributionModelResult(
                    model: model,
                    notifications: (tally.credit[model] ?? [:]).map { id, entry in
                        AttributedNotification(
                            notificationId: id, name: names[id]?.name, conversions: (entry.conversions * 10_000).rounded() / 10_000,
                            value: (entry.value * 100).rounded() / 100
                        )
                    }.sorted { ($0.conversions, $1.notificationId.lowercased) > ($1.conversions, $0.notificationId.lowercased) }
                )
            },
            source: source
        )
    }

    static let minimumExposures = 100
    static let minimumConversions = 5
    static let alpha = 0.05

    func experiments(_ site: ReportSite, _ query: ReportQuery) async throws -> ExperimentReport {
        let facts = try await reader.experiments(siteId: site.siteId, organizationId: site.organizationId, days: query.days)
        let catalog = try await notificationNames(site)
        var observed: [UUID: [UUID: (Int, Int)]] = [:]
        for fact in facts { observed[fact.notificationId, default: [:]][fact.variantId] = (fact.exposures, fact.conversions) }
        // Tests Analytics knows (with their weights), and any with data whose definition it has not heard of.
        var ids = Set(catalog.values.filter { $0.variants.count >= 2 }.map(\.notificationId)).union(observed.keys)
        if let notificationId = query.notificationId { ids = ids.intersection([notificationId]) }
        let tests = ids.sorted { $0.lowercased < $1.lowercased }.map { id in
            Self.evaluate(notificationId: id, record: catalog[id], observed: observed[id] ?? [:])
        }
        return ExperimentReport(
            siteId: site.siteId, timezone: site.timezone, from: LocalTime.isoDate(dayKey: query.fromDay), to: LocalTime.isoDate(dayKey: query.toDay),
            confidenceLevel: 1 - Self.alpha, minimumExposuresPerVariant: Self.minimumExposures, minimumConversionsPerVariant: Self.minimumConversions,
            tests: tests, source: source
        )
    }

    /// One test's verdict: each variant against the control (the first arm), Bonferroni-corrected when there are
    /// several, with a sample-ratio check against the configured weights and no verdict below the minimum sample.
    static func evaluate(notificationId: UUID, record: ExperimentRecord?, observed: [UUID: (Int, Int)]) -> ExperimentResult {
        var arms: [(id: UUID, name: String?, weight: Int?)] = record?.variants.map { ($0.id, $0.name, $0.weight) } ?? []
        for id in observed.keys.sorted(by: { $0.lowercased < $1.lowercased }) where !arms.contains(where: { $0.id == id }) {
            arms.append((id, nil, nil))
        }
        let counts = arms.map { observed[$0.id] ?? (0, 0) }
        let enough = counts.allSatisfy { $0.0 >= minimumExposures && $0.1 >= minimumConversions } && arms.count >= 2
        let comparisons = max(1, arms.count - 1)
        let z = Statistics.normalQuantile(1 - alpha / 2 / Double(comparisons))
        let (controlExposures, controlConversions) = counts.first ?? (0, 0)
        let controlRate = controlExposures == 0 ? 0 : Double(controlConversions) / Double(controlExposures)

        var variants: [VariantResult] = []
        for (index, arm) in arms.enumerated() {
            let (n, x) = counts[index]
            let rate = n == 0 ? 0 : Double(x) / Double(n)
            var result = VariantResult(
                variantId: arm.id, name: arm.name, weight: arm.weight, control: index == 0, exposures: n, conversions: x,
                conversionRate: (rate * 1_000_000).rounded() / 1_000_000, significant: false
            )
            if index > 0, enough {
                let difference = rate - controlRate
                let se = (rate * (1 - rate) / Double(n) + controlRate * (1 - controlRate) / Double(controlExposures)).squareRoot()
                let pooled = Double(x + controlConversions) / Double(n + controlExposures)
                let pooledSE = (pooled * (1 - pooled) * (1 / Double(n) + 1 / Double(controlExposures))).squareRoot()
                let pValue = pooledSE == 0 ? 1 : Statistics.twoSidedP(difference / pooledSE)
                result.difference = round6(difference)
                result.differenceInterval = [round6(difference - z * se), round6(difference + z * se)]
                if controlRate > 0 {
                    result.lift = round6(difference / controlRate)
                    result.liftInterval = [round6((difference - z * se) / controlRate), round6((difference + z * se) / controlRate)]
                }
                result.pValue = (pValue * 1_000_000).rounded() / 1_000_000
                result.significant = pValue < alpha / Double(comparisons)
            }
            variants.append(result)
        }

        var srm: SampleRatioCheck?
        let weights = arms.map { Double($0.weight ?? 0) }
        if arms.count >= 2, weights.allSatisfy({ $0 > 0 }), counts.reduce(0, { $0 + $1.0 }) > 0 {
            let statistic = Statistics.chiSquared(observed: counts.map(\.0), expectedShares: weights)
            let p = Statistics.chiSquaredSurvival(statistic, degreesOfFreedom: arms.count - 1)
            srm = SampleRatioCheck(chiSquared: round6(statistic), pValue: (p * 1_000_000).rounded() / 1_000_000, flagged: p < 0.001)
        }

        let verdict: String
        var winner: UUID?
        let message: String
        if arms.count < 2 {
            verdict = "not_enough_data"
            message = "The notification has fewer than two variants with data."
        } else if srm?.flagged == true {
            verdict = "sample_ratio_mismatch"
            message = "Exposures do not follow the variants' weights (p < 0.001): the assignment is broken, so no result can be trusted."
        } else if !enough {
            verdict = "not_enough_data"
            message =
                "Each variant needs at least \(minimumExposures) exposures and \(minimumConversions) conversions before Herald compares them. "
                + "Decide the sample size before starting and do not stop the test at the first significant look."
        } else if let best = variants.dropFirst().filter({ $0.significant }).max(by: { $0.conversionRate < $1.conversionRate }),
            best.conversionRate > controlRate
        {
            verdict = "winner"
            winner = best.variantId
            message = "\(best.name ?? "A variant") converts better than the control at the 95% confidence level."
        } else if variants.dropFirst().contains(where: { $0.significant }) {
            verdict = "winner"
            winner = variants.first?.variantId
            message = "The control converts better than every significantly different variant at the 95% confidence level."
        } else {
            verdict = "no_significant_difference"
            message = "No variant differs from the control at the 95% confidence level yet."
        }
        return ExperimentResult(
            notificationId: notificationId, name: record?.name, status: record?.status, variants: variants, sampleRatioMismatch: srm,
            verdict: verdict, winner: winner, message: message
        )
    }

    static func round6(_ value: Double) -> Double { (value * 1_000_000).rounded() / 1_000_000 }
}
