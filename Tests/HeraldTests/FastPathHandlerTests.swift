import Foundation
import HTTPTypes
import HeraldCore
import HeraldHTTP
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

/// ``FastPathHandler`` on an embedded channel: what it answers itself, what it hands to the router unchanged, and
/// that answers keep the order of their requests.
@Suite struct FastPathHandlerTests {
    /// Answers `GET /fast` with "fast".
    struct GetRoute: FastRoute {
        var service: String { "test" }
        var route: String { "/fast" }
        func answer(path: Substring, request: HTTPRequestHead) -> FastResponse? {
            path == "/fast" ? FastResponse(FastAnswer(status: .ok, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "fast"))) : nil
        }
    }

    /// Reads `POST /post/*`: `/post/ok` echoes the body when `gate` lets it, `/post/fail` fails as a store that did
    /// not answer, `/post/decline` hands the request to the router.
    final class PostRoute: FastPostRoute {
        var service: String { "test" }
        var route: String { "/post/{what}" }
        var maxBody: Int { 64 }
        var commonHeaders: HTTPFields { [.accessControlAllowOrigin: "*"] }
        let gate = Mutex<EventLoopPromise<Void>?>(nil)

        func accepts(path: Substring) -> Bool { path.hasPrefix("/post/") }

        func answer(path: Substring, request: HTTPRequestHead, body: ByteBuffer, eventLoop: any EventLoop) -> EventLoopFuture<FastResponse>? {
            switch path {
            case "/post/ok":
                let answer = FastResponse(FastAnswer(status: .accepted, headers: [.contentType: "text/plain"], body: body), adding: commonHeaders)
                guard let gate = gate.withLock({ $0 }) else { return eventLoop.makeSucceededFuture(answer) }
                return gate.futureResult.map { answer }
            case "/post/fail":
                return eventLoop.makeFailedFuture(
                    HeraldError(
                        status: 503, slug: "store-unavailable", title: "Service unavailable",
                        detail: "Nothing was kept.", headers: [("Retry-After", "5")]))
            default:
                return nil
            }
        }
    }

    /// Counts the user events that get past the fast path.
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        var count = 0
        var errors = 0
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { count += 1 }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors += 1 }
    }

    /// A channel whose POST ("first") is being worked on until `gate` succeeds, and what reaches the router's side.
    func postInHand() throws -> (EmbeddedChannel, EventRecorder, EventLoopPromise<Void>) {
        let post = PostRoute()
        let channel = try channel(post)
        let events = EventRecorder()
        try channel.pipeline.syncOperations.addHandler(events)
        let gate = channel.eventLoop.makePromise(of: Void.self)
        post.gate.withLock { $0 = gate }
        try send(channel, .POST, "/post/ok", body: "first")
        return (channel, events, gate)
    }

    func channel(_ post: PostRoute = PostRoute()) throws -> EmbeddedChannel {
        let handler = FastPathHandler(
            routes: [GetRoute(), post], options: FastPathOptions(recordsMetrics: false, trustedProxies: [], logger: Logger(label: "test")))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        // Active, as a connection is: what waits behind a POST is dropped when the connection has gone.
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return channel
    }

    func send(_ channel: EmbeddedChannel, _ method: HTTPMethod, _ path: String, body: String? = nil, version: HTTPVersion = .http1_1) throws {
        var head = HTTPRequestHead(version: version, method: method, uri: path, headers: ["Host": "herald.test"])
        if let body { head.headers.add(name: "Content-Length", value: String(body.utf8.count)) }
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    /// The parts the handler wrote, as (status, headers, body) per response.
    func responses(_ channel: EmbeddedChannel) throws -> [(HTTPResponseHead, String)] {
        var result: [(HTTPResponseHead, String)] = []
        var head: HTTPResponseHead?
        var body = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .head(let response): head = response
            case .body(.byteBuffer(let buffer)): body += String(buffer: buffer)
            case .body: Issue.record("a file region")
            case .end:
                if let head { result.append((head, body)) }
                head = nil
                body = ""
            }
        }
        return result
    }

    @Test func aFastGetIsAnsweredWithTheChainsHeaders() throws {
        let channel = try channel()
        try send(channel, .GET, "/fast?x=1")
        let answers = try responses(channel)
        #expect(answers.count == 1)
        let (response, body) = try #require(answers.first)
        #expect(response.status == .ok)
        #expect(body == "fast")
        #expect(response.headers["Content-Length"] == ["4"])
        #expect(response.headers["X-Content-Type-Options"] == ["nosniff"])
        #expect(response.headers.first(name: "X-Request-Id")?.count == 32)
        #expect(response.headers["Date"].count == 1)
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == nil, "nothing reached the router")
    }

    @Test func aFailedPostIsAnsweredWithItsProblemDocument() throws {
        let channel = try channel()
        try send(channel, .POST, "/post/fail", body: "{}")
        let (response, body) = try #require(try responses(channel).first)
        #expect(response.status.code == 503)
        #expect(response.headers["Retry-After"] == ["5"])
        #expect(response.headers["Content-Type"] == ["application/problem+json"])
        #expect(response.headers["Access-Control-Allow-Origin"] == ["*"], "the route's common headers are on refusals too")
        let document = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(document?["status"] as? Int == 503)
        #expect((document?["type"] as? String)?.hasSuffix("store-unavailable") == true)
        #expect(document?["instance"] as? String == "/post/fail")
    }

    @Test func aDeclinedPostReachesTheRouterUnchanged() throws {
        let channel = try channel()
        try send(channel, .POST, "/post/decline?q=1", body: "hello")
        #expect(try responses(channel).isEmpty)
        guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else { Issue.record("no head"); return }
        #expect(head.method == .POST)
        #expect(head.uri == "/post/decline?q=1")
        guard case .body(let body) = try channel.readInbound(as: HTTPServerRequestPart.self) else { Issue.record("no body"); return }
        #expect(String(buffer: body) == "hello")
        guard case .end = try channel.readInbound(as: HTTPServerRequestPart.self) else { Issue.record("no end"); return }
    }

    @Test func aRequestPipelinedBehindAPostIsAnsweredAfterIt() throws {
        let post = PostRoute()
        let channel = try channel(post)
        let gate = channel.eventLoop.makePromise(of: Void.self)
        post.gate.withLock { $0 = gate }
        try send(channel, .POST, "/post/ok", body: "first")
        try send(channel, .GET, "/fast")
        #expect(try responses(channel).isEmpty, "nothing is answered while the POST works")
        gate.succeed()
        let answers = try responses(channel)
        #expect(answers.map(\.1) == ["first", "fast"])
        #expect(answers.map(\.0.status.code) == [202, 200])
        #expect(answers[0].0.headers["Access-Control-Allow-Origin"] == ["*"])
    }

    /// HTTP/1.0 (whose keep-alive rules differ) and `Connection: close` are the router's to honour.
    @Test func http10AndConnectionCloseGoToTheRouter() throws {
        let channel = try channel()
        try send(channel, .GET, "/fast", version: .http1_0)
        #expect(try responses(channel).isEmpty)
        guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else { Issue.record("no head"); return }
        #expect(head.version == .http1_0)
        _ = try channel.readInbound(as: HTTPServerRequestPart.self)
        // The router's response ends; a request with Connection: close then also goes to it.
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_0, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        _ = try responses(channel)
        try channel.writeInbound(
            HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/fast", headers: ["Connection": "close"])))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try responses(channel).isEmpty)
        guard case .head = try channel.readInbound(as: HTTPServerRequestPart.self) else { Issue.record("no head"); return }
    }

    /// A graceful shutdown's quiesce event waits for the POST being worked on, so the connection closes after its answer.
    @Test func aQuiesceEventWaitsForThePostInHand() throws {
        let (channel, events, gate) = try postInHand()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(events.count == 0)
        gate.succeed()
        #expect(try responses(channel).count == 1)
        #expect(events.count == 1)
    }

    /// A parse error in what followed a POST reaches the router (which answers 400 and closes) only after the POST's
    /// answer, so its beacons are not stored behind a 400.
    @Test func anErrorAfterAPostWaitsForItsAnswer() throws {
        let (channel, events, gate) = try postInHand()
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidHeaderToken)
        #expect(events.errors == 0)
        gate.succeed()
        #expect(try responses(channel).map(\.1) == ["first"])
        #expect(events.errors == 1)
    }

    /// Repeated header lines mean what they mean to the router (joined with ", "): two request ids are not one
    /// well-formed id.
    @Test func repeatedHeadersAreReadAsTheRouterReadsThem() throws {
        let channel = try channel()
        let id = String(repeating: "a", count: 32)
        try channel.writeInbound(
            HTTPServerRequestPart.head(
                HTTPRequestHead(version: .http1_1, method: .GET, uri: "/fast", headers: HTTPHeaders([("X-Request-Id", id), ("X-Request-Id", id)]))))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        let (response, _) = try #require(try responses(channel).first)
        #expect(response.headers.first(name: "X-Request-Id") != id)
        #expect(FastPathHandler.field(["X-Forwarded-For": "1.2.3.4", "x-forwarded-for": "10.0.0.1"], "X-Forwarded-For") == "1.2.3.4, 10.0.0.1")
        #expect(FastPathHandler.field(["user-AGENT": "UA", "Accept": "*/*"], "User-Agent") == "UA")
        #expect(FastPathHandler.field(["Accept": "*/*"], "User-Agent") == nil)
        // Only letters fold: "_" is not "-" (0x5F and 0x2D differ by more than case).
        #expect(FastPathHandler.field(["X_Request_Id": "x"], "X-Request-Id") == nil)
        #expect(FastPathHandler.field(["X-Request-Ie": "x"], "X-Request-Id") == nil)
    }

    @Test func aLongerBodyThanTheRouteReadsGoesToTheRouter() throws {
        let channel = try channel()
        try send(channel, .POST, "/post/ok", body: String(repeating: "x", count: 65))
        #expect(try responses(channel).isEmpty)
        guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else { Issue.record("no head"); return }
        #expect(head.uri == "/post/ok")
    }
}
