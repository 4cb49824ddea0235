import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import HeraldMail

/// SendGrid against scripts/lib/sendgrid_fake.py, plus the body and status mapping on their own.
@Suite struct SendGridTransportTests {
    static let fakeScript = "scripts/lib/sendgrid_fake.py"
    static let fakeMissing = "python3 is needed for the SendGrid fake; set HERALD_TEST_REQUIRE_SERVERS=1 to fail instead"
    static let key = "SG.test-key-that-must-not-leak"

    static func fake(_ mode: String = "ok") async throws -> ServerProcess {
        try await ServerProcess.start(script: fakeScript, arguments: ["--key", key, "--mode", mode])
    }

    static func transport(port: Int, key: String = key, timeout: TimeAmount = .seconds(10)) throws -> SendGridTransport {
        try SendGridTransport(configuration: .init(apiKey: key, baseURL: "http://127.0.0.1:\(port)/", timeout: timeout))
    }

    @Test(.enabled(if: TestServers.pythonAvailable, Comment(rawValue: fakeMissing)))
    func sendsTheV3BodyAndReadsTheMessageId() async throws {
        let server = try await Self.fake()
        defer { server.stop() }
        let message = try richMessage()
        let receipt = try await Self.transport(port: server.port).send(message)
        #expect(receipt.transport == "sendgrid")
        #expect(receipt.providerMessageId?.hasPrefix("fake0001") == true)

        let request = try server.json("request-1.json")
        #expect(request["status"] as? Int == 202 && request["key_ok"] as? Bool == true)
        #expect(request["method"] as? String == "POST" && request["path"] as? String == "/v3/mail/send")
        let body = try #require(request["body"] as? [String: Any])
        let personalizations = try #require(body["personalizations"] as? [[String: Any]])
        let to = try #require(personalizations.first?["to"] as? [[String: String]])
        #expect(to == [["email": "ops@example.com"], ["email": "finance@example.com", "name": "Finance Team"]])
        #expect(body["from"] as? [String: String] == ["email": "reports@example.com", "name": "Herald Reports – Köln"])
        #expect(body["reply_to"] as? [String: String] == ["email": "support@example.com"])
        #expect(body["subject"] as? String == message.subject)
        let content = try #require(body["content"] as? [[String: String]])
        #expect(content.map { $0["type"] } == ["text/plain", "text/html"])
        #expect(content.first?["value"] == message.text)
        let attachments = try #require(body["attachments"] as? [[String: String]])
        #expect(attachments.map { $0["filename"] } == ["report-2024-05.pdf", "Übersicht.csv"])
        #expect(attachments.map { $0["disposition"] } == ["attachment", "attachment"])
        #expect(attachments.map { $0["type"] } == ["application/pdf", "text/csv; charset=utf-8"])
        #expect(attachments.first.flatMap { $0["content"] }.flatMap { Data(base64Encoded: $0) } == Data(message.attachments[0].bytes))
        let headers = try #require(body["headers"] as? [String: String])
        #expect(headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click")
    }

    @Test(.enabled(if: TestServers.pythonAvailable, Comment(rawValue: fakeMissing)))
    func mapsRefusalsToPermanentErrorsWithoutTheKey() async throws {
        let server = try await Self.fake()
        defer { server.stop() }
        let wrongKey = await #expect(throws: MailError.self) {
            try await Self.transport(port: server.port, key: "SG.wrong-key").send(try richMessage())
        }
        #expect(wrongKey?.kind == .permanent && wrongKey?.code == 401)
        #expect(wrongKey?.message.contains("HERALD_SENDGRID_API_KEY") == true)
        #expect(wrongKey?.message.contains("SG.wrong-key") == false)

