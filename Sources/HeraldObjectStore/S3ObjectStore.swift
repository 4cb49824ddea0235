import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Where an S3-compatible service listens, when it is not AWS itself (MinIO, moto, Ceph, R2…).
public struct S3Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// `http` or `https`.
    public var scheme: String
    /// Host name or IP address (IPv6 without brackets).
    public var host: String
    /// The port, when not the scheme's default.
    public var port: Int?

    public init(scheme: String, host: String, port: Int? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// The `Host` header value: the port only when it is not the scheme's default.
    var authority: String {
        let host = host.contains(":") ? "[\(host)]" : host
        guard let port, port != (scheme == "https" ? 443 : 80) else { return host }
        return "\(host):\(port)"
    }

    /// Whether this is one of AWS's own S3 endpoints, which take virtual-hosted-style requests.
    var isAWS: Bool {
        let host = host.lowercased()
        return host.hasSuffix(".amazonaws.com") || host.hasSuffix(".amazonaws.com.cn")
    }

    public var description: String { "\(scheme)://\(authority)" }
}

/// How the bucket appears in request URLs.
public enum S3Addressing: String, Sendable, Equatable {
    /// Virtual-hosted style on AWS's own endpoints (and for buckets without dots), path style elsewhere.
    case automatic
    /// `{endpoint}/{bucket}/{key}`: what MinIO and moto need.
    case path
    /// `{bucket}.{endpoint}/{key}`.
    case virtualHosted = "virtual"
}

/// Everything ``S3ObjectStore`` needs to reach a bucket.
public struct S3Configuration: Sendable, Equatable, CustomStringConvertible {
    /// The bucket name.
    public var bucket: String
    /// A key prefix inside the bucket, without leading or trailing `/`; empty for the bucket's root.
    public var prefix: String
    /// The signing region (`us-east-1`).
    public var region: String
    /// A non-AWS service; nil for AWS S3 in ``region``.
    public var endpoint: S3Endpoint?
    /// Path or virtual-hosted style.
    public var addressing: S3Addressing
    /// The storage class that ``S3ObjectStore/put(key:bytes:contentType:)`` writes with.
    public var storageClass: StorageClass
    /// The access key.
    public var credentials: AWSCredentials

    public init(
        bucket: String,
        prefix: String = "",
        region: String,
        endpoint: S3Endpoint? = nil,
        addressing: S3Addressing = .automatic,
        storageClass: StorageClass = .standard,
        credentials: AWSCredentials
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.endpoint = endpoint
        self.addressing = addressing
        self.storageClass = storageClass
        self.credentials = credentials
    }

    /// The bucket, prefix and endpoint, without credentials.
    public var description: String {
        let location = prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)"
        let endpoint = endpoint?.description ?? "AWS"
        return "\(location) at \(endpoint) (region \(region), storage class \(storageClass.rawValue))"
    }

    /// Whether requests name the bucket in the host rather than the path.
    var usesVirtualHost: Bool {
        switch addressing {
        case .path: false
        case .virtualHosted: true
        // Dotted bucket names do not match AWS's wildcard certificate, so they stay in the path.
        case .automatic: (endpoint?.isAWS ?? true) && !bucket.contains(".")
        }
    }

    /// The service endpoint requests go to before the bucket is added.
    var serviceEndpoint: S3Endpoint {
        endpoint ?? S3Endpoint(scheme: "https", host: "s3.\(region).amazonaws.com")
    }
}

/// An ``ObjectStore`` in an S3-compatible bucket, signed with AWS Signature Version 4.
///
/// Every request is retried on 5xx answers, 429 and transport failures (timeouts, refused or dropped connections),
/// with exponential backoff: all of them are idempotent, restore included (a repeated restore is accepted or answered
/// `RestoreAlreadyInProgress`).
public struct S3ObjectStore: ObjectStore {
    /// Bucket, prefix, region and credentials.
    public let configuration: S3Configuration
    /// The client requests go through; owned by the caller.
    public let httpClient: HTTPClient
    /// The time limit of one attempt, response body included.
    public var requestTimeout: TimeAmount
    /// Attempts per operation, the first included.
    public var maxAttempts: Int
    /// The largest object ``get(key:)`` reads into memory.
    public var maximumObjectSize: Int
    /// The Glacier retrieval tier of restores: `Standard` (3–5 hours for GLACIER), `Bulk` or `Expedited`.
    public var restoreTier: String

