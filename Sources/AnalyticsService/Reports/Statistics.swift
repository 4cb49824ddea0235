import Foundation

/// The few distributions the A/B report needs, written out so their numbers can be checked against scipy.
enum Statistics {
    /// P(Z ≤ z) for a standard normal variable.
    static func normalCDF(_ z: Double) -> Double {
        0.5 * erfc(-z / 2.0.squareRoot())
    }

    /// The two-sided p-value of a z statistic.
    static func twoSidedP(_ z: Double) -> Double {
        min(1, erfc(abs(z) / 2.0.squareRoot()))
    }

    /// The z value with P(Z ≤ z) = p, by bisection (only ever asked for 0.975 and its Bonferroni corrections).
    static func normalQuantile(_ p: Double) -> Double {
        var low = -10.0
        var high = 10.0
        for _ in 0..<100 {
            let mid = (low + high) / 2
            if normalCDF(mid) < p { low = mid } else { high = mid }
        }
        return (low + high) / 2
    }

    /// P(X ≥ x) for a chi-squared variable with `k` degrees of freedom: the regularized upper incomplete gamma
    /// function Q(k/2, x/2).
    static func chiSquaredSurvival(_ x: Double, degreesOfFreedom k: Int) -> Double {
        guard x > 0, k > 0 else { return 1 }
        return upperRegularizedGamma(Double(k) / 2, x / 2)
    }

    /// Q(a, x) by the series for x < a + 1 and the continued fraction otherwise (Numerical Recipes, 6.2).
    static func upperRegularizedGamma(_ a: Double, _ x: Double) -> Double {
        let lnGammaA = logGamma(a)
        if x < a + 1 {
            var sum = 1 / a
            var term = sum
            var n = a
            for _ in 0..<1000 {
                n += 1
                term *= x / n
                sum += term
                if abs(term) < abs(sum) * 1e-15 { break }
            }
            return max(0, 1 - sum * exp(-x + a * log(x) - lnGammaA))
        }
        let tiny = 1e-300
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var h = d
        for i in 1..<1000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return min(1, exp(-x + a * log(x) - lnGammaA) * h)
    }

    /// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
    static func logGamma(_ x: Double) -> Double {
        let coefficients = [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ]
        if x < 0.5 { return log(Double.pi / abs(sin(Double.pi * x))) - logGamma(1 - x) }
        let z = x - 1
        var sum = coefficients[0]
        for index in 1..<9 { sum += coefficients[index] / (z + Double(index)) }
        let t = z + 7.5
        return 0.5 * log(2 * Double.pi) + (z + 0.5) * log(t) - t + log(sum)
    }

    /// Pearson's chi-squared statistic of observed counts against expected shares.
    static func chiSquared(observed: [Int], expectedShares: [Double]) -> Double {
        let total = Double(observed.reduce(0, +))
        let shareSum = expectedShares.reduce(0, +)
        guard total > 0, shareSum > 0 else { return 0 }
        var statistic = 0.0
        for (count, share) in zip(observed, expectedShares) {
            let expected = total * share / shareSum
            guard expected > 0 else { continue }
            statistic += (Double(count) - expected) * (Double(count) - expected) / expected
        }
        return statistic
    }
}
