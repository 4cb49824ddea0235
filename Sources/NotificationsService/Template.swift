import Foundation
import HeraldCore

/// A message template: text with `{{placeholder | filter: "argument"}}` substitutions and `{{#field}}…{{/field}}`
/// sections shown only when the field has a value. Templates are parsed and checked when saved, rendered on
/// the server, and the result is always plain text: nothing from an activity is ever interpreted as markup.
///
/// ```
/// {{firstName | fallback: "Someone"}}{{#city}} from {{city}}{{/city}} {{action}} {{productName}}
/// {{count | number}} {{count | plural: "person", "people"}} bought this in the last {{windowHours}} hours
/// ```
public struct MessageTemplate: Sendable, Equatable {
    public let source: String
    let nodes: [Node]

    indirect enum Node: Sendable, Equatable {
        case text(String)
        case value(name: String, filters: [Filter])
        case section(name: String, inverted: Bool, body: [Node])
    }

    struct Filter: Sendable, Equatable {
        var name: String
        var arguments: [String]
    }

    /// The values a template can use, and what they mean.
    public static let placeholders: [String: String] = [
        "firstName": "the customer's first name (never the last name)",
        "name": "same as firstName",
        "city": "city", "region": "region or state", "country": "country",
        "location": "city, region or country, the most precise one known",
        "productName": "the product", "productUrl": "link to the product",
        "action": "the verb for the activity type: purchased, signed up, reviewed…",
        "type": "the activity type", "rating": "review rating, 1 to 5",
        "timeAgo": "how long ago the activity happened, as the visitor sees it (\"4 minutes ago\")",
        "count": "the counter's value", "windowHours": "the counter's time window in hours",
        "visitors": "people on the page now", "siteName": "the site's name",
    ]

    /// Filters and how many arguments each takes.
    static let filters: [String: ClosedRange<Int>] = [
        "fallback": 1...1, "upper": 0...0, "lower": 0...0, "capitalize": 0...0, "truncate": 1...1, "number": 0...0,
        "plural": 2...2, "timeago": 0...0,
    ]

    public static let maximumLength = 500

    /// Parses and checks a template; the error says where the problem is and what would be valid.
    public init(_ source: String) throws(TemplateError) {
        guard source.count <= Self.maximumLength else {
            throw TemplateError(message: "is longer than \(Self.maximumLength) characters", offset: Self.maximumLength)
        }
        var parser = Parser(characters: Array(source))
        self.source = source
        self.nodes = try parser.parseNodes(closing: nil)
    }

    /// The placeholders the template uses.
    public var usedNames: Set<String> {
        func collect(_ nodes: [Node]) -> Set<String> {
            nodes.reduce(into: Set<String>()) { names, node in
                switch node {
                case .text: break
                case .value(let name, _): names.insert(name)
                case .section(let name, _, let body): names.insert(name); names.formUnion(collect(body))
                }
            }
        }
        return collect(nodes)
    }

    /// Renders with `values`; missing values render as empty text (use `fallback`).
    public func render(_ values: TemplateValues) -> RenderedText {
        var output = RenderedText()
        render(nodes, values, into: &output)
        output.normalizeSpaces()
        return output
    }

    private func render(_ nodes: [Node], _ values: TemplateValues, into output: inout RenderedText) {
        for node in nodes {
            switch node {
            case .text(let text):
                output.append(text: text)
            case .section(let name, let inverted, let body):
                if values.hasValue(name) != inverted { render(body, values, into: &output) }
            case .value(let name, let filters):
                // Live values are known only in the visitor's browser: leave a slot the widget fills.
                if name == "visitors", values.numbers[name] == nil {
                    if let plural = filters.first(where: { $0.name == "plural" }) {
                        output.runs.append(.livePlural(one: plural.arguments[0], other: plural.arguments[1]))
                    } else {
                        output.runs.append(.live)
                    }
                    continue
                }
                if name == "timeAgo" || filters.contains(where: { $0.name == "timeago" }),
                    let date = values.dates[name == "timeAgo" ? "occurredAt" : name]
                {
                    output.append(timeAgo: date)
                    continue
                }
                var text = values.text(name)
                for filter in filters { text = Self.apply(filter, to: text, values: values, name: name) }
                output.append(text: text)
            }
        }
    }

    static func apply(_ filter: Filter, to text: String, values: TemplateValues, name: String) -> String {
        switch filter.name {
        case "fallback": return text.isEmpty ? filter.arguments[0] : text
        case "upper": return text.uppercased()
        case "lower": return text.lowercased()
        case "capitalize": return text.prefix(1).uppercased() + text.dropFirst()
        case "truncate":
            let limit = Int(filter.arguments[0]) ?? 40
            return text.count > limit ? String(text.prefix(max(1, limit - 1))) + "…" : text
        case "number":
            guard let number = values.numbers[name] else { return text }
            return NumberFormatting.grouped(number)
        case "plural":
            let count = values.numbers[name] ?? Double(text) ?? 0
            return count == 1 ? filter.arguments[0] : filter.arguments[1]
        default: return text
        }
    }

