import Foundation
import HTTPTypes
import HeraldCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
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

/// A fast answer as the fast path writes it: the status line and headers, complete but for the fields that
/// change with every request (request id, date, length), and the body. A route that gives the same answer to many
/// requests makes the head once and reuses it.
public struct FastResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: ByteBuffer?

    public init(head: HTTPResponseHead, body: ByteBuffer?) {
        self.head = head
        self.body = body
    }

    /// `answer` with `common` added, and the security defaults unless it has them.
    public init(_ answer: FastAnswer, adding common: HTTPFields = [:]) {
        var fields = answer.headers
        for field in common { fields[field.name] = field.value }
        if !answer.hasSecurityHeaders { SecurityHeadersMiddleware.addDefaults(to: &fields) }
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 3)
        for field in fields where !Self.perRequest.contains(field.name) { headers.add(name: field.name.rawName, value: field.value) }
        self.init(
            head: HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: Int(answer.status.code)), headers: headers),
            body: answer.body)
    }

    /// The fields the fast path sets on every answer.
    private static let perRequest: Set<HTTPField.Name> = [.requestId, .date, .contentLength]
}

/// A hot GET route whose answer can come from memory: the widget's feed, read by every page view.
public protocol FastRoute: Sendable {
    /// The service that owns the route and its template, as the metrics label them.
    var service: String { get }
    var route: String { get }
    /// The answer when it is in memory and nothing but the cached bytes decides it; nil lets the router handle the
    /// request as usual (a cold cache, an unknown key, anything unusual). `path` is the request's without its
    /// query. Must not block: it runs on the event loop.
    func answer(path: Substring, request: HTTPRequestHead) -> FastResponse?
}

/// A hot POST route answered once its body is read and its work done, without the router: the widget's beacons.
public protocol FastPostRoute: FastRoute {
    /// The longest body the route reads; a longer one, or one without `Content-Length`, goes to the router.
    var maxBody: Int { get }
    /// What the route's own middleware adds to every answer: the fast path adds it to the refusals it renders (the
    /// route's own answers carry it already).
    var commonHeaders: HTTPFields { get }
    /// Whether the route reads requests for `path`, decided before the body arrives.
    func accepts(path: Substring) -> Bool
    /// The answer once the route's work is done, or nil to hand the request to the router, replayed unchanged:
    /// anything but the plain case, so that every refusal is the router's own. A future failed with a
    /// ``HeraldError`` is answered with its problem document, as the router would.
    func answer(path: Substring, request: HTTPRequestHead, body: ByteBuffer, eventLoop: any EventLoop) -> EventLoopFuture<FastResponse>?
}

extension FastPostRoute {
    public func answer(path: Substring, request: HTTPRequestHead) -> FastResponse? { nil }
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

/// Answers a few hot requests on the event loop from bytes already in memory, before Hummingbird converts the
/// request to swift-http-types, turns it into a task and runs the middleware chain: measured, that chain (a task per
/// request, six middleware, the router) was about half of the feed's CPU, and the conversions of the request and the
/// response a further fifth of what remained (docs/PERFORMANCE.md). It sits between NIO's HTTP/1 decoder and the
/// conversion to swift-http-types (``HeraldHTTP1Channel``). Everything else, and anything unusual about a request
/// (another method or version, `Connection: close`, a request still being answered on the connection), goes on to
/// the router unchanged. The response carries the headers the chain would add, is counted in the same metrics and
/// logged as the access log does.
///
/// A POST route's work is asynchronous: until its answer is written, whatever else arrives on the connection waits
/// (and the socket is not read), so answers keep the order of their requests; events such as a graceful shutdown's
/// wait too, so the connection is not closed before the answer is out.
public final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private let routes: [any FastRoute]
    private let postRoutes: [any FastPostRoute]
    private let options: FastPathOptions
    /// The answer to the request being read, written once its end arrives.
    private var pending: (response: FastResponse, route: any FastRoute, head: HTTPRequestHead, start: ContinuousClock.Instant)?
    /// Requests passed to the router whose responses have not ended: while there are any, a fast answer would
    /// overtake them on a pipelining connection.
    private var forwarded = 0
    /// A POST for a fast route whose body is being read.
    private var reading: (route: any FastPostRoute, head: HTTPRequestHead, path: Substring, body: ByteBuffer, start: ContinuousClock.Instant)?
    /// A fast POST's work is in progress: what arrives meanwhile waits in `waiting`, and reads wait too.
    private var working = false
    private var waiting = CircularBuffer<Deferred>()
    private var readWhileWorking = false

