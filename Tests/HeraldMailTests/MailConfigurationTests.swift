import Foundation
import Testing

@testable import HeraldMail

/// HERALD_MAIL_* parsing: every mistake names its variable and never repeats a password or key.
@Suite struct MailConfigurationTests {
    static let from = "Herald <reports@example.com>"

    static func parse(_ environment: [String: String]) throws -> MailConfiguration {
        try MailConfiguration.fromEnvironment(environment)
    }

    static func smtp(_ url: String) throws -> SMTPTransport.Configuration {
        let configuration = try parse(["HERALD_MAIL_URL": url, "HERALD_MAIL_FROM": from])
        guard case .smtp(let smtp) = configuration.transport else { throw TestFailure("not SMTP: \(configuration)") }
        return smtp
    }

    @Test func unsetURLDisablesMail() async throws {
        for environment in [[:], ["HERALD_MAIL_URL": ""], ["HERALD_MAIL_URL": "  ", "HERALD_MAIL_FROM": Self.from]] {
            let configuration = try Self.parse(environment)
            #expect(!configuration.isEnabled)
            let transport = try configuration.makeTransport()
            #expect(transport is DisabledMailTransport)
            let error = await #expect(throws: MailError.self) { try await transport.send(try richMessage()) }
            #expect(error?.kind == .permanent)
            #expect(error?.message.hasPrefix("mail is not configured: set HERALD_MAIL_URL") == true)
        }
        #expect(try Self.parse(["HERALD_MAIL_FROM": Self.from]).from?.address == "reports@example.com")
    }

    @Test func parsesSubmissionWithSTARTTLS() throws {
        let smtp = try Self.smtp("smtp://apikey:p%40ss%2Fw%3Ard@smtp.example.com?tls=required")
        #expect(smtp.host == "smtp.example.com" && smtp.port == 587 && smtp.tls == .required)
        #expect(smtp.credentials == SMTPTransport.Credentials(username: "apikey", password: "p@ss/w:rd"))
        #expect(smtp.description == "smtp://apikey@smtp.example.com:587 (STARTTLS required)")
        #expect(try Self.smtp("smtp://mail.example.com:25").tls == .opportunistic)
        #expect(try Self.smtp("smtp://relay.internal:25?tls=none").tls == .none)
        #expect(try Self.smtp("SMTP://u:p@127.0.0.1:2525?tls=opportunistic&helo=herald.example.com").heloName == "herald.example.com")
        let ipv6 = try Self.smtp("smtp://[::1]:2525")
        #expect(ipv6.host == "::1" && ipv6.description == "smtp://[::1]:2525 (STARTTLS when offered)")
    }

    @Test func parsesImplicitTLS() throws {
        let smtps = try Self.smtp("smtps://user:secret@smtp.example.com")
        #expect(smtps.tls == .implicit && smtps.port == 465)
        #expect(try Self.smtp("smtps://user:secret@smtp.example.com:2465").port == 2465)
    }

    @Test func parsesSendGrid() throws {
        let configuration = try Self.parse(["HERALD_MAIL_URL": "sendgrid://", "HERALD_SENDGRID_API_KEY": "SG.secret", "HERALD_MAIL_FROM": Self.from])
        guard case .sendGrid(let sendGrid) = configuration.transport else { throw TestFailure("not SendGrid") }
        #expect(sendGrid.apiKey == "SG.secret" && sendGrid.baseURL == "https://api.sendgrid.com")
        #expect(configuration.from?.name == "Herald")
        #expect(!configuration.description.contains("SG.secret"))
        let local = try Self.parse([
            "HERALD_MAIL_URL": "sendgrid://", "HERALD_SENDGRID_API_KEY": "k", "HERALD_MAIL_FROM": Self.from,
            "HERALD_SENDGRID_URL": "http://127.0.0.1:9999/",
        ])
        guard case .sendGrid(let fake) = local.transport else { throw TestFailure("not SendGrid") }
        #expect(fake.baseURL == "http://127.0.0.1:9999")
    }

