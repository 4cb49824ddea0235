import Crypto
import Foundation
import HTTPTypes
import HeraldContracts
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import Hummingbird
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// A widget script (the widget, the push opt-in), loaded once from the bundle, with its ETag.
struct WidgetAsset: Sendable {
    var bytes: ByteBuffer
    var etag: String

    static func load(_ name: String = "widget") -> WidgetAsset {
        let data = Bundle.module.url(forResource: name, withExtension: "js").flatMap { try? Data(contentsOf: $0) } ?? Data()
        let digest = SHA256.hash(data: data).prefix(12).hexString
        return WidgetAsset(bytes: ByteBuffer(data: data), etag: "\"\(digest)\"")
    }

    init(bytes: ByteBuffer, etag: String) {
        self.bytes = bytes
        self.etag = etag
    }

    init(script: String) {
        self.init(bytes: ByteBuffer(string: script), etag: "\"\(SHA256.hash(data: Data(script.utf8)).prefix(12).hexString)\"")
    }
}

/// `GET /widget/v1/{publicKey}/feed` from memory on the event loop, when the key is known and its feed built and
/// fresh; otherwise the route builds it.
final class FeedFastRoute: FastRoute {
    let feeds: FeedCache
    let maxAge: Int
    var service: String { NotificationsService.name }
    var route: String { "/widget/v1/{publicKey}/feed" }
    /// Each built feed's complete response heads for 200 and 304, made once per ETag: building and validating a dozen
    /// header fields was a visible part of every request.
    private let heads = Mutex<[String: (ok: HTTPResponseHead, notModified: HTTPResponseHead)]>([:])

    init(feeds: FeedCache, maxAge: Int) {
        self.feeds = feeds
        self.maxAge = maxAge
    }

    func answer(path: Substring, request: HTTPRequestHead) -> FastResponse? {
        guard let key = widgetPublicKey(in: path, suffix: "/feed"), let entry = feeds.cachedFeed(publicKey: String(key)) else { return nil }
        let notModified = NotificationsService.matches(FastPathHandler.field(request.headers, "If-None-Match"), entry.etag)
        let prepared =
            heads.withLock { $0[entry.etag] }
            ?? {
                // What WidgetCORSMiddleware and SecurityHeadersMiddleware add on the router's way.
                func head(_ answer: FastAnswer) -> HTTPResponseHead { FastResponse(answer, adding: WidgetCORSMiddleware.headers).head }
                let made = (
                    ok: head(NotificationsService.feedAnswer(entry, ifNoneMatch: nil, maxAge: maxAge)),
                    notModified: head(NotificationsService.feedAnswer(entry, ifNoneMatch: "*", maxAge: maxAge))
                )
                heads.withLock { cache in
                    if cache.count > 10_000 { cache.removeAll() }
                    cache[entry.etag] = made
                }
                return made
            }()
        return notModified ? FastResponse(head: prepared.notModified, body: nil) : FastResponse(head: prepared.ok, body: entry.bytes)
    }
}

/// `POST /widget/v1/{publicKey}/beacons` on the event loop (``FastPathHandler``) when the site and the day's salt
/// are in memory and the request is valid; anything else (an unknown key, a body the router would refuse) is the
/// router's. The beacons are written by the same ``BeaconWriter`` and the answer comes once they are durable.
final class BeaconsFastRoute: FastPostRoute {
    let notifications: NotificationsService
    var service: String { NotificationsService.name }
    var route: String { "/widget/v1/{publicKey}/beacons" }
    var maxBody: Int { NotificationsService.maxBeaconBody }
    /// What WidgetCORSMiddleware adds on the router's way, refusals included.
    var commonHeaders: HTTPFields { WidgetCORSMiddleware.headers }

    init(notifications: NotificationsService) {
        self.notifications = notifications
    }

    func accepts(path: Substring) -> Bool {
        widgetPublicKey(in: path, suffix: "/beacons") != nil
    }