    struct Parser {
        let characters: [Character]
        var index = 0

        mutating func parseNodes(closing: String?) throws(TemplateError) -> [Node] {
            var nodes: [Node] = []
            var text = ""
            while index < characters.count {
                if characters[index] == "{", index + 1 < characters.count, characters[index + 1] == "{" {
                    let start = index
                    guard let end = findClose(from: index + 2) else {
                        throw TemplateError(message: "has '{{' without a matching '}}'", offset: start)
                    }
                    let inner = String(characters[(index + 2)..<end]).trimmingCharacters(in: .whitespaces)
                    index = end + 2
                    if !text.isEmpty {
                        nodes.append(.text(text))
                        text = ""
                    }
                    if inner.hasPrefix("#") || inner.hasPrefix("^") {
                        let name = String(inner.dropFirst()).trimmingCharacters(in: .whitespaces)
                        try checkName(name, at: start)
                        let body = try parseNodes(closing: name)
                        nodes.append(.section(name: name, inverted: inner.hasPrefix("^"), body: body))
                    } else if inner.hasPrefix("/") {
                        let name = String(inner.dropFirst()).trimmingCharacters(in: .whitespaces)
                        guard let closing else {
                            throw TemplateError(message: "closes section '\(name)' that was never opened", offset: start)
                        }
                        guard name == closing else {
                            throw TemplateError(message: "closes section '\(name)' but '\(closing)' is open", offset: start)
                        }
                        return nodes
                    } else {
                        nodes.append(try parseValue(inner, at: start))
                    }
                } else if characters[index] == "}", index + 1 < characters.count, characters[index + 1] == "}" {
                    throw TemplateError(message: "has '}}' without a matching '{{'", offset: index)
                } else {
                    text.append(characters[index])
                    index += 1
                }
            }
            if let closing { throw TemplateError(message: "section '\(closing)' is never closed with {{/\(closing)}}", offset: characters.count) }
            if !text.isEmpty { nodes.append(.text(text)) }
            return nodes
        }

        func findClose(from start: Int) -> Int? {
            var position = start
            var quoted = false
            while position + 1 < characters.count {
                if characters[position] == "\"" { quoted.toggle() }
                if !quoted && characters[position] == "}" && characters[position + 1] == "}" { return position }
                position += 1
            }
            return nil
        }

        func checkName(_ name: String, at offset: Int) throws(TemplateError) {
            guard MessageTemplate.placeholders[name] != nil else {
                let known = MessageTemplate.placeholders.keys.sorted().joined(separator: ", ")
                throw TemplateError(message: "uses unknown placeholder '\(name)'; known placeholders: \(known)", offset: offset)
            }
        }

        func parseValue(_ inner: String, at offset: Int) throws(TemplateError) -> Node {
            let parts = Self.splitOutsideQuotes(inner, separator: "|")
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw TemplateError(message: "has an empty placeholder '{{}}'", offset: offset) }
            try checkName(name, at: offset)
            var filters: [Filter] = []
            for part in parts.dropFirst() {
                let pieces = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard let filterName = pieces.first, !filterName.isEmpty else {
                    throw TemplateError(message: "has an empty filter after '|'", offset: offset)
                }
                guard let arity = MessageTemplate.filters[filterName] else {
                    let known = MessageTemplate.filters.keys.sorted().joined(separator: ", ")
                    throw TemplateError(message: "uses unknown filter '\(filterName)'; known filters: \(known)", offset: offset)
                }
                var arguments: [String] = []
                if pieces.count == 2 {
                    for raw in Self.splitOutsideQuotes(pieces[1], separator: ",") {
                        let argument = raw.trimmingCharacters(in: .whitespaces)
                        if argument.hasPrefix("\"") && argument.hasSuffix("\"") && argument.count >= 2 {
                            arguments.append(String(argument.dropFirst().dropLast()))
                        } else if Double(argument) != nil {
                            arguments.append(argument)
                        } else {
                            throw TemplateError(message: "filter '\(filterName)' needs quoted text arguments, like \"Someone\"", offset: offset)
                        }
                    }
                }
                guard arity.contains(arguments.count) else {
                    throw TemplateError(
                        message:
                            "filter '\(filterName)' takes \(arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "\(arity)") argument(s)",
                        offset: offset)
                }
                filters.append(Filter(name: filterName, arguments: arguments))
            }
            return .value(name: name, filters: filters)
        }

