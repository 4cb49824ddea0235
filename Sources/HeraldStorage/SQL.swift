import Foundation
import HeraldCore
import NIOCore

/// The SQL dialects Herald speaks. Differences between them are kept in this module.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// A value bound to a statement parameter. Each store maps these to its own types.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
    case uuid(UUID)
    case date(Date)
    /// A JSON document: `jsonb` in PostgreSQL, `TEXT` in SQLite.
    case json(String)
    /// A one-dimensional PostgreSQL array of `elementType` (`int8`, `float8`, `bool`, `uuid`, `text`, `timestamptz`)
    /// in PostgreSQL's binary array format: the column arrays of a multi-row insert (``SQL/Fragment/rows(_:)``),
    /// which PostgreSQL then reads without parsing text. Never bound for SQLite.
    case binaryArray(elementType: SQLArrayElement, bytes: ByteBuffer)
}

/// The element types of the binary arrays a PostgreSQL multi-row insert binds, with their type OIDs.
public enum SQLArrayElement: String, Sendable {
    case int8, float8, bool, uuid, text, timestamptz

    var oid: UInt32 {
        switch self {
        case .int8: 20
        case .float8: 701
        case .bool: 16
        case .uuid: 2950
        case .text: 25
        case .timestamptz: 1184
        }
    }

    var arrayOid: UInt32 {
        switch self {
        case .int8: 1016
        case .float8: 1022
        case .bool: 1000
        case .uuid: 2951
        case .text: 1009
        case .timestamptz: 1185
        }
    }
}

/// A table owned by one service. Rendered as `schema.name` in PostgreSQL (one schema per service)
/// and as `schema_name` in SQLite, which has no schemas.
public struct Table: Sendable, Hashable {
    public let schema: String
    public let name: String

    public init(_ schema: String, _ name: String) {
        self.schema = schema
        self.name = name
    }

    public func rendered(for dialect: SQLDialect) -> String {
        switch dialect {
        case .postgres: "\(schema).\(name)"
        case .sqlite: "\(schema)_\(name)"
        }
    }
}

/// A statement with its parameters kept apart from its text, so values are always bound, never spliced.
///
/// ```swift
/// let sql: SQL = "SELECT id FROM \(Tables.users) WHERE email_index = \(index)"
/// ```
public struct SQL: Sendable, ExpressibleByStringInterpolation {
    enum Fragment: Sendable {
        case literal(String)
        case bind(SQLValue)
        case table(Table)
        /// The rows of a multi-row insert: one fragment for thousands of values, rendered straight into text. SQLite
        /// gets `VALUES (…), (…)`; PostgreSQL a `SELECT` from `unnest` of one array parameter per column, which it
        /// parses and plans in the same short time whatever the number of rows (a `VALUES` list of thousands of
        /// rows cost it more than inserting them: measured, a third of its CPU under beacon load).
        case rows([[SQLValue]])
        /// The same for values already built column by column (``SQLArrayColumn``): PostgreSQL only.
        case arrays([SQLArrayColumn])
    }

    var fragments: [Fragment]

