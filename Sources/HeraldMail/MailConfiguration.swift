import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix

/// How Herald sends mail, read from the environment.
///
/// - `HERALD_MAIL_URL`: `smtp://user:pass@host:587?tls=opportunistic|required|none`, `smtps://user:pass@host:465`
///   or `sendgrid://`; unset or empty disables mail.
/// - `HERALD_MAIL_FROM`: the default sender, `Herald <reports@example.com>`; required when mail is enabled.
/// - `HERALD_SENDGRID_API_KEY`: the API key, required with `sendgrid://`.
/// - `HERALD_SENDGRID_URL`: the API's origin, default `https://api.sendgrid.com`.
/// - `HERALD_MAIL_CA_FILE`: a PEM file of CA certificates trusted in addition to the system's.
public struct MailConfiguration: Sendable, CustomStringConvertible {
    /// Which mail system carries the messages.
    public enum Transport: Sendable {
        /// Mail is off: sends fail permanently with a message saying how to turn it on.
        case disabled
        /// An SMTP server.
        case smtp(SMTPTransport.Configuration)
        /// SendGrid's v3 API.
        case sendGrid(SendGridTransport.Configuration)
    }

    /// Which mail system carries the messages.
    public var transport: Transport
    /// The default sender for messages Herald writes (`HERALD_MAIL_FROM`); nil only when mail is disabled.
    public var from: MailAddress?

    public init(transport: Transport, from: MailAddress?) {
        self.transport = transport
        self.from = from
    }

    /// True unless mail is disabled.
    public var isEnabled: Bool {
        if case .disabled = transport { return false }
        return true
    }

    /// Where mail goes, without passwords or keys: `smtp://user@mail.example.com:587 (STARTTLS required)`.
    public var description: String {
        switch transport {
        case .disabled: "mail disabled (HERALD_MAIL_URL is not set)"
        case .smtp(let configuration): configuration.description
        case .sendGrid(let configuration): configuration.description
        }
    }

    /// Reads the configuration; throws a ``MailConfigurationError`` naming the variable whose value is wrong.
    public static func fromEnvironment(_ environment: [String: String]) throws -> MailConfiguration {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        var from: MailAddress?
        if let text = value("HERALD_MAIL_FROM") {
            do {
                from = try MailAddress.parse(text)
            } catch let error as MailError {
                throw MailConfigurationError(variable: "HERALD_MAIL_FROM", message: "\(error.message); expected Name <address@example.com>")
            }
        }
        let caFile = value("HERALD_MAIL_CA_FILE")
        if let caFile {
            do {
                _ = try SMTPTransport.loadCertificates(caFile)
            } catch let error as MailError {
                throw MailConfigurationError(variable: "HERALD_MAIL_CA_FILE", message: error.message)
            }
        }
        guard let url = value("HERALD_MAIL_URL") else { return MailConfiguration(transport: .disabled, from: from) }
        guard let from else {
            throw MailConfigurationError(
                variable: "HERALD_MAIL_FROM", message: "required when HERALD_MAIL_URL is set, e.g. HERALD_MAIL_FROM=\"Herald <reports@example.com>\"")
        }
        let scheme = url.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        switch scheme {
        case "smtp", "smtps":
            return MailConfiguration(transport: .smtp(try parseSMTP(url, caFile: caFile)), from: from)
        case "sendgrid":
            guard url.lowercased() == "sendgrid://" || url.lowercased() == "sendgrid:" else {
                throw MailConfigurationError(
                    variable: "HERALD_MAIL_URL",
                    message: "sendgrid:// takes no host or options; set HERALD_SENDGRID_API_KEY and HERALD_SENDGRID_URL instead")
            }
            guard let key = value("HERALD_SENDGRID_API_KEY") else {
                throw MailConfigurationError(variable: "HERALD_SENDGRID_API_KEY", message: "required when HERALD_MAIL_URL is sendgrid://")
            }
            guard key.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else {
                throw MailConfigurationError(variable: "HERALD_SENDGRID_API_KEY", message: "the key must be printable ASCII without spaces")
            }
            let base = try parseSendGridURL(value("HERALD_SENDGRID_URL") ?? "https://api.sendgrid.com")
            let configuration = SendGridTransport.Configuration(apiKey: key, baseURL: base, additionalTrustRootFile: caFile)
            return MailConfiguration(transport: .sendGrid(configuration), from: from)
        default:
            throw MailConfigurationError(
                variable: "HERALD_MAIL_URL", message: "expected smtp://, smtps:// or sendgrid:// (e.g. smtp://user:password@mail.example.com:587)")
        }
    }