        static func splitOutsideQuotes(_ text: String, separator: Character) -> [String] {
            var parts: [String] = []
            var current = ""
            var quoted = false
            for character in text {
                if character == "\"" { quoted.toggle() }
                if character == separator && !quoted {
                    parts.append(current)
                    current = ""
                } else {
                    current.append(character)
                }
            }
            parts.append(current)
            return parts
        }
    }
}

/// Why a template was refused, with the character offset it refers to.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) (at character \(offset + 1))" }
}

/// The values available to a template, as text, numbers and dates.
public struct TemplateValues: Sendable {
    public var strings: [String: String] = [:]
    public var numbers: [String: Double] = [:]
    public var dates: [String: Date] = [:]

    public init() {}

    func text(_ name: String) -> String {
        if let string = strings[name] { return string }
        if let number = numbers[name] { return Int64(exactly: number).map { String($0) } ?? String(number) }
        return ""
    }

    func hasValue(_ name: String) -> Bool {
        if let string = strings[name] { return !string.isEmpty }
        if let number = numbers[name] { return number != 0 }
        return dates[name] != nil
    }
}

/// Rendered text as runs: plain text, and relative times that the widget formats for the moment the visitor
/// sees them (a cached feed must not freeze "2 minutes ago").
public struct RenderedText: Sendable, Equatable, Encodable {
    public enum Run: Sendable, Equatable, Encodable {
        case text(String)
        /// `{"ago": <ms>}`: the widget writes "4 minutes ago".
        case timeAgo(Date)
        /// `{"live": "visitors"}`: the widget writes the live number.
        case live
        /// `{"live": "visitors", "one": …, "other": …}`: the widget picks the word for the live number.
        case livePlural(one: String, other: String)

        enum CodingKeys: String, CodingKey { case text, ago, live, one, other }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .text(let text): try container.encode(text, forKey: .text)
            case .timeAgo(let date): try container.encode(date.unixMilliseconds, forKey: .ago)
            case .live: try container.encode("visitors", forKey: .live)
            case .livePlural(let one, let other):
                try container.encode("visitors", forKey: .live)
                try container.encode(one, forKey: .one)
                try container.encode(other, forKey: .other)
            }
        }
    }

    public var runs: [Run] = []

    public init(runs: [Run] = []) {
        self.runs = runs
    }

    mutating func append(text: String) {
        guard !text.isEmpty else { return }
        if case .text(let previous) = runs.last {
            runs[runs.count - 1] = .text(previous + text)
        } else {
            runs.append(.text(text))
        }
    }

    mutating func append(timeAgo date: Date) {
        runs.append(.timeAgo(date))
    }

    /// Collapses runs of whitespace left by empty placeholders and trims the ends.
    mutating func normalizeSpaces() {
        runs = runs.compactMap { run in
            guard case .text(let text) = run else { return run }
            let collapsed = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
                .filter { !$0.isEmpty }.joined(separator: " ")
            let hadLeading = text.first?.isWhitespace == true
            let hadTrailing = text.last?.isWhitespace == true
            if collapsed.isEmpty { return text.isEmpty ? nil : .text(" ") }
            return .text((hadLeading ? " " : "") + collapsed + (hadTrailing ? " " : ""))
        }
        if case .text(let first) = runs.first { runs[0] = .text(String(first.drop(while: { $0 == " " }))) }
        if case .text(let last) = runs.last { runs[runs.count - 1] = .text(String(last.reversed().drop(while: { $0 == " " }).reversed())) }
        runs.removeAll { if case .text(let text) = $0 { text.isEmpty } else { false } }
    }

    /// The text as a visitor would read it at `now` (for previews and tests).
    public func plainText(now: Date = Date(), visitors: Int = 0) -> String {
        runs.map { run in
            switch run {
            case .text(let text): text
            case .timeAgo(let date): TimeAgo.describe(date, now: now)
            case .live: NumberFormatting.grouped(Double(visitors))
            case .livePlural(let one, let other): visitors == 1 ? one : other
            }
        }.joined()
    }
}

/// English relative times, the same rules as the widget's.
public enum TimeAgo {
    public static func describe(_ date: Date, now: Date) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        func unit(_ value: Int, _ name: String) -> String { "\(value) \(name)\(value == 1 ? "" : "s") ago" }
        switch seconds {
        case ..<60: return "just now"
        case ..<3600: return unit(seconds / 60, "minute")
        case ..<86_400: return unit(seconds / 3600, "hour")
        default: return unit(seconds / 86_400, "day")
        }
    }
}

enum NumberFormatting {
    /// 12345 → "12,345": grouping without locale surprises.
    static func grouped(_ value: Double) -> String {
        let integer = Int(value.rounded())
        let digits = String(abs(integer))
        var grouped = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0 && index % 3 == 0 { grouped.append(",") }
            grouped.append(character)
        }
        return (integer < 0 ? "-" : "") + String(grouped.reversed())
    }
}
