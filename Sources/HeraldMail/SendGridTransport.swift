import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Sends mail through SendGrid's v3 Mail Send API (`POST /v3/mail/send`).
///
/// `202 Accepted` is success (SendGrid's id from `X-Message-Id`); 429 and 5xx are transient (with `Retry-After`
/// when SendGrid sends it), other statuses permanent with SendGrid's own explanation. Network failures and timeouts
/// are transient.
public struct SendGridTransport: MailTransport {
    /// The API key and where the API is. Its description is safe to print (no key).
    public struct Configuration: Sendable, CustomStringConvertible {
        /// The API key (`SG.…`), sent as `Authorization: Bearer`.
        public var apiKey: String
        /// The API's origin without a trailing slash; `https://api.sendgrid.com` unless testing against a fake.
        public var baseURL: String
        /// Time allowed for the whole request, response included.
        public var timeout: TimeAmount
        /// A PEM file of CA certificates trusted in addition to the system's.
        public var additionalTrustRootFile: String?

        public init(
            apiKey: String, baseURL: String = "https://api.sendgrid.com", timeout: TimeAmount = .seconds(30), additionalTrustRootFile: String? = nil
        ) {
            self.apiKey = apiKey
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.timeout = timeout
            self.additionalTrustRootFile = additionalTrustRootFile
        }

        public var description: String { "sendgrid (\(baseURL))" }
    }

    /// The settings this transport sends with.
    public let configuration: Configuration
    private let httpClient: HTTPClient
    private let tlsConfiguration: TLSConfiguration?
    private let logger: Logger

