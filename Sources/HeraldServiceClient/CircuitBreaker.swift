import Synchronization

/// Stops calling a service that keeps failing, so its callers fail fast instead of piling up behind timeouts:
/// closed (calls go through) → open after `failureThreshold` failures in a row (calls are refused for `openFor`)
/// → half-open (one trial call; its success closes the breaker, its failure opens it again).
public final class CircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable {
        case closed, open, halfOpen = "half-open"
    }

    struct Inner {
        var state: State = .closed
        var failures = 0
        var openedAt: ContinuousClock.Instant?
        var trialInFlight = false
    }

    public let failureThreshold: Int
    public let openFor: Duration
    private let inner = Mutex(Inner())

    public init(failureThreshold: Int = 5, openFor: Duration = .seconds(10)) {
        self.failureThreshold = failureThreshold
        self.openFor = openFor
    }

    public var state: State { inner.withLock { $0.state } }

    /// Whether a call may go out now; when open, how long until a trial call is allowed.
    public func permit(now: ContinuousClock.Instant = .now) -> (allowed: Bool, retryAfter: Duration) {
        inner.withLock { inner in
            switch inner.state {
            case .closed:
                return (true, .zero)
            case .open:
                let reopens = (inner.openedAt ?? now) + openFor
                guard now >= reopens else { return (false, reopens - now) }
                inner.state = .halfOpen
                inner.trialInFlight = true
                return (true, .zero)
            case .halfOpen:
                // One trial at a time; the others wait for its outcome.
                if inner.trialInFlight { return (false, .seconds(1)) }
                inner.trialInFlight = true
                return (true, .zero)
            }
        }
    }

    public func recordSuccess() {
        inner.withLock { inner in
            inner = Inner()
        }
    }

    public func recordFailure(now: ContinuousClock.Instant = .now) {
        inner.withLock { inner in
            inner.failures += 1
            inner.trialInFlight = false
            if inner.state == .halfOpen || inner.failures >= failureThreshold {
                inner.state = .open
                inner.openedAt = now
            }
        }
    }
}
