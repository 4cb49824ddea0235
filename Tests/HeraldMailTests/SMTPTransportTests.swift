import Foundation
import NIOCore
import Testing

@testable import HeraldMail

/// SMTP against a real server: scripts/lib/smtp_sink.py (aiosmtpd) with STARTTLS, implicit TLS and AUTH, and a
/// scripted NIO server for the misbehaviours a real server will not produce on demand.
@Suite struct SMTPTransportTests {
    static let sinkScript = "scripts/lib/smtp_sink.py"
    static let sinkMissing = "python3 with aiosmtpd and openssl are needed (pip install aiosmtpd); set HERALD_TEST_REQUIRE_SERVERS=1 to fail instead"

    static func sink(_ arguments: [String] = [], tls: Bool = true) async throws -> ServerProcess {
        var arguments = arguments
        if tls {
            let certificate = try TestCertificate.get()
            arguments += ["--cert", certificate.certificate, "--key", certificate.key]
        }
        return try await ServerProcess.start(script: sinkScript, arguments: arguments)
    }

    static func configuration(
        port: Int, tls: SMTPTransport.TLSMode = .opportunistic, credentials: SMTPTransport.Credentials? = nil, trustTestCA: Bool = true
    ) throws -> SMTPTransport.Configuration {
        SMTPTransport.Configuration(
            host: "127.0.0.1", port: port, tls: tls, credentials: credentials, heloName: "herald.test",
            additionalTrustRootFile: trustTestCA ? try TestCertificate.get().certificate : nil,
            connectTimeout: .seconds(5), commandTimeout: .seconds(10), dataTimeout: .seconds(20)
        )
    }

    static let credentials = SMTPTransport.Credentials(username: "herald", password: "s3cret pass")