    /// Parses `smtp://user:pass@host:port?tls=…&helo=…` or `smtps://user:pass@host:port`.
    static func parseSMTP(_ url: String, caFile: String?) throws -> SMTPTransport.Configuration {
        func invalid(_ message: String) -> MailConfigurationError { MailConfigurationError(variable: "HERALD_MAIL_URL", message: message) }
        // The URL holds a password: no message below repeats it.
        guard let components = URLComponents(string: url) else {
            throw invalid("not a valid URL; percent-encode special characters in the user name and password (@ is %40, / is %2F, # is %23)")
        }
        let implicit = components.scheme?.lowercased() == "smtps"
        guard var host = components.host, !host.isEmpty else { throw invalid("no host given; expected smtp://user:password@mail.example.com:587") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard MailText.isHostName(host) || (try? SocketAddress(ipAddress: host, port: 0)) != nil else {
            throw invalid("the host \(MailText.quoted(host)) is not a valid host name or IP address")
        }
        guard components.path.isEmpty || components.path == "/" else { throw invalid("unexpected path after the host and port") }
        guard components.fragment == nil else { throw invalid("unexpected #fragment; percent-encode # in a password as %23") }
        let port = components.port ?? (implicit ? 465 : 587)
        guard (1...65535).contains(port) else { throw invalid("the port must be between 1 and 65535") }

        var credentials: SMTPTransport.Credentials?
        if let user = components.user, !user.isEmpty {
            guard let password = components.password, !password.isEmpty else {
                throw invalid("a user name without a password; use smtp://user:password@host")
            }
            credentials = SMTPTransport.Credentials(username: user, password: password)
        } else if components.password != nil {
            throw invalid("a password without a user name")
        }

        var tls: SMTPTransport.TLSMode = implicit ? .implicit : .opportunistic
        var helo = SMTPTransport.defaultHeloName()
        for item in components.queryItems ?? [] {
            switch item.name.lowercased() {
            case "tls":
                guard !implicit else { throw invalid("tls= does not apply to smtps://, which is always TLS; use smtp:// to choose STARTTLS") }
                guard let value = item.value?.lowercased(), let mode = SMTPTransport.TLSMode(rawValue: value), mode != .implicit else {
                    throw invalid("tls must be opportunistic, required or none, not \(MailText.quoted(item.value ?? ""))")
                }
                tls = mode
            case "helo":
                guard let value = item.value, MailText.isHostName(value) else { throw invalid("helo must be a host name") }
                helo = value
            default:
                throw invalid("unknown option \(MailText.quoted(item.name)); the options are tls and helo")
            }
        }
        if tls == .none, credentials != nil {
            throw invalid("tls=none would send the password unencrypted; use tls=required (or smtps://), or remove the user name and password")
        }
        return SMTPTransport.Configuration(
            host: host, port: port, tls: tls, credentials: credentials, heloName: helo, additionalTrustRootFile: caFile)
    }

    /// Checks `HERALD_SENDGRID_URL`: https, or http to this machine (a fake in tests); returned without a trailing slash.
    static func parseSendGridURL(_ text: String) throws -> String {
        func invalid(_ message: String) -> MailConfigurationError { MailConfigurationError(variable: "HERALD_SENDGRID_URL", message: message) }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), let host = components.host, !host.isEmpty
        else { throw invalid("expected a URL like https://api.sendgrid.com") }
        guard components.user == nil, components.password == nil, components.query == nil, components.fragment == nil,
            components.path.isEmpty || components.path == "/"
        else { throw invalid("expected an origin only, like https://api.sendgrid.com (no path, query or credentials)") }
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        guard scheme == "https" || (scheme == "http" && SMTPTransport.isLoopback(bareHost)) else {
            throw invalid("use https (http is accepted only for 127.0.0.1 or localhost, for tests)")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// The transport these settings describe.
    ///
    /// - Parameters:
    ///   - httpClient: the client SendGrid requests go through; the caller owns it.
    ///   - eventLoopGroup: where SMTP connections run.
    public func makeTransport(
        httpClient: HTTPClient = .shared,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "herald.mail", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws -> any MailTransport {
        switch transport {
        case .disabled: DisabledMailTransport()
        case .smtp(let configuration): try SMTPTransport(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        case .sendGrid(let configuration): try SendGridTransport(configuration: configuration, httpClient: httpClient, logger: logger)
        }
    }
}

/// A mail setting in the environment has a value Herald cannot use.
public struct MailConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The environment variable at fault (`HERALD_MAIL_URL`).
    public var variable: String
    /// What is wrong with it and how to fix it; never repeats a password or key.
    public var message: String

    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }

    public var description: String { "\(variable): \(message)" }
}
