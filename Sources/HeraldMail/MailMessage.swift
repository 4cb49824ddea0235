import Foundation

/// A mailbox: an address and an optional display name, checked when made.
///
/// A `MailAddress` can always be written into a header and an SMTP command as it is: the address is ASCII,
/// `local@domain` with a dot-atom local part and a host-name domain, at most 254 characters, and neither it nor
/// the display name contains a control character (so no line break can smuggle in a header or an SMTP command).
public struct MailAddress: Sendable, Hashable, CustomStringConvertible {
    /// `local@domain`.
    public let address: String
    /// The display name, if any (any Unicode text without control characters, at most 200 characters).
    public let name: String?

    /// Checks `address` and `name`; throws a permanent ``MailError`` saying what is wrong.
    public init(_ address: String, name: String? = nil) throws {
        try Self.validate(address: address)
        let trimmedName = name?.trimmingCharacters(in: .whitespaces)
        if let trimmedName, !trimmedName.isEmpty {
            if let problem = MailText.controlCharacterProblem(trimmedName) {
                throw MailError.permanent("invalid display name \(MailText.quoted(trimmedName)) for \(address): \(problem)")
            }
            guard trimmedName.count <= 200 else {
                throw MailError.permanent("invalid display name for \(address): it is longer than 200 characters")
            }
            self.name = trimmedName
        } else {
            self.name = nil
        }
        self.address = address
    }

    /// Parses `reports@example.com`, `Herald <reports@example.com>` or `"Herald, Reports" <reports@example.com>`.
    public static func parse(_ text: String) throws -> MailAddress {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let problem = MailText.controlCharacterProblem(text) {
            throw MailError.permanent("invalid address \(MailText.quoted(text)): \(problem)")
        }
        guard let open = text.lastIndex(of: "<") else { return try MailAddress(text) }
        guard text.hasSuffix(">"), text.firstIndex(of: ">") == text.index(before: text.endIndex) else {
            throw MailError.permanent("invalid address \(MailText.quoted(text)): expected Name <local@domain>")
        }
        let address = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        var name = text[..<open].trimmingCharacters(in: .whitespaces)
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
                .replacingOccurrences(of: "\\\\", with: "\\")
        }
        return try MailAddress(address, name: name.isEmpty ? nil : name)
    }

    /// The domain part, lowercased.
    public var domain: String {
        address.split(separator: "@", maxSplits: 1).last.map { $0.lowercased() } ?? ""
    }

    /// `Name <local@domain>` or `local@domain`, unencoded, for people to read.
    public var description: String {
        if let name { return "\(name) <\(address)>" }
        return address
    }

    private static let localCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~".utf8)

    private static func validate(address: String) throws {
        func invalid(_ reason: String) -> MailError {
            MailError.permanent("invalid address \(MailText.quoted(address)): \(reason)")
        }
        if let problem = MailText.controlCharacterProblem(address) { throw invalid(problem) }
        guard !address.isEmpty else { throw MailError.permanent("invalid address: it is empty") }
        guard address.utf8.allSatisfy({ $0 < 0x80 }) else {
            throw invalid("only ASCII addresses are supported (internationalised addresses need SMTPUTF8)")
        }
        guard address.utf8.count <= 254 else { throw invalid("it is longer than 254 characters") }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw invalid(parts.count < 2 ? "it has no @" : "it has more than one @") }
        let local = parts[0]
        let domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64 else { throw invalid("the part before @ must be 1 to 64 characters") }
        guard local.utf8.allSatisfy({ localCharacters.contains($0) || $0 == UInt8(ascii: ".") }) else {
            throw invalid("the part before @ may contain only letters, digits, dots and !#$%&'*+-/=?^_`{|}~")
        }
        guard !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
            throw invalid("the part before @ must not start or end with a dot or have two dots in a row")
        }
        guard MailText.isHostName(domain) else { throw invalid("\(MailText.quoted(String(domain))) is not a valid domain name") }
    }
}

/// An extra header such as `List-Unsubscribe` or `List-Unsubscribe-Post`, checked when made.
public struct MailHeader: Sendable, Hashable {
    /// The field name as given (`List-Unsubscribe`).
    public let name: String
    /// The field value, one line.
    public let value: String

