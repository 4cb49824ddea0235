import Foundation

/// Collects every invalid field of a request so one response can name them all.
public struct Validator: Sendable {
    public private(set) var errors: [FieldError] = []

    public init() {}

    public mutating func add(_ field: String, _ message: String) {
        errors.append(FieldError(field: field, message: message))
    }

    static let asciiWhitespace = CharacterSet(charactersIn: " \t\n\r")

    /// Requires a present, non-blank string no longer than `maxLength`, and returns it trimmed.
    @discardableResult
    public mutating func requireText(_ value: String?, field: String, maxLength: Int = 200) -> String {
        guard let value else {
            add(field, "is required")
            return ""
        }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty {
            add(field, "must not be blank")
        } else if value.unicodeScalars.count > maxLength {
            // Counted before trimming, as the OpenAPI document's maxLength counts what the client sends.
            add(field, "must be at most \(maxLength) characters")
        } else if value.trimmingCharacters(in: Self.asciiWhitespace).containsControlCharacters {
            // Only ASCII spaces, tabs and line breaks are trimmed silently; other control characters (U+0085 is
            // both whitespace and a control) are refused wherever they are, as the OpenAPI pattern states.
            add(field, "must not contain control characters")
        }
        return trimmed
    }

    /// Validates an optional string the same way when it is present.
    public mutating func optionalText(_ value: String?, field: String, maxLength: Int = 200) -> String? {
        guard let value else { return nil }
        return requireText(value, field: field, maxLength: maxLength)
    }

    /// Requires a syntactically plausible email address and returns it normalised (trimmed, lowercased).
    @discardableResult
    public mutating func requireEmail(_ value: String?, field: String = "email") -> String {
        guard let value else {
            add(field, "is required")
            return ""
        }
        let email = EmailAddress.normalize(value)
        if !EmailAddress.isPlausible(email) {
            add(field, "must be an email address like name@example.com")
        }
        return email
    }

    /// Throws a 422 naming every collected field if any check failed.
    public func check() throws {
        if !errors.isEmpty { throw HeraldError.validation(errors) }
    }
}

/// Email normalisation and a deliberately permissive syntax check.
public enum EmailAddress {
    public static func normalize(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    public static func isPlausible(_ email: String) -> Bool {
        guard email.count <= 254, !email.contains(where: { $0.isWhitespace || $0.isNewline }) else { return false }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        let domain = parts[1]
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 }) else { return false }
        return !email.containsControlCharacters
    }
}

/// A string enum in the API whose decoding error lists the accepted values.
public protocol APIEnum: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension APIEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(rawValue: text) else {
            let allowed = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of: \(allowed)")
        }
        self = value
    }
}

/// URLs that may reach a visitor's page: absolute http(s) only, so no `javascript:` can slip in.
public enum WebURL {
    public static func validated(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count <= 2000, let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { return nil }
        return trimmed
    }
}

extension String {
    /// Whether the text has a C0 or C1 control character (general category Cc), U+0000 included.
    public var containsControlCharacters: Bool {
        // Cc is exactly U+0000–U+001F and U+007F–U+009F; comparing values avoids a Unicode property lookup per scalar.
        utf8.contains { $0 < 0x20 || $0 == 0x7F } || (!utf8.allSatisfy { $0 < 0x80 } && unicodeScalars.contains { (0x80...0x9F).contains($0.value) })
    }

    /// The text without its control characters, for labels that are kept rather than refused.
    public var removingControlCharacters: String {
        guard containsControlCharacters else { return self }
        return String(String.UnicodeScalarView(unicodeScalars.filter { !($0.value < 0x20 || (0x7F...0x9F).contains($0.value)) }))
    }
}
