import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 child channel with ``FastPathHandler`` where it costs least: between NIO's HTTP/1 decoder
/// and the conversion to swift-http-types, so the requests it answers are never converted and its answers are
/// written as NIO response heads. The rest of the pipeline is `HTTP1Channel`'s: the same decoder limits, no
/// pipelining assistance (NIOAsyncChannel serialises requests), the conversion, Hummingbird's connection state
/// handler (graceful shutdown, idle timeout) and the async channel the router reads.
public struct HeraldHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder
    let fastRoutes: [any FastRoute]
    let options: FastPathOptions

    public init(responder: @escaping HTTPChannelHandler.Responder, fastRoutes: [any FastRoute], options: FastPathOptions) {
        self.responder = responder
        self.fastRoutes = fastRoutes
        self.options = options
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            // HTTP1Channel's defaults.
            limits.maxHeaderFieldSize = 80 * 1024
            limits.maxHeaderListSize = 80 * 1024
            limits.maxHeaderFieldCount = 1000
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits
            )
            if !fastRoutes.isEmpty { try pipeline.addHandler(FastPathHandler(routes: fastRoutes, options: options)) }
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    public func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the fast path for `fastRoutes` (plain `HTTP1Channel` when there are none).
    public static func heraldHTTP1(fastRoutes: [any FastRoute], options: FastPathOptions) -> HTTPServerBuilder {
        guard !fastRoutes.isEmpty else { return .http1() }
        return HTTPServerBuilder { responder in HeraldHTTP1Channel(responder: responder, fastRoutes: fastRoutes, options: options) }
    }
}