    /// Headers that Herald writes itself or that would change who receives the message; refused as extra headers.
    public static let reservedNames: Set<String> = [
        "from", "to", "cc", "bcc", "reply-to", "sender", "subject", "date", "message-id", "mime-version",
        "content-type", "content-transfer-encoding", "content-disposition", "return-path", "received",
    ]

    /// Checks `name` (printable ASCII without `:` or spaces, at most 76 characters, not a reserved header) and
    /// `value` (no control characters, at most 900 characters); throws a permanent ``MailError``.
    public init(_ name: String, _ value: String) throws {
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.count <= 76, nameBytes.allSatisfy({ $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }) else {
            throw MailError.permanent(
                "invalid header name \(MailText.quoted(name)): use 1 to 76 printable ASCII characters without spaces or a colon")
        }
        guard !Self.reservedNames.contains(name.lowercased()) else {
            throw MailError.permanent("the \(name) header is written by Herald and cannot be set as an extra header")
        }
        let value = value.trimmingCharacters(in: .whitespaces)
        if let problem = MailText.controlCharacterProblem(value) {
            throw MailError.permanent("invalid value for the \(name) header: \(problem)")
        }
        guard value.count <= 900 else { throw MailError.permanent("the value of the \(name) header is longer than 900 characters") }
        self.name = name
        self.value = value
    }
}

/// A file attached to a message.
public struct MailAttachment: Sendable, Hashable {
    /// The name the recipient sees (`report-2024-05.pdf`): no control characters, no `/` or `\`, at most 200 bytes.
    public let fileName: String
    /// The MIME type with optional parameters: `application/pdf`, `text/csv; charset=utf-8`.
    public let contentType: String
    /// The file's bytes.
    public let bytes: [UInt8]

    /// Checks the file name and content type; throws a permanent ``MailError``.
    public init(fileName: String, contentType: String, bytes: [UInt8]) throws {
        if let problem = MailText.controlCharacterProblem(fileName) {
            throw MailError.permanent("invalid attachment file name \(MailText.quoted(fileName)): \(problem)")
        }
        guard !fileName.trimmingCharacters(in: .whitespaces).isEmpty, fileName.utf8.count <= 200 else {
            throw MailError.permanent("invalid attachment file name \(MailText.quoted(fileName)): use 1 to 200 bytes")
        }
        guard !fileName.contains("/"), !fileName.contains("\\") else {
            throw MailError.permanent("invalid attachment file name \(MailText.quoted(fileName)): it must not contain / or \\")
        }
        guard MailText.isContentType(contentType) else {
            throw MailError.permanent(
                "invalid content type \(MailText.quoted(contentType)) for \(fileName): expected type/subtype with optional ; name=value parameters")
        }
        self.fileName = fileName
        self.contentType = contentType
        self.bytes = bytes
    }

    /// Reads the bytes from `data`.
    public init(fileName: String, contentType: String, data: Data) throws {
        try self.init(fileName: fileName, contentType: contentType, bytes: [UInt8](data))
    }
}

/// One email: who it is from and to, its subject, a plain-text body, an optional HTML alternative, attachments
/// and extra headers. Checked when made, so every transport can write it without further escaping decisions.
public struct MailMessage: Sendable, Hashable {
    /// The author, written in `From` and used as the SMTP envelope sender.
    public let from: MailAddress
    /// The recipients (1 to 100, duplicates removed ignoring case), written in `To`.
    public let to: [MailAddress]
    /// Where replies go, if not to `from`.
    public let replyTo: MailAddress?
    /// The subject: no control characters, at most 900 characters.
    public let subject: String
    /// The plain-text body; required, because every recipient's client can show it.
    public let text: String
    /// An HTML alternative to `text`.
    public let html: String?
    /// Files attached to the message.
    public let attachments: [MailAttachment]
    /// Extra headers, in order.
    public let headers: [MailHeader]
    /// Values a provider reports back with its events about this message (SendGrid's `custom_args`), so a bounce
    /// can be traced to its recipient; SMTP does not send them.
    public let tags: [String: String]

    /// The largest number of recipients one message may have.
    public static let maximumRecipients = 100