        // SendGrid refuses its own reserved headers with a 400 naming the field.
        let message = try MailMessage(
            from: try MailAddress("reports@example.com"), to: [try MailAddress("ops@example.com")], subject: "s", text: "t",
            headers: [try MailHeader("X-SG-ID", "1")])
        let invalid = await #expect(throws: MailError.self) { try await Self.transport(port: server.port).send(message) }
        #expect(invalid?.kind == .permanent && invalid?.code == 400)
        #expect(invalid?.message == "SendGrid refused the message (400) (headers: The header X-SG-ID is a reserved header and cannot be set.)")
    }

    @Test(.enabled(if: TestServers.pythonAvailable, Comment(rawValue: fakeMissing)))
    func rateLimitsAreTransientWithRetryAfter() async throws {
        let server = try await Self.fake("rate-limit")
        defer { server.stop() }
        let error = await #expect(throws: MailError.self) { try await Self.transport(port: server.port).send(try richMessage()) }
        #expect(error?.kind == .transient && error?.code == 429)
        #expect(error?.retryAfter == 7)
    }

    @Test(
        .enabled(if: TestServers.pythonAvailable, Comment(rawValue: fakeMissing)), arguments: [("server-error", 500, nil), ("unavailable", 503, 7.0)])
    func serverFailuresAreTransient(_ mode: String, _ status: Int, _ retryAfter: Double?) async throws {
        let server = try await Self.fake(mode)
        defer { server.stop() }
        let error = await #expect(throws: MailError.self) { try await Self.transport(port: server.port).send(try richMessage()) }
        #expect(error?.kind == .transient && error?.code == status)
        #expect(error?.retryAfter == retryAfter)
    }

    @Test(.enabled(if: TestServers.pythonAvailable, Comment(rawValue: fakeMissing)))
    func unverifiedSendersArePermanent() async throws {
        let server = try await Self.fake("forbidden")
        defer { server.stop() }
        let error = await #expect(throws: MailError.self) { try await Self.transport(port: server.port).send(try richMessage()) }
        #expect(error?.kind == .permanent && error?.code == 403)
        #expect(error?.message.contains("from: The from address does not match a verified Sender Identity") == true)
    }

    @Test func timeoutsAndUnreachableServersAreTransient() async throws {
        // A server that accepts the connection and never answers.
        let silent = try await ScriptedSMTPServer.start(greeting: nil, rules: [])
        let slow = await #expect(throws: MailError.self) {
            try await Self.transport(port: silent.port, timeout: .milliseconds(300)).send(try richMessage())
        }
        await silent.stop()
        #expect(slow?.kind == .transient)
        #expect(slow?.message.contains("did not answer in time") == true)

        let closed = try await ScriptedSMTPServer.start(greeting: nil, rules: [])
        let port = closed.port
        await closed.stop()
        // AsyncHTTPClient retries refused connections until the deadline, then reports the last failure.
        let refused = await #expect(throws: MailError.self) { try await Self.transport(port: port, timeout: .seconds(1)).send(try richMessage()) }
        #expect(refused?.kind == .transient)
        #expect(refused?.message.contains("cannot reach SendGrid at http://127.0.0.1:\(port)") == true)
    }

    // MARK: Mapping on its own

    @Test func writesTextBeforeHTMLAndOmitsEmptyParts() throws {
        let message = try MailMessage(from: try MailAddress("a@example.com"), to: [try MailAddress("b@example.com")], subject: "s", text: "t")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(SendGridTransport.body(for: message))) as? [String: Any])
        #expect(Set(json.keys) == ["personalizations", "from", "subject", "content"])
        #expect((json["content"] as? [[String: String]]) == [["type": "text/plain", "value": "t"]])
    }

    @Test func mapsStatuses() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let body = Array(#"{"errors":[{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email","help":null}]}"#.utf8)
        let invalid = SendGridTransport.error(status: 400, headers: [], body: body, now: now)
        #expect(
            invalid == .permanent("SendGrid refused the message (400) (personalizations.0.to.0.email: Does not contain a valid address.)", code: 400))
        let limited = SendGridTransport.error(status: 429, headers: [("X-RateLimit-Reset", "1000030")], body: [], now: now)
        #expect(limited.kind == .transient && limited.retryAfter == 30)
        let dated = SendGridTransport.error(
            status: 503, headers: [("Retry-After", "Mon, 12 Jan 1970 13:47:00 GMT")], body: Array("<html>".utf8), now: now)
        #expect(dated.kind == .transient && dated.retryAfter == 20)
        #expect(SendGridTransport.error(status: 413, headers: [], body: [], now: now).kind == .permanent)
        #expect(SendGridTransport.error(status: 302, headers: [], body: [], now: now).kind == .permanent)
        #expect(RetryAfter.seconds("120") == 120)
        #expect(RetryAfter.seconds("soon") == nil)
    }
}