    func answer(path: Substring, request: HTTPRequestHead, body: ByteBuffer, eventLoop: any EventLoop) -> EventLoopFuture<FastResponse>? {
        guard let key = widgetPublicKey(in: path, suffix: "/beacons"), let site = notifications.feeds.cachedRoute(publicKey: String(key)) else {
            return nil
        }
        let now = Date()
        guard let submission = try? notifications.readBeacons(body, site: site, now: now) else { return nil }
        let answer = FastResponse(head: Self.acceptedHead, body: BeaconResponse(accepted: submission.events).body)
        if submission.beacons.isEmpty { return eventLoop.makeSucceededFuture(answer) }
        let day = site.clock.dayKey(atMillis: now.unixMilliseconds)
        guard let salt = notifications.hasher.cachedKeyedHash(day: day) else { return nil }
        let headers = request.headers
        let visit = notifications.visit(
            of: submission, site: site, day: day, salt: salt, userAgent: FastPathHandler.field(headers, "User-Agent"),
            country: NotificationsService.countryCode(FastPathHandler.field(headers, notifications.options.countryHeader)))
        let writer = notifications.beacons
        let promise = eventLoop.makePromise(of: FastResponse.self)
        writer.write(visit, route: site) { result in promise.completeWith(result.map { answer }) }
        return promise.futureResult
    }

    /// The head of every 202: the router's, with the widget paths' CORS headers.
    private static let acceptedHead = FastResponse(BeaconResponse(accepted: 0).answer, adding: WidgetCORSMiddleware.headers).head
}

/// The public key in `/widget/v1/{publicKey}<suffix>`, or nil when `path` is not that route.
/// Compares UTF-8 bytes (every request on the fast path asks, twice for beacons), not Characters.
func widgetPublicKey(in path: Substring, suffix: String) -> Substring? {
    let prefix = "/widget/v1/".utf8
    let bytes = path.utf8
    guard bytes.count > prefix.count + suffix.utf8.count, bytes.starts(with: prefix),
        bytes.reversed().starts(with: suffix.utf8.reversed())
    else { return nil }
    let start = bytes.index(bytes.startIndex, offsetBy: prefix.count)
    let end = bytes.index(bytes.endIndex, offsetBy: -suffix.utf8.count)
    guard !bytes[start..<end].contains(UInt8(ascii: "/")) else { return nil }
    return path[start..<end]
}

/// The public widget paths may be called from any origin and embedded cross-origin; their errors carry the
/// same headers so the widget can read them. Only these paths allow this.
struct WidgetCORSMiddleware: RouterMiddleware {
    typealias Context = HeraldRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        if request.method == .options {
            response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Content-Type"
            response.headers[.accessControlMaxAge] = "86400"
        } else {
            do {
                response = try await next(request, context)
            } catch {
                response = ProblemMiddleware.response(
                    for: ProblemMiddleware.heraldError(for: error, request: request), request: request, context: context)
            }
        }
        for field in Self.headers { response.headers[field.name] = field.value }
        return response
    }

    /// On every answer of the widget paths, refusals included (``FeedFastRoute`` and ``BeaconsFastRoute`` add them too).
    static let headers: HTTPFields = [.accessControlAllowOrigin: "*", .crossOriginResourcePolicy: "cross-origin"]
}

/// The body of `POST /widget/v1/{publicKey}/beacons` (docs/WIDGET.md, openapi.json). Read with ``JSONReader``, not
/// `JSONDecoder`: this runs for every beacon request, and the `Codable` path cost more than the rest of the request.
struct BeaconRequest {
    struct Event {
        var type: String
        var notificationId: UUID?
        var variantId: UUID?
        var activityId: UUID?
        var goal: String?
        var value: Double?
        var path: String?
        /// Milliseconds since 1970, by the visitor's clock.
        var at: Double?
        var exposure: Bool?
        var firstConversion: Bool?
        var firstSeenAt: Double?
        var previousConversionAt: Double?
        var touches: [TouchBody]?
    }

