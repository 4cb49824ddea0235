import Foundation
import HeraldSecurity
import Logging
import Synchronization

/// The sliding-window limiter shared by every instance: one sorted set per key, its members the hits' times, trimmed
/// and counted by one Lua script so concurrent hits from any number of instances are counted exactly.
///
/// When Redis cannot be reached, a hit is allowed (counted as 0) and a warning logged at most once a minute: an
/// outage of the limiter's store must not take sign-in and the APIs down with it.
public final class RedisRateLimiter: RateLimiter {
    let client: RedisClient
    let prefix: String
    let logger: Logger
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

    /// The most hits kept per key, as the in-memory limiter does: no limit Herald sets comes near it.
    static let cap = 1000

    static let hitScript = RedisScript(
        """
        local now = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        redis.call('ZADD', KEYS[1], now, ARGV[3])
        local n = redis.call('ZCARD', KEYS[1])
        local cap = tonumber(ARGV[4])
        if n > cap then
          redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1)
          n = cap
        end
        redis.call('PEXPIRE', KEYS[1], window)
        return n
        """
    )

    public init(client: RedisClient, prefix: String = "herald:rl:", logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.logger = logger
    }

    public func hit(_ key: String, window: Duration, now: Date) async -> Int {
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        let windowMs = max(1, Int64(window.seconds * 1000))
        // Unique per hit, so two hits in the same millisecond are two members.
        let member = "\(nowMs)-\(UInt64.random(in: 0...UInt64.max))"
        do {
            let reply = try await client.run(
                Self.hitScript, keys: [prefix + key],
                arguments: [.integer(nowMs), .integer(windowMs), .string(member), .integer(Int64(Self.cap))]
            )
            return Int(reply.int ?? 0)
        } catch {
            warn(error)
            return 0
        }
    }

    public func count(_ key: String, window: Duration, now: Date) async -> (count: Int, oldest: Date?) {
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        let horizon = nowMs - max(1, Int64(window.seconds * 1000))
        do {
            // Hits strictly after the horizon, as the in-memory limiter counts them.
            let replies = try await client.pipeline([
                ["ZCOUNT", .string(prefix + key), .string("(\(horizon)"), "+inf"],
                ["ZRANGEBYSCORE", .string(prefix + key), .string("(\(horizon)"), "+inf", "WITHSCORES", "LIMIT", "0", "1"],
            ])
            let count = Int(replies[0].int ?? 0)
            // RESP3 answers WITHSCORES as [[member, score]]; RESP2 as [member, score].
            var pair = replies[1].array ?? []
            if let first = pair.first?.array { pair = first }
            let score: Double? =
                pair.count >= 2 ? (pair[1].string.flatMap(Double.init) ?? { if case .double(let value) = pair[1] { value } else { nil } }()) : nil
            let oldest = score.map { Date(timeIntervalSince1970: $0 / 1000) }
            return (count, oldest)
        } catch {
            warn(error)
            return (0, nil)
        }
    }

    public func reset(_ key: String) async {
        do {
            try await client.send(["DEL", .string(prefix + key)])
        } catch {
            warn(error)
        }
    }

    private func warn(_ error: any Error) {
        let now = ContinuousClock.now
        let due = lastWarning.withLock { last -> Bool in
            if let last, now - last < .seconds(60) { return false }
            last = now
            return true
        }
        if due { logger.warning("rate limits allow everything while Redis is unreachable", metadata: ["error": "\(error)"]) }
    }
}
