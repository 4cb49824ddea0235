import AsyncHTTPClient
import Foundation
import HeraldCore
import NIOCore
import NIOHTTP1

/// Where raw events are shipped and reports run when ClickHouse is configured (HERALD_CLICKHOUSE_*).
public struct ClickHouseConfiguration: Sendable, Equatable {
    /// `scheme://host:port[/path]` without credentials: safe to show in logs and errors.
    public var endpoint: String
    public var user: String?
    public var password: String?
    /// The database Herald creates and uses (`herald` by default).
    public var database: String
    /// Seconds between inserts while fewer than `batchSize` rows wait (about one insert a second).
    public var flushInterval: TimeInterval
    /// The most raw events one insert carries.
    public var batchSize: Int
    /// The time limit of one query (reports, schema).
    public var queryTimeout: TimeInterval
    /// The time limit of one insert.
    public var insertTimeout: TimeInterval

    public init(
        endpoint: String, user: String? = nil, password: String? = nil, database: String = "herald", flushInterval: TimeInterval = 1,
        batchSize: Int = 50_000, queryTimeout: TimeInterval = 60, insertTimeout: TimeInterval = 60
    ) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.flushInterval = flushInterval
        self.batchSize = batchSize
        self.queryTimeout = queryTimeout
        self.insertTimeout = insertTimeout
    }

    /// Reads `http://user:password@host:8123` (user and password optional, percent-encoded when they hold special
    /// characters). Errors never repeat the URL, which may hold a password.
    public static func parse(url text: String, database: String? = nil, flushInterval: String? = nil) throws -> ClickHouseConfiguration {
        let example = "such as http://user:password@127.0.0.1:8123"
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = components.host, !host.isEmpty
        else {
            throw ClickHouseError.configuration("HERALD_CLICKHOUSE_URL must be an http:// or https:// URL \(example)")
        }
        if components.query != nil || components.fragment != nil {
            throw ClickHouseError.configuration(
                "HERALD_CLICKHOUSE_URL must not have a query or fragment (\(example)); the database is HERALD_CLICKHOUSE_DATABASE")
        }
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var endpoint = "\(scheme)://\(hostPart)"
        if let port = components.port { endpoint += ":\(port)" }
        let path = components.percentEncodedPath
        if !path.isEmpty, path != "/" { endpoint += path.hasSuffix("/") ? String(path.dropLast()) : path }
        var configuration = ClickHouseConfiguration(
            endpoint: endpoint, user: components.user.flatMap { $0.isEmpty ? nil : $0 }, password: components.password
        )
        if let database, !database.isEmpty {
            guard Self.isIdentifier(database) else {
                throw ClickHouseError.configuration(
                    "HERALD_CLICKHOUSE_DATABASE must be a name of letters, digits and underscores, not starting with a digit (default herald)")
            }
            configuration.database = database
        }
        if let flushInterval, !flushInterval.isEmpty {
            guard let seconds = Double(flushInterval), seconds >= 0.05, seconds <= 3600 else {
                throw ClickHouseError.configuration("HERALD_CLICKHOUSE_FLUSH_INTERVAL must be a number of seconds from 0.05 to 3600 (default 1)")
            }
            configuration.flushInterval = seconds
        }
        return configuration
    }

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(0x30...0x39).contains(first), name.utf8.count <= 64 else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }

    /// For logs: the endpoint and database, never the credentials.
    public var description: String { "\(endpoint) (database \(database))" }
}

/// What went wrong talking to ClickHouse, as a message a person can act on. Never holds credentials.
public struct ClickHouseError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// A setting is wrong.
        case configuration
        /// No answer: refused, dropped, timed out.
        case unreachable
        /// ClickHouse answered with an exception (`code` is its error code when it said one).
        case server(status: Int, code: Int?)
        /// The answer could not be read.
        case badAnswer
    }

    public var kind: Kind
    public var description: String

    static func configuration(_ message: String) -> ClickHouseError { ClickHouseError(kind: .configuration, description: message) }
}

