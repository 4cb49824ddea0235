import Foundation
import HeraldCore

/// PATCH (RFC 7644 §3.5.2) over a resource's stored attributes: `add`, `replace` and `remove`, with or without a
/// path; paths are `attr`, `attr.sub`, `attr[sub eq "v"]` and `attr[sub eq "v"].sub2`, names case-insensitive,
/// optionally prefixed by the schema URN. The result is sanitized again by the caller, so a PATCH can only produce
/// what a PUT could.
struct SCIMPatch: Sendable {
    struct Operation: Sendable {
        var op: String
        var path: String?
        var value: JSONValue?
    }

    var operations: [Operation]

    static let maxOperations = 100

    init(body: [String: JSONValue]) throws {
        guard case .array(let items)? = body["Operations"] ?? body.first(where: { $0.key.lowercased() == "operations" })?.value else {
            throw SCIMError.invalidSyntax("A PATCH body is a PatchOp message with an Operations array.")
        }
        if case .array(let schemas)? = body["schemas"], !schemas.contains(.string(SCIMSchema.patchOp)) {
            throw SCIMError.invalidSyntax("A PATCH body must name the schema \(SCIMSchema.patchOp).")
        }
        guard !items.isEmpty else { throw SCIMError.invalidValue("Operations is empty.") }
        guard items.count <= Self.maxOperations else { throw SCIMError.make(400, "tooMany", "At most \(Self.maxOperations) operations.") }
        operations = try items.map { item in
            guard case .object(let object) = item else { throw SCIMError.invalidSyntax("Each operation must be an object.") }
            func field(_ name: String) -> JSONValue? { object.first { $0.key.lowercased() == name }?.value }
            guard case .string(let op)? = field("op"), ["add", "replace", "remove"].contains(op.lowercased()) else {
                throw SCIMError.invalidSyntax("Each operation's op must be add, replace or remove.")
            }
            var path: String?
            switch field("path") {
            case .string(let text)?: path = text.trimmingCharacters(in: .whitespaces).isEmpty ? nil : text
            case .none, .null?: path = nil
            default: throw SCIMError.invalidPath("path must be a string.")
            }
            return Operation(op: op.lowercased(), path: path, value: field("value"))
        }
    }

    /// Applies every operation to `document` in order.
    func apply(to document: inout [String: JSONValue], schema: SCIMResourceSchema) throws {
        for operation in operations {
            if let path = operation.path {
                try Self.apply(operation.op, path: path, value: operation.value, to: &document, schema: schema)
            } else {
                guard operation.op != "remove" else { throw SCIMError.noTarget("A remove operation needs a path.") }
                guard case .object(let object)? = operation.value else {
                    throw SCIMError.invalidValue("An operation without a path needs an object value.")
                }
                // Okta renames a group with {"op":"replace","value":{"id":"…","displayName":"…"}}: the resource's
                // own id, schemas and meta in a value without a path are not changes.
                for (key, value) in object where !["id", "schemas", "meta"].contains(key.lowercased()) {
                    try Self.apply(operation.op, path: key, value: value, to: &document, schema: schema)
                }
            }
        }
    }

    /// A parsed path: attribute, optional value filter, optional sub-attribute.
    struct Path: Sendable {
        var attribute: SCIMAttribute
        var filter: (attribute: String, value: JSONValue)?
        var sub: String?
    }

