import Foundation

/// Reads typed fields out of a ``JSONNode`` object, collecting every problem under its JSON path, with the same
/// messages `JSONBody` gives for `Codable` types ("is required", "must be a string").
public struct JSONFields {
    public let node: JSONNode
    public let path: String

    public init(_ node: JSONNode, path: String = "") {
        self.node = node
        self.path = path
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A present, non-null member.
    func member(_ key: String, required: Bool, into validator: inout Validator) -> JSONNode? {
        guard let value = node[key] else {
            if required { validator.add(field(key), "is required") }
            return nil
        }
        if value.isNull {
            if required { validator.add(field(key), "must not be null") }
            return nil
        }
        return value
    }

    public func string(_ key: String, required: Bool = false, into validator: inout Validator) -> String? {
        guard let value = member(key, required: required, into: &validator) else { return nil }
        guard let text = value.string else {
            validator.add(field(key), "must be a string")
            return nil
        }
        return text
    }

    public func number(_ key: String, required: Bool = false, into validator: inout Validator) -> Double? {
        guard let value = member(key, required: required, into: &validator) else { return nil }
        guard let number = value.number else {
            validator.add(field(key), "must be a number")
            return nil
        }
        return number
    }

    public func bool(_ key: String, into validator: inout Validator) -> Bool? {
        guard let value = member(key, required: false, into: &validator) else { return nil }
        guard let flag = value.bool else {
            validator.add(field(key), "must be true or false")
            return nil
        }
        return flag
    }

    public func uuid(_ key: String, required: Bool = false, into validator: inout Validator) -> UUID? {
        guard let text = string(key, required: required, into: &validator) else { return nil }
        guard let id = UUID(text: text) else {
            validator.add(field(key), "must be an id such as 01a2261b-f5fd-7815-9a36-b942823458f8")
            return nil
        }
        return id
    }

    public func object(_ key: String, required: Bool = false, into validator: inout Validator) -> JSONFields? {
        guard let value = member(key, required: required, into: &validator) else { return nil }
        guard case .object = value else {
            validator.add(field(key), "must be an object")
            return nil
        }
        return JSONFields(value, path: field(key))
    }

    /// An array member; each element comes with its path (`events.3`).
    public func array(_ key: String, required: Bool = false, into validator: inout Validator) -> [(path: String, node: JSONNode)]? {
        guard let value = member(key, required: required, into: &validator) else { return nil }
        guard let elements = value.array else {
            validator.add(field(key), "must be an array")
            return nil
        }
        return elements.enumerated().map { ("\(field(key)).\($0.offset)", $0.element) }
    }
}