    /// Prepares the transport over `httpClient` (which the caller owns and shuts down); throws a permanent
    /// ``MailError`` when the CA file cannot be read.
    public init(
        configuration: Configuration,
        httpClient: HTTPClient = .shared,
        logger: Logger = Logger(label: "herald.mail", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
        if let file = configuration.additionalTrustRootFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.certificates(try SMTPTransport.loadCertificates(file))]
            self.tlsConfiguration = tls
        } else {
            self.tlsConfiguration = nil
        }
    }

    public func send(_ message: MailMessage) async throws -> MailReceipt {
        var request = HTTPClientRequest(url: configuration.baseURL + "/v3/mail/send")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.apiKey)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Herald-Mail/1")
        request.body = .bytes(ByteBuffer(bytes: try Self.body(for: message)))
        request.tlsConfiguration = tlsConfiguration

        let status: Int
        let headers: [(String, String)]
        let body: ByteBuffer
        do {
            let response = try await httpClient.execute(request, timeout: configuration.timeout, logger: logger)
            status = Int(response.status.code)
            headers = response.headers.map { ($0.name, $0.value) }
            body = try await response.body.collect(upTo: 256 * 1024)
        } catch {
            throw Self.networkError(error, baseURL: configuration.baseURL)
        }
        if (200..<300).contains(status) {
            let id = headers.first { $0.0.lowercased() == "x-message-id" }.map { MailText.sanitized($0.1, limit: 200) }
            logger.info("mail sent", metadata: ["mail.transport": "sendgrid", "mail.recipients": "\(message.to.count)"])
            return MailReceipt(transport: "sendgrid", providerMessageId: id)
        }
        let failure = Self.error(status: status, headers: headers, body: Array(body.readableBytesView))
        logger.debug("mail not sent", metadata: ["mail.error": "\(failure.message)"])
        throw failure
    }

    // MARK: Request body

    struct Body: Encodable {
        struct Address: Encodable {
            var email: String
            var name: String?
        }
        struct Personalization: Encodable {
            var to: [Address]
            var customArgs: [String: String]?

            enum CodingKeys: String, CodingKey {
                case to, customArgs = "custom_args"
            }
        }
        struct Content: Encodable {
            var type: String
            var value: String
        }
        struct Attachment: Encodable {
            var content: String
            var filename: String
            var type: String
            var disposition: String
        }
        var personalizations: [Personalization]
        var from: Address
        var replyTo: Address?
        var subject: String
        var content: [Content]
        var attachments: [Attachment]?
        var headers: [String: String]?

        enum CodingKeys: String, CodingKey {
            case personalizations, from, replyTo = "reply_to", subject, content, attachments, headers
        }
    }

    /// The v3 JSON body: `text/plain` content before `text/html`, as SendGrid requires.
    static func body(for message: MailMessage) throws -> [UInt8] {
        func address(_ address: MailAddress) -> Body.Address { Body.Address(email: address.address, name: address.name) }
        var content = [Body.Content(type: "text/plain", value: message.text)]
        if let html = message.html { content.append(Body.Content(type: "text/html", value: html)) }
        let body = Body(
            personalizations: [Body.Personalization(to: message.to.map(address), customArgs: message.tags.isEmpty ? nil : message.tags)],
            from: address(message.from),
            replyTo: message.replyTo.map(address),
            subject: message.subject,
            content: content,
            attachments: message.attachments.isEmpty
                ? nil
                : message.attachments.map {
                    Body.Attachment(
                        content: Data($0.bytes).base64EncodedString(), filename: $0.fileName, type: $0.contentType, disposition: "attachment")
                },
            headers: message.headers.isEmpty ? nil : Dictionary(message.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(body))
        } catch {
            throw MailError.permanent("cannot encode the message for SendGrid: \(error)")
        }
    }

    // MARK: Responses

    /// SendGrid's error body: `{"errors":[{"message":"…","field":"…"}]}`.
    struct ErrorBody: Decodable {
        struct Item: Decodable {
            var message: String?
            var field: String?
        }
        var errors: [Item]?
    }

    /// The ``MailError`` for a non-2xx answer.
    static func error(status: Int, headers: [(String, String)], body: [UInt8], now: Date = Date()) -> MailError {
        let items = (try? JSONDecoder().decode(ErrorBody.self, from: Data(body)))?.errors ?? []
        let explained = items.compactMap { item -> String? in
            guard let message = item.message else { return nil }
            if let field = item.field, !field.isEmpty { return "\(field): \(message)" }
            return message
        }
        let detail = explained.isEmpty ? "" : " (\(MailText.sanitized(explained.joined(separator: "; "))))"
        let header = { (name: String) in headers.first { $0.0.lowercased() == name }?.1 }
        switch status {
        case 429:
            let wait =
                header("retry-after").flatMap { RetryAfter.seconds($0, now: now) }
                ?? header("x-ratelimit-reset").flatMap(TimeInterval.init).map { max(0, $0 - now.timeIntervalSince1970) }
            return .transient("SendGrid is rate-limiting this API key (429)\(detail)", retryAfter: wait, code: status)
        case 500...599:
            let wait = header("retry-after").flatMap { RetryAfter.seconds($0, now: now) }
            return .transient("SendGrid answered \(status), a server-side failure\(detail)", retryAfter: wait, code: status)
        case 401:
            return .permanent("SendGrid rejected the API key (401)\(detail); check HERALD_SENDGRID_API_KEY", code: status)
        case 403:
            return .permanent(
                "SendGrid refused to send (403)\(detail); the API key needs the Mail Send permission and the from address must be a verified sender",
                code: status)
        case 413:
            return .permanent("SendGrid refused the message as too large (413)\(detail); send smaller attachments", code: status)
        case 400...499:
            return .permanent("SendGrid refused the message (\(status))\(detail)", code: status)
        default:
            return .permanent("SendGrid answered with the unexpected status \(status)\(detail)", code: status)
        }
    }

    /// The ``MailError`` for a request that got no answer.
    static func networkError(_ error: any Error, baseURL: String) -> MailError {
        if let error = error as? MailError { return error }
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout || error == .writeTimeout {
                return .transient("SendGrid at \(baseURL) did not answer in time")
            }
            if error == .invalidURL || error == .emptyHost || error == .emptyScheme {
                return .permanent("the SendGrid URL \(baseURL) is not usable: \(error.shortDescription)")
            }
            return .transient("cannot reach SendGrid at \(baseURL): \(error.shortDescription)")
        }
        if let reason = SMTPTransport.describeTLSError(error) {
            return .permanent("TLS with SendGrid at \(baseURL) failed: \(reason)")
        }
        return .transient("cannot reach SendGrid at \(baseURL): \(SMTPTransport.describeConnectError(error))")
    }
}

/// Parses HTTP `Retry-After`: delay seconds or an HTTP date.
enum RetryAfter {
    static func seconds(_ value: String, now: Date = Date()) -> TimeInterval? {
        let value = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(value), seconds >= 0 { return TimeInterval(seconds) }
        guard let date = httpDate(value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// IMF-fixdate, the form RFC 9110 requires senders to use: `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]),
            let monthIndex = months.firstIndex(of: parts[2].lowercased())
        else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar.date(from: DateComponents(year: year, month: monthIndex + 1, day: day, hour: time[0], minute: time[1], second: time[2]))
    }
}