    // MARK: Against aiosmtpd

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func sendsWithSTARTTLSAndAuthPlain() async throws {
        let server = try await Self.sink(["--user", "herald", "--password", "s3cret pass"])
        defer { server.stop() }
        let message = try richMessage()
        let transport = try SMTPTransport(configuration: try Self.configuration(port: server.port, tls: .required, credentials: Self.credentials))
        let receipt = try await transport.send(message)
        #expect(receipt.providerMessageId == "SINK0001")
        #expect(receipt.transport == "smtp 127.0.0.1:\(server.port)")
        #expect(receipt.serverResponse?.hasPrefix("250 2.0.0 Ok") == true)

        let record = try server.json("message-1.json")
        #expect(record["tls"] as? Bool == true)
        #expect(record["authenticated_as"] as? String == "herald")
        #expect(record["mail_from"] as? String == "reports@example.com")
        #expect(record["rcpt_tos"] as? [String] == ["ops@example.com", "finance@example.com"])
        #expect((record["mail_options"] as? [String])?.first?.hasPrefix("SIZE=") == true)
        #expect(record["parse_error"] == nil, "\(record["parse_error"] ?? "")")

        let parsed = try #require(record["parsed"] as? [String: Any])
        #expect(parsed["defects"] as? [String] == [])
        #expect(parsed["subject"] as? String == message.subject)
        #expect(parsed["from"] as? String == "Herald Reports – Köln <reports@example.com>")
        #expect(parsed["to"] as? [String] == ["ops@example.com", "Finance Team <finance@example.com>"])
        #expect(parsed["reply_to"] as? String == "support@example.com")
        #expect(parsed["message_id"] as? String == receipt.messageId)
        #expect(parsed["content_type"] as? String == "multipart/mixed")
        let text = (parsed["text"] as? String)?.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(text == message.text + "\n")
        #expect((parsed["html"] as? String)?.contains("Grüße aus <b>Köln</b>") == true)
        let headers = (parsed["headers"] as? [[String]]) ?? []
        #expect(headers.contains(["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"]))
        #expect(headers.contains { $0.first == "List-Unsubscribe" && $0.last?.contains("<mailto:unsubscribe@example.com?subject=abc123>") == true })

        let attachments = try #require(parsed["attachments"] as? [[String: Any]])
        #expect(attachments.map { $0["filename"] as? String } == ["report-2024-05.pdf", "Übersicht.csv"])
        #expect(attachments.map { $0["content_type"] as? String } == ["application/pdf", "text/csv"])
        for (attachment, original) in zip(attachments, message.attachments) {
            let path = try #require(attachment["path"] as? String)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(original.bytes))
        }
        let raw = try Data(contentsOf: server.outputDirectory.appendingPathComponent("message-1.eml"))
        #expect(String(decoding: raw, as: UTF8.self).contains("\r\n=2Ethis line starts with a dot\r\n"))
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func sendsWithImplicitTLSAndAuthLogin() async throws {
        let server = try await Self.sink(["--implicit-tls", "--no-auth-plain", "--user", "herald", "--password", "s3cret pass"])
        defer { server.stop() }
        let transport = try SMTPTransport(configuration: try Self.configuration(port: server.port, tls: .implicit, credentials: Self.credentials))
        let message = try MailMessage(
            from: try MailAddress("reports@example.com"), to: [try MailAddress("ops@example.com")], subject: "Usage alert",
            text: ".\n..\nline\n.")
        let receipt = try await transport.send(message)
        #expect(receipt.providerMessageId == "SINK0001")
        let record = try server.json("message-1.json")
        #expect(record["tls"] as? Bool == true)
        #expect(record["authenticated_as"] as? String == "herald")
        // 7-bit lines that start with a dot went through dot-stuffing and arrived as written.
        let raw = String(decoding: try Data(contentsOf: server.outputDirectory.appendingPathComponent("message-1.eml")), as: UTF8.self)
        #expect(raw.contains("\r\n\r\n.\r\n..\r\nline\r\n."))
        let parsed = try #require(record["parsed"] as? [String: Any])
        #expect((parsed["text"] as? String)?.replacingOccurrences(of: "\r\n", with: "\n") == ".\n..\nline\n.\n")
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func refusesWrongPasswordsPermanently() async throws {
        let server = try await Self.sink(["--user", "herald", "--password", "right"])
        defer { server.stop() }
        let transport = try SMTPTransport(
            configuration: try Self.configuration(port: server.port, credentials: .init(username: "herald", password: "wrong-secret")))
        let error = await #expect(throws: MailError.self) { try await transport.send(try richMessage()) }
        #expect(error?.kind == .permanent && error?.code == 535)
        #expect(error?.message.contains("rejected the user name or password") == true)
        #expect(error?.message.contains("wrong-secret") == false)
        #expect(server.files(endingWith: ".eml").isEmpty)
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func verifiesCertificatesByDefault() async throws {
        let server = try await Self.sink()
        defer { server.stop() }
        let transport = try SMTPTransport(configuration: try Self.configuration(port: server.port, tls: .required, trustTestCA: false))
        let error = await #expect(throws: MailError.self) { try await transport.send(try richMessage()) }
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("TLS with 127.0.0.1:\(server.port) failed") == true)
        #expect(error?.message.contains("HERALD_MAIL_CA_FILE") == true)
        #expect(server.files(endingWith: ".eml").isEmpty)
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func refusesCertificatesForAnotherHost() async throws {
        // The certificate names 127.0.0.1 and localhost; the server listens on 127.0.0.2.
        let server = try await Self.sink(["--host", "127.0.0.2"])
        defer { server.stop() }
        var configuration = try Self.configuration(port: server.port, tls: .required)
        configuration.host = "127.0.0.2"
        let error = await #expect(throws: MailError.self) { try await SMTPTransport(configuration: configuration).send(try richMessage()) }
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("not valid for this host name") == true, "\(error?.message ?? "")")
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func requiredTLSFailsWhenTheServerDoesNotOfferIt() async throws {
        let server = try await Self.sink(tls: false)
        defer { server.stop() }
        let required = try SMTPTransport(configuration: try Self.configuration(port: server.port, tls: .required))
        let error = await #expect(throws: MailError.self) { try await required.send(try richMessage()) }
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("does not offer STARTTLS") == true)

        // Opportunistic sends in plaintext, but never sends a password that way.
        let opportunistic = try SMTPTransport(configuration: try Self.configuration(port: server.port))
        _ = try await opportunistic.send(try richMessage())
        #expect(try server.json("message-1.json")["tls"] as? Bool == false)
        let withPassword = try SMTPTransport(configuration: try Self.configuration(port: server.port, credentials: Self.credentials))
        let refusal = await #expect(throws: MailError.self) { try await withPassword.send(try richMessage()) }
        #expect(refusal?.message.contains("refusing to send the SMTP password") == true)
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func plaintextAuthOnlyWhenAllowedForLoopback() async throws {
        let server = try await Self.sink(["--user", "herald", "--password", "s3cret pass", "--auth-without-tls"], tls: false)
        defer { server.stop() }
        var configuration = try Self.configuration(port: server.port, tls: .none, credentials: Self.credentials)
        await #expect(throws: MailError.self) { try await SMTPTransport(configuration: configuration).send(try richMessage()) }
        configuration.allowPlaintextAuthOnLoopback = true
        _ = try await SMTPTransport(configuration: configuration).send(try richMessage())
        #expect(try server.json("message-1.json")["authenticated_as"] as? String == "herald")
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func refusedRecipientsStopTheWholeMessage() async throws {
        let server = try await Self.sink(["--reject-recipient", "nobody@", "--defer-recipient", "busy@"])
        defer { server.stop() }
        let transport = try SMTPTransport(configuration: try Self.configuration(port: server.port))
        let rejected = await #expect(throws: MailError.self) {
            try await transport.send(try richMessage(to: ["ops@example.com", "nobody@example.com"]))
        }
        #expect(rejected?.kind == .permanent && rejected?.code == 550)
        #expect(rejected?.message.contains("refused the recipient nobody@example.com: 550 5.1.1") == true)
        let deferred = await #expect(throws: MailError.self) { try await transport.send(try richMessage(to: ["busy@example.com"])) }
        #expect(deferred?.kind == .transient && deferred?.code == 450)
        #expect(server.files(endingWith: ".eml").isEmpty)
    }

    @Test(.enabled(if: TestServers.smtpAvailable, Comment(rawValue: sinkMissing)))
    func aTemporaryFailureAfterDataIsTransient() async throws {
        let server = try await Self.sink(["--fail-data", "451 4.3.0 Try again later"])
        defer { server.stop() }
        let transport = try SMTPTransport(configuration: try Self.configuration(port: server.port))
        let error = await #expect(throws: MailError.self) { try await transport.send(try richMessage()) }
        #expect(error?.kind == .transient && error?.code == 451)
        #expect(error?.message.contains("refused the message: 451 4.3.0 Try again later") == true)
    }

    // MARK: Against a scripted server

    static let ehlo = "250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    static let happyRules: [(String, String)] = [
        ("EHLO", ehlo), ("MAIL FROM", "250 2.1.0 Ok\r\n"), ("RCPT TO", "250 2.1.5 Ok\r\n"), ("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n"),
        (".", "250 2.0.0 Ok: queued as ABC123\r\n"), ("QUIT", "221 2.0.0 Bye\r\n"),
    ]

    static func scripted(_ port: Int, tls: SMTPTransport.TLSMode = .opportunistic, commandTimeout: TimeAmount = .seconds(5)) throws -> SMTPTransport {
        var configuration = SMTPTransport.Configuration(host: "127.0.0.1", port: port, tls: tls, heloName: "herald.test")
        configuration.commandTimeout = commandTimeout
        return try SMTPTransport(configuration: configuration)
    }

    @Test func speaksTheWholeDialogue() async throws {
        let server = try await ScriptedSMTPServer.start(greeting: "220 scripted.test ESMTP\r\n", rules: Self.happyRules)
        let receipt = try await Self.scripted(server.port).send(try richMessage())
        await server.stop()
        #expect(receipt.providerMessageId == "ABC123")
        #expect(
            server.transcript.all == [
                "EHLO herald.test", "MAIL FROM:<reports@example.com>", "RCPT TO:<ops@example.com>", "RCPT TO:<finance@example.com>", "DATA", ".",
                "QUIT",
            ])
    }

    @Test func fallsBackToHELOForOldServers() async throws {
        let rules = [("EHLO", "502 5.5.2 Error: command not recognized\r\n"), ("HELO", "250 scripted.test\r\n")] + Self.happyRules
        let server = try await ScriptedSMTPServer.start(greeting: "220 old server\r\n", rules: rules)
        _ = try await Self.scripted(server.port).send(try richMessage())
        await server.stop()
        #expect(server.transcript.all.prefix(3) == ["EHLO herald.test", "HELO herald.test", "MAIL FROM:<reports@example.com>"])
    }

    @Test func refusesPlaintextInjectedAfterSTARTTLS() async throws {
        let rules = [("EHLO", "250-scripted.test\r\n250 STARTTLS\r\n"), ("STARTTLS", "220 2.0.0 Ready to start TLS\r\n250 injected\r\n")]
        let server = try await ScriptedSMTPServer.start(greeting: "220 scripted.test\r\n", rules: rules)
        let error = await #expect(throws: MailError.self) { try await Self.scripted(server.port).send(try richMessage()) }
        await server.stop()
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("sent data right after agreeing to STARTTLS") == true)
    }