    let signer: SigV4Signer
    /// Keys per ListObjectsV2 page for ``list(prefix:)``.
    static let defaultPageSize = 1000
    /// The most that a non-object response (errors, lists) may be.
    static let maximumDocumentSize = 16 << 20

    public init(
        configuration: S3Configuration,
        httpClient: HTTPClient,
        requestTimeout: TimeAmount = .seconds(60),
        maxAttempts: Int = 4,
        maximumObjectSize: Int = 1 << 30,
        restoreTier: String = "Standard"
    ) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.requestTimeout = requestTimeout
        self.maxAttempts = max(1, maxAttempts)
        self.maximumObjectSize = maximumObjectSize
        self.restoreTier = restoreTier
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
    }

    public var describe: String { configuration.description }

    // MARK: ObjectStore

    public func put(key: String, bytes: [UInt8], contentType: String) async throws {
        try await put(key: key, bytes: bytes, contentType: contentType, storageClass: configuration.storageClass)
    }

    /// Stores `bytes` under `key` in `storageClass`, whatever the configured class.
    public func put(key: String, bytes: [UInt8], contentType: String, storageClass: StorageClass) async throws {
        try ObjectKey.validate(key)
        var headers = [(name: "content-type", value: contentType)]
        // STANDARD is the default; leaving it out keeps servers that know no other class (MinIO) happy.
        if storageClass != .standard {
            headers.append(("x-amz-storage-class", storageClass.rawValue))
        }
        let operation = "PUT \(location(of: key))"
        let response = try await send(operation: operation, method: .PUT, key: fullKey(key), headers: headers, body: bytes)
        guard (200..<300).contains(response.status) else { throw failure(operation, response) }
    }

    public func get(key: String) async throws -> [UInt8] {
        try ObjectKey.validate(key)
        let operation = "GET \(location(of: key))"
        let response = try await send(operation: operation, method: .GET, key: fullKey(key), bodyLimit: maximumObjectSize, reportKey: key)
        switch response.status {
        case 200..<300:
            return response.body
        case 404 where response.error.code == "NoSuchKey" || response.error.code == nil:
            throw ObjectStoreError.notFound(key: key)
        case 403 where response.error.code == "InvalidObjectState":
            throw ObjectStoreError.archived(key: key, storageClass: response.error.storageClass.map { StorageClass(rawValue: $0) })
        default:
            throw failure(operation, response)
        }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        try await list(prefix: prefix, pageSize: Self.defaultPageSize)
    }

    /// Every object whose key starts with `prefix`, fetched `pageSize` keys per request.
    public func list(prefix: String, pageSize: Int) async throws -> [ObjectInfo] {
        try ObjectKey.validatePrefix(prefix)
        var objects: [ObjectInfo] = []
        var token: String?
        repeat {
            let page = try await listPage(prefix: prefix, continuationToken: token, maxKeys: pageSize)
            objects += page.objects
            token = page.nextContinuationToken
        } while token != nil
        return objects
    }

    public func delete(key: String) async throws {
        try ObjectKey.validate(key)
        let operation = "DELETE \(location(of: key))"
        let response = try await send(operation: operation, method: .DELETE, key: fullKey(key))
        // S3 answers 204 whether or not the key existed; some servers say 404.
        guard (200..<300).contains(response.status) || (response.status == 404 && response.error.code != "NoSuchBucket") else {
            throw failure(operation, response)
        }
    }

    public func requestRestore(key: String, days: Int) async throws {
        try ObjectKey.validate(key)
        guard days >= 1 else { throw ObjectStoreError.invalidConfiguration("a restore must last at least one day, not \(days)") }
        let operation = "RESTORE \(location(of: key))"
        let response = try await send(
            operation: operation,
            method: .POST,
            key: fullKey(key),
            query: [("restore", "")],
            headers: [("content-type", "application/xml")],
            body: S3XMLBody.restoreRequest(days: days, tier: restoreTier)
        )
        switch response.status {
        case 200..<300:
            return
        // Restoring: the first request is still running.
        case 409 where response.error.code == "RestoreAlreadyInProgress":
            return
        // Not in an archive class: readable as it is.
        case 403 where response.error.code == "InvalidObjectState":
            return
        case 404 where response.error.code == "NoSuchKey" || response.error.code == nil:
            throw ObjectStoreError.notFound(key: key)
        default:
            throw failure(operation, response)
        }
    }

    /// Creates the bucket (in ``S3Configuration/region``); succeeds when this account owns it already.
    public func createBucket() async throws {
        let operation = "CREATE BUCKET s3://\(configuration.bucket)"
        let response = try await send(
            operation: operation,
            method: .PUT,
            key: nil,
            body: S3XMLBody.createBucket(region: configuration.region)
        )
        guard (200..<300).contains(response.status) || response.error.code == "BucketAlreadyOwnedByYou" else {
            throw failure(operation, response)
        }
    }

    // MARK: Listing

    /// One ListObjectsV2 page, keys relative to the configured prefix.
    func listPage(prefix: String, continuationToken: String?, maxKeys: Int) async throws -> ListObjectsPage {
        let basePrefix = configuration.prefix.isEmpty ? "" : configuration.prefix + "/"
        var query: [(String, String)] = [("list-type", "2"), ("max-keys", String(max(1, min(maxKeys, 1000))))]
        let fullPrefix = basePrefix + prefix
        if !fullPrefix.isEmpty { query.append(("prefix", fullPrefix)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let operation = "LIST s3://\(configuration.bucket)/\(fullPrefix)"
        let response = try await send(operation: operation, method: .GET, key: nil, query: query)
        guard (200..<300).contains(response.status) else { throw failure(operation, response) }
        var page: ListObjectsPage
        do throws(ListObjectsPage.ParseError) {
            page = try ListObjectsPage(response.body)
        } catch {
            throw ObjectStoreError.invalidResponse(operation: operation, reason: error.reason)
        }
        page.objects = page.objects.compactMap { object in
            // A server that ignores the prefix must not hand out keys outside it.
            guard object.key.utf8.starts(with: basePrefix.utf8) else { return nil }
            var object = object
            object.key = String(decoding: object.key.utf8.dropFirst(basePrefix.utf8.count), as: UTF8.self)
            return object
        }
        return page
    }

    // MARK: Requests

    /// The key inside the bucket.
    func fullKey(_ key: String) -> String {
        configuration.prefix.isEmpty ? key : configuration.prefix + "/" + key
    }

    private func location(of key: String) -> String { "s3://\(configuration.bucket)/\(fullKey(key))" }

    /// A response with its body read, and its S3 error document parsed when it is not a success.
    struct Response {
        var status: Int
        var body: [UInt8]
        var error: S3ErrorBody
    }

    /// The scheme, `Host` header and encoded path of a request for `key` (nil: the bucket itself).
    func address(key: String?) -> (scheme: String, authority: String, path: String) {
        let endpoint = configuration.serviceEndpoint
        let encodedKey = key.map { SigV4Signer.uriEncode($0, encodeSlash: false) }
        if configuration.usesVirtualHost {
            var host = endpoint
            host.host = "\(configuration.bucket).\(endpoint.host)"
            return (endpoint.scheme, host.authority, "/" + (encodedKey ?? ""))
        }
        return (endpoint.scheme, endpoint.authority, "/\(configuration.bucket)" + (encodedKey.map { "/" + $0 } ?? ""))
    }

    /// Signs and sends a request, retrying transport failures and 5xx answers; returns the last answer.
    func send(
        operation: String,
        method: HTTPMethod,
        key: String?,
        query: [(String, String)] = [],
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        bodyLimit: Int = maximumDocumentSize,
        reportKey: String? = nil
    ) async throws -> Response {
        let (scheme, authority, path) = address(key: key)
        // Encoded as signed; a parameter without a value goes as a bare name (`?restore`), which S3 signs as `restore=`.
        let queryString =
            query
            .map { name, value in
                let name = SigV4Signer.uriEncode(name, encodeSlash: true)
                return value.isEmpty ? name : name + "=" + SigV4Signer.uriEncode(value, encodeSlash: true)
            }
            .joined(separator: "&")
        let url = "\(scheme)://\(authority)\(path)" + (queryString.isEmpty ? "" : "?" + queryString)
        let payloadHash = SigV4Signer.payloadHash(body)
        let bodyBuffer = ByteBuffer(bytes: body)

        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: url)
            request.method = method
            let signed = signer.sign(
                SigV4Signer.Request(
                    method: method.rawValue,
                    path: path,
                    query: query.map { (name: $0.0, value: $0.1) },
                    headers: [("host", authority), ("x-amz-content-sha256", payloadHash)] + headers,
                    payloadHash: payloadHash
                ),
                date: Date()
            )
            for (name, value) in signed {
                request.headers.add(name: name, value: value)
            }
            if !body.isEmpty || method == .PUT || method == .POST {
                request.body = .bytes(bodyBuffer)
            }

            let outcome: Result<Response, any Error>
            do {
                let response = try await httpClient.execute(request, deadline: .now() + requestTimeout)
                let collected: ByteBuffer
                do {
                    collected = try await response.body.collect(upTo: bodyLimit)
                } catch is NIOTooManyBytesError {
                    throw ObjectStoreError.tooLarge(key: reportKey ?? key ?? configuration.bucket, limit: bodyLimit)
                }
                let bytes = Array(buffer: collected)
                let status = Int(response.status.code)
                let error = (200..<300).contains(status) ? S3ErrorBody([]) : S3ErrorBody(bytes)
                outcome = .success(Response(status: status, body: bytes, error: error))
            } catch let error as ObjectStoreError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcome = .failure(error)
            }

            switch outcome {
            case .success(let response) where response.status >= 500 || response.status == 429:
                if attempt >= maxAttempts { return response }
            case .success(let response):
                return response
            case .failure(let error):
                guard Self.isRetryable(error) else {
                    throw ObjectStoreError.unavailable(operation: operation, attempts: attempt, reason: "\(error)")
                }
                if attempt >= maxAttempts {
                    throw ObjectStoreError.unavailable(operation: operation, attempts: attempt, reason: "\(error)")
                }
            }
            try await Task.sleep(for: Self.backoff(attempt: attempt))
        }
    }

    /// 200 ms, 400 ms, 800 ms … (at most 5 s), with up to 25 % jitter so that instances do not retry in step.
    static func backoff(attempt: Int) -> Duration {
        let base = min(5000.0, 200.0 * pow(2.0, Double(attempt - 1)))
        return .milliseconds(Int(base * Double.random(in: 1.0...1.25)))
    }

    /// Transport failures worth another attempt; configuration mistakes are not.
    static func isRetryable(_ error: any Error) -> Bool {
        guard let error = error as? HTTPClientError else { return true }
        let permanent: [HTTPClientError] = [
            .invalidURL, .emptyHost, .emptyScheme, .alreadyShutdown, .cancelled,
            .invalidRedirectConfiguration, .invalidHTTPVersionConfiguration, .redirectLimitReached, .redirectCycleDetected,
            .traceRequestWithBody, .bodyLengthMismatch,
        ]
        return !permanent.contains(error)
    }

    private func failure(_ operation: String, _ response: Response) -> ObjectStoreError {
        if !response.error.isErrorDocument, !response.body.isEmpty {
            // Something other than S3 answered (a proxy, a web server at the wrong port).
            return .requestFailed(
                operation: operation,
                status: response.status,
                code: nil,
                message: "the answer is not an S3 error document (is the endpoint an S3 service?)",
                requestID: nil
            )
        }
        return .requestFailed(
            operation: operation,
            status: response.status,
            code: response.error.code,
            message: response.error.message,
            requestID: response.error.requestID
        )
    }
}