    static func parse(_ raw: String, schema: SCIMResourceSchema) throws -> Path? {
        var text = raw.trimmingCharacters(in: .whitespaces)
        let prefix = schema.id.lowercased() + ":"
        if text.lowercased().hasPrefix(prefix) {
            text = String(text.dropFirst(prefix.count))
        } else if text.lowercased().hasPrefix("urn:") {
            // An extension schema Herald does not keep: nothing to change.
            return nil
        }
        var filter: (String, JSONValue)?
        var head = text
        var sub: String?
        if let open = text.firstIndex(of: "[") {
            guard let close = text.lastIndex(of: "]"), close > open else { throw SCIMError.invalidPath("Unbalanced brackets in \(raw).") }
            head = String(text[..<open])
            let inner = text[text.index(after: open)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix("."), rest.count > 1 else { throw SCIMError.invalidPath("Unexpected text after ] in \(raw).") }
                sub = String(rest.dropFirst())
            }
            let parts = inner.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard parts.count == 3, parts[1].lowercased() == "eq" else {
                throw SCIMError.invalidFilter("Herald supports value filters of the form [attribute eq \"value\"] in paths.")
            }
            let valueText = parts[2].trimmingCharacters(in: .whitespaces)
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(valueText.utf8)) else {
                throw SCIMError.invalidFilter("The value in \(raw) must be a JSON string, number or boolean.")
            }
            filter = (String(parts[0]), value)
        } else if let dot = text.firstIndex(of: ".") {
            head = String(text[..<dot])
            sub = String(text[text.index(after: dot)...])
        }
        guard !head.isEmpty else { throw SCIMError.invalidPath("\(raw) is not an attribute path.") }
        guard let attribute = schema.attribute(head) else {
            if ["id", "meta", "schemas"].contains(head.lowercased()) {
                throw SCIMError.mutability("\(head) cannot be changed.")
            }
            // An attribute of the schema Herald does not keep (title, phoneNumbers, …): ignored like in a PUT.
            if schema.ignored.contains(head.lowercased()) { return nil }
            throw SCIMError.invalidPath("\(schema.name) has no attribute \(head).")
        }
        if attribute.isReadOnly { throw SCIMError.mutability("\(attribute.name) is read-only.") }
        if filter != nil && !attribute.multiValued { throw SCIMError.invalidPath("\(attribute.name) is not multi-valued.") }
        if let sub {
            guard attribute.isComplex, let subAttribute = attribute.subAttribute(sub) else {
                throw SCIMError.invalidPath("\(attribute.name) has no sub-attribute \(sub).")
            }
            return Path(attribute: attribute, filter: filter, sub: subAttribute.name)
        }
        if let filter {
            guard let filterAttribute = attribute.subAttribute(filter.0) else {
                throw SCIMError.invalidPath("\(attribute.name) has no sub-attribute \(filter.0).")
            }
            return Path(attribute: attribute, filter: (filterAttribute.name, filter.1), sub: nil)
        }
        return Path(attribute: attribute, filter: nil, sub: nil)
    }

    static func matches(_ item: JSONValue, _ filter: (attribute: String, value: JSONValue)) -> Bool {
        guard case .object(let object) = item, let actual = object[filter.attribute] else { return false }
        if case .string(let a) = actual, case .string(let b) = filter.value { return a.lowercased() == b.lowercased() }
        return actual == filter.value
    }

    /// Multi-valued items are the same when their `value` is (members, emails), or when they are equal.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if case .object(let x) = a, case .object(let y) = b, let vx = x["value"], let vy = y["value"] {
            if case .string(let sx) = vx, case .string(let sy) = vy { return sx.lowercased() == sy.lowercased() }
            return vx == vy
        }
        return a == b
    }

    static func apply(
        _ op: String, path raw: String, value: JSONValue?, to document: inout [String: JSONValue], schema: SCIMResourceSchema
    )
        throws
    {
        guard let path = try parse(raw, schema: schema) else { return }
        let name = path.attribute.name
        let before = document[name]
        try change(op, path: path, raw: raw, value: value, in: &document)
        // RFC 7644 §3.5.2: a value made primary makes every other value of the attribute not primary.
        if path.attribute.multiValued, path.attribute.subAttribute("primary") != nil, case .array(var items)? = document[name] {
            let wasPrimary: [JSONValue] = {
                guard case .array(let old)? = before else { return [] }
                return old.filter { $0.objectValue?["primary"] == .bool(true) }
            }()
            let newlyPrimary = items.indices.filter { items[$0].objectValue?["primary"] == .bool(true) && !wasPrimary.contains(items[$0]) }
            if let chosen = newlyPrimary.first {
                for index in items.indices where index != chosen && items[index].objectValue?["primary"] == .bool(true) {
                    items[index] = set(items[index], "primary", .bool(false))
                }
                document[name] = .array(items)
            }
        }
    }

    static func change(_ op: String, path: Path, raw: String, value: JSONValue?, in document: inout [String: JSONValue]) throws {
        let name = path.attribute.name
        if op != "remove" && value == nil { throw SCIMError.invalidValue("The \(op) operation on \(raw) needs a value.") }
        let newValue = value ?? .null

        switch (path.filter, path.sub) {
        case (nil, nil):
            switch op {
            case "remove":
                if path.attribute.multiValued, let value, value != .null, case .array(var items)? = document[name] {
                    // Entra ID removes members by value: {"op":"remove","path":"members","value":[{"value":"…"}]}.
                    let removals: [JSONValue] = { if case .array(let list) = value { return list } else { return [value] } }()
                    items.removeAll { item in removals.contains { same(item, $0) } }
                    document[name] = items.isEmpty ? nil : .array(items)
                } else {
                    document[name] = nil
                }
            case "add" where path.attribute.multiValued:
                var items: [JSONValue] = { if case .array(let list)? = document[name] { return list } else { return [] } }()
                let additions: [JSONValue] = { if case .array(let list) = newValue { return list } else { return [newValue] } }()
                for addition in additions where addition != .null {
                    if let index = items.firstIndex(where: { same($0, addition) }) {
                        items[index] = merge(items[index], addition)
                    } else {
                        items.append(addition)
                    }
                }
                document[name] = items.isEmpty ? nil : .array(items)
            default:
                if path.attribute.isComplex && !path.attribute.multiValued, case .object = newValue, let existing = document[name] {
                    // Sub-attributes not given are left as they are (RFC 7644 §3.5.2.1 and §3.5.2.3).
                    document[name] = merge(existing, newValue)
                } else {
                    document[name] = newValue == .null ? nil : newValue
                }
            }
        case (nil, let sub?):
            if path.attribute.multiValued {
                var items: [JSONValue] = { if case .array(let list)? = document[name] { return list } else { return [] } }()
                if items.isEmpty && op != "remove" { items = [.object([:])] }
                items = items.map { set($0, sub, op == "remove" ? nil : newValue) }
                document[name] = compact(items)
            } else {
                let updated = set(document[name] ?? .object([:]), sub, op == "remove" ? nil : newValue)
                document[name] = isEmpty(updated) ? nil : updated
            }
        case (let filter?, let sub):
            var items: [JSONValue] = { if case .array(let list)? = document[name] { return list } else { return [] } }()
            let matched = items.indices.filter { matches(items[$0], filter) }
            if op == "remove" {
                if let sub {
                    for index in matched { items[index] = set(items[index], sub, nil) }
                } else {
                    items = items.enumerated().filter { !matched.contains($0.offset) }.map(\.element)
                }
            } else if matched.isEmpty {
                // Entra ID adds `emails[type eq "work"].value` to users that have no work address yet.
                var item: [String: JSONValue] = [filter.attribute: filter.value]
                if let sub {
                    item[sub] = newValue
                } else if case .object(let object) = newValue {
                    item.merge(object) { _, new in new }
                }
                items.append(.object(item))
            } else {
                for index in matched {
                    if let sub {
                        items[index] = set(items[index], sub, newValue)
                    } else {
                        items[index] = op == "add" ? merge(items[index], newValue) : newValue
                    }
                }
            }
            document[name] = compact(items)
        }
    }

    static func merge(_ base: JSONValue, _ addition: JSONValue) -> JSONValue {
        guard case .object(var object) = base, case .object(let extra) = addition else { return addition }
        for (key, value) in extra {
            if let existingKey = object.keys.first(where: { $0.lowercased() == key.lowercased() }) { object[existingKey] = nil }
            object[key] = value
        }
        return .object(object)
    }

    static func set(_ item: JSONValue, _ sub: String, _ value: JSONValue?) -> JSONValue {
        var object: [String: JSONValue] = { if case .object(let o) = item { return o } else { return [:] } }()
        for key in object.keys where key.lowercased() == sub.lowercased() { object[key] = nil }
        if let value, value != .null { object[sub] = value }
        return .object(object)
    }

    static func isEmpty(_ value: JSONValue) -> Bool {
        if case .object(let object) = value { return object.isEmpty }
        return value == .null
    }

    static func compact(_ items: [JSONValue]) -> JSONValue? {
        let kept = items.filter { !isEmpty($0) }
        return kept.isEmpty ? nil : .array(kept)
    }
}
