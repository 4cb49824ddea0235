import AsyncHTTPClient
import Foundation
import HeraldCore

/// Where archives go, read from one URL setting:
///
/// - `file:///var/lib/herald/archive` or a plain path (`/var/lib/herald/archive`): a directory.
/// - `s3://bucket/optional/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&storageClass=GLACIER`: a bucket, with
///   credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`, and the region
///   from `region=`, `AWS_REGION` or `AWS_DEFAULT_REGION`. Options: `region`, `endpoint` (a non-AWS service, addressed
///   path-style), `storageClass` (default `STANDARD`), `addressing` (`path` or `virtual` to override the default).
public enum ObjectStoreConfiguration: Sendable, Equatable, CustomStringConvertible {
    /// Files under a directory.
    case directory(path: String)
    /// Objects in an S3-compatible bucket.
    case s3(S3Configuration)

    /// Reads a store URL; `environment` supplies credentials and the default region.
    ///
    /// - Throws: ``ObjectStoreError/invalidConfiguration(_:)`` naming what is wrong. The message never holds a secret.
    public static func parse(_ url: String, environment: [String: String]) throws -> ObjectStoreConfiguration {
        let text = url.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw invalid("the archive location is empty; give a directory path, file:// or s3:// URL") }
        guard !text.containsControlCharacters else { throw invalid("the archive location contains a control character") }
        guard let schemeEnd = text.range(of: "://") else {
            return .directory(path: text)
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        switch scheme {
        case "file":
            return try parseFile(text)
        case "s3":
            return .s3(try parseS3(text, environment: environment))
        default:
            throw invalid("unsupported scheme '\(scheme)://' in the archive location; use a path, file:// or s3://")
        }
    }

    /// Builds the store. The HTTP client serves S3 only, and stays the caller's to shut down.
    public func makeStore(httpClient: HTTPClient) -> any ObjectStore {
        switch self {
        case .directory(let path): DirectoryObjectStore(root: path)
        case .s3(let configuration): S3ObjectStore(configuration: configuration, httpClient: httpClient)
        }
    }

    /// For logs: no credentials.
    public var description: String {
        switch self {
        case .directory(let path): "directory \(path)"
        case .s3(let configuration): configuration.description
        }
    }

    // MARK: Parsing

    private static func invalid(_ message: String) -> ObjectStoreError { .invalidConfiguration(message) }

    private static func parseFile(_ text: String) throws -> ObjectStoreConfiguration {
        guard let components = URLComponents(string: text) else { throw invalid("'\(text)' is not a valid file:// URL") }
        let host = components.host ?? ""
        guard host.isEmpty || host == "localhost" else {
            throw invalid("file:// URLs name a local path; '\(host)' is a host (write file:///path, with three slashes)")
        }
        guard components.query == nil, components.fragment == nil else {
            throw invalid("a file:// URL takes no query or fragment")
        }
        let path = components.path
        guard path.hasPrefix("/"), path.count > 1 else { throw invalid("the file:// URL has no absolute path") }
        guard !path.contains("\0") else { throw invalid("the file:// path contains NUL") }
        return .directory(path: path)
    }

    private static func parseS3(_ text: String, environment: [String: String]) throws -> S3Configuration {
        guard let components = URLComponents(string: text) else { throw invalid("'\(text)' is not a valid s3:// URL") }
        guard components.user == nil, components.password == nil else {
            throw invalid("credentials do not belong in the s3:// URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        guard components.port == nil else { throw invalid("an s3:// URL names a bucket, not host:port; use endpoint= for the service") }
        guard components.fragment == nil else { throw invalid("an s3:// URL takes no fragment") }
        let bucket = components.host ?? ""
        try validateBucket(bucket)

        var prefix = components.path
        while prefix.hasPrefix("/") { prefix.removeFirst() }
        while prefix.hasSuffix("/") { prefix.removeLast() }
        if !prefix.isEmpty {
            do {
                try ObjectKey.validate(prefix)
            } catch let error as ObjectStoreError {
                guard case .invalidKey(_, let reason) = error else { throw error }
                throw invalid("the prefix '\(prefix)' in the s3:// URL is not usable: \(reason)")
            }
        }

        var options: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["region", "endpoint", "storageClass", "addressing"].contains(item.name) else {
                throw invalid("unknown option '\(item.name)' in the s3:// URL; known: region, endpoint, storageClass, addressing")
            }
            guard options[item.name] == nil else { throw invalid("option '\(item.name)' appears twice in the s3:// URL") }
            options[item.name] = item.value ?? ""
        }

        let endpoint = try options["endpoint"].map(parseEndpoint)

        let region =
            nonEmpty(options["region"]) ?? nonEmpty(environment["AWS_REGION"]) ?? nonEmpty(environment["AWS_DEFAULT_REGION"])
            // Most S3-compatible services ignore the region but still need one to sign.
            ?? (endpoint != nil && endpoint?.isAWS == false ? "us-east-1" : nil)
        guard let region else {
            throw invalid("no region for bucket '\(bucket)'; add region= to the s3:// URL or set AWS_REGION")
        }
        guard region.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }),
            (1...32).contains(region.utf8.count)
        else {
            throw invalid("region '\(region)' is not a region name such as us-east-1")
        }