    public init(stringLiteral value: String) {
        self.fragments = [.literal(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        self.fragments = stringInterpolation.fragments
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var fragments: [Fragment] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            fragments.reserveCapacity(interpolationCount * 2 + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            fragments.append(.literal(literal))
        }

        /// Binds a value as a parameter.
        public mutating func appendInterpolation(_ value: some SQLBindable) {
            fragments.append(.bind(value.sqlValue))
        }

        /// Binds an optional value; `nil` becomes SQL `NULL`.
        public mutating func appendInterpolation(_ value: (some SQLBindable)?) {
            fragments.append(.bind(value?.sqlValue ?? .null))
        }

        /// Binds a raw SQL value.
        public mutating func appendInterpolation(value: SQLValue) {
            fragments.append(.bind(value))
        }

        /// Inserts a table name in the dialect's form.
        public mutating func appendInterpolation(_ table: Table) {
            fragments.append(.table(table))
        }

        /// Splices another statement fragment, with its parameters.
        public mutating func appendInterpolation(_ sql: SQL) {
            fragments.append(contentsOf: sql.fragments)
        }

        /// Inserts text verbatim. Only for identifiers chosen from a fixed list in code, never for input.
        public mutating func appendInterpolation(unsafeRaw text: String) {
            fragments.append(.literal(text))
        }
    }

    /// Joins fragments with a separator (`", "`, `" AND "`).
    public static func joined(_ parts: [SQL], separator: String) -> SQL {
        var result = SQL(stringLiteral: "")
        for (index, part) in parts.enumerated() {
            if index > 0 { result.fragments.append(.literal(separator)) }
            result.fragments.append(contentsOf: part.fragments)
        }
        return result
    }

    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var result = lhs
        result.fragments.append(contentsOf: rhs.fragments)
        return result
    }

    /// The statement text with placeholders (`$1` in PostgreSQL; `?` in SQLite, which numbers them in order) and its
    /// values. Written into bytes: batch inserts render tens of thousands of placeholders per statement.
    public func render(for dialect: SQLDialect) -> (text: String, binds: [SQLValue]) {
        var text: [UInt8] = []
        text.reserveCapacity(fragments.count * 4)
        var binds: [SQLValue] = []
        for fragment in fragments {
            switch fragment {
            case .literal(let literal):
                text.append(contentsOf: literal.utf8)
            case .table(let table):
                text.append(contentsOf: table.rendered(for: dialect).utf8)
            case .bind(let value):
                binds.append(value)
                if dialect == .postgres {
                    text.append(UInt8(ascii: "$"))
                    Self.appendDecimal(binds.count, to: &text)
                } else {
                    text.append(UInt8(ascii: "?"))
                }
            case .arrays(let columns):
                Self.renderUnnest(columns.map { $0.hasValues ? $0 : nil }, rowCount: columns.first?.count ?? 0, text: &text, binds: &binds)
            case .rows(let rows):
                if dialect == .postgres, let columns = Self.arrayColumns(rows) {
                    Self.renderUnnest(columns, rowCount: rows.count, text: &text, binds: &binds)
                    continue
                }
                text.append(contentsOf: "VALUES ".utf8)
                text.reserveCapacity(text.count + rows.count * (rows.first?.count ?? 0) * (dialect == .postgres ? 8 : 3))
                binds.reserveCapacity(binds.count + rows.count * (rows.first?.count ?? 0))
                for (index, row) in rows.enumerated() {
                    text.append(contentsOf: index == 0 ? [UInt8(ascii: "(")] : [UInt8(ascii: ","), UInt8(ascii: " "), UInt8(ascii: "(")])
                    for (position, value) in row.enumerated() {
                        if position > 0 { text.append(UInt8(ascii: ",")) }
                        binds.append(value)
                        if dialect == .postgres {
                            text.append(UInt8(ascii: "$"))
                            Self.appendDecimal(binds.count, to: &text)
                        } else {
                            text.append(UInt8(ascii: "?"))
                        }
                    }
                    text.append(UInt8(ascii: ")"))
                }
            }
        }
        return (String(decoding: text, as: UTF8.self), binds)
    }

    /// Each column's values as a binary array (nil for a column of NULLs only, which has no type), or nil when a
    /// column holds values this rendering does not take (documents, bytes, mixed kinds, or text PostgreSQL cannot
    /// store, which the `VALUES` way refuses with a 422): such rows are rendered as `VALUES`.
    static func arrayColumns(_ rows: [[SQLValue]]) -> [SQLArrayColumn?]? {
        guard let width = rows.first?.count, width > 0 else { return nil }
        var columns: [SQLArrayColumn?] = []
        columns.reserveCapacity(width)
        for column in 0..<width {
            guard let first = rows.first(where: { $0[column] != .null }) else {
                columns.append(nil)
                continue
            }
            guard let element = first[column].arrayElement else { return nil }
            var array = SQLArrayColumn(element, capacity: rows.count)
            for row in rows {
                guard array.append(row[column]) else { return nil }
            }
            guard !array.hasUnstorableText else { return nil }
            columns.append(array)
        }
        return columns
    }

    /// 2000-01-01T00:00:00Z in Unix microseconds: PostgreSQL's epoch for timestamps.
    static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000

    /// `SELECT unnest($1::uuid[]), NULL, unnest($2::text[]) …`: a column of NULLs only is a `NULL`, which takes the
    /// target column's type. The arrays are unnested in the select list, where PostgreSQL steps through them
    /// together, and not as `FROM unnest(a, b, …)`, which first copies each array into a tuple store of its own:
    /// measured on the 28 raw event columns, 3 ms against 15 ms for 5,000 rows, a fifth of the whole insert.
    static func renderUnnest(_ columns: [SQLArrayColumn?], rowCount: Int, text: inout [UInt8], binds: inout [SQLValue]) {
        guard columns.contains(where: { $0 != nil }) else {
            // Every value NULL: a VALUES list of NULL rows says it plainly.
            text.append(contentsOf: "VALUES ".utf8)
            for row in 0..<rowCount {
                if row > 0 { text.append(contentsOf: ", ".utf8) }
                text.append(UInt8(ascii: "("))
                text.append(contentsOf: Array(repeating: "NULL", count: columns.count).joined(separator: ", ").utf8)
                text.append(UInt8(ascii: ")"))
            }
            return
        }
        text.append(contentsOf: "SELECT ".utf8)
        for (index, column) in columns.enumerated() {
            if index > 0 { text.append(contentsOf: ", ".utf8) }
            guard let column else {
                text.append(contentsOf: "NULL".utf8)
                continue
            }
            binds.append(.binaryArray(elementType: column.element, bytes: column.bytes))
            text.append(contentsOf: "unnest($".utf8)
            appendDecimal(binds.count, to: &text)
            text.append(contentsOf: "::".utf8)
            text.append(contentsOf: column.element.rawValue.utf8)
            text.append(contentsOf: "[])".utf8)
        }
    }

    static func appendDecimal(_ number: Int, to text: inout [UInt8]) {
        if number >= 10 { appendDecimal(number / 10, to: &text) }
        text.append(UInt8(ascii: "0") + UInt8(number % 10))
    }
}

/// A Swift value that can be bound as a statement parameter.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Substring: SQLBindable { public var sqlValue: SQLValue { .text(String(self)) } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .int(self) } }
extension Int32: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .double(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .bool(self) } }
extension UUID: SQLBindable { public var sqlValue: SQLValue { .uuid(self) } }
extension Date: SQLBindable { public var sqlValue: SQLValue { .date(self) } }
extension Array: SQLBindable where Element == UInt8 { public var sqlValue: SQLValue { .bytes(self) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }

/// A JSON document bound as `jsonb` in PostgreSQL and `TEXT` in SQLite.
public struct SQLJSON: SQLBindable {
    public var text: String
    public init(_ text: String) { self.text = text }
    public init(encoding value: some Encodable) throws {
        let data = try JSONEncoder.herald.encode(value)
        self.text = String(decoding: data, as: UTF8.self)
    }
    public var sqlValue: SQLValue { .json(text) }
}

extension SQLValue {
    /// Whether text holds U+0000 (memchr over native strings' contiguous UTF-8).
    static func hasNUL(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let start = bytes.baseAddress else { return false }
            return memchr(start, 0, bytes.count) != nil
        } ?? text.utf8.contains(0)
    }