    struct TouchBody {
        var notificationId: UUID
        var variantId: UUID?
        var type: String
        var at: Double
    }

    struct UTM {
        var source: String?
        var medium: String?
        var campaign: String?
    }

    var visitorId: String
    var sessionId: String?
    var referrer: String?
    var utm: UTM?
    var events: [Event]

    /// Reads the body; wrong types and missing fields are collected in `validator` under their paths.
    init(_ node: JSONNode, validator: inout Validator) throws {
        guard case .object = node else { throw HeraldError.badRequest("The request body must be a JSON object.", slug: "malformed-json") }
        let body = JSONFields(node)
        visitorId = body.string("visitorId", required: true, into: &validator) ?? ""
        sessionId = body.string("sessionId", into: &validator)
        referrer = body.string("referrer", into: &validator)
        utm = body.object("utm", into: &validator).map { utm in
            UTM(
                source: utm.string("source", into: &validator), medium: utm.string("medium", into: &validator),
                campaign: utm.string("campaign", into: &validator)
            )
        }
        var events: [Event] = []
        for (path, element) in body.array("events", required: true, into: &validator) ?? [] {
            guard case .object = element else {
                validator.add(path, "must be an object")
                continue
            }
            let event = JSONFields(element, path: path)
            let touches = event.array("touches", into: &validator)?.compactMap { path, element -> TouchBody? in
                guard case .object = element else {
                    validator.add(path, "must be an object")
                    return nil
                }
                let touch = JSONFields(element, path: path)
                let notificationId = touch.uuid("notificationId", required: true, into: &validator)
                let variantId = touch.uuid("variantId", into: &validator)
                let type = touch.string("type", required: true, into: &validator)
                let at = touch.number("at", required: true, into: &validator)
                guard let notificationId, let type, let at else { return nil }
                return TouchBody(notificationId: notificationId, variantId: variantId, type: type, at: at)
            }
            events.append(
                Event(
                    type: event.string("type", required: true, into: &validator) ?? "",
                    notificationId: event.uuid("notificationId", into: &validator),
                    variantId: event.uuid("variantId", into: &validator), activityId: event.uuid("activityId", into: &validator),
                    goal: event.string("goal", into: &validator), value: event.number("value", into: &validator),
                    path: event.string("path", into: &validator), at: event.number("at", into: &validator),
                    exposure: event.bool("exposure", into: &validator), firstConversion: event.bool("firstConversion", into: &validator),
                    firstSeenAt: event.number("firstSeenAt", into: &validator),
                    previousConversionAt: event.number("previousConversionAt", into: &validator), touches: touches
                )
            )
        }
        self.events = events
    }
}

/// `{"accepted": n}`, written directly rather than through `JSONEncoder`: it answers every beacon request.
struct BeaconResponse: ResponseGenerator, Sendable {
    var accepted: Int

    /// The answer, for the router and ``BeaconsFastRoute`` alike.
    var answer: FastAnswer {
        FastAnswer(status: .accepted, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"], body: body)
    }

    var body: ByteBuffer { ByteBuffer(string: "{\"accepted\":\(accepted)}") }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let answer = answer
        return Response(status: answer.status, headers: answer.headers, body: ResponseBody(byteBuffer: answer.body ?? ByteBuffer()))
    }
}

struct PresenceBody: Encodable, Sendable {
    var path: String
    var visitors: Int
}

struct ContextBody: Encodable, Sendable {
    var country: String?
}

extension NotificationsService {
    static let beaconTypes: Set<String> = ["pageview", "impression", "hover", "click", "close", "conversion", "heartbeat"]
    static let touchTypes: Set<String> = ["impression", "hover", "click"]
    static let maxBeaconBody = 16 * 1024