    /// Checks the message as a whole; throws a permanent ``MailError`` saying what is wrong.
    public init(
        from: MailAddress,
        to: [MailAddress],
        replyTo: MailAddress? = nil,
        subject: String,
        text: String,
        html: String? = nil,
        attachments: [MailAttachment] = [],
        headers: [MailHeader] = [],
        tags: [String: String] = [:]
    ) throws {
        var seen = Set<String>()
        let recipients = to.filter { seen.insert($0.address.lowercased()).inserted }
        guard !recipients.isEmpty else { throw MailError.permanent("a message needs at least one recipient") }
        guard recipients.count <= Self.maximumRecipients else {
            throw MailError.permanent("a message may have at most \(Self.maximumRecipients) recipients, not \(recipients.count)")
        }
        let subject = subject.trimmingCharacters(in: .whitespaces)
        if let problem = MailText.controlCharacterProblem(subject) {
            throw MailError.permanent("invalid subject \(MailText.quoted(subject)): \(problem)")
        }
        guard !subject.isEmpty else { throw MailError.permanent("a message needs a subject") }
        guard subject.count <= 900 else { throw MailError.permanent("the subject is longer than 900 characters") }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw MailError.permanent("a message needs a plain-text body")
        }
        var headerNames = Set<String>()
        for header in headers where !headerNames.insert(header.name.lowercased()).inserted {
            throw MailError.permanent("the \(header.name) header is given more than once")
        }
        self.from = from
        self.to = recipients
        self.replyTo = replyTo
        self.subject = subject
        self.text = text
        self.html = html.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        self.attachments = attachments
        self.headers = headers
        guard tags.count <= 10,
            tags.allSatisfy({ MailText.controlCharacterProblem($0.key + $0.value) == nil && ($0.key + $0.value).utf8.count <= 200 })
        else {
            throw MailError.permanent("a message may have at most 10 tags, each without control characters and at most 200 bytes")
        }
        self.tags = tags
    }

    /// The bytes of every attachment together.
    public var attachmentBytes: Int { attachments.reduce(0) { $0 + $1.bytes.count } }
}

/// Character checks and quoting shared by the message types and the writers.
enum MailText {
    /// Why `text` cannot go into a header, or nil: control characters (line breaks first of all) and the Unicode
    /// line and paragraph separators are refused.
    static func controlCharacterProblem(_ text: String) -> String? {
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A, 0x0D: return "it contains a line break"
            case 0x00..<0x20, 0x7F..<0xA0, 0x2028, 0x2029: return "it contains a control character"
            default: continue
            }
        }
        return nil
    }

    /// `text` in double quotes with control characters escaped and cut to 80 characters, for error messages.
    static func quoted(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(80) {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x22: out += "\\\""
            case 0x00..<0x20, 0x7F..<0xA0, 0x2028, 0x2029: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return "\"\(out)\(text.unicodeScalars.count > 80 ? "…" : "")\""
    }

    /// Server text made safe for one log line: control characters become spaces, at most `limit` characters.
    static func sanitized(_ text: String, limit: Int = 300) -> String {
        let cleaned = String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { scalar in
                    scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) ? " " : scalar
                })
        ).trimmingCharacters(in: .whitespaces)
        return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
    }

    /// True for an ASCII host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters.
    static func isHostName(_ name: some StringProtocol) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            let bytes = Array(label.utf8)
            guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
            return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// RFC 2045 token characters: printable ASCII except space and `()<>@,;:\"/[]?=`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        byte > 32 && byte < 127 && !"()<>@,;:\\\"/[]?=".utf8.contains(byte)
    }

    static func isToken(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// `type/subtype` followed by `; name=value` parameters whose values are tokens or simple quoted strings.
    static func isContentType(_ text: String) -> Bool {
        let pieces = text.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let main = pieces.first, text.utf8.count <= 200 else { return false }
        let halves = main.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, isToken(halves[0]), isToken(halves[1]) else { return false }
        for parameter in pieces.dropFirst() {
            guard let equals = parameter.firstIndex(of: "=") else { return false }
            let name = parameter[..<equals]
            let value = parameter[parameter.index(after: equals)...]
            guard isToken(name) else { return false }
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                let inner = value.dropFirst().dropLast()
                guard inner.utf8.allSatisfy({ $0 >= 32 && $0 < 127 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else { return false }
            } else if !isToken(value) {
                return false
            }
        }
        return true
    }
}
