import Foundation
import Synchronization

/// Counts events per key in a sliding window. The in-memory limiter serves one process; a shared Redis
/// limiter will implement the same protocol for a split deployment.
public protocol RateLimiter: Sendable {
    /// Records one hit for `key` and returns how many hits the key has in the current window.
    func hit(_ key: String, window: Duration, now: Date) async -> Int
    /// The number of hits for `key` in the current window, and when the oldest of them expires.
    func count(_ key: String, window: Duration, now: Date) async -> (count: Int, oldest: Date?)
    /// Forgets a key (after a successful login, for instance).
    func reset(_ key: String) async
}

/// A process-local sliding-window limiter with a bounded number of keys.
public final class InMemoryRateLimiter: RateLimiter {
    private let state = Mutex<[String: [Date]]>([:])
    private let maxKeys: Int

    public init(maxKeys: Int = 100_000) {
        self.maxKeys = maxKeys
    }

    public func hit(_ key: String, window: Duration, now: Date) async -> Int {
        let horizon = now.addingTimeInterval(-window.seconds)
        return state.withLock { state in
            if state.count >= maxKeys, state[key] == nil {
                // Drop expired keys first; if still full, forget the oldest-looking half rather than grow without bound.
                state = state.filter { $0.value.last.map { $0 > horizon } ?? false }
                if state.count >= maxKeys { state.removeAll(keepingCapacity: true) }
            }
            var hits = state[key, default: []].filter { $0 > horizon }
            hits.append(now)
            if hits.count > 1000 { hits.removeFirst(hits.count - 1000) }
            state[key] = hits
            return hits.count
        }
    }

    public func count(_ key: String, window: Duration, now: Date) async -> (count: Int, oldest: Date?) {
        let horizon = now.addingTimeInterval(-window.seconds)
        return state.withLock { state in
            let hits = state[key, default: []].filter { $0 > horizon }
            return (hits.count, hits.first)
        }
    }

    public func reset(_ key: String) async {
        _ = state.withLock { $0.removeValue(forKey: key) }
    }
}

extension Duration {
    /// The duration in seconds as a `TimeInterval`.
    public var seconds: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
