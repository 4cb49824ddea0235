import NIOCore

/// A reply in the Redis serialization protocol, version 3 (RESP3), which also reads every RESP2 reply.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    /// An error reply (`-ERR …` or a blob error): the command failed; the connection is fine.
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case array([RESPValue])
    case null
    case double(Double)
    case boolean(Bool)
    /// A map reply, as ordered pairs.
    case map([(RESPValue, RESPValue)])
    case set([RESPValue])
    /// An out-of-band message (pub/sub, client-side caching invalidations), not the answer to a command.
    case push([RESPValue])
    case bigNumber(String)

    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        switch (lhs, rhs) {
        case (.simpleString(let a), .simpleString(let b)), (.error(let a), .error(let b)), (.bigNumber(let a), .bigNumber(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.bulkString(let a), .bulkString(let b)): a == b
        case (.array(let a), .array(let b)), (.set(let a), .set(let b)), (.push(let a), .push(let b)): a == b
        case (.null, .null): true
        case (.double(let a), .double(let b)): a == b
        case (.boolean(let a), .boolean(let b)): a == b
        case (.map(let a), .map(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// The reply as text: simple, bulk and verbatim strings, numbers.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        case .double(let value): String(value)
        default: nil
        }
    }

    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        case .boolean(let value): value ? 1 : 0
        default: nil
        }
    }

    public var array: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .push(let values): values
        // A RESP3 map read as RESP2 would have sent it: key, value, key, value.
        case .map(let pairs): pairs.flatMap { [$0.0, $0.1] }
        default: nil
        }
    }

    public var isNull: Bool { self == .null }
}

/// An error Redis answered with (`WRONGTYPE …`, `NOGROUP …`, a script's error).
public struct RedisReplyError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public var description: String { "Redis: \(message)" }

    public init(message: String) {
        self.message = message
    }
    /// The error's code: the first word (`WRONGTYPE`, `NOGROUP`, `BUSYGROUP`, `NOSCRIPT`).
    public var code: Substring { message.prefix { $0 != " " } }
}

/// Writes commands as RESP arrays of bulk strings.
enum RESPEncoder {
    static func encode(_ command: [RedisArgument], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(command.count))
        buffer.writeStaticString("\r\n")
        for argument in command {
            switch argument {
            case .bytes(let bytes):
                writeBulk(count: bytes.count, into: &buffer)
                buffer.writeBytes(bytes)
            case .string(let text):
                writeBulk(count: text.utf8.count, into: &buffer)
                buffer.writeString(text)
            case .integer(let value):
                let text = String(value)
                writeBulk(count: text.utf8.count, into: &buffer)
                buffer.writeString(text)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    private static func writeBulk(count: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "$"))
        buffer.writeString(String(count))
        buffer.writeStaticString("\r\n")
    }
}

/// One argument of a command. Values are always sent as bulk strings, so no input is ever parsed as syntax.
public enum RedisArgument: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case bytes([UInt8])
    case integer(Int64)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
}

/// Reads RESP3 replies from a stream of bytes, one complete value at a time.
struct RESPParser {
    struct Malformed: Error, CustomStringConvertible {
        let reason: String
        var description: String { "malformed reply from Redis: \(reason)" }
    }

    /// Nesting deeper than this is refused: no reply Herald asks for comes close, and it bounds the recursion.
    static let maxDepth = 32
    /// The largest bulk string accepted (Redis's own proto-max-bulk-len default is 512 MB).
    static let maxBulk = 512 * 1024 * 1024

    /// Parses one value from the start of `buffer`, moving its reader index past it; nil (and the buffer untouched)
    /// when the value is not complete yet.
    static func parse(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        var copy = buffer
        guard let value = try parseValue(&copy, depth: 0) else { return nil }
        buffer = copy
        return value
    }

    private static func line(_ buffer: inout ByteBuffer) throws -> String? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > 64 * 1024 { throw Malformed(reason: "a line longer than 64 KiB") }
            return nil
        }
        guard cr + 1 < view.endIndex else { return nil }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw Malformed(reason: "CR without LF") }
        let length = cr - view.startIndex
        let text = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    private static func count(_ text: String) throws -> Int {
        guard let value = Int(text), value >= -1 else { throw Malformed(reason: "bad length '\(text.prefix(20))'") }
        return value
    }

    private static func blob(_ buffer: inout ByteBuffer, length: Int) throws -> [UInt8]? {
        guard length <= maxBulk else { throw Malformed(reason: "a bulk string of \(length) bytes") }
        guard buffer.readableBytes >= length + 2 else { return nil }
        let bytes = buffer.readBytes(length: length) ?? []
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"), buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n") else {
            throw Malformed(reason: "a bulk string without its CRLF")
        }
        return bytes
    }

    private static func elements(_ buffer: inout ByteBuffer, count: Int, depth: Int) throws -> [RESPValue]? {
        var values: [RESPValue] = []
        values.reserveCapacity(min(count, 1024))
        for _ in 0..<count {
            guard let value = try parseValue(&buffer, depth: depth + 1) else { return nil }
            values.append(value)
        }
        return values
    }

    private static func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard depth < maxDepth else { throw Malformed(reason: "nested more than \(maxDepth) levels") }
        guard let marker = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let header = try line(&buffer) else { return nil }
        switch marker {
        case UInt8(ascii: "+"): return .simpleString(header)
        case UInt8(ascii: "-"): return .error(header)
        case UInt8(ascii: ":"):
            guard let value = Int64(header) else { throw Malformed(reason: "bad integer '\(header.prefix(30))'") }
            return .integer(value)
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try count(header)
            if length == -1 { return .null }
            guard let bytes = try blob(&buffer, length: length) else { return nil }
            if marker == UInt8(ascii: "!") { return .error(String(decoding: bytes, as: UTF8.self)) }
            // A verbatim string starts with its format (`txt:`).
            if marker == UInt8(ascii: "="), bytes.count >= 4 { return .bulkString(Array(bytes.dropFirst(4))) }
            return .bulkString(bytes)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            let length = try count(header)
            if length == -1 { return .null }
            guard let values = try elements(&buffer, count: length, depth: depth) else { return nil }
            switch marker {
            case UInt8(ascii: "~"): return .set(values)
            case UInt8(ascii: ">"): return .push(values)
            default: return .array(values)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            let length = try count(header)
            guard length >= 0 else { throw Malformed(reason: "a map of negative size") }
            guard let values = try elements(&buffer, count: length * 2, depth: depth) else { return nil }
            var pairs: [(RESPValue, RESPValue)] = []
            pairs.reserveCapacity(length)
            for index in stride(from: 0, to: values.count, by: 2) { pairs.append((values[index], values[index + 1])) }
            // An attribute describes the reply that follows it; Herald does not use attributes, so it reads past them.
            if marker == UInt8(ascii: "|") { return try parseValue(&buffer, depth: depth) }
            return .map(pairs)
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: "#"): return .boolean(header == "t")
        case UInt8(ascii: ","):
            switch header {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let value = Double(header) else { throw Malformed(reason: "bad double '\(header.prefix(30))'") }
                return .double(value)
            }
        case UInt8(ascii: "("): return .bigNumber(header)
        default:
            throw Malformed(reason: "unknown type byte \(marker)")
        }
    }
}
