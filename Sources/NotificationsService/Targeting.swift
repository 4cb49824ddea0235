import Foundation
import HeraldCore

/// Targeting rules: which page views a notification appears on. A tree of `all` / `any` / `not` over
/// conditions on the page and the visitor. The same semantics run here (validation, server-side evaluation,
/// previews) and in the widget's JavaScript; both pass the shared vectors in `Resources/targeting-vectors.json`.
///
/// ```json
/// {"all": [{"field": "path", "op": "glob", "value": "/products/*"},
///          {"not": {"field": "device", "op": "is", "value": "mobile"}},
///          {"field": "schedule", "op": "matches", "value": {"weekdays": ["mon","tue"], "hours": {"from": "09:00", "to": "17:00"}}}]}
/// ```
public indirect enum RuleNode: Sendable, Equatable, Codable {
    case all([RuleNode])
    case any([RuleNode])
    case not(RuleNode)
    case condition(RuleCondition)

    enum CodingKeys: String, CodingKey { case all, any, not, field, op, value, caseSensitive }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if container.contains(.all) {
            self = .all(try container.decode([RuleNode].self, forKey: .all))
        } else if container.contains(.any) {
            self = .any(try container.decode([RuleNode].self, forKey: .any))
        } else if container.contains(.not) {
            self = .not(try container.decode(RuleNode.self, forKey: .not))
        } else if container.contains(.field) {
            self = .condition(try RuleCondition(from: decoder))
        } else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "must be {\"all\": […]}, {\"any\": […]}, {\"not\": {…}} or a condition {\"field\", \"op\", \"value\"}")
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .all(let nodes):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(nodes, forKey: .all)
        case .any(let nodes):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(nodes, forKey: .any)
        case .not(let node):
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(node, forKey: .not)
        case .condition(let condition):
            try condition.encode(to: encoder)
        }
    }
}

public struct RuleCondition: Sendable, Equatable, Codable {
    public enum Field: String, APIEnum {
        case url, path, referrer
        case utmSource = "utm_source", utmMedium = "utm_medium", utmCampaign = "utm_campaign", utmTerm = "utm_term", utmContent = "utm_content"
        case device, country, visitor, schedule

        var isText: Bool { ![.device, .country, .visitor, .schedule].contains(self) }
    }

    public enum Operator: String, APIEnum {
        case equals, contains, startsWith, glob, regex, exists
        case `is`, `in`
        case matches
    }

    public var field: Field
    public var op: Operator
    public var value: JSONValue?
    /// Text comparisons ignore case unless this is true.
    public var caseSensitive: Bool?

    public init(field: Field, op: Operator, value: JSONValue?, caseSensitive: Bool? = nil) {
        self.field = field
        self.op = op
        self.value = value
        self.caseSensitive = caseSensitive
    }
}

/// What the widget knows about a page view.
public struct VisitorContext: Sendable, Codable {
    public var url: String
    public var referrer: String?
    /// `desktop`, `mobile` or `tablet`.
    public var device: String?
    /// ISO 3166 alpha-2, from the configured country header.
    public var country: String?
    /// `new` or `returning`.
    public var visitor: String?
    /// When the page is viewed (milliseconds since 1970 in the vectors).
    public var now: Date
    /// The site's time zone for schedules.
    public var timezone: String

    public init(
        url: String, referrer: String? = nil, device: String? = nil, country: String? = nil, visitor: String? = nil, now: Date, timezone: String
    ) {
        self.url = url
        self.referrer = referrer
        self.device = device
        self.country = country
        self.visitor = visitor
        self.now = now
        self.timezone = timezone
    }
}

public enum Targeting {
    static let deviceValues = ["desktop", "mobile", "tablet"]
    static let visitorValues = ["new", "returning"]
    static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let maximumDepth = 6
    static let maximumConditions = 50

    // MARK: Validation

    /// Checks a rule tree, naming each problem by its JSON path under `field` (`rules.all.0.value`).
    public static func validate(_ node: RuleNode, field: String, into validator: inout Validator) {
        var conditions = 0
        validate(node, path: field, depth: 0, conditions: &conditions, into: &validator)
        if conditions > maximumConditions { validator.add(field, "has more than \(maximumConditions) conditions") }
    }