/// A small client for ClickHouse's HTTP interface: statements as POST bodies, inserts as `INSERT … FORMAT
/// JSONEachRow` with NDJSON bodies, results read as JSONEachRow. Credentials go in `X-ClickHouse-User` and
/// `X-ClickHouse-Key` headers, never in URLs, logs or errors.
struct ClickHouseClient: Sendable {
    let configuration: ClickHouseConfiguration
    let httpClient: HTTPClient
    /// The largest answer read into memory.
    static let maximumAnswer = 256 << 20

    init(configuration: ClickHouseConfiguration, httpClient: HTTPClient = Self.sharedHTTPClient) {
        self.configuration = configuration
        self.httpClient = httpClient
    }

    /// The client every ClickHouse call goes through: process-wide like `HTTPClient.shared` (never shut down), but it
    /// gives up connecting after 3 s where the shared one waits 90 s, so a ClickHouse that is down fails a report with
    /// a 503 at once and the shipper backs off instead of hanging. Time limits per request come from the deadlines.
    static let sharedHTTPClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: HTTPClient.Configuration.Timeout(connect: .seconds(3)),
            connectionPool: HTTPClient.Configuration.ConnectionPool(idleTimeout: .seconds(2)), decompression: .disabled
        )
    )

    /// Runs a statement without rows (DDL). `useDatabase` false for statements that create the database itself.
    /// Whether the server answers a query (the database need not exist yet): for readiness.
    func ping() async throws {
        try await execute("SELECT 1", useDatabase: false)
    }

    func execute(_ statement: String, useDatabase: Bool = true) async throws {
        _ = try await send(
            operation: "statement", body: ByteBuffer(string: statement), parameters: [], useDatabase: useDatabase,
            timeout: configuration.queryTimeout
        )
    }

    /// Runs a SELECT and returns its rows (`FORMAT JSONEachRow` is appended).
    func select(_ query: String) async throws -> [JSONNode] {
        let answer = try await send(
            operation: "query", body: ByteBuffer(string: query + "\nFORMAT JSONEachRow"),
            parameters: [
                ("output_format_json_quote_64bit_integers", "0"), ("wait_end_of_query", "1"),
                ("max_execution_time", String(Int(configuration.queryTimeout.rounded(.up)))),
            ],
            useDatabase: true, timeout: configuration.queryTimeout
        )
        return try Self.rows(answer)
    }

    /// Inserts NDJSON rows into `table` in one statement. `queryId` names the insert so that, after a lost answer,
    /// the caller can wait until it no longer runs before looking at what committed.
    func insert(into table: String, ndjson: ByteBuffer, queryId: String) async throws {
        _ = try await send(
            operation: "insert into \(table)", body: ndjson,
            parameters: [
                ("query", "INSERT INTO \(table) FORMAT JSONEachRow"), ("query_id", queryId),
                // One block, so one part per partition: the insert commits whole or not at all.
                ("max_insert_block_size", String(max(1_048_576, configuration.batchSize + 1))),
                ("input_format_skip_unknown_fields", "0"),
            ],
            useDatabase: true, timeout: configuration.insertTimeout
        )
    }

    /// How many queries whose id starts with `prefix` are running on the server.
    func runningQueries(prefix: String) async throws -> Int {
        let rows = try await select("SELECT count() AS n FROM system.processes WHERE startsWith(query_id, \(ClickHouseSQL.string(prefix)))")
        return Int(rows.first?["n"].flatMap(ClickHouseSQL.int64) ?? 0)
    }

    private func send(
        operation: String, body: ByteBuffer, parameters: [(String, String)], useDatabase: Bool, timeout: TimeInterval
    ) async throws -> ByteBuffer {
        let all = (useDatabase ? [("database", configuration.database)] : []) + parameters
        let url = configuration.endpoint + "/?" + all.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        if let user = configuration.user { request.headers.add(name: "X-ClickHouse-User", value: user) }
        if let password = configuration.password { request.headers.add(name: "X-ClickHouse-Key", value: password) }
        request.body = .bytes(body)
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await httpClient.execute(request, deadline: .now() + .milliseconds(Int64(timeout * 1000)))
            answer = try await response.body.collect(upTo: Self.maximumAnswer)
        } catch is CancellationError {
            throw CancellationError()
        } catch is NIOTooManyBytesError {
            throw ClickHouseError(
                kind: .badAnswer, description: "ClickHouse's answer to a \(operation) is larger than \(Self.maximumAnswer >> 20) MB")
        } catch {
            throw ClickHouseError(
                kind: .unreachable,
                description: "ClickHouse at \(configuration.endpoint) did not answer a \(operation): \(Self.transport(error))")
        }
        guard response.status == .ok else {
            let (code, message) = Self.exception(String(buffer: answer))
            throw ClickHouseError(
                kind: .server(status: Int(response.status.code), code: code),
                description: "ClickHouse at \(configuration.endpoint) refused a \(operation) (HTTP \(response.status.code)"
                    + (code.map { ", code \($0)" } ?? "") + "): " + message
            )
        }
        return answer
    }

    /// A transport error in words, without anything from the request.
    static func transport(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "timed out"
            case .connectTimeout: return "connecting timed out"
            case .remoteConnectionClosed: return "the connection was closed"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }

    /// `Code: 60, e.displayText() = DB::Exception: Table x doesn't exist., e.what() = DB::Exception` → (60, `Table x doesn't exist.`).
    static func exception(_ text: String) -> (code: Int?, message: String) {
        var message = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var code: Int?
        if message.hasPrefix("Code: "), let comma = message.firstIndex(of: ",") {
            code = Int(message[message.index(message.startIndex, offsetBy: 6)..<comma])
        }
        if let start = message.range(of: "e.displayText() = ") {
            message = String(message[start.upperBound...])
            if let end = message.range(of: ", e.what() = ", options: .backwards) { message = String(message[..<end.lowerBound]) }
        }
        if message.hasPrefix("DB::Exception: ") { message = String(message.dropFirst("DB::Exception: ".count)) }
        if message.isEmpty { message = "no message" }
        return (code, message.count > 600 ? String(message.prefix(600)) + "…" : message)
    }

    static func rows(_ answer: ByteBuffer) throws -> [JSONNode] {
        var rows: [JSONNode] = []
        let bytes = answer.readableBytesView
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            if end > start {
                do {
                    rows.append(try JSONReader.read(bytes[start..<end]))
                } catch {
                    throw ClickHouseError(kind: .badAnswer, description: "ClickHouse answered with a row that is not JSON: \(error)")
                }
            }
            start = end < bytes.endIndex ? bytes.index(after: end) : end
        }
        return rows
    }

    /// Percent-encodes a URL query value (everything but unreserved characters).
    static func encode(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }
}

/// Literals and values of ClickHouse SQL (18.16 has no query parameters over HTTP, so values are written as escaped
/// literals; everything written here is a UUID, an integer or an escaped string).
enum ClickHouseSQL {
    /// A single-quoted string literal: quotes, backslashes and control characters escaped.
    static func string(_ text: String) -> String {
        var result = "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "'": result += "\\'"
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += String(format: "\\x%02X", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "'"
    }

    static func uuid(_ id: UUID) -> String { "toUUID('\(id.lowercased)')" }

    /// An integer from a JSON answer (numbers, or 64-bit integers quoted as strings).
    static func int64(_ node: JSONNode) -> Int64? {
        switch node {
        case .number(let value): value.rounded() == value && abs(value) < 9.2e18 ? Int64(value) : nil
        case .string(let text): Int64(text)
        default: nil
        }
    }

    static func double(_ node: JSONNode) -> Double? {
        switch node {
        case .number(let value): value
        case .string(let text): Double(text)
        default: nil
        }
    }

    static func uuid(_ node: JSONNode) -> UUID? { node.string.flatMap { UUID(text: $0) } }
}
