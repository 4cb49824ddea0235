import Foundation
import HeraldRedis
import HeraldSecurity
import Logging
import NIOCore
import Testing

@testable import HeraldRedis

let logger: Logger = {
    var logger = Logger(label: "herald-redis-test")
    logger.logLevel = .critical
    return logger
}()

/// The Redis server the test command starts (HERALD_TEST_REDIS_URL), or nil when run without it.
func redisURL(_ name: String = "HERALD_TEST_REDIS_URL") throws -> String? {
    if let url = ProcessInfo.processInfo.environment[name], !url.isEmpty { return url }
    if ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] == "1" {
        Issue.record("\(name) is not set: run the tests with scripts/test.sh, which starts Redis")
    }
    return nil
}

func uniqueKey(_ name: String) -> String { "test:\(UUID().uuidString.prefix(8)):\(name)" }

@Suite("RESP3 parsing")
struct RESPParserTests {
    func parse(_ text: String) throws -> RESPValue? {
        var buffer = ByteBuffer(string: text)
        return try RESPParser.parse(&buffer)
    }

    @Test func everyReplyType() throws {
        #expect(try parse("+OK\r\n") == .simpleString("OK"))
        #expect(try parse("-WRONGTYPE Operation against a key\r\n") == .error("WRONGTYPE Operation against a key"))
        #expect(try parse(":-42\r\n") == .integer(-42))
        #expect(try parse("$5\r\nhe\r\no\r\n") == .bulkString(Array("he\r\no".utf8)))
        #expect(try parse("$-1\r\n") == .null)
        #expect(try parse("_\r\n") == .null)
        #expect(try parse("*2\r\n:1\r\n$1\r\na\r\n") == .array([.integer(1), .bulkString([97])]))
        #expect(try parse("%1\r\n+key\r\n:7\r\n") == .map([(.simpleString("key"), .integer(7))]))
        #expect(try parse("~1\r\n#t\r\n") == .set([.boolean(true)]))
        #expect(try parse(",1.5\r\n") == .double(1.5))
        #expect(try parse("(3492890328409238509324850943850943825024385\r\n") == .bigNumber("3492890328409238509324850943850943825024385"))
        #expect(try parse("=8\r\ntxt:Some\r\n") == .bulkString(Array("Some".utf8)))
        #expect(try parse("!9\r\nERR a b c\r\n") == .error("ERR a b c"))
        #expect(try parse(">2\r\n+message\r\n+x\r\n") == .push([.simpleString("message"), .simpleString("x")]))
        // An attribute is read past: the value is the reply that follows it.
        #expect(try parse("|1\r\n+ttl\r\n:3\r\n:99\r\n") == .integer(99))
    }

    @Test func incompleteRepliesWaitForMoreBytes() throws {
        let whole = "*3\r\n$3\r\nabc\r\n%1\r\n+k\r\n:1\r\n,2.5\r\n"
        for cut in 0..<whole.utf8.count {
            var buffer = ByteBuffer(string: String(whole.utf8.prefix(cut))!)
            let before = buffer.readerIndex
            #expect(try RESPParser.parse(&buffer) == nil, "a reply cut after \(cut) bytes")
            #expect(buffer.readerIndex == before)
        }
        var buffer = ByteBuffer(string: whole + "+NEXT\r\n")
        #expect(try RESPParser.parse(&buffer) == .array([.bulkString(Array("abc".utf8)), .map([(.simpleString("k"), .integer(1))]), .double(2.5)]))
        #expect(try RESPParser.parse(&buffer) == .simpleString("NEXT"))
    }

    @Test func malformedRepliesAreRefused() {
        for bad in ["?x\r\n", ":12a\r\n", "$abc\r\n", "$3\r\nabcd\r\n", "+OK\rX", String(repeating: "*1\r\n", count: 40) + ":1\r\n"] {
            var buffer = ByteBuffer(string: bad)
            #expect(throws: (any Error).self, "\(bad.debugDescription)") { try RESPParser.parse(&buffer) }
        }
    }

    @Test func urlsAreReadAndBadOnesExplained() throws {
        let plain = try RedisConfiguration(url: "redis://:s3cret@10.0.0.5:6380/2?timeout=0.5&pool=8")
        #expect(plain.host == "10.0.0.5" && plain.port == 6380 && plain.database == 2 && plain.password == "s3cret" && plain.poolSize == 8)
        #expect(plain.commandTimeout == .milliseconds(500) && plain.tls == nil)
        #expect(!plain.description.contains("s3cret"))
        let user = try RedisConfiguration(url: "redis://herald:p%40ss@localhost")
        #expect(user.username == "herald" && user.password == "p@ss" && user.port == 6379)
        #expect(try RedisConfiguration(url: "rediss://cache.internal:6380").tls != nil)
        for bad in ["http://localhost", "redis://", "redis://h/99", "redis://h?timeout=-1", "redis://h?pool=0", "redis://h?ca=/x.pem"] {
            #expect(throws: RedisConfiguration.Invalid.self, "\(bad)") { try RedisConfiguration(url: bad) }
        }
    }
}

