import Foundation
import HeraldCore
import Hummingbird

/// Reads a JSON object field by field, collecting every problem with the field's name. For update requests
/// it also tells an absent field (leave as is) from `null` (clear it).
public struct BodyReader: Sendable {
    public let object: [String: JSONValue]
    public var validator = Validator()

    public init(object: [String: JSONValue]) {
        self.object = object
    }

    /// Decodes the request body as a JSON object (400/413/415/422 as for any JSON body).
    public init(request: Request, context: HeraldRequestContext) async throws {
        let value = try await request.decodeJSON(as: JSONValue.self, context: context)
        guard case .object(let object) = value else {
            throw HeraldError.badRequest("The request body must be a JSON object.", slug: "malformed-json")
        }
        self.object = object
    }

    /// The whole body decoded as `T`, for requests read as one value; a field of the wrong type is a 422 naming it.
    public func decode<T: Decodable>(as type: T.Type) throws -> T {
        try JSONBody.decode(T.self, from: try JSONEncoder().encode(JSONValue.object(object)))
    }

    public func has(_ key: String) -> Bool { object[key] != nil }

    public func isNull(_ key: String) -> Bool { object[key] == .null }

    /// Whether a field is absent or null: both mean "not given" for a required field.
    public func isMissing(_ key: String) -> Bool { !has(key) || isNull(key) }

    /// A string field, or nil when absent or null; a non-string is a field error.
    public mutating func string(_ key: String) -> String? {
        switch object[key] {
        case .none, .null?: return nil
        case .string(let value)?: return value
        default:
            validator.add(key, "must be a string")
            return nil
        }
    }

    /// Any field decoded as `T`, with decoding problems reported under the field's path.
    public mutating func decode<T: Decodable>(_ key: String, as type: T.Type) -> T? {
        guard let value = object[key], value != .null else { return nil }
        do {
            let data = try JSONEncoder().encode(value)
            return try JSONDecoder.herald.decode(T.self, from: data)
        } catch let error as DecodingError {
            let problem = JSONBody.problem(for: error)
            if problem.errors.isEmpty {
                validator.add(key, "has the wrong shape")
            } else {
                for fieldError in problem.errors {
                    let sub = fieldError.field == "(body)" ? key : "\(key).\(fieldError.field)"
                    validator.add(sub, fieldError.message)
                }
            }
            return nil
        } catch {
            validator.add(key, "has the wrong shape")
            return nil
        }
    }

    /// An object field merged over `base`'s JSON form and decoded again: a partial update of a settings object.
    public mutating func merged<T: Codable>(_ key: String, over base: T) -> T {
        guard let patch = object[key], patch != .null else { return base }
        guard case .object(let fields) = patch else {
            validator.add(key, "must be an object")
            return base
        }
        do {
            let baseValue = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder.herald.encode(base))
            var merged = baseValue.objectValue ?? [:]
            for (name, value) in fields { merged[name] = value }
            let reader = BodyReader(object: [key: .object(merged)])
            var copy = reader
            let result = copy.decode(key, as: T.self)
            for error in copy.validator.errors { validator.add(error.field, error.message) }
            return result ?? base
        } catch {
            validator.add(key, "has the wrong shape")
            return base
        }
    }
}