    static func validate(_ node: RuleNode, path: String, depth: Int, conditions: inout Int, into validator: inout Validator) {
        guard depth <= maximumDepth else {
            validator.add(path, "nests deeper than \(maximumDepth) levels")
            return
        }
        switch node {
        case .all(let nodes), .any(let nodes):
            let key = if case .all = node { "all" } else { "any" }
            for (index, child) in nodes.enumerated() {
                validate(child, path: "\(path).\(key).\(index)", depth: depth + 1, conditions: &conditions, into: &validator)
            }
        case .not(let child):
            validate(child, path: "\(path).not", depth: depth + 1, conditions: &conditions, into: &validator)
        case .condition(let condition):
            conditions += 1
            validate(condition, path: path, into: &validator)
        }
    }

    static func validate(_ condition: RuleCondition, path: String, into validator: inout Validator) {
        let valuePath = "\(path).value"
        switch condition.field {
        case .url, .path, .referrer, .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent:
            let allowed: [RuleCondition.Operator] = [.equals, .contains, .startsWith, .glob, .regex, .exists]
            guard allowed.contains(condition.op) else {
                validator.add("\(path).op", "must be one of \(allowed.map(\.rawValue).joined(separator: ", ")) for \(condition.field.rawValue)")
                return
            }
            if condition.op == .exists {
                if condition.value != nil, condition.value?.boolValue == nil { validator.add(valuePath, "must be true or false") }
                return
            }
            guard let text = condition.value?.stringValue, !text.isEmpty, text.count <= 500 else {
                validator.add(valuePath, "must be non-empty text of at most 500 characters")
                return
            }
            if condition.op == .regex, let problem = SafeRegex.problem(in: text) {
                validator.add(valuePath, problem)
            }
        case .device, .country, .visitor:
            guard condition.op == .is || condition.op == .in else {
                validator.add("\(path).op", "must be 'is' or 'in' for \(condition.field.rawValue)")
                return
            }
            let values = condition.op == .is ? condition.value?.stringValue.map { [$0] } : condition.value?.arrayValue?.compactMap(\.stringValue)
            guard let values, !values.isEmpty, condition.op == .is || condition.value?.arrayValue?.count == values.count else {
                validator.add(valuePath, condition.op == .is ? "must be text" : "must be a non-empty list of text")
                return
            }
            for value in values {
                switch condition.field {
                case .device where !deviceValues.contains(value): validator.add(valuePath, "must be desktop, mobile or tablet")
                case .visitor where !visitorValues.contains(value): validator.add(valuePath, "must be new or returning")
                case .country where !(value.count == 2 && value.allSatisfy { $0.isASCII && $0.isLetter }):
                    validator.add(valuePath, "must hold two-letter country codes such as US")
                default: break
                }
            }
        case .schedule:
            guard condition.op == .matches else {
                validator.add("\(path).op", "must be 'matches' for schedule")
                return
            }
            guard let object = condition.value?.objectValue else {
                validator.add(valuePath, "must be an object with from, to, weekdays and/or hours")
                return
            }
            for key in object.keys where !["from", "to", "weekdays", "hours"].contains(key) {
                validator.add("\(valuePath).\(key)", "is not a schedule setting; use from, to, weekdays or hours")
            }
            for key in ["from", "to"] {
                if let value = object[key], value.stringValue.flatMap(parseDay) == nil {
                    validator.add("\(valuePath).\(key)", "must be a date like 2026-12-24")
                }
            }
            if let days = object["weekdays"] {
                let list = days.arrayValue?.compactMap(\.stringValue) ?? []
                if list.isEmpty || list.count != days.arrayValue?.count || !list.allSatisfy(weekdays.contains) {
                    validator.add("\(valuePath).weekdays", "must be a list of mon, tue, wed, thu, fri, sat, sun")
                }
            }
            if let hours = object["hours"] {
                for key in hours.objectValue?.keys.sorted() ?? [] where key != "from" && key != "to" {
                    validator.add("\(valuePath).hours.\(key)", "is not an hours setting; use from and to")
                }
                let from = hours.objectValue?["from"]?.stringValue.flatMap(parseMinutes)
                let to = hours.objectValue?["to"]?.stringValue.flatMap(parseMinutes)
                if from == nil || to == nil || from == to {
                    validator.add("\(valuePath).hours", "must be {\"from\": \"09:00\", \"to\": \"17:00\"} with two different times")
                }
            }
        }
    }

    // MARK: Evaluation

    /// Whether a page view matches. No rules match every page view.
    public static func evaluate(_ node: RuleNode?, _ context: VisitorContext) -> Bool {
        guard let node else { return true }
        switch node {
        case .all(let nodes): return nodes.allSatisfy { evaluate($0, context) }
        case .any(let nodes): return nodes.contains { evaluate($0, context) }
        case .not(let child): return !evaluate(child, context)
        case .condition(let condition): return evaluate(condition, context)
        }
    }

