import Synchronization

/// A one-way gate: tasks wait until it opens (for example until migrations have run), then pass freely.
public final class ReadyGate: Sendable {
    private enum State {
        case closed([CheckedContinuation<Void, Never>])
        case open
    }
    private let state = Mutex<State>(.closed([]))

    public init(open: Bool = false) {
        if open { state.withLock { $0 = .open } }
    }

    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard case .closed(let waiters) = state else { return [] }
            state = .open
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    public var isOpen: Bool {
        state.withLock { if case .open = $0 { true } else { false } }
    }

    public func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                switch state {
                case .open: return true
                case .closed(var waiters):
                    waiters.append(continuation)
                    state = .closed(waiters)
                    return false
                }
            }
            if resumeNow { continuation.resume() }
        }
    }
}
