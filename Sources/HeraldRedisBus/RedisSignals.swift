import Foundation
import HeraldEvents
import HeraldRedis
import Logging
import ServiceLifecycle
import Synchronization

/// Cluster signals over Redis pub/sub: PUBLISH from any instance, one pattern subscription per instance on a
/// connection of its own, re-established after Redis restarts. An instance ignores its own messages (it applied
/// them before broadcasting).
public final class RedisSignals: ClusterSignals, Service {
    let redis: RedisClient
    let prefix: String
    let logger: Logger
    let instance = UUID().uuidString
    private let listeners = Mutex<[String: [UUID: AsyncStream<String>.Continuation]]>([:])

    public init(redis: RedisClient, prefix: String, logger: Logger) {
        self.redis = redis
        self.prefix = prefix + "signal:"
        self.logger = logger
    }

    public func broadcast(_ channel: String, _ message: String) async {
        do {
            try await redis.send(["PUBLISH", .string(prefix + channel), .string(instance + "|" + message)])
        } catch {
            logger.warning("could not tell other instances", metadata: ["channel": "\(channel)", "error": "\(error)"])
        }
    }

    public func messages(_ channel: String) -> AsyncStream<String> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1000))
        listeners.withLock { $0[channel, default: [:]][id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.listeners.withLock { $0[channel]?.removeValue(forKey: id) }
        }
        return stream
    }

    /// Keeps the subscription open until shutdown.
    public func run() async throws {
        let redis = self.redis
        let pattern = prefix + "*"
        let logger = self.logger
        let name = "herald-signals:" + prefix.filter { !$0.isWhitespace }
        await cancelWhenGracefulShutdown {
            var failures = 0
            var subscribedBefore = false
            while !Task.isCancelled {
                do {
                    try await redis.withDedicatedConnection(onPush: { [weak self] push in self?.deliver(push) }) { connection in
                        // Named, so operators see (and tests find) the subscription in CLIENT LIST.
                        try await connection.send(["CLIENT", "SETNAME", .string(name)])
                        try await connection.send(["PSUBSCRIBE", .string(pattern)])
                        if subscribedBefore {
                            // Whatever was published while the connection was down is lost: listeners start over.
                            logger.info("listening to other instances again")
                            self.resyncAll()
                        }
                        subscribedBefore = true
                        failures = 0
                        while !Task.isCancelled && connection.isActive { try? await Task.sleep(for: .milliseconds(500)) }
                    }
                } catch {
                    failures += 1
                    if failures == 1 { logger.warning("not listening to other instances", metadata: ["error": "\(error)"]) }
                }
                if !Task.isCancelled { try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 6)), 5000))) }
            }
            self.listeners.withLock { all in
                for continuation in all.values.flatMap(\.values) { continuation.finish() }
                all.removeAll()
            }
        }
    }

    func resyncAll() {
        let targets = listeners.withLock { $0.values.flatMap(\.values) }
        for continuation in targets { continuation.yield(ClusterSignal.resync) }
    }

    /// `pmessage <pattern> <channel> <payload>`.
    func deliver(_ push: RESPValue) {
        guard let parts = push.array, parts.count == 4, parts[0].string == "pmessage", let channel = parts[2].string, let payload = parts[3].string,
            channel.hasPrefix(prefix)
        else { return }
        let name = String(channel.dropFirst(prefix.count))
        guard let separator = payload.firstIndex(of: "|"), payload[..<separator] != instance else { return }
        let message = String(payload[payload.index(after: separator)...])
        let targets = listeners.withLock { Array(($0[name] ?? [:]).values) }
        for continuation in targets { continuation.yield(message) }
    }
}