    /// Refuses text that PostgreSQL cannot store (U+0000 in `text`, a `\u0000` escape in `jsonb`). Both stores check,
    /// so a value is accepted or refused the same way whichever store runs, and the client gets a 422, not a 500.
    static func checkStorable(_ values: [SQLValue]) throws {
        for value in values {
            switch value {
            case .text(let text) where hasNUL(text):
                throw HeraldError.unstorableText
            case .json(let text) where JSONText.containsEscapedNUL(text):
                throw HeraldError.unstorableText
            default:
                continue
            }
        }
    }
}

extension HeraldError {
    static let unstorableText = HeraldError(
        status: 422,
        slug: "unstorable-text",
        title: "Validation failed",
        detail: "A text value contains the NUL character (U+0000), which Herald cannot store. Remove it and send the request again.",
        errors: [FieldError(field: "(body)", message: "must not contain the NUL character (U+0000)")]
    )
}

enum JSONText {
    /// Whether JSON text has a `\u0000` escape inside a string (JSON cannot hold a raw NUL).
    static func containsEscapedNUL(_ text: String) -> Bool {
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "\\") else { continue }
            guard let escaped = utf8.next() else { return false }
            guard escaped == UInt8(ascii: "u") else { continue }  // `\\` or `\"`: the next byte starts afresh
            var digits: [UInt8] = []
            while digits.count < 4, let digit = utf8.next() { digits.append(digit) }
            if digits == Array("0000".utf8) { return true }
        }
        return false
    }
}