@Suite("Redis client against a real server")
struct RedisClientTests {
    @Test func commandsPipelinesAndConcurrentCallersGetTheirOwnReplies() async throws {
        guard let url = try redisURL() else { return }
        let client = RedisClient(configuration: try RedisConfiguration(url: url), logger: logger)
        defer { Task { await client.shutdown() } }
        let key = uniqueKey("value")
        try await client.send(["SET", .string(key), .bytes([0, 13, 10, 255])])
        #expect(try await client.send(["GET", .string(key)]) == .bulkString([0, 13, 10, 255]))
        #expect(try await client.send(["GET", .string(uniqueKey("missing"))]) == .null)

        let counter = uniqueKey("counter")
        let replies = try await client.pipeline((0..<1000).map { _ in ["INCR", .string(counter)] })
        #expect(replies.map(\.int) == (1...1000).map { Int64($0) })

        // 40 tasks × 50 increments over 4 connections: every reply reaches the task that asked.
        let shared = uniqueKey("shared")
        try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<40 {
                group.addTask {
                    var seen: [Int64] = []
                    for _ in 0..<50 { seen.append(try await client.send(["INCR", .string(shared)]).int ?? -1) }
                    return seen
                }
            }
            var all: [Int64] = []
            for try await seen in group {
                #expect(seen == seen.sorted())
                all += seen
            }
            #expect(all.sorted() == (1...2000).map { Int64($0) })
        }

        // An error reply fails that command only.
        let list = uniqueKey("list")
        try await client.send(["LPUSH", .string(list), "a"])
        await #expect(throws: RedisReplyError.self) { try await client.send(["GET", .string(list)]) }
        let mixed = try await client.pipeline([["GET", .string(list)], ["LLEN", .string(list)]])
        #expect(mixed[1] == .integer(1))
        if case .error(let message) = mixed[0] { #expect(message.hasPrefix("WRONGTYPE")) } else { Issue.record("\(mixed[0])") }
    }

