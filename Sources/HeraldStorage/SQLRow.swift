import Foundation
import HeraldCore

/// A result row with values already converted to ``SQLValue``, so repository code reads both stores alike.
public struct SQLRow: Sendable {
    public let columns: [String: SQLValue]

    public init(columns: [String: SQLValue]) {
        self.columns = columns
    }

    /// Decodes a column into the type the caller asks for.
    public func get<T: SQLDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let value = columns[column] else { throw StorageError.missingColumn(column) }
        do {
            return try T(sqlValue: value)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.typeMismatch(column: column, expected: "\(T.self)", found: "\(value)")
        }
    }
}

/// A Swift type that can be read from a column in either store.
public protocol SQLDecodable: Sendable {
    init(sqlValue: SQLValue) throws
}

struct SQLDecodingFailure: Error {}

extension String: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .text(let text), .json(let text): self = text
        case .uuid(let uuid): self = uuid.lowercased
        default: throw SQLDecodingFailure()
        }
    }
}

extension Int64: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .int(let value): self = value
        case .bool(let value): self = value ? 1 : 0
        case .double(let value):
            guard let exact = Int64(exactly: value) else { throw SQLDecodingFailure() }
            self = exact
        case .text(let text):
            guard let value = Int64(text) else { throw SQLDecodingFailure() }
            self = value
        default: throw SQLDecodingFailure()
        }
    }
}

extension Int: SQLDecodable {
    public init(sqlValue: SQLValue) throws { self = Int(try Int64(sqlValue: sqlValue)) }
}

extension Double: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .double(let value): self = value
        case .int(let value): self = Double(value)
        case .text(let text):
            guard let value = Double(text) else { throw SQLDecodingFailure() }
            self = value
        default: throw SQLDecodingFailure()
        }
    }
}

extension Bool: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .bool(let value): self = value
        case .int(let value): self = value != 0
        default: throw SQLDecodingFailure()
        }
    }
}

extension UUID: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .uuid(let uuid): self = uuid
        case .text(let text):
            guard let uuid = UUID(text: text) else { throw SQLDecodingFailure() }
            self = uuid
        default: throw SQLDecodingFailure()
        }
    }
}

extension Date: SQLDecodable {
    /// Dates are `timestamptz` in PostgreSQL and integer Unix microseconds in SQLite.
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .date(let date): self = date
        case .int(let micros): self = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
        case .double(let seconds): self = Date(timeIntervalSince1970: seconds)
        default: throw SQLDecodingFailure()
        }
    }
}

extension Array: SQLDecodable where Element == UInt8 {
    public init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .bytes(let bytes): self = bytes
        default: throw SQLDecodingFailure()
        }
    }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public init(sqlValue: SQLValue) throws {
        if case .null = sqlValue {
            self = .none
        } else {
            self = .some(try Wrapped(sqlValue: sqlValue))
        }
    }
}

extension SQLValue: SQLDecodable {
    public init(sqlValue: SQLValue) throws { self = sqlValue }
}

/// Errors raised by the storage layer, with the cases callers act on kept distinct.
public enum StorageError: Error, Sendable, CustomStringConvertible {
    /// A unique or primary-key constraint rejected a write; carries the constraint or column text if known.
    case uniqueViolation(String)
    /// A foreign-key constraint rejected a write.
    case foreignKeyViolation(String)
    case missingColumn(String)
    case typeMismatch(column: String, expected: String, found: String)
    /// The store cannot be reached or refused the connection.
    case unavailable(String)
    /// A migration that was already applied has different SQL now.
    case migrationChanged(service: String, version: Int)
    case other(String)

    public var description: String {
        switch self {
        case .uniqueViolation(let what): "unique constraint violated: \(what)"
        case .foreignKeyViolation(let what): "foreign key constraint violated: \(what)"
        case .missingColumn(let column): "result has no column \(column)"
        case .typeMismatch(let column, let expected, let found): "column \(column): expected \(expected), found \(found)"
        case .unavailable(let reason): reason
        case .migrationChanged(let service, let version):
            "migration \(service)/\(version) was changed after it was applied; migrations must never be edited"
        case .other(let message): message
        }
    }
}