extension SQL {
    /// Rows as a derived table's body, to put in parentheses with a column list: `FROM (\(SQL.rows(rows))) AS
    /// v(c0, c1 …)`. PostgreSQL only: SQLite names no columns of a derived table. Keep to a few thousand values.
    public static func rows(_ rows: [[SQLValue]]) -> SQL {
        var sql = SQL(stringLiteral: "")
        sql.fragments = [.rows(rows)]
        return sql
    }

    /// `INSERT INTO table (columns) VALUES (…), (…) suffix`, split into as many statements as the stores' parameter
    /// limits need. For batch writers: one statement per few thousand rows instead of one per row.
    public static func insert(
        into table: Table, alias: String? = nil, columns: [String], rows: [[SQLValue]], suffix: SQL = "", maxParameters: Int = 30_000
    ) -> [SQL] {
        guard !rows.isEmpty, !columns.isEmpty else { return [] }
        let perStatement = max(1, maxParameters / columns.count)
        var statements: [SQL] = []
        var start = 0
        while start < rows.count {
            let end = min(start + perStatement, rows.count)
            var sql = SQL(stringLiteral: "INSERT INTO ")
            sql.fragments.append(.table(table))
            sql.fragments.append(.literal((alias.map { " AS \($0)" } ?? "") + " (" + columns.joined(separator: ", ") + ") "))
            let slice = Array(rows[start..<end])
            for row in slice { precondition(row.count == columns.count, "a row has \(row.count) values for \(columns.count) columns") }
            sql.fragments.append(.rows(slice))
            sql.fragments.append(contentsOf: suffix.fragments)
            statements.append(sql)
            start = end
        }
        return statements
    }

    /// `INSERT INTO table (columns) SELECT … FROM unnest(…)` of values built column by column, one binary array
    /// parameter per column: PostgreSQL only (SQLite takes ``insert(into:alias:columns:rows:suffix:maxParameters:)``).
    /// Saves building a row of ``SQLValue``s per row where rows come by the hundred thousand (raw beacon events).
    public static func insert(into table: Table, columns: [String], arrays: [SQLArrayColumn], suffix: SQL = "") -> SQL {
        precondition(columns.count == arrays.count && arrays.allSatisfy { $0.count == arrays[0].count }, "one array of equal length per column")
        var sql = SQL(stringLiteral: "INSERT INTO ")
        sql.fragments.append(.table(table))
        sql.fragments.append(.literal(" (" + columns.joined(separator: ", ") + ") "))
        sql.fragments.append(.arrays(arrays))
        sql.fragments.append(contentsOf: suffix.fragments)
        return sql
    }
}

/// One column of a PostgreSQL multi-row insert, appended value by value straight into PostgreSQL's binary array
/// format (`array_send`'s layout), whether the rows come as ``SQLValue``s (``SQL/Fragment/rows(_:)``) or column by
/// column (``SQL/insert(into:columns:arrays:suffix:)``). The header is kept current as values come, so the array is
/// bound as it stands, without a copy.
public struct SQLArrayColumn: Sendable {
    public let element: SQLArrayElement
    public private(set) var count = 0
    /// Whether a value is not NULL: a column of NULLs only renders as a plain `NULL`.
    public private(set) var hasValues = false
    /// Text with U+0000, which PostgreSQL cannot store: the caller must take the rows path, whose check refuses it.
    public private(set) var hasUnstorableText = false
    private var hasNull = false
    /// Dimensions (1), the has-nulls flag, the element type, the length and the lower bound (1), then the elements,
    /// each a 4-byte big-endian length (-1 for NULL) and its bytes.
    public private(set) var bytes: ByteBuffer

