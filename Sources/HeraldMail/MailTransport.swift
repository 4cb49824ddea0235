import Foundation
import Synchronization

/// Something that hands a message to a mail system: an SMTP server, SendGrid, or (in tests) memory.
///
/// Every service that sends mail sees only this protocol; which system carries the message is the operator's
/// choice (``MailConfiguration``).
public protocol MailTransport: Sendable {
    /// Hands `message` over for delivery.
    ///
    /// Returning means the mail system accepted the message for every recipient; it does not mean that it was
    /// delivered. Failing throws a ``MailError`` that says whether trying again later can help; when it throws,
    /// no recipient was handed the message by this call (SMTP refuses all recipients or none before any data is
    /// sent), so a retry does not produce duplicates.
    func send(_ message: MailMessage) async throws -> MailReceipt
}

/// What a mail system said when it accepted a message.
public struct MailReceipt: Sendable, Equatable, CustomStringConvertible {
    /// Which system accepted it, safe to print: `smtp mail.example.com:587`, `sendgrid`.
    public var transport: String
    /// The `Message-ID` header Herald wrote (with angle brackets), when Herald wrote the headers itself (SMTP).
    public var messageId: String?
    /// The mail system's own identifier for the message when it reported one: an SMTP server's queue id
    /// (`queued as …`) or SendGrid's `X-Message-Id`.
    public var providerMessageId: String?
    /// The server's final reply, cleaned of control characters (SMTP only).
    public var serverResponse: String?

    public init(transport: String, messageId: String? = nil, providerMessageId: String? = nil, serverResponse: String? = nil) {
        self.transport = transport
        self.messageId = messageId
        self.providerMessageId = providerMessageId
        self.serverResponse = serverResponse
    }

    /// One line for logs and the CLI.
    public var description: String {
        var parts = ["accepted by \(transport)"]
        if let providerMessageId { parts.append("provider id \(providerMessageId)") }
        if let messageId { parts.append("Message-ID \(messageId)") }
        if let serverResponse, providerMessageId == nil { parts.append("server said \"\(serverResponse)\"") }
        return parts.joined(separator: ", ")
    }
}

/// Why a message could not be handed over, and whether trying again can help.
///
/// The message is written for the operator who reads it in a log or the CLI: it names the step and the server,
/// never a password, an API key or the message body.
public struct MailError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Whether retrying can help.
    public enum Kind: String, Sendable, Equatable {
        /// A later attempt may succeed: the server was unreachable or busy, timed out, or answered SMTP 4xx or
        /// HTTP 429/5xx.
        case transient
        /// Retrying the same message with the same settings will fail again: an invalid message or address,
        /// rejected credentials, an untrusted certificate, SMTP 5xx, HTTP 4xx.
        case permanent
    }

    /// Whether retrying can help.
    public var kind: Kind
    /// What went wrong, in a sentence a person can act on.
    public var message: String
    /// How long the server asked the client to wait before retrying (HTTP `Retry-After`), in seconds.
    public var retryAfter: TimeInterval?
    /// The SMTP reply code or HTTP status the server answered with, when it answered.
    public var code: Int?

    public init(kind: Kind, message: String, retryAfter: TimeInterval? = nil, code: Int? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
        self.code = code
    }

    /// A failure that a later attempt may not repeat.
    public static func transient(_ message: String, retryAfter: TimeInterval? = nil, code: Int? = nil) -> MailError {
        MailError(kind: .transient, message: message, retryAfter: retryAfter, code: code)
    }

    /// A failure that retrying the same message with the same settings will repeat.
    public static func permanent(_ message: String, code: Int? = nil) -> MailError {
        MailError(kind: .permanent, message: message, code: code)
    }

    /// True when a later attempt may succeed.
    public var isTransient: Bool { kind == .transient }

    public var description: String {
        var text = "\(kind == .transient ? "temporary" : "permanent") mail failure: \(message)"
        if let retryAfter { text += " (retry after \(Int(retryAfter.rounded(.up))) s)" }
        return text
    }
}

/// The transport used when mail is not configured: every send fails permanently and says how to configure it.
public struct DisabledMailTransport: MailTransport {
    public init() {}

    public func send(_ message: MailMessage) async throws -> MailReceipt {
        throw MailError.permanent("mail is not configured: set HERALD_MAIL_URL (and HERALD_MAIL_FROM)")
    }
}

/// A transport that keeps every message in memory instead of sending it, for tests of code that sends mail.
public final class InMemoryMailTransport: MailTransport {
    private let state = Mutex<(messages: [MailMessage], failure: MailError?)>(([], nil))

    public init() {}

    /// Every message accepted so far, oldest first.
    public var messages: [MailMessage] { state.withLock { $0.messages } }

    /// Makes every later send throw `failure` (or succeed again with `nil`).
    public func failNextSends(with failure: MailError?) {
        state.withLock { $0.failure = failure }
    }

    public func send(_ message: MailMessage) async throws -> MailReceipt {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            state.messages.append(message)
            return MailReceipt(transport: "memory", providerMessageId: "memory-\(state.messages.count)")
        }
    }
}