    private enum Deferred {
        case read(NIOAny)
        case event(Any)
        case error(any Error)
    }

    public init(routes: [any FastRoute], options: FastPathOptions) {
        self.routes = routes
        self.postRoutes = routes.compactMap { $0 as? any FastPostRoute }
        self.options = options
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if working {
            waiting.append(.read(data))
            return
        }
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if forwarded == 0, let found = match(head) {
                pending = (found.response, found.route, head, ContinuousClock.now)
                return
            }
            if forwarded == 0, let (route, path) = matchPost(head) {
                reading = (route, head, path, context.channel.allocator.buffer(capacity: route.maxBody), ContinuousClock.now)
                return
            }
            forwarded += 1
            context.fireChannelRead(data)
        case .body(var buffer):
            if reading != nil {
                reading?.body.writeBuffer(&buffer)
                return
            }
            // A GET with a body: the answer does not depend on it.
            if pending == nil { context.fireChannelRead(data) }
        case .end:
            if let read = reading {
                reading = nil
                work(context: context, read.route, request: read.head, path: read.path, body: read.body, start: read.start)
                return
            }
            guard let answered = pending else {
                context.fireChannelRead(data)
                return
            }
            pending = nil
            respond(
                context: context, answered.response, route: answered.route, request: answered.head,
                requestId: Self.requestId(answered.head), start: answered.start)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A graceful shutdown's quiesce event closes an idle connection at once: the POST in hand is answered first.
        if working {
            waiting.append(.event(event))
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A parse error in what followed the POST would have the router answer 400 and close the connection before the
    /// POST's answer: it waits its turn too.
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if working {
            waiting.append(.error(error))
            return
        }
        context.fireErrorCaught(error)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), forwarded > 0 { forwarded -= 1 }
        context.write(data, promise: promise)
    }

    public func read(context: ChannelHandlerContext) {
        if working {
            readWhileWorking = true
            return
        }
        context.read()
    }