        var storageClass = StorageClass.standard
        if let value = options["storageClass"] {
            guard let known = StorageClass.known.first(where: { $0.rawValue == value.uppercased() }) else {
                let names = StorageClass.known.map(\.rawValue).joined(separator: ", ")
                throw invalid("storageClass '\(value)' is not one of \(names)")
            }
            storageClass = known
        }

        var addressing = S3Addressing.automatic
        if let value = options["addressing"] {
            guard let parsed = S3Addressing(rawValue: value.lowercased()), parsed != .automatic else {
                throw invalid("addressing '\(value)' is neither 'path' nor 'virtual'")
            }
            addressing = parsed
        }

        guard let accessKey = nonEmpty(environment["AWS_ACCESS_KEY_ID"]) else {
            throw invalid("AWS_ACCESS_KEY_ID is not set; the s3:// archive needs an access key")
        }
        guard let secret = nonEmpty(environment["AWS_SECRET_ACCESS_KEY"]) else {
            throw invalid("AWS_SECRET_ACCESS_KEY is not set; the s3:// archive needs the access key's secret")
        }
        let credentials = AWSCredentials(
            accessKeyID: accessKey,
            secretAccessKey: secret,
            sessionToken: nonEmpty(environment["AWS_SESSION_TOKEN"])
        )
        return S3Configuration(
            bucket: bucket,
            prefix: prefix,
            region: region,
            endpoint: endpoint,
            addressing: addressing,
            storageClass: storageClass,
            credentials: credentials
        )
    }

    /// S3's bucket naming rules: 3–63 characters of lower-case letters, digits, `.` and `-`, starting and ending with a
    /// letter or digit.
    private static func validateBucket(_ bucket: String) throws {
        guard !bucket.isEmpty else { throw invalid("the s3:// URL names no bucket (s3://bucket/prefix)") }
        let bytes = Array(bucket.utf8)
        func isAlphanumeric(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte) }
        guard (3...63).contains(bytes.count),
            bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }),
            let first = bytes.first, isAlphanumeric(first), let last = bytes.last, isAlphanumeric(last),
            !bucket.contains("..")
        else {
            throw invalid(
                "'\(bucket)' is not a valid bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, "
                    + "starting and ending with a letter or digit"
            )
        }
    }

    static func parseEndpoint(_ value: String) throws -> S3Endpoint {
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else {
            throw invalid("endpoint '\(value)' is not a URL such as http://127.0.0.1:9000")
        }
        guard scheme == "http" || scheme == "https" else { throw invalid("endpoint '\(value)' must be http:// or https://") }
        guard components.user == nil, components.password == nil else {
            throw invalid("the endpoint URL must not carry credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil else {
            throw invalid("endpoint '\(value)' must be scheme://host[:port] only, without a path or query")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw invalid("endpoint '\(value)' has an invalid port")
        }
        // URLComponents keeps the brackets of an IPv6 literal.
        var plainHost = host
        if plainHost.hasPrefix("["), plainHost.hasSuffix("]") {
            plainHost = String(plainHost.dropFirst().dropLast())
        }
        return S3Endpoint(scheme: scheme, host: plainHost, port: components.port)
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }
}
