import Foundation
import Synchronization

/// Who is on which page now, from widget heartbeats. Kept in memory only: it is minutes-old at most and
/// worthless after a restart. A visitor counts for a page while their last heartbeat is under a minute old.
final class PresenceTracker: Sendable {
    private let state = Mutex<[UUID: [String: [String: Date]]]>([:])
    let window: TimeInterval
    let maxVisitorsPerSite: Int

    init(window: TimeInterval = 60, maxVisitorsPerSite: Int = 50_000) {
        self.window = window
        self.maxVisitorsPerSite = maxVisitorsPerSite
    }

    func heartbeat(siteId: UUID, path: String, visitorId: String, at now: Date = Date()) {
        state.withLock { state in
            var site = state[siteId, default: [:]]
            if site.values.reduce(0, { $0 + $1.count }) >= maxVisitorsPerSite { site = Self.pruned(site, before: now.addingTimeInterval(-window)) }
            // A visitor is on one page at a time.
            for (otherPath, visitors) in site where otherPath != path && visitors[visitorId] != nil {
                site[otherPath]?[visitorId] = nil
            }
            site[path, default: [:]][visitorId] = now
            state[siteId] = site
        }
    }

    func count(siteId: UUID, path: String, at now: Date = Date()) -> Int {
        let horizon = now.addingTimeInterval(-window)
        return state.withLock { state in
            state[siteId]?[path]?.values.filter { $0 > horizon }.count ?? 0
        }
    }

    /// Drops visitors who left; run periodically.
    func prune(at now: Date = Date()) {
        let horizon = now.addingTimeInterval(-window)
        state.withLock { state in
            for (siteId, site) in state {
                let pruned = Self.pruned(site, before: horizon)
                state[siteId] = pruned.isEmpty ? nil : pruned
            }
        }
    }

    static func pruned(_ site: [String: [String: Date]], before horizon: Date) -> [String: [String: Date]] {
        site.compactMapValues { visitors in
            let alive = visitors.filter { $0.value > horizon }
            return alive.isEmpty ? nil : alive
        }
    }
}