    /// The request's path without its query, when it is a plain HTTP/1.1 request the fast path may answer:
    /// `Connection: close` (or an upgrade) is the router's to honour; `keep-alive`, which browsers send, is ours.
    private static func plainPath(_ head: HTTPRequestHead) -> Substring? {
        guard head.version == .http1_1 else { return nil }
        if let connection = Self.field(head.headers, "Connection"), connection.lowercased() != "keep-alive" { return nil }
        let uri = head.uri
        return uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...]
    }

    private func match(_ head: HTTPRequestHead) -> (response: FastResponse, route: any FastRoute)? {
        guard head.method == .GET, let path = Self.plainPath(head) else { return nil }
        for route in routes {
            if let response = route.answer(path: path, request: head) { return (response, route) }
        }
        return nil
    }

    /// The POST route that reads this request, if any, and the request's path without its query. Credentials (which
    /// the router would check), `Expect`, a body without `Content-Length` or longer than the route reads, and
    /// `Connection` other than keep-alive are the router's.
    private func matchPost(_ head: HTTPRequestHead) -> (any FastPostRoute, Substring)? {
        guard head.method == .POST, !postRoutes.isEmpty, let path = Self.plainPath(head) else { return nil }
        let headers = head.headers
        guard !headers.contains(name: "Authorization"), !headers.contains(name: "Cookie"), !headers.contains(name: "Expect"),
            !headers.contains(name: "Transfer-Encoding"), let length = headers.first(name: "Content-Length").flatMap({ Int($0) })
        else { return nil }
        return postRoutes.first { length <= $0.maxBody && $0.accepts(path: path) }.map { ($0, path) }
    }

    /// Runs a POST route's work and answers when it is done; a route that declines hands the request to the router.
    private func work(
        context: ChannelHandlerContext, _ route: any FastPostRoute, request: HTTPRequestHead, path: Substring, body: ByteBuffer,
        start: ContinuousClock.Instant
    ) {
        guard let future = route.answer(path: path, request: request, body: body, eventLoop: context.eventLoop) else {
            forwarded += 1
            context.fireChannelRead(wrapInboundOut(.head(request)))
            if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
            context.fireChannelRead(wrapInboundOut(.end(nil)))
            return
        }
        working = true
        let requestId = Self.requestId(request)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        future.hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            let response: FastResponse
            switch result {
            case .success(let done):
                response = done
            case .failure(let error):
                if !(error is HeraldError) {
                    handler.options.logger.error("request failed", metadata: ["error": "\(error)", "request_id": "\(requestId)"])
                }
                let answer = ProblemMiddleware.answer(for: error as? HeraldError ?? .internalError, instance: String(path), requestId: requestId)
                response = FastResponse(answer, adding: route.commonHeaders)
            }
            handler.respond(context: context, response, route: route, request: request, requestId: requestId, start: start)
            handler.working = false
            handler.resume(context: context)
        }
    }

    /// Goes on with what arrived while a POST was worked on, then with reading.
    private func resume(context: ChannelHandlerContext) {
        guard context.channel.isActive else {
            waiting.removeAll()
            return
        }
        var drained = false
        while !working, let next = waiting.popFirst() {
            switch next {
            case .read(let data):
                channelRead(context: context, data: data)
                drained = true
            case .event(let event):
                context.fireUserInboundEventTriggered(event)
            case .error(let error):
                context.fireErrorCaught(error)
            }
        }
        // What went on to the router outside a socket read reaches it only with a read-complete event.
        if drained { context.fireChannelReadComplete() }
        if !working && readWhileWorking {
            readWhileWorking = false
            context.read()
        }
    }

    /// The client's well-formed `X-Request-Id`, or a new one.
    private static func requestId(_ request: HTTPRequestHead) -> String {
        field(request.headers, "X-Request-Id").flatMap { RequestIdMiddleware.isWellFormed($0) ? $0 : nil } ?? newRequestId()
    }

    /// A header's value as the router reads it: repeated fields joined with ", " (swift-http-types' subscript), so
    /// a second `X-Forwarded-For` line or a repeated country header means the same on both paths.
    public static func field(_ headers: HTTPHeaders, _ name: String) -> String? {
        // One pass without an array in the usual case of one line (or none).
        var first: String?
        var more: [String] = []
        for (key, value) in headers where key.utf8.count == name.utf8.count && sameASCII(key, name) {
            if first == nil { first = value } else { more.append(value) }
        }
        guard let first, !more.isEmpty else { return first }
        return ([first] + more).joined(separator: ", ")
    }

    /// Header names compared as HTTP does: ASCII letters without regard to case.
    private static func sameASCII(_ a: String, _ b: String) -> Bool {
        for (x, y) in zip(a.utf8, b.utf8) where x != y {
            let lower = x | 0x20
            guard lower == y | 0x20, lower >= UInt8(ascii: "a"), lower <= UInt8(ascii: "z") else { return false }
        }
        return true
    }

    private func respond(
        context: ChannelHandlerContext, _ response: FastResponse, route: any FastRoute, request: HTTPRequestHead, requestId: String,
        start: ContinuousClock.Instant
    ) {
        var head = response.head
        let body = head.status == .notModified ? nil : response.body
        head.headers.add(name: "X-Request-Id", value: requestId)
        head.headers.add(name: "Date", value: HTTPDate.now())
        head.headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)

        if options.recordsMetrics {
            let key = InstrumentCache.Key(service: route.service, method: request.method.rawValue, route: route.route, status: Int(head.status.code))
            let (counter, timer) = InstrumentCache.shared.instruments(for: key)
            counter.increment()
            timer.recordInterval(since: start)
        }
        if options.logger.logLevel <= .info {
            var logger = options.logger
            logger[metadataKey: "request_id"] = .string(requestId)
            let uri = request.uri
            AccessLogMiddleware.log(
                logger, method: request.method.rawValue, path: String(uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...]),
                status: Int(head.status.code), since: start,
                client: ClientAddress.resolve(
                    peer: context.remoteAddress?.ipAddress, forwardedFor: Self.field(request.headers, "X-Forwarded-For"),
                    trusted: options.trustedProxies))
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
