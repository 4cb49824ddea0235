/// `body`'s result, or ``DeadlineExceeded`` once `limit` has passed (and `body` is cancelled): for checks and
/// collectors where a dependency that hangs must read as failed, not hang its caller.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded(limit: limit) }
        return value
    }
}

public struct DeadlineExceeded: Error, CustomStringConvertible {
    public var limit: Duration
    public var description: String { "no answer within \(limit)" }
}

extension Duration {
    /// Whole nanoseconds, for APIs that take them (swift-metrics timers, NIO's TimeAmount).
    public var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