    @Test func checksTheServersSizeLimitBeforeSending() async throws {
        let rules = [("EHLO", "250-scripted.test\r\n250 SIZE 1000\r\n")] + Self.happyRules
        let server = try await ScriptedSMTPServer.start(greeting: "220 scripted.test\r\n", rules: rules)
        let error = await #expect(throws: MailError.self) { try await Self.scripted(server.port).send(try richMessage()) }
        await server.stop()
        #expect(error?.kind == .permanent)
        #expect(error?.message.contains("accepts at most 1000") == true)
        #expect(!server.transcript.all.contains { $0.hasPrefix("MAIL FROM") })
    }

    @Test func timesOutWhenTheServerSaysNothing() async throws {
        let server = try await ScriptedSMTPServer.start(greeting: nil, rules: [])
        let started = ContinuousClock.now
        let error = await #expect(throws: MailError.self) {
            try await Self.scripted(server.port, commandTimeout: .milliseconds(300)).send(try richMessage())
        }
        let elapsed = ContinuousClock.now - started
        await server.stop()
        #expect(elapsed < .seconds(10))
        #expect(error?.kind == .transient)
        #expect(error?.message == "the SMTP server 127.0.0.1:\(server.port) did not answer within 300 ms during the greeting")
    }

    @Test func cancellingASendClosesTheConnectionAtOnce() async throws {
        let server = try await ScriptedSMTPServer.start(greeting: nil, rules: [])
        let transport = try Self.scripted(server.port, commandTimeout: .seconds(30))
        let message = try richMessage()
        let started = ContinuousClock.now
        let task = Task { try await transport.send(message) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // Measured before the server stops, and far below the 30 s command timeout a missed cancellation would wait
        // for: a loaded machine must not make this fail.
        let elapsed = ContinuousClock.now - started
        await server.stop()
        #expect(elapsed < .seconds(15))
    }

    @Test func busyGreetingsAreTransientAndNonSMTPIsPermanent() async throws {
        let busy = try await ScriptedSMTPServer.start(greeting: "421 4.3.2 Too busy, try later\r\n", rules: [])
        let error = await #expect(throws: MailError.self) { try await Self.scripted(busy.port).send(try richMessage()) }
        await busy.stop()
        #expect(error?.kind == .transient && error?.code == 421)

        let http = try await ScriptedSMTPServer.start(greeting: "HTTP/1.1 400 Bad Request\r\n\r\n", rules: [])
        let wrong = await #expect(throws: MailError.self) { try await Self.scripted(http.port).send(try richMessage()) }
        await http.stop()
        #expect(wrong?.kind == .permanent)
        #expect(wrong?.message.contains("did not answer like an SMTP server") == true)
    }

    @Test func connectionRefusedIsTransient() async throws {
        let server = try await ScriptedSMTPServer.start(greeting: nil, rules: [])
        let port = server.port
        await server.stop()
        let error = await #expect(throws: MailError.self) { try await Self.scripted(port).send(try richMessage()) }
        #expect(error?.kind == .transient)
        #expect(error?.message == "cannot connect to the SMTP server 127.0.0.1:\(port): connection refused")
    }
}