    func addWidgetRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let asset = widget
        router.get("widget.js") { request, _ in Self.script(asset, request: request) }
        let group = router.group("widget/v1").add(middleware: WidgetCORSMiddleware())
        for path in [
            ":publicKey/feed", ":publicKey/stream", ":publicKey/beacons", ":publicKey/presence", ":publicKey/context", ":publicKey/push",
            ":publicKey/push-subscriptions",
        ] {
            group.on(RouterPath(path), method: .options) { _, _ in Response(status: .noContent) }
        }
        group.get(":publicKey/feed", use: feed)
        group.get(":publicKey/stream", use: liveStream)
        group.post(":publicKey/beacons", use: recordBeacons)
        group.get(":publicKey/presence", use: presenceCount)
        group.get(":publicKey/context", use: visitorContext)
        addPushWidgetRoutes(to: group)
    }

    /// `If-None-Match` against an ETag: a list, `*` and weak validators (`W/`) as RFC 9110 says.
    static func matches(_ header: String?, _ etag: String) -> Bool {
        guard let header else { return false }
        return header.split(separator: ",").contains { candidate in
            let value = candidate.trimmingCharacters(in: .whitespaces)
            return value == "*" || value == etag || value == "W/" + etag
        }
    }

    /// A script with its ETag: 304 when the browser has this version.
    static func script(_ asset: WidgetAsset, request: Request) -> Response {
        if Self.matches(request.headers[.ifNoneMatch], asset.etag) {
            return Response(status: .notModified, headers: Self.scriptHeaders(asset))
        }
        var headers = Self.scriptHeaders(asset)
        headers[.contentType] = "application/javascript; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.bytes))
    }

    static func scriptHeaders(_ asset: WidgetAsset) -> HTTPFields {
        [
            .cacheControl: "public, max-age=300", .eTag: asset.etag, .accessControlAllowOrigin: "*", .crossOriginResourcePolicy: "cross-origin",
        ]
    }

    func route(_ context: HeraldRequestContext) async throws -> SiteRoute {
        guard let key = context.parameters.get("publicKey"), let route = try await feeds.route(publicKey: key) else {
            throw HeraldError.notFound("No site has this public key; check the data-site attribute of the embed snippet. The site")
        }
        return route
    }

    /// The page's feed, from pre-encoded bytes; `If-None-Match` gets 304. ``FeedFastRoute`` answers the same
    /// whenever the feed is already built.
    @Sendable func feed(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        guard let key = context.parameters.get("publicKey"), let entry = try await feeds.feed(publicKey: key) else {
            throw HeraldError.notFound("No site has this public key; check the data-site attribute of the embed snippet. The site")
        }
        let answer = Self.feedAnswer(entry, ifNoneMatch: request.headers[.ifNoneMatch], maxAge: options.feedMaxAge)
        return Response(status: answer.status, headers: answer.headers, body: answer.body.map { ResponseBody(byteBuffer: $0) } ?? .init())
    }

    /// The feed's response, with the widget paths' CORS headers: one definition for the router and the fast path.
    static func feedAnswer(_ entry: FeedCache.Entry, ifNoneMatch: String?, maxAge: Int) -> FastAnswer {
        var headers: HTTPFields = [
            .eTag: entry.etag,
            .cacheControl: "public, max-age=0, s-maxage=\(maxAge), stale-if-error=60",
        ]
        if Self.matches(ifNoneMatch, entry.etag) { return FastAnswer(status: .notModified, headers: headers, body: nil) }
        headers[.contentType] = "application/json; charset=utf-8"
        return FastAnswer(status: .ok, headers: headers, body: entry.bytes)
    }

    /// Server-Sent Events: `hello` on connect (with the visitor's country when known), `activity` for each new
    /// activity rendered for the notifications that show it, `feed` when the feed changed (refetch it).
    @Sendable func liveStream(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let site = try await route(context)
        let subscription: (messages: AsyncStream<ByteBuffer>, close: @Sendable () -> Void)
        do {
            subscription = try stream.subscribe(siteId: site.siteId)
        } catch {
            throw HeraldError(
                status: 503, slug: "stream-unavailable", title: "Service unavailable",
                detail: "Too many live connections; the widget falls back to polling.", headers: [("Retry-After", "30")]
            )
        }
        let country = Self.country(request, header: options.countryHeader)
        let hello = "retry: 3000\nevent: hello\ndata: {\"country\":\(country.map { "\"\($0)\"" } ?? "null")}\n\n"
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream", .cacheControl: "no-cache, no-transform", .init("X-Accel-Buffering") ?? .via: "no",
            ],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: hello))
                // Ends when the page goes away, the stream is closed, or Herald shuts down gracefully.
                try await withGracefulShutdownHandler {
                    for await message in subscription.messages { try await writer.write(message) }
                } onGracefulShutdown: {
                    subscription.close()
                }
                try await writer.finish(nil)
            }
        )
    }

    /// Batched interactions from the widget, accepted once durable. Heartbeats only update presence.
    /// ``BeaconsFastRoute`` answers the same on the event loop when the site and the day's salt are in memory.
    @Sendable func recordBeacons(_ request: Request, context: HeraldRequestContext) async throws -> BeaconResponse {
        let site = try await route(context)
        var body = request
        let buffer: ByteBuffer
        do {
            buffer = try await body.collectBody(upTo: Self.maxBeaconBody)
        } catch {
            throw HeraldError.payloadTooLarge(limit: Self.maxBeaconBody)
        }
        let now = Date()
        let submission = try readBeacons(buffer, site: site, now: now)
        if !submission.beacons.isEmpty {
            let day = site.clock.dayKey(atMillis: now.unixMilliseconds)
            let salt = try await hasher.keyedHash(day: day)
            let visit = visit(
                of: submission, site: site, day: day, salt: salt, userAgent: request.headers[.userAgent],
                country: Self.country(request, header: options.countryHeader))
            try await beacons.write(visit, route: site)
        }
        return BeaconResponse(accepted: submission.events)
    }

    /// A beacon request read and validated: how many events it held, and the interactions to store.
    struct BeaconSubmission {
        var events: Int
        var beacons: [RecordedBeacon]
        var request: BeaconRequest
    }

    /// Reads and validates a beacon request's body, throwing the 400 or 422 the widget gets; heartbeats update
    /// presence here (again, harmlessly, if the router reads a request the fast route declined).
    func readBeacons(_ buffer: ByteBuffer, site: SiteRoute, now: Date) throws -> BeaconSubmission {
        if buffer.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw HeraldError.badRequest("The request body is empty; send a JSON object.", slug: "malformed-json")
        }
        let node: JSONNode
        do {
            node = try buffer.withUnsafeReadableBytes { try JSONReader.read(raw: $0) }
        } catch {
            throw HeraldError.badRequest("The request body is not valid JSON (\(error)).", slug: "malformed-json")
        }
        var validator = Validator()
        let batch = try BeaconRequest(node, validator: &validator)
        let nowMillis = now.unixMilliseconds
        let visitor = batch.visitorId
        if node["visitorId"]?.string != nil, !Self.isWidgetId(visitor) { validator.add("visitorId", "must be 8 to 64 letters, digits, '-' or '_'") }
        if let session = batch.sessionId, !Self.isWidgetId(session) { validator.add("sessionId", "must be 8 to 64 letters, digits, '-' or '_'") }
        if !(1...50).contains(batch.events.count) { validator.add("events", "must hold 1 to 50 events") }
        var beacons: [RecordedBeacon] = []
        for (index, event) in batch.events.prefix(50).enumerated() {
            let field = "events.\(index)"
            guard Self.beaconTypes.contains(event.type) else {
                validator.add("\(field).type", "must be one of \(Self.beaconTypes.sorted().joined(separator: ", "))")
                continue
            }
            // Paths and goals are analytics labels: control characters are dropped rather than failing the batch.
            let path = event.path.map { String($0.prefix(500)).removingControlCharacters }
            if event.type == "heartbeat" {
                presence.heartbeat(siteId: site.siteId, path: path ?? "/", visitorId: visitor, at: now)
                continue
            }
            if !["conversion", "pageview"].contains(event.type) && event.notificationId == nil {
                validator.add("\(field).notificationId", "is required for \(event.type) events")
            }
            if let goal = event.goal, goal.count > 100 { validator.add("\(field).goal", "must be at most 100 characters") }
            if let value = event.value, !value.isFinite || abs(value) > 1e12 {
                validator.add("\(field).value", "must be a number between -1000000000000 and 1000000000000")
            }
            if let touches = event.touches {
                if touches.count > 20 { validator.add("\(field).touches", "must hold at most 20 touches") }
                for (number, touch) in touches.enumerated() where !Self.touchTypes.contains(touch.type) {
                    validator.add("\(field).touches.\(number).type", "must be impression, hover or click")
                }
            }
            // A visitor's clock may be wrong; accept it within a day, otherwise use the time of arrival.
            let at = Self.plausible(event.at, now: nowMillis) ?? nowMillis
            beacons.append(
                RecordedBeacon(
                    type: event.type, notificationId: event.notificationId, variantId: event.variantId, activityId: event.activityId,
                    goal: event.goal?.removingControlCharacters, value: event.type == "conversion" ? event.value : nil, path: path, at: at,
                    exposure: event.type == "impression" ? event.exposure : nil,
                    firstConversion: event.type == "conversion" ? event.firstConversion : nil,
                    firstSeenAt: Self.earlier(event.firstSeenAt, than: at, within: 5 * 365 * 86_400_000),
                    previousConversionAt: event.type == "conversion"
                        ? Self.earlier(event.previousConversionAt, than: at, within: 366 * 86_400_000) : nil,
                    touches: event.type == "conversion"
                        ? event.touches?.prefix(20).compactMap { touch in
                            Self.earlier(touch.at, than: at, within: 90 * 86_400_000).map {
                                Touch(notificationId: touch.notificationId, variantId: touch.variantId, kind: touch.type, at: $0)
                            }
                        } : nil
                )
            )
        }
        if let referrer = batch.referrer, referrer.utf8.count > 2000 { validator.add("referrer", "must be at most 2000 characters") }
        for (name, value) in [("source", batch.utm?.source), ("medium", batch.utm?.medium), ("campaign", batch.utm?.campaign)] {
            if let value, value.count > 100 { validator.add("utm.\(name)", "must be at most 100 characters") }
        }
        try validator.check()
        return BeaconSubmission(events: batch.events.count, beacons: beacons, request: batch)
    }

    /// The visit a submission stores: the visitor's and session's ids hashed with the day's salt, the device and
    /// country from the request's headers.
    func visit(
        of submission: BeaconSubmission, site: SiteRoute, day: Int, salt: HMAC<SHA256>, userAgent: String?, country: String?
    ) -> Visit {
        let batch = submission.request
        let userAgent = UserAgentClass.classify(userAgent ?? "")
        return Visit(
            visitor: VisitorHasher.pseudonym(batch.visitorId, siteId: site.siteId, salt: salt),
            session: batch.sessionId.map { VisitorHasher.pseudonym("session:" + $0, siteId: site.siteId, salt: salt) },
            day: day, device: userAgent.device, country: country,
            bot: userAgent.bot, referrer: batch.referrer.flatMap(Self.referrerHost),
            utmSource: Self.label(batch.utm?.source), utmMedium: Self.label(batch.utm?.medium), utmCampaign: Self.label(batch.utm?.campaign),
            beacons: submission.beacons
        )
    }

    static func isWidgetId(_ id: String) -> Bool {
        (8...64).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
            }
    }

    /// A client timestamp within a day of the server's clock, in whole milliseconds.
    static func plausible(_ millis: Double?, now: Int64) -> Int64? {
        guard let millis, millis.isFinite, abs(millis - Double(now)) < 86_400_000 else { return nil }
        return Int64(millis)
    }

    /// A client timestamp no later than `at` and no older than `window` before it.
    static func earlier(_ millis: Double?, than at: Int64, within window: Int64) -> Int64? {
        guard let millis, millis.isFinite, millis <= Double(at) + 1000, millis >= Double(at - window) else { return nil }
        return min(Int64(millis), at)
    }

    /// The host of a referrer URL without `www.`: enough to tell where visitors come from, nothing more.
    /// The referrer's host without `www.`. Plain `http(s)://host[:port]/…` referrers (nearly all) are read directly;
    /// anything else goes through `URLComponents`, which costs more than the rest of a beacon's handling.
    static func referrerHost(_ referrer: String) -> String? {
        let host: String
        if let plain = plainHost(referrer) {
            host = plain
        } else {
            guard let parsed = URLComponents(string: referrer)?.host?.lowercased() else { return nil }
            host = parsed
        }
        guard !host.isEmpty, host.utf8.count <= 253 else { return nil }
        return host.hasPrefix("www.") ? String(host.dropFirst(4)) : host
    }

    /// The host of `http://` or `https://` followed by letters, digits, dots and hyphens up to `/`, `?`, `#`, `:` or
    /// the end; nil for anything else (user info, IPv6 literals, percent-encoding), which `URLComponents` reads.
    static func plainHost(_ referrer: String) -> String? {
        let bytes = referrer.utf8
        let scheme: Int
        if bytes.starts(with: "https://".utf8) {
            scheme = 8
        } else if bytes.starts(with: "http://".utf8) {
            scheme = 7
        } else {
            return nil
        }
        var host: [UInt8] = []
        var rest = bytes.dropFirst(scheme)
        while let byte = rest.popFirst() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"):
                host.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                host.append(byte + 32)
            case UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"):
                return String(decoding: host, as: UTF8.self)
            case UInt8(ascii: ":"):
                // A port (digits up to the path) ends the host; anything else here is user info.
                let port = rest.prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
                guard port.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
                return String(decoding: host, as: UTF8.self)
            default:
                return nil
            }
        }
        return String(decoding: host, as: UTF8.self)
    }

    /// A UTM label: control characters dropped, spaces trimmed, at most 100 characters, lower case.
    static func label(_ text: String?) -> String? {
        guard let text = text?.removingControlCharacters else { return nil }
        // Trims what `CharacterSet.whitespaces` holds (space separators and tab), scalar by scalar like Foundation.
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) }) else {
            return nil
        }
        return String(String(scalars[first...last]).prefix(100)).lowercased()
    }

    @Sendable func presenceCount(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<PresenceBody> {
        let site = try await route(context)
        let path = String((request.uri.queryParameters.get("path") ?? "/").prefix(500))
        return JSONResponse(
            PresenceBody(path: path, visitors: presence.count(siteId: site.siteId, path: path)),
            headers: [.cacheControl: "public, max-age=10"]
        )
    }

    @Sendable func visitorContext(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<ContextBody> {
        _ = try await route(context)
        return JSONResponse(ContextBody(country: Self.country(request, header: options.countryHeader)), headers: [.cacheControl: "private, no-store"])
    }

    /// The visitor's country from the configured header, when it is a two-letter code.
    static func country(_ request: Request, header: String) -> String? {
        countryCode(HTTPField.Name(header).flatMap { request.headers[$0] })
    }

    /// A country header's value when it is a two-letter code (`XX`, Cloudflare's unknown, is none).
    static func countryCode(_ header: String?) -> String? {
        guard let value = header?.uppercased(), value.count == 2, value.allSatisfy({ $0.isASCII && $0.isLetter }), value != "XX" else {
            return nil
        }
        return value
    }
}
