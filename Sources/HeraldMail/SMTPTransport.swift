import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Sends mail through an SMTP server (RFC 5321), one connection per message.
///
/// The dialogue: greeting, `EHLO`, `STARTTLS` as ``TLSMode`` asks (then `EHLO` again), `AUTH PLAIN` (or `LOGIN`
/// when the server offers only that) when credentials are set, `MAIL FROM`, one `RCPT TO` per recipient, `DATA`
/// with dot-stuffing, `QUIT`. Every step has a timeout. Certificates are verified against the system's trust store
/// plus an optional extra CA. Credentials are only ever sent over TLS, unless
/// ``Configuration/allowPlaintextAuthOnLoopback`` allows it for a server on this machine (tests). If any
/// recipient is refused, no data is sent, so a retry cannot duplicate the message for the others.
public struct SMTPTransport: MailTransport {
    /// How the connection is encrypted.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// TLS from the first byte (`smtps://`, usually port 465).
        case implicit
        /// `STARTTLS`; the send fails if the server does not offer it.
        case required
        /// `STARTTLS` when the server offers it, plaintext otherwise (credentials are still never sent in plaintext).
        case opportunistic
        /// Never encrypt. Only for relays on a trusted network that take mail without credentials.
        case none
    }

    /// A user name and password for `AUTH`; the password is never printed.
    public struct Credentials: Sendable, Equatable, CustomStringConvertible {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        public var description: String { "\(username):***" }
    }

    /// Where and how to connect. Its description is safe to print (no password).
    public struct Configuration: Sendable, CustomStringConvertible {
        /// Server host name or IP address.
        public var host: String
        /// Server port (587 for submission with STARTTLS, 465 for implicit TLS).
        public var port: Int
        /// How the connection is encrypted.
        public var tls: TLSMode
        /// Credentials for `AUTH`, if the server needs them.
        public var credentials: Credentials?
        /// The name Herald gives itself in `EHLO`.
        public var heloName: String
        /// A PEM file of CA certificates trusted in addition to the system's (a private CA, or a test CA).
        public var additionalTrustRootFile: String?
        /// Allows `AUTH` without TLS when `host` is a loopback address; for tests against a local server.
        public var allowPlaintextAuthOnLoopback: Bool
        /// Time allowed to open the TCP connection.
        public var connectTimeout: TimeAmount
        /// Time allowed for the greeting, the TLS handshake and the reply to each command.
        public var commandTimeout: TimeAmount
        /// Time allowed to upload the message and get the server's final reply to it.
        public var dataTimeout: TimeAmount

        public init(
            host: String,
            port: Int = 587,
            tls: TLSMode = .opportunistic,
            credentials: Credentials? = nil,
            heloName: String = SMTPTransport.defaultHeloName(),
            additionalTrustRootFile: String? = nil,
            allowPlaintextAuthOnLoopback: Bool = false,
            connectTimeout: TimeAmount = .seconds(10),
            commandTimeout: TimeAmount = .seconds(30),
            dataTimeout: TimeAmount = .seconds(120)
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.credentials = credentials
            self.heloName = heloName
            self.additionalTrustRootFile = additionalTrustRootFile
            self.allowPlaintextAuthOnLoopback = allowPlaintextAuthOnLoopback
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.dataTimeout = dataTimeout
        }

        /// `smtp://user@host:587 (STARTTLS opportunistic)`, without the password.
        public var description: String {
            let user = credentials.map { "\($0.username)@" } ?? ""
            let scheme = tls == .implicit ? "smtps" : "smtp"
            let mode =
                switch tls {
                case .implicit: "implicit TLS"
                case .required: "STARTTLS required"
                case .opportunistic: "STARTTLS when offered"
                case .none: "no TLS"
                }
            return "\(scheme)://\(user)\(SMTPTransport.hostForDisplay(host)):\(port) (\(mode))"
        }
    }

    /// The settings this transport connects with.
    public let configuration: Configuration
    private let sslContext: NIOSSLContext?
    private let group: any EventLoopGroup
    private let logger: Logger
    private let writer: MIMEWriter

    /// Prepares the transport; throws a permanent ``MailError`` when the TLS settings cannot be used (an unreadable
    /// CA file). Nothing connects until ``send(_:)``.
    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "herald.mail", factory: { _ in SwiftLogNoOpLogHandler() }),
        writer: MIMEWriter = MIMEWriter()
    ) throws {
        self.configuration = configuration
        self.group = eventLoopGroup
        var logger = logger
        logger[metadataKey: "mail.server"] = "\(Self.hostForDisplay(configuration.host)):\(configuration.port)"
        self.logger = logger
        self.writer = writer
        if configuration.tls == .none {
            self.sslContext = nil
        } else {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.certificateVerification = .fullVerification
            if let file = configuration.additionalTrustRootFile {
                tls.additionalTrustRoots = [.certificates(try Self.loadCertificates(file))]
            }
            do {
                self.sslContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw MailError.permanent("cannot set up TLS for SMTP: \(error)")
            }
        }
    }

    /// The host's name for `EHLO`: the system host name when it looks like a domain name, else `localhost`.
    public static func defaultHeloName() -> String {
        let name = ProcessInfo.processInfo.hostName
        return name.contains(".") && MailText.isHostName(name) ? name : "localhost"
    }

    /// Reads a PEM file of certificates; throws a permanent ``MailError`` naming the file.
    static func loadCertificates(_ file: String) throws -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(file)
        } catch {
            throw MailError.permanent("cannot read PEM certificates from \(file): \(error)")
        }
        guard !certificates.isEmpty else { throw MailError.permanent("\(file) contains no PEM certificate") }
        return certificates
    }

    public func send(_ message: MailMessage) async throws -> MailReceipt {
        let messageId = MIMEWriter.makeMessageId(domain: message.from.domain)
        let data = SMTPData.encode(writer.write(message, messageId: messageId))
        var session = try await connect()
        let channel = session.channel
        do {
            // Cancelling the task closes the connection, which ends the step being awaited at once.
            let reply = try await withTaskCancellationHandler {
                try await session.deliver(message, data: data)
            } onCancel: {
                channel.close(promise: nil)
            }
            await session.quit()
            logger.info("mail sent", metadata: ["mail.transport": "smtp", "mail.recipients": "\(message.to.count)"])
            return MailReceipt(
                transport: "smtp \(Self.hostForDisplay(configuration.host)):\(configuration.port)",
                messageId: messageId,
                providerMessageId: Self.queueId(reply),
                serverResponse: reply.summary
            )
        } catch {
            try? await channel.close()
            if Task.isCancelled { throw CancellationError() }
            let failure = session.mailError(for: error)
            logger.debug("mail not sent", metadata: ["mail.error": "\(failure.message)"])
            throw failure
        }
    }

    private func connect() async throws -> SMTPSession {
        let implicitContext = configuration.tls == .implicit ? sslContext : nil
        let serverName = Self.serverName(configuration.host)
        let endpoint = "\(Self.hostForDisplay(configuration.host)):\(configuration.port)"
        let link: SMTPLink
        do {
            link = try await ClientBootstrap(group: group)
                .connectTimeout(configuration.connectTimeout)
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let implicitContext {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: implicitContext, serverHostname: serverName))
                        }
                        let handler = SMTPClientHandler(eventLoop: channel.eventLoop)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        return SMTPLink(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    }
                }
        } catch {
            logger.debug("SMTP connection failed", metadata: ["error": "\(error)"])
            throw MailError.transient("cannot connect to the SMTP server \(endpoint): \(Self.describeConnectError(error))")
        }
        return SMTPSession(
            channel: link.channel, handler: link.handler, configuration: configuration, sslContext: sslContext, serverName: serverName,
            endpoint: endpoint, logger: logger
        )
    }

    static func describeConnectError(_ error: any Error) -> String {
        if let error = error as? ChannelError, case .connectTimeout(let timeout) = error {
            return "no answer within \(describe(timeout))"
        }
        if let error = error as? NIOConnectionError {
            if let dns = error.dnsAError ?? error.dnsAAAAError { return "the host name could not be resolved (\(dns))" }
            if let first = error.connectionErrors.first { return describeConnectError(first.error) }
        }
        if let error = error as? IOError {
            if error.errnoCode == ECONNREFUSED { return "connection refused" }
            return error.description
        }
        return "\(error)"
    }

    /// A sentence for a TLS failure, or nil when `error` is not one; certificate problems say how to fix them.
    static func describeTLSError(_ error: any Error) -> String? {
        guard error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError else { return nil }
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the server's certificate is not trusted (expired, self-signed or from an unknown CA); "
                + "if it comes from a private CA, set HERALD_MAIL_CA_FILE to that CA's PEM file"
        }
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "the server's certificate is not valid for this host name; use the name the certificate was issued for"
        }
        if text.contains("WRONG_VERSION_NUMBER") {
            return "the server did not answer with TLS; use smtp:// (STARTTLS) for this port instead of smtps://"
        }
        return text
    }

    /// `300 ms`, `30 s`.
    static func describe(_ amount: TimeAmount) -> String {
        amount.nanoseconds < 1_000_000_000 ? "\(amount.nanoseconds / 1_000_000) ms" : "\(amount.nanoseconds / 1_000_000_000) s"
    }

    /// The name to send in TLS SNI and verify the certificate against; nil for an IP address, whose certificate is
    /// verified against the address instead.
    static func serverName(_ host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// True for `localhost`, `::1` and IPv4 addresses in 127.0.0.0/8 (not for names such as `127.example.com`).
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        return host.hasPrefix("127.") && (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    static func hostForDisplay(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }

    /// The server's id for the queued message, from replies such as `250 2.0.0 Ok: queued as 4Vb1` or `250 Ok 0100…`.
    static func queueId(_ reply: SMTPReply) -> String? {
        let text = reply.lines.joined(separator: " ")
        let words = text.split(separator: " ").map(String.init)
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._@"))
        func clean(_ word: String) -> String? {
            let trimmed = word.trimmingCharacters(in: CharacterSet(charactersIn: "<>[](),;:"))
            return !trimmed.isEmpty && trimmed.unicodeScalars.allSatisfy(allowed.contains) ? trimmed : nil
        }
        let lowered = words.map { $0.lowercased() }
        for index in lowered.indices.dropLast(2) where lowered[index] == "queued" && lowered[index + 1] == "as" {
            return clean(words[index + 2])
        }
        let ok = lowered.firstIndex { $0.trimmingCharacters(in: CharacterSet(charactersIn: ":")) == "ok" }
        if let ok, ok + 1 < words.count, words[ok + 1].count >= 8 { return clean(words[ok + 1]) }
        return nil
    }
}

/// The channel and its reply handler, handed out of the channel initializer.
struct SMTPLink: Sendable {
    var channel: any Channel
    var handler: NIOLoopBound<SMTPClientHandler>
}

/// One SMTP dialogue over one connection.
struct SMTPSession {
    let channel: any Channel
    let handler: NIOLoopBound<SMTPClientHandler>
    let configuration: SMTPTransport.Configuration
    let sslContext: NIOSSLContext?
    let serverName: String?
    let endpoint: String
    let logger: Logger
    /// What the client was doing, for error messages.
    private(set) var step = "the greeting"
    private(set) var stepTimeout: TimeAmount
    private(set) var encrypted: Bool

    init(
        channel: any Channel, handler: NIOLoopBound<SMTPClientHandler>, configuration: SMTPTransport.Configuration, sslContext: NIOSSLContext?,
        serverName: String?, endpoint: String, logger: Logger
    ) {
        self.channel = channel
        self.handler = handler
        self.configuration = configuration
        self.sslContext = sslContext
        self.serverName = serverName
        self.endpoint = endpoint
        self.logger = logger
        self.stepTimeout = configuration.commandTimeout
        self.encrypted = configuration.tls == .implicit
        if encrypted { step = "the TLS handshake and greeting" }
    }

    /// Runs the dialogue up to the server's reply to the message data, which it returns.
    mutating func deliver(_ message: MailMessage, data: ByteBuffer) async throws -> SMTPReply {
        let greeting = try await exchange(nil, step: step)
        guard greeting.code == 220 else { throw refusal(greeting, "the connection") }
        var capabilities = try await hello()

        if !encrypted && (configuration.tls == .required || configuration.tls == .opportunistic) {
            if capabilities.supports("STARTTLS") {
                let reply = try await exchange("STARTTLS", step: "STARTTLS")
                guard reply.code == 220 else { throw refusal(reply, "STARTTLS") }
                try await startTLS()
                step = "the TLS handshake and EHLO"
                capabilities = try await hello(step: step)
            } else if configuration.tls == .required {
                throw MailError.permanent(
                    "the SMTP server \(endpoint) does not offer STARTTLS, and TLS is required (tls=required); "
                        + "use a server that offers it, smtps:// for implicit TLS, or tls=opportunistic")
            }
        }

        if let credentials = configuration.credentials {
            try await authenticate(credentials, capabilities: capabilities)
        }

        if let limit = capabilities.sizeLimit, limit > 0, data.readableBytes > limit {
            throw MailError.permanent(
                "the message is \(data.readableBytes) bytes and the SMTP server \(endpoint) accepts at most \(limit); send smaller attachments")
        }
        let size = capabilities.supports("SIZE") ? " SIZE=\(data.readableBytes)" : ""
        let mail = try await exchange("MAIL FROM:<\(message.from.address)>\(size)", step: "MAIL FROM")
        guard mail.isPositiveCompletion else { throw refusal(mail, "the sender \(message.from.address)") }
        for recipient in message.to {
            let reply = try await exchange("RCPT TO:<\(recipient.address)>", step: "RCPT TO")
            guard reply.isPositiveCompletion else { throw refusal(reply, "the recipient \(recipient.address)") }
        }
        let start = try await exchange("DATA", step: "DATA")
        guard start.code == 354 else { throw refusal(start, "DATA") }
        stepTimeout = configuration.dataTimeout
        let final = try await exchange(data, step: "the message data", logLine: "<\(data.readableBytes) bytes of message data>")
        guard final.isPositiveCompletion else { throw refusal(final, "the message") }
        return final
    }

    /// Says goodbye politely and closes the connection; the message is already accepted, so failures are ignored.
    mutating func quit() async {
        stepTimeout = .seconds(5)
        _ = try? await exchange("QUIT", step: "QUIT")
        try? await channel.close()
    }

    private mutating func hello(step: String = "EHLO") async throws -> SMTPCapabilities {
        let reply = try await exchange("EHLO \(configuration.heloName)", step: step)
        if reply.isPositiveCompletion { return SMTPCapabilities(ehlo: reply) }
        // A server that predates ESMTP answers 500/502; HELO works there, without extensions.
        guard [500, 502, 504].contains(reply.code) else { throw refusal(reply, "EHLO") }
        let helo = try await exchange("HELO \(configuration.heloName)", step: "HELO")
        guard helo.isPositiveCompletion else { throw refusal(helo, "HELO") }
        return SMTPCapabilities()
    }

    private mutating func startTLS() async throws {
        guard let sslContext else { throw MailError.permanent("TLS is not set up for \(endpoint)") }
        let handler = self.handler
        let channel = self.channel
        let serverName = self.serverName
        try await channel.eventLoop.submit {
            // Bytes after the STARTTLS reply were sent in plaintext and would be read as if encrypted: refuse.
            guard !handler.value.hasUnreadInput else { throw SMTPWireError.unexpectedData }
            let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
            try channel.pipeline.syncOperations.addHandler(tls, position: .first)
        }.get()
        encrypted = true
    }

    private mutating func authenticate(_ credentials: SMTPTransport.Credentials, capabilities: SMTPCapabilities) async throws {
        guard encrypted || (configuration.allowPlaintextAuthOnLoopback && SMTPTransport.isLoopback(configuration.host)) else {
            throw MailError.permanent(
                "refusing to send the SMTP password to \(endpoint) without TLS: the server did not offer STARTTLS "
                    + "(use tls=required, or smtps:// for implicit TLS)")
        }
        let mechanisms = capabilities.authMechanisms
        guard capabilities.supports("AUTH") else {
            throw MailError.permanent("the SMTP server \(endpoint) does not offer AUTH; remove the user name and password from HERALD_MAIL_URL")
        }
        step = "AUTH"
        let reply: SMTPReply
        if mechanisms.contains("PLAIN") {
            let token = Data(([0] + Array(credentials.username.utf8) + [0] + Array(credentials.password.utf8))).base64EncodedString()
            reply = try await exchange("AUTH PLAIN \(token)", step: "AUTH PLAIN", logLine: "AUTH PLAIN ***")
        } else if mechanisms.contains("LOGIN") {
            let start = try await exchange("AUTH LOGIN", step: "AUTH LOGIN")
            guard start.code == 334 else { throw refusal(start, "AUTH LOGIN") }
            let user = try await exchange(
                Data(credentials.username.utf8).base64EncodedString(), step: "AUTH LOGIN (user name)", logLine: "<user name>")
            guard user.code == 334 else { throw authRefusal(user) }
            reply = try await exchange(Data(credentials.password.utf8).base64EncodedString(), step: "AUTH LOGIN (password)", logLine: "<password>")
        } else {
            throw MailError.permanent(
                "the SMTP server \(endpoint) offers AUTH \(mechanisms.sorted().joined(separator: " ")), but Herald supports only PLAIN and LOGIN")
        }
        guard reply.code == 235 else { throw authRefusal(reply) }
    }

    private func authRefusal(_ reply: SMTPReply) -> MailError {
        if reply.code == 535 {
            return .permanent(
                "the SMTP server \(endpoint) rejected the user name or password (\(reply.summary)); check HERALD_MAIL_URL", code: reply.code)
        }
        return refusal(reply, "authentication")
    }

    private mutating func exchange(_ line: String, step: String, logLine: String? = nil) async throws -> SMTPReply {
        try await exchange(ByteBuffer(string: line + "\r\n"), step: step, logLine: logLine ?? line)
    }

    private mutating func exchange(_ bytes: ByteBuffer?, step: String, logLine: String? = nil) async throws -> SMTPReply {
        self.step = step
        if let logLine { logger.debug("SMTP client", metadata: ["smtp.command": "\(logLine)"]) }
        let handler = self.handler
        let timeout = stepTimeout
        let reply = try await channel.eventLoop.flatSubmit { handler.value.exchange(bytes, timeout: timeout) }.get()
        logger.debug("SMTP server", metadata: ["smtp.reply": "\(reply.summary)"])
        return reply
    }

    /// The error for a reply that refuses `what`: 4xx may pass, 5xx (and anything unexpected) will not.
    func refusal(_ reply: SMTPReply, _ what: String) -> MailError {
        let message = "the SMTP server \(endpoint) refused \(what): \(reply.summary)"
        return reply.isTransientFailure ? .transient(message, code: reply.code) : .permanent(message, code: reply.code)
    }

    /// The ``MailError`` for anything thrown during the dialogue.
    func mailError(for error: any Error) -> MailError {
        if let error = error as? MailError { return error }
        if let error = error as? SMTPWireError {
            switch error {
            case .timedOut:
                return .transient("the SMTP server \(endpoint) did not answer within \(SMTPTransport.describe(stepTimeout)) during \(step)")
            case .closed:
                return .transient("the SMTP server \(endpoint) closed the connection during \(step)")
            case .replyTooLong, .malformedReply:
                let detail = if case .malformedReply(let text) = error { ": \(text)" } else { ": a reply line was too long" }
                return .permanent("\(endpoint) did not answer like an SMTP server during \(step)\(detail)")
            case .unexpectedData:
                return .permanent("the SMTP server \(endpoint) sent data right after agreeing to STARTTLS; refusing to continue (possible tampering)")
            }
        }
        if let error = error as? NIOSSLError, case .uncleanShutdown = error {
            return .transient("the SMTP server \(endpoint) closed the TLS connection during \(step)")
        }
        if let reason = SMTPTransport.describeTLSError(error) {
            return .permanent("TLS with \(endpoint) failed during \(step): \(reason)")
        }
        if let error = error as? ChannelError, error == .ioOnClosedChannel || error == .alreadyClosed || error == .eof {
            return .transient("the SMTP server \(endpoint) closed the connection during \(step)")
        }
        return .transient("SMTP with \(endpoint) failed during \(step): \(error)")
    }
}
