import Crypto
import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A small pool of pipelined Redis connections, reconnected when they drop.
///
/// Redis answers each connection in order, so a few connections carry any number of concurrent commands: each call
/// takes the next connection round-robin and pipelines on it. A connection that closed (Redis restarted, the
/// network dropped) is replaced on its next use; while Redis stays unreachable, attempts back off from 100 ms to 5 s
/// and calls in between fail at once rather than pile up. Blocking commands (`XREADGROUP … BLOCK`) take a
/// connection of their own with ``withDedicatedConnection(_:)``.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    private let slots: [Slot]
    private let next = Atomic<Int>(0)

    public init(configuration: RedisConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.slots = (0..<max(1, configuration.poolSize)).map { _ in Slot() }
    }

    /// Sends one command; an error reply throws ``RedisReplyError``.
    @discardableResult
    public func send(_ command: [RedisArgument]) async throws -> RESPValue {
        try await connection().send(command)
    }

    /// Sends commands as one pipeline on one connection and returns every reply, error replies included. `timeout`
    /// replaces the configured command timeout for this pipeline (a timeout closes the connection).
    public func pipeline(_ commands: [[RedisArgument]], timeout: Duration? = nil) async throws -> [RESPValue] {
        try await connection().pipeline(commands, timeout: timeout)
    }

    /// Runs a Lua script by its SHA-1, loading it when Redis does not know it yet (after a restart, for instance).
    @discardableResult
    public func run(_ script: RedisScript, keys: [String], arguments: [RedisArgument]) async throws -> RESPValue {
        let tail: [RedisArgument] = [.integer(Int64(keys.count))] + keys.map { .string($0) } + arguments
        do {
            return try await send(["EVALSHA", .string(script.sha1)] + tail)
        } catch let error as RedisReplyError where error.code == "NOSCRIPT" {
            return try await send(["EVAL", .string(script.source)] + tail)
        }
    }

    /// Opens a connection for `body` alone (blocking reads, subscriptions) and closes it afterwards.
    public func withDedicatedConnection<T: Sendable>(
        onPush: (@Sendable (RESPValue) -> Void)? = nil, _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let connection = try await RedisConnection.connect(to: configuration, group: group, onPush: onPush)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Answers PING: for readiness checks.
    public func ping() async throws {
        let reply = try await send(["PING"])
        guard reply.string == "PONG" else { throw RedisReplyError(message: "PING answered \(reply)") }
    }

    public func shutdown() async {
        for slot in slots {
            if let connection = slot.current() { await connection.close() }
        }
    }

    func connection() async throws -> RedisConnection {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue % slots.count
        return try await slots[index].get(configuration: configuration, group: group, logger: logger)
    }

    /// One pooled connection and what is known about reaching Redis through it.
    final class Slot: Sendable {
        private struct State {
            var connection: RedisConnection?
            var connecting: Task<RedisConnection, any Error>?
            var failures = 0
            var retryAfter: ContinuousClock.Instant?
            var lastError: (any Error)?
        }
        private let state = Mutex(State())

        func current() -> RedisConnection? { state.withLock { $0.connection } }

        func get(configuration: RedisConfiguration, group: any EventLoopGroup, logger: Logger) async throws -> RedisConnection {
            enum Next {
                case ready(RedisConnection)
                case wait(Task<RedisConnection, any Error>)
                case fail(any Error)
            }
            let now = ContinuousClock.now
            let next: Next = state.withLock { state in
                if let connection = state.connection, connection.isActive { return .ready(connection) }
                state.connection = nil
                if let task = state.connecting { return .wait(task) }
                if let retryAfter = state.retryAfter, now < retryAfter, let error = state.lastError { return .fail(error) }
                let task = Task { try await RedisConnection.connect(to: configuration, group: group) }
                state.connecting = task
                return .wait(task)
            }
            switch next {
            case .ready(let connection): return connection
            case .fail(let error): throw error
            case .wait(let task):
                do {
                    let connection = try await task.value
                    let recovered = state.withLock { state -> Bool in
                        state.connecting = nil
                        state.connection = connection
                        defer { state.failures = 0 }
                        return state.failures > 0
                    }
                    if recovered { logger.info("reconnected to Redis", metadata: ["redis": "\(configuration)"]) }
                    return connection
                } catch {
                    let failures = state.withLock { state -> Int in
                        state.connecting = nil
                        state.failures += 1
                        state.lastError = error
                        let backoff = min(100 * (1 << min(state.failures - 1, 6)), 5000)
                        state.retryAfter = ContinuousClock.now + .milliseconds(backoff)
                        return state.failures
                    }
                    if failures == 1 { logger.warning("cannot connect to Redis", metadata: ["error": "\(error)"]) }
                    throw error
                }
            }
        }
    }
}

/// A Lua script, sent by its SHA-1 once Redis has it.
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Array(Insecure.SHA1.hash(data: Array(source.utf8))).hexString
    }
}