    static func evaluate(_ condition: RuleCondition, _ context: VisitorContext) -> Bool {
        switch condition.field {
        case .url, .path, .referrer, .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent:
            let subject = text(for: condition.field, context)
            if condition.op == .exists {
                let wanted = condition.value?.boolValue ?? true
                return (subject?.isEmpty == false) == wanted
            }
            guard let subject, let pattern = condition.value?.stringValue else { return false }
            return matchText(subject, op: condition.op, pattern: pattern, caseSensitive: condition.caseSensitive ?? false)
        case .device, .country, .visitor:
            let subject: String? =
                switch condition.field {
                case .device: context.device
                case .country: context.country?.uppercased()
                default: context.visitor
                }
            guard let subject else { return false }
            let values = (condition.op == .is ? condition.value.map { [$0] } : condition.value?.arrayValue) ?? []
            return values.compactMap(\.stringValue).contains { $0.caseInsensitiveCompare(subject) == .orderedSame }
        case .schedule:
            return matchSchedule(condition.value?.objectValue ?? [:], context)
        }
    }

    static func text(for field: RuleCondition.Field, _ context: VisitorContext) -> String? {
        switch field {
        case .url: return context.url
        case .referrer: return context.referrer
        case .path: return URLComponents(string: context.url)?.percentEncodedPath.nilIfEmpty ?? "/"
        default:
            let items = URLComponents(string: context.url)?.queryItems ?? []
            return items.first { $0.name == field.rawValue }?.value
        }
    }

    static func matchText(_ subject: String, op: RuleCondition.Operator, pattern: String, caseSensitive: Bool) -> Bool {
        let (s, p) = caseSensitive ? (subject, pattern) : (subject.lowercased(), pattern.lowercased())
        switch op {
        case .equals: return s == p
        case .contains: return s.contains(p)
        case .startsWith: return s.hasPrefix(p)
        case .glob: return glob(Array(s.unicodeScalars), Array(p.unicodeScalars))
        case .regex:
            guard SafeRegex.problem(in: pattern) == nil,
                let regex = try? NSRegularExpression(pattern: pattern, options: caseSensitive ? [] : [.caseInsensitive])
            else { return false }
            let bounded = String(subject.prefix(2048))
            return regex.firstMatch(in: bounded, range: NSRange(bounded.startIndex..., in: bounded)) != nil
        default: return false
        }
    }

    /// `*` matches any run of characters (including `/`), `?` exactly one; the whole subject must match.
    /// Linear-time two-pointer matching: no backtracking explosion.
    static func glob(_ subject: [Unicode.Scalar], _ pattern: [Unicode.Scalar]) -> Bool {
        var s = 0
        var p = 0
        var star = -1
        var mark = 0
        while s < subject.count {
            if p < pattern.count && (pattern[p] == "?" || pattern[p] == subject[s]) {
                s += 1
                p += 1
            } else if p < pattern.count && pattern[p] == "*" {
                star = p
                mark = s
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                s = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    static func matchSchedule(_ schedule: [String: JSONValue], _ context: VisitorContext) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: context.timezone) ?? .gmt
        let parts = calendar.dateComponents([.year, .month, .day, .weekday, .hour, .minute], from: context.now)
        guard let year = parts.year, let month = parts.month, let day = parts.day, let weekday = parts.weekday else { return false }
        let today = year * 10_000 + month * 100 + day
        if let from = schedule["from"]?.stringValue.flatMap(parseDay), today < from { return false }
        if let to = schedule["to"]?.stringValue.flatMap(parseDay), today > to { return false }
        if let days = schedule["weekdays"]?.arrayValue?.compactMap(\.stringValue) {
            // Calendar weekdays run 1 (Sunday) … 7 (Saturday).
            let name = weekdays[(weekday + 5) % 7]
            if !days.contains(name) { return false }
        }
        if let hours = schedule["hours"]?.objectValue,
            let from = hours["from"]?.stringValue.flatMap(parseMinutes), let to = hours["to"]?.stringValue.flatMap(parseMinutes)
        {
            let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
            let inside = from < to ? (minute >= from && minute < to) : (minute >= from || minute < to)
            if !inside { return false }
        }
        return true
    }

    /// `2026-12-24` → 20261224.
    static func parseDay(_ text: String) -> Int? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        return year * 10_000 + month * 100 + day
    }

    /// `09:30` → 570.
    static func parseMinutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
            (0...23).contains(hour), (0...59).contains(minute)
        else { return nil }
        return hour * 60 + minute
    }
}