    @Test(arguments: [
        (["HERALD_MAIL_URL": "smtp://mail.example.com"], "HERALD_MAIL_FROM"),
        (["HERALD_MAIL_URL": "smtp://mail.example.com", "HERALD_MAIL_FROM": "not an address"], "HERALD_MAIL_FROM"),
        (["HERALD_MAIL_URL": "smtp://mail.example.com", "HERALD_MAIL_FROM": "Herald <a@b.com>\r\nBcc: x@evil.example"], "HERALD_MAIL_FROM"),
        (["HERALD_MAIL_URL": "imap://mail.example.com", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://mail.example.com?tls=always", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://mail.example.com?tsl=required", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtps://mail.example.com?tls=required", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://mail.example.com:99999", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://mail.example.com/path", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://user@mail.example.com", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "smtp://mail_server:25", "HERALD_MAIL_FROM": from], "HERALD_MAIL_URL"),
        (["HERALD_MAIL_URL": "sendgrid://", "HERALD_MAIL_FROM": from], "HERALD_SENDGRID_API_KEY"),
        (["HERALD_MAIL_URL": "sendgrid://api.sendgrid.com", "HERALD_MAIL_FROM": from, "HERALD_SENDGRID_API_KEY": "k"], "HERALD_MAIL_URL"),
        (
            [
                "HERALD_MAIL_URL": "sendgrid://", "HERALD_MAIL_FROM": from, "HERALD_SENDGRID_API_KEY": "k",
                "HERALD_SENDGRID_URL": "http://sendgrid.example.com",
            ],
            "HERALD_SENDGRID_URL"
        ),
        (
            [
                "HERALD_MAIL_URL": "sendgrid://", "HERALD_MAIL_FROM": from, "HERALD_SENDGRID_API_KEY": "k",
                "HERALD_SENDGRID_URL": "https://x.example.com/v3",
            ],
            "HERALD_SENDGRID_URL"
        ),
        (
            ["HERALD_MAIL_URL": "smtp://mail.example.com", "HERALD_MAIL_FROM": from, "HERALD_MAIL_CA_FILE": "/nonexistent/ca.pem"],
            "HERALD_MAIL_CA_FILE"
        ),
        (
            [
                "HERALD_MAIL_URL": "sendgrid://", "HERALD_MAIL_FROM": from, "HERALD_SENDGRID_API_KEY": "k",
                "HERALD_SENDGRID_URL": "http://127.evil.example",
            ],
            "HERALD_SENDGRID_URL"
        ),
    ])
    func badValuesNameTheirVariable(_ environment: [String: String], _ variable: String) {
        let error = #expect(throws: MailConfigurationError.self) { try Self.parse(environment) }
        #expect(error?.variable == variable)
        #expect(error?.description.hasPrefix("\(variable): ") == true)
    }

    @Test func errorsNeverRepeatThePassword() {
        for url in ["smtp://user:hunter2@mail.example.com?tls=none", "smtp://user:hunter2@mail.example.com/#x", "smtp://user:hunter2@bad_host"] {
            let error = #expect(throws: MailConfigurationError.self) { try Self.parse(["HERALD_MAIL_URL": url, "HERALD_MAIL_FROM": Self.from]) }
            #expect(error.map { !$0.description.contains("hunter2") } == true, "\(url)")
        }
        let none = #expect(throws: MailConfigurationError.self) {
            try Self.parse(["HERALD_MAIL_URL": "smtp://user:hunter2@mail.example.com?tls=none", "HERALD_MAIL_FROM": Self.from])
        }
        #expect(none?.message.contains("unencrypted") == true)
        #expect(!String(describing: SMTPTransport.Credentials(username: "u", password: "hunter2")).contains("hunter2"))
    }

    @Test(.enabled(if: TestServers.smtpAvailable, "openssl is needed to make a test certificate"))
    func acceptsAReadableCAFile() throws {
        let certificate = try TestCertificate.get()
        let configuration = try Self.parse([
            "HERALD_MAIL_URL": "smtps://u:p@mail.example.com", "HERALD_MAIL_FROM": Self.from, "HERALD_MAIL_CA_FILE": certificate.certificate,
        ])
        guard case .smtp(let smtp) = configuration.transport else { throw TestFailure("not SMTP") }
        #expect(smtp.additionalTrustRootFile == certificate.certificate)
        _ = try configuration.makeTransport()
    }
}
