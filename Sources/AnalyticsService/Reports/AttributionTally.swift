import Foundation
import HeraldContracts

/// How conversions are credited to notifications: the one rule the attribution report applies to raw conversions
/// and ingest applies to keep per-day rollups for the default window and half-life, so both say the same.
struct AttributionTally: Sendable {
    /// The window and half-life ingest keeps rollups for (the report's defaults).
    static let rollupWindowDays = 7
    static let rollupHalfLifeDays = 7.0
    static let models = ["first_touch", "last_touch", "linear", "time_decay"]

    var total = 0
    var attributed = 0
    var unattributed = 0
    var repeatWithinWindow = 0
    var attributedValue = 0.0
    /// model → notification → credited conversions and value.
    var credit: [String: [UUID: Credit]] = [:]

    struct Credit: Sendable, Equatable {
        var conversions = 0.0
        var value = 0.0
    }

    /// Credits one conversion. A conversion is counted once per visitor per window; it is attributed to the
    /// notifications its widget saw the visitor touch within the window (or the one it names when it reports no
    /// touches), under each model.
    mutating func add(_ conversion: ConversionFact, windowDays: Int, halfLifeDays: Double, models: [String]) {
        let window = Int64(windowDays) * 86_400_000
        let halfLife = halfLifeDays * 86_400_000
        total += 1
        if let previous = conversion.previousConversionAt, conversion.atMillis - previous < window {
            repeatWithinWindow += 1
            return
        }
        var touches = conversion.touches.filter { $0.at <= conversion.atMillis && conversion.atMillis - $0.at <= window }
        if conversion.touches.isEmpty, let notificationId = conversion.notificationId {
            touches = [Touch(notificationId: notificationId, variantId: conversion.variantId, kind: "impression", at: conversion.atMillis)]
        }
        touches.sort { $0.at < $1.at }
        guard let first = touches.first, let last = touches.last else {
            unattributed += 1
            return
        }
        attributed += 1
        let value = conversion.value ?? 0
        attributedValue += value
        for model in models {
            var shares: [UUID: Double] = [:]
            switch model {
            case "first_touch": shares[first.notificationId] = 1
            case "last_touch": shares[last.notificationId] = 1
            case "linear":
                for touch in touches { shares[touch.notificationId, default: 0] += 1 / Double(touches.count) }
            default:
                // Time decay: each touch weighs 2^(-age / half-life), normalised to one conversion.
                let weights = touches.map { pow(2, -Double(conversion.atMillis - $0.at) / halfLife) }
                let sum = weights.reduce(0, +)
                for (touch, weight) in zip(touches, weights) { shares[touch.notificationId, default: 0] += weight / sum }
            }
            for (notificationId, share) in shares {
                credit[model, default: [:]][notificationId, default: Credit()].conversions += share
                credit[model, default: [:]][notificationId, default: Credit()].value += share * value
            }
        }
    }

    mutating func merge(_ other: AttributionTally) {
        total += other.total
        attributed += other.attributed
        unattributed += other.unattributed
        repeatWithinWindow += other.repeatWithinWindow
        attributedValue += other.attributedValue
        for (model, notifications) in other.credit {
            for (notificationId, entry) in notifications {
                credit[model, default: [:]][notificationId, default: Credit()].conversions += entry.conversions
                credit[model, default: [:]][notificationId, default: Credit()].value += entry.value
            }
        }
    }
}
