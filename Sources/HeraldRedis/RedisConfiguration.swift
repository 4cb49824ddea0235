import Foundation
import NIOSSL

/// Where Redis is and how to talk to it, read from a URL:
///
/// `redis://[user:password@]host[:port][/database][?timeout=2&connect_timeout=5&pool=4&ca=/path/ca.pem&cert=…&key=…]`,
/// or `rediss://` for TLS (certificate verified against the system's CAs or `ca`; `cert` and `key` present a
/// client certificate for mutual TLS).
public struct RedisConfiguration: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    public var tls: TLSConfiguration?
    /// How long a command may wait for its reply.
    public var commandTimeout: Duration
    public var connectTimeout: Duration
    /// Connections shared by pipelined commands (blocking reads take their own).
    public var poolSize: Int
    public var clientName: String?

    public init(
        host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0,
        tls: TLSConfiguration? = nil, commandTimeout: Duration = .seconds(5), connectTimeout: Duration = .seconds(5), poolSize: Int = 4,
        clientName: String? = "herald"
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.poolSize = poolSize
        self.clientName = clientName
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let reason: String
        public var description: String { "HERALD_REDIS_URL: \(reason)" }
    }

    /// Parses a `redis://` or `rediss://` URL; the message of a refusal says what to fix.
    public init(url text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), scheme == "redis" || scheme == "rediss"
        else {
            throw Invalid(reason: "must be a URL like redis://:password@127.0.0.1:6379/0 (or rediss:// for TLS)")
        }
        guard let host = components.host, !host.isEmpty else { throw Invalid(reason: "names no host") }
        self.init(host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: components.port ?? 6379)
        if let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty { username = user }
        if let secret = components.percentEncodedPassword.flatMap({ $0.removingPercentEncoding }), !secret.isEmpty { password = secret }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let number = Int(path), (0...15).contains(number) else { throw Invalid(reason: "the database must be a number from 0 to 15") }
            database = number
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        func seconds(_ name: String) throws -> Duration? {
            guard let value = query[name] else { return nil }
            guard let number = Double(value), number > 0, number <= 300 else { throw Invalid(reason: "\(name) must be seconds from 0 to 300") }
            return .milliseconds(Int64(number * 1000))
        }
        if let value = try seconds("timeout") { commandTimeout = value }
        if let value = try seconds("connect_timeout") { connectTimeout = value }
        if let value = query["pool"] {
            guard let number = Int(value), (1...64).contains(number) else {
                throw Invalid(reason: "pool must be a number of connections from 1 to 64")
            }
            poolSize = number
        }
        if scheme == "rediss" {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let ca = query["ca"] {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                } catch {
                    throw Invalid(reason: "cannot read the CA certificates in \(ca): \(error)")
                }
            }
            switch (query["cert"], query["key"]) {
            case (let cert?, let key?):
                do {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch {
                    throw Invalid(reason: "cannot read the client certificate \(cert) or its key \(key): \(error)")
                }
            case (nil, nil): break
            default: throw Invalid(reason: "cert and key go together")
            }
            self.tls = tls
        } else if query["ca"] != nil || query["cert"] != nil {
            throw Invalid(reason: "ca, cert and key need rediss:// (TLS)")
        }
    }

    /// The address without its password, for logs.
    public var description: String {
        "\(tls == nil ? "redis" : "rediss")://\(username.map { "\($0)@" } ?? (password == nil ? "" : ":***@"))\(host):\(port)/\(database)"
    }
}
