import Foundation
import HTTPTypes
import HeraldCore
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes
import Synchronization

/// A response already in memory, answered on the event loop without entering the router.
public struct FastAnswer: Sendable {
    public var status: HTTPResponse.Status
    /// The route's own headers; the fast path adds what the middleware chain would (security headers, request id,
    /// date, length).
    public var headers: HTTPFields
    public var body: ByteBuffer?
    /// The headers already hold the security defaults (a route that builds them once per answer and reuses them).
    public var hasSecurityHeaders: Bool

    public init(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer?, hasSecurityHeaders: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.hasSecurityHeaders = hasSecurityHeaders
    }
}

/// A hot GET route whose answer can come from memory: the widget's feed, read by every page view.
public protocol FastRoute: Sendable {
    /// The service that owns the route and its template, as the metrics label them.
    var service: String { get }
    var route: String { get }
    /// The answer when it is in memory and nothing but the cached bytes decides it; nil lets the router handle the
    /// request as usual (a cold cache, an unknown key, anything unusual). Must not block: it runs on the event loop.
    func answer(path: Substring, request: HTTPRequest) -> FastAnswer?
}

/// What the fast path must do as the middleware chain does.
public struct FastPathOptions: Sendable {
    public var recordsMetrics: Bool
    public var trustedProxies: [CIDR]
    public var logger: Logger

    public init(recordsMetrics: Bool, trustedProxies: [CIDR], logger: Logger) {
        self.recordsMetrics = recordsMetrics
        self.trustedProxies = trustedProxies
        self.logger = logger
    }
}

/// Answers a few hot GET requests on the event loop from bytes already in memory, before Hummingbird turns the
/// request into a task and runs the middleware chain: measured, that chain (a task per request, six middleware,
/// the router) was about half of the feed's CPU (docs/PERFORMANCE.md). Everything else, and anything unusual about
/// a request (another method, `Connection: close`, a request still being answered on the connection), goes on to
/// the router unchanged. The response carries the headers the chain would add, is counted in the same metrics and
/// logged as the access log does.
public final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let routes: [any FastRoute]
    private let options: FastPathOptions
    /// The answer to the request being read, written once its end arrives.
    private var pending: (answer: FastAnswer, route: any FastRoute, head: HTTPRequest, start: ContinuousClock.Instant)?
    /// Requests passed to the router whose responses have not ended: while there are any, a fast answer would
    /// overtake them on a pipelining connection.
    private var forwarded = 0

    public init(routes: [any FastRoute], options: FastPathOptions) {
        self.routes = routes
        self.options = options
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if forwarded == 0, let found = match(head) {
                pending = (found.answer, found.route, head, ContinuousClock.now)
                return
            }
            forwarded += 1
            context.fireChannelRead(data)
        case .body:
            // A GET with a body: the answer does not depend on it.
            if pending == nil { context.fireChannelRead(data) }
        case .end:
            guard let answered = pending else {
                context.fireChannelRead(data)
                return
            }
            pending = nil
            respond(context: context, answered.answer, route: answered.route, request: answered.head, start: answered.start)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), forwarded > 0 { forwarded -= 1 }
        context.write(data, promise: promise)
    }

    private func match(_ head: HTTPRequest) -> (answer: FastAnswer, route: any FastRoute)? {
        guard head.method == .get, let path = head.path else { return nil }
        // `Connection: close` (or an upgrade) is the router's to honour; `keep-alive`, which browsers send, is ours.
        if let connection = head.headerFields[.connection], connection.lowercased() != "keep-alive" { return nil }
        let bare = path.firstIndex(of: "?").map { path[..<$0] } ?? path[...]
        for route in routes {
            if let answer = route.answer(path: bare, request: head) { return (answer, route) }
        }
        return nil
    }

    private func respond(
        context: ChannelHandlerContext, _ answer: FastAnswer, route: any FastRoute, request: HTTPRequest, start: ContinuousClock.Instant
    ) {
        var headers = answer.headers
        if !answer.hasSecurityHeaders { SecurityHeadersMiddleware.addDefaults(to: &headers) }
        let supplied = request.headerFields[.requestId]
        let requestId = supplied.flatMap { RequestIdMiddleware.isWellFormed($0) ? $0 : nil } ?? FastPathHandler.newRequestId()
        headers[.requestId] = requestId
        headers[.date] = HTTPDate.now()
        let body = answer.status == .notModified ? nil : answer.body
        headers[.contentLength] = String(body?.readableBytes ?? 0)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: headers))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)

        if options.recordsMetrics {
            let key = InstrumentCache.Key(service: route.service, method: "GET", route: route.route, status: Int(answer.status.code))
            let (counter, timer) = InstrumentCache.shared.instruments(for: key)
            counter.increment()
            timer.recordInterval(since: start)
        }
        if options.logger.logLevel <= .info {
            var logger = options.logger
            logger[metadataKey: "request_id"] = .string(requestId)
            AccessLogMiddleware.log(
                logger, method: "GET", path: String(request.path?.split(separator: "?", maxSplits: 1).first ?? ""), status: answer.status.code,
                since: start,
                client: ClientAddress.resolve(
                    peer: context.remoteAddress?.ipAddress, forwardedFor: request.headerFields[.xForwardedFor], trusted: options.trustedProxies))
        }
    }

    /// 32 hex digits, as Hummingbird's request ids: a random value drawn once per process plus a counter, so ids
    /// are unique without a system call per request.
    static func newRequestId() -> String {
        let low = requestIdBase.low &+ requestIdCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        return hex(requestIdBase.high) + hex(low)
    }

    private static let requestIdBase: (high: UInt64, low: UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()
    private static let requestIdCounter = Atomic<UInt64>(0)

    private static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * UInt64(index))) & 0x0F
                buffer[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 16
        }
    }
}

/// The `Date` header's IMF-fixdate, formatted once a second.
enum HTTPDate {
    private static let cached = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        let second = Int(Date().timeIntervalSince1970)
        return cached.withLock { cached in
            if cached.second != second { cached = (second, format(second)) }
            return cached.text
        }
    }

    static func format(_ unixSeconds: Int) -> String {
        var time = time_t(unixSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
