import Foundation

/// An optional that is encoded as an explicit JSON `null` when it has no value, instead of being left out.
///
/// Reports keep one shape whatever their data: a client reading `pValue` or `winner` finds the key, with
/// `null` meaning "not computed" (too little data), rather than guessing whether the field exists.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch wrappedValue {
        case .none: try container.encodeNil()
        // Identifiers are lower-case everywhere in Herald's JSON (see `KeyedEncodingContainer.encode(_: UUID, …)`).
        case .some(let id as UUID): try container.encode(id.lowercased)
        case .some(let value): try container.encode(value)
        }
    }
}

extension KeyedDecodingContainer {
    /// A missing key decodes as no value, like a plain optional.
    public func decode<Value>(_ type: Nullable<Value>.Type, forKey key: Key) throws -> Nullable<Value> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}