/// The regular expressions Herald accepts in rules: a subset that means the same in ICU (Swift) and in
/// JavaScript, without the constructions that make matching explode (nested or alternating repetition) or
/// that one engine lacks (back-references, lookbehind, named groups, inline flags, possessive or atomic groups).
public enum SafeRegex {
    public static let maximumLength = 200

    /// Nil when the pattern is acceptable; otherwise why it is refused.
    public static func problem(in pattern: String) -> String? {
        guard pattern.count <= maximumLength else { return "is longer than \(maximumLength) characters" }
        let characters = Array(pattern)
        // Each open group records whether it contains a repetition or an alternation.
        var groups: [(repeats: Bool, alternates: Bool)] = []
        var lastGroup: (repeats: Bool, alternates: Bool)?
        var index = 0
        var inClass = false
        while index < characters.count {
            let character = characters[index]
            if character == "\\" {
                guard index + 1 < characters.count else { return "ends with a lone backslash" }
                let next = characters[index + 1]
                if next.isNumber && next != "0" { return "uses a back-reference (\\\(next)), which is not allowed" }
                if "pPkAZzGQE".contains(next) { return "uses \\\(next), which the widget's JavaScript does not understand the same way" }
                index += 2
                lastGroup = nil
                continue
            }
            if inClass {
                if character == "]" { inClass = false }
                index += 1
                continue
            }
            switch character {
            case "[":
                inClass = true
                lastGroup = nil
            case "(":
                if index + 1 < characters.count && characters[index + 1] == "?" {
                    let rest = String(characters[(index + 2)...].prefix(2))
                    if !(rest.hasPrefix(":") || rest.hasPrefix("=") || rest.hasPrefix("!")) {
                        return
                            "uses (?\(rest.prefix(1))…), which is not allowed; use (?:…), (?=…) or (?!…) and the rule's caseSensitive setting for flags"
                    }
                }
                groups.append((false, false))
                lastGroup = nil
            case ")":
                guard let group = groups.popLast() else { return "has an unmatched ')'" }
                lastGroup = group
                if var parent = groups.popLast() {
                    parent.repeats = parent.repeats || group.repeats
                    parent.alternates = parent.alternates || group.alternates
                    groups.append(parent)
                }
            case "|":
                if var group = groups.popLast() {
                    group.alternates = true
                    groups.append(group)
                }
                lastGroup = nil
            case "*", "+", "?", "{":
                var unbounded = character == "*" || character == "+"
                if character == "{" {
                    guard let close = characters[index...].firstIndex(of: "}") else { return "has an unclosed '{'" }
                    let body = String(characters[(index + 1)..<close])
                    let bounds = body.split(separator: ",", omittingEmptySubsequences: false)
                    guard (1...2).contains(bounds.count), bounds.allSatisfy({ $0.isEmpty || Int($0) != nil }), !bounds[0].isEmpty else {
                        return "has a malformed repetition {\(body)}"
                    }
                    unbounded = bounds.count == 2 && (bounds[1].isEmpty || (Int(bounds[1]) ?? 0) > 10)
                    index = close
                }
                if index + 1 < characters.count && characters[index + 1] == "+" { return "uses a possessive quantifier, which is not allowed" }
                if let group = lastGroup, unbounded, group.repeats || group.alternates {
                    return "repeats a group that itself repeats or alternates, which can make matching take forever; simplify it"
                }
                if var current = groups.popLast() {
                    current.repeats = true
                    groups.append(current)
                }
                lastGroup = nil
            default:
                lastGroup = nil
            }
            index += 1
        }
        if inClass { return "has an unclosed '['" }
        if !groups.isEmpty { return "has an unclosed '('" }
        do {
            _ = try NSRegularExpression(pattern: pattern)
        } catch {
            return "is not a valid regular expression"
        }
        return nil
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}

/// Sticky A/B assignment: FNV-1a (32-bit) over the UTF-16 code units of `visitorId:notificationId`, reduced
/// modulo the total weight. The widget computes the same in JavaScript, so a visitor always sees one variant.
public enum VariantAssignment {
    public static func hash(_ text: String) -> UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for unit in text.utf16 {
            hash ^= UInt32(unit)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    public static func pick(visitorId: String, notificationId: String, variants: [(id: String, weight: Int)]) -> String? {
        let total = variants.reduce(0) { $0 + $1.weight }
        guard total > 0 else { return variants.first?.id }
        var remainder = Int(hash("\(visitorId):\(notificationId)") % UInt32(total))
        for variant in variants {
            if remainder < variant.weight { return variant.id }
            remainder -= variant.weight
        }
        return variants.last?.id
    }
}
