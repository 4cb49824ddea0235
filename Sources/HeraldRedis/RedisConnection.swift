import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// What went wrong talking to Redis, apart from an error reply.
public enum RedisConnectionError: Error, CustomStringConvertible, Sendable {
    /// The connection closed (Redis restarted, the network dropped) before the reply arrived.
    case closed
    /// No reply within the command timeout; the connection is closed, since later replies could no longer be matched.
    case timeout(Duration)
    /// Redis could not be reached.
    case unreachable(String)
    /// The handshake (HELLO, AUTH, SELECT) was refused.
    case handshake(String)

    public var description: String {
        switch self {
        case .closed: "the connection to Redis closed before it answered"
        case .timeout(let duration): "Redis did not answer within \(duration)"
        case .unreachable(let reason): "cannot reach Redis: \(reason)"
        case .handshake(let reason): "Redis refused the connection: \(reason)"
        }
    }
}

/// Decodes replies as they arrive.
final class RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try RESPParser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// A batch of commands written together (a pipeline), answered in order.
struct RedisRequest {
    var commands: [[RedisArgument]]
    var promise: EventLoopPromise<[RESPValue]>
}

/// Pairs replies with the commands that asked for them: Redis answers each connection's commands in order, so a
/// FIFO queue of waiting requests is all the bookkeeping pipelining needs. Push messages go to `onPush`.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Waiting {
        var expected: Int
        var replies: [RESPValue]
        var promise: EventLoopPromise<[RESPValue]>
    }

    private var queue: CircularBuffer<Waiting> = []
    private let onPush: (@Sendable (RESPValue) -> Void)?

    init(onPush: (@Sendable (RESPValue) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard !request.commands.isEmpty else {
            request.promise.succeed([])
            promise?.succeed()
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64 * request.commands.count)
        for command in request.commands { RESPEncoder.encode(command, into: &buffer) }
        queue.append(Waiting(expected: request.commands.count, replies: [], promise: request.promise))
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push(let parts) = value {
            // In RESP3, (un)subscribing is confirmed with a push; it answers the command that asked.
            let kind = parts.first?.string?.lowercased() ?? ""
            if !queue.isEmpty, ["subscribe", "psubscribe", "unsubscribe", "punsubscribe"].contains(kind) {
                complete(with: value)
            } else {
                onPush?(value)
            }
            return
        }
        guard !queue.isEmpty else {
            // A reply nobody asked for: the stream is out of step, and the only safe move is to start over.
            context.close(promise: nil)
            return
        }
        complete(with: value)
    }

    private func complete(with value: RESPValue) {
        queue[queue.startIndex].replies.append(value)
        if queue[queue.startIndex].replies.count == queue[queue.startIndex].expected {
            let done = queue.removeFirst()
            done.promise.succeed(done.replies)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisConnectionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let waiting = queue.popFirst() { waiting.promise.fail(error) }
    }
}

/// One connection to Redis, speaking RESP3. Commands may be sent from any task; a batch is written as one pipeline.
public final class RedisConnection: Sendable {
    let channel: any Channel
    let timeout: Duration
    /// Set when a reply timed out: the channel is closing, and the pool must not hand it out meanwhile.
    private let abandoned = Atomic<Bool>(false)

    init(channel: any Channel, timeout: Duration) {
        self.channel = channel
        self.timeout = timeout
    }

    public var isActive: Bool { channel.isActive && !abandoned.load(ordering: .relaxed) }

    /// Connects, then says HELLO 3 (with AUTH when configured) and SELECTs the database.
    static func connect(
        to configuration: RedisConfiguration, group: any EventLoopGroup, onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        let host = configuration.host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.init(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: host.first?.isNumber == true ? nil : host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(onPush: onPush))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            throw RedisConnectionError.unreachable("\(configuration.host):\(configuration.port): \(error)")
        }
        let connection = RedisConnection(channel: channel, timeout: configuration.commandTimeout)
        do {
            var hello: [RedisArgument] = ["HELLO", "3"]
            if let password = configuration.password {
                hello += ["AUTH", .string(configuration.username ?? "default"), .string(password)]
            }
            var commands = [hello]
            if configuration.database != 0 { commands.append(["SELECT", .integer(Int64(configuration.database))]) }
            if let name = configuration.clientName { commands.append(["CLIENT", "SETNAME", .string(name)]) }
            for reply in try await connection.pipeline(commands) {
                if case .error(let message) = reply { throw RedisConnectionError.handshake(message) }
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    /// Sends one command and returns its reply; an error reply throws ``RedisReplyError``.
    @discardableResult
    public func send(_ command: [RedisArgument]) async throws -> RESPValue {
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply { throw RedisReplyError(message: message) }
        return reply
    }

    /// Sends commands in one write and returns their replies in order, error replies included (one failed command
    /// does not fail the others).
    public func pipeline(_ commands: [[RedisArgument]], timeout: Duration? = nil) async throws -> [RESPValue] {
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        let limit = timeout ?? self.timeout
        let channel = self.channel
        let deadline = channel.eventLoop.scheduleTask(in: .init(limit)) { [self] in
            self.abandoned.store(true, ordering: .relaxed)
            promise.fail(RedisConnectionError.timeout(limit))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        channel.writeAndFlush(RedisRequest(commands: commands, promise: promise)).whenFailure { error in
            promise.fail(error is ChannelError ? RedisConnectionError.closed : error)
        }
        return try await promise.futureResult.get()
    }

    public func close() async {
        try? await channel.close()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