    @Test func authenticationIsRequiredAndACLUsersWork() async throws {
        guard let url = try redisURL() else { return }
        var configuration = try RedisConfiguration(url: url)
        let admin = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await admin.shutdown() } }
        let user = "herald-\(UUID().uuidString.prefix(6))"
        try await admin.send(["ACL", "SETUSER", .string(user), "on", ">user-pass", "~test:*", "+@all"])

        configuration.password = "wrong"
        let wrong = RedisClient(configuration: configuration, logger: logger)
        await #expect(throws: RedisConnectionError.self) { try await wrong.ping() }

        configuration.username = user
        configuration.password = "user-pass"
        let scoped = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await scoped.shutdown() } }
        try await scoped.ping()
        // The ACL's key pattern applies: this user may not touch keys outside test:*.
        await #expect(throws: RedisReplyError.self) { try await scoped.send(["SET", "elsewhere", "x"]) }
        try await admin.send(["ACL", "DELUSER", .string(user)])
    }

    @Test func aSlowReplyTimesOutAndTheNextCommandReconnects() async throws {
        guard let url = try redisURL() else { return }
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = .milliseconds(300)
        configuration.poolSize = 1
        let client = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await client.shutdown() } }
        // Connected first, so the time below is the command's alone. On a loaded run even connecting and a PING can
        // outlast 300 ms (the client then reconnects): a few tries.
        #expect(await Self.pings(client), "no PING answered within 300 ms in 20 s of tries")
        let started = ContinuousClock.now
        await #expect(throws: RedisConnectionError.self) { try await client.send(["BLPOP", .string(uniqueKey("empty")), "10"]) }
        // Well before BLPOP's own 10 s (a loaded test run can delay the task itself by a few seconds).
        #expect(ContinuousClock.now - started < .seconds(7))
        #expect(await Self.pings(client), "the client did not reconnect after the timeout")
    }

    /// Whether a PING is answered within 20 s of tries (a failed connection attempt makes the client back off for a
    /// moment, during which commands fail at once).
    static func pings(_ client: RedisClient) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if (try? await client.ping()) != nil { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func aConnectionKilledByTheServerIsReplaced() async throws {
        guard let url = try redisURL() else { return }
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = 1
        configuration.clientName = "herald-reconnect-test"
        let client = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await client.shutdown() } }
        try await client.ping()
        let admin = RedisClient(configuration: try RedisConfiguration(url: url), logger: logger)
        defer { Task { await admin.shutdown() } }
        let list = try await admin.send(["CLIENT", "LIST"]).string ?? ""
        let id = try #require(list.split(separator: "\n").first { $0.contains("name=herald-reconnect-test") }?.split(separator: " ").first)
        try await admin.send(["CLIENT", "KILL", "ID", .string(String(id.dropFirst(3)))])
        // The killed connection may answer one call with `closed`; the pool replaces it on the next.
        var answered = false
        for _ in 0..<20 where !answered {
            answered = (try? await client.ping()) != nil
            if !answered { try await Task.sleep(for: .milliseconds(150)) }
        }
        #expect(answered)
    }

    @Test func anUnreachableServerFailsFastWithBackoff() async throws {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: 1, connectTimeout: .milliseconds(500))
        configuration.poolSize = 1
        let client = RedisClient(configuration: configuration, logger: logger)
        await #expect(throws: RedisConnectionError.self) { try await client.ping() }
        // Within the backoff, calls fail at once rather than each waiting to connect.
        let started = ContinuousClock.now
        await #expect(throws: RedisConnectionError.self) { try await client.ping() }
        #expect(ContinuousClock.now - started < .milliseconds(50))
    }

    @Test func scriptsRunBySHAAndLoadThemselves() async throws {
        guard let url = try redisURL() else { return }
        let client = RedisClient(configuration: try RedisConfiguration(url: url), logger: logger)
        defer { Task { await client.shutdown() } }
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1]) + \(Int.random(in: 0...1_000_000)) * 0")
        let key = uniqueKey("script")
        #expect(try await client.run(script, keys: [key], arguments: [5]) == .integer(5))
        #expect(try await client.run(script, keys: [key], arguments: [2]) == .integer(7))
    }

    @Test func mutualTLSAcceptsHeraldsCertificateAndRefusesNone() async throws {
        guard let url = try redisURL("HERALD_TEST_REDIS_TLS_URL") else { return }
        let configuration = try RedisConfiguration(url: url)
        #expect(configuration.tls != nil)
        let client = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await client.shutdown() } }
        try await client.ping()
        #expect(try await client.send(["ECHO", "over TLS"]) == .bulkString(Array("over TLS".utf8)))

        // The same server and CA without a client certificate: the server refuses the handshake.
        let withoutCertificate = url.replacingOccurrences(of: #"&cert=[^&]*&key=[^&]*"#, with: "", options: .regularExpression)
        let refused = RedisClient(configuration: try RedisConfiguration(url: withoutCertificate), logger: logger)
        await #expect(throws: (any Error).self) { try await refused.ping() }
        // A server certificate from another CA is refused by Herald.
        let otherCA = url.replacingOccurrences(of: #"ca=[^&]*"#, with: "ca=/etc/ssl/certs/ca-certificates.crt", options: .regularExpression)
        let untrusted = RedisClient(configuration: try RedisConfiguration(url: otherCA), logger: logger)
        await #expect(throws: (any Error).self) { try await untrusted.ping() }
    }
}

@Suite("Redis rate limiter")
struct RedisRateLimiterTests {
    @Test func hitsFromManyInstancesAreCountedExactly() async throws {
        guard let url = try redisURL() else { return }
        let configuration = try RedisConfiguration(url: url)
        let first = RedisClient(configuration: configuration, logger: logger)
        let second = RedisClient(configuration: configuration, logger: logger)
        defer {
            Task {
                await first.shutdown()
                await second.shutdown()
            }
        }
        // Two limiters over two clients stand for two Herald instances.
        let limiters = [RedisRateLimiter(client: first, logger: logger), RedisRateLimiter(client: second, logger: logger)]
        let key = uniqueKey("login")
        let now = Date()
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<60 {
                group.addTask { await limiters[index % 2].hit(key, window: .seconds(60), now: now) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts.sorted() == Array(1...60))
        let (count, oldest) = await limiters[1].count(key, window: .seconds(60), now: now)
        #expect(count == 60)
        #expect(abs((oldest ?? .distantPast).timeIntervalSince(now)) < 0.01)

        // Hits older than the window no longer count.
        #expect(await limiters[0].count(key, window: .seconds(60), now: now.addingTimeInterval(61)).count == 0)
        #expect(await limiters[0].hit(key, window: .seconds(60), now: now.addingTimeInterval(61)) == 1)
        await limiters[0].reset(key)
        #expect(await limiters[1].count(key, window: .seconds(60), now: now.addingTimeInterval(61)).count == 0)
    }

    @Test func anUnreachableRedisAllowsRatherThanFails() async {
        let client = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1, connectTimeout: .milliseconds(300)), logger: logger)
        let limiter = RedisRateLimiter(client: client, logger: logger)
        #expect(await limiter.hit("k", window: .seconds(60), now: Date()) == 0)
    }
}