    public init(_ element: SQLArrayElement, capacity: Int, bytesPerValue: Int = 16) {
        self.element = element
        bytes = ByteBuffer()
        bytes.reserveCapacity(Self.headerSize + capacity * (4 + bytesPerValue))
        bytes.writeMultipleIntegers(Int32(1), Int32(0), element.oid, Int32(0), Int32(1))
    }

    private static let headerSize = 20

    public mutating func appendNull() {
        if !hasNull {
            hasNull = true
            bytes.setInteger(Int32(1), at: bytes.readerIndex + 4)
        }
        counted()
        bytes.writeInteger(Int32(-1))
    }

    public mutating func append(_ value: Int64?) {
        guard let value else { return appendNull() }
        precondition(element == .int8)
        appendFixed(value.bigEndian)
    }

    public mutating func append(_ value: Double?) {
        guard let value else { return appendNull() }
        precondition(element == .float8)
        appendFixed(value.bitPattern.bigEndian)
    }

    public mutating func append(_ value: UUID?) {
        guard let value else { return appendNull() }
        precondition(element == .uuid)
        appendFixed(value.uuid)
    }

    public mutating func append(_ value: String?) {
        guard var value else { return appendNull() }
        precondition(element == .text)
        counted()
        hasValues = true
        value.withUTF8 { utf8 in
            if let start = utf8.baseAddress, memchr(start, 0, utf8.count) != nil { hasUnstorableText = true }
            bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + utf8.count) { target in
                target.storeBytes(of: Int32(utf8.count).bigEndian, as: Int32.self)
                if !utf8.isEmpty { UnsafeMutableRawBufferPointer(rebasing: target[4...]).copyMemory(from: UnsafeRawBufferPointer(utf8)) }
                return 4 + utf8.count
            }
        }
    }

    /// Appends a value of the column's kind, or NULL; false for a value of another kind (nothing is appended).
    public mutating func append(_ value: SQLValue) -> Bool {
        switch (value, element) {
        case (.null, _): appendNull()
        case (.int(let number), .int8): append(number)
        case (.double(let number), .float8): append(number)
        case (.bool(let flag), .bool): appendFixed(UInt8(flag ? 1 : 0))
        case (.uuid(let uuid), .uuid): append(uuid)
        case (.text(let string), .text): append(string)
        case (.date(let date), .timestamptz): appendFixed((date.unixMicroseconds - SQL.postgresEpochMicroseconds).bigEndian)
        default: return false
        }
        return true
    }

    /// One more element: the header's length follows.
    private mutating func counted() {
        count += 1
        bytes.setInteger(Int32(count), at: bytes.readerIndex + 12)
    }

    /// A value of fixed size, already in network byte order: its length and bytes in one write.
    private mutating func appendFixed<T>(_ value: T) {
        counted()
        hasValues = true
        let size = MemoryLayout<T>.size
        bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + size) { target in
            target.storeBytes(of: Int32(size).bigEndian, as: Int32.self)
            withUnsafeBytes(of: value) { UnsafeMutableRawBufferPointer(rebasing: target[4..<(4 + size)]).copyMemory(from: $0) }
            return 4 + size
        }
    }
}

extension SQLValue {
    /// The binary array element a value of this kind goes in; nil for NULL and for what arrays do not take.
    var arrayElement: SQLArrayElement? {
        switch self {
        case .int: .int8
        case .double: .float8
        case .bool: .bool
        case .uuid: .uuid
        case .text: .text
        case .date: .timestamptz
        case .null, .json, .bytes, .binaryArray: nil
        }
    }
}
