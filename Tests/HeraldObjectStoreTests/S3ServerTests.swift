import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import HeraldObjectStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A port nothing listens on right now.
func freeLocalPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A server a test needs could not be started.
struct SetupError: Error, CustomStringConvertible {
    var description: String
}

/// A child process (moto, a scripted HTTP server) with its output in a log file, stopped by ``stop()``.
final class ChildServer {
    let process = Process()
    let logPath = NSTemporaryDirectory() + "herald-objectstore-\(UUID().uuidString).log"

    init(arguments: [String], environment: [String: String] = [:]) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Polls `url` until it answers, the process exits, or `seconds` pass.
    func waitUntilServing(_ url: String, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && process.isRunning {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2)) {
                _ = try? await response.body.collect(upTo: 1 << 20)
                return true
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: a child spawned from a concurrency thread inherits its blocked signal mask, so SIGTERM stays
            // pending (and moto's own SIGTERM handler waits for keep-alive connections anyway).
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// The S3 service the live test talks to: `HERALD_TEST_S3_ENDPOINT`, or a moto server started here.
struct S3TestService {
    var endpoint: S3Endpoint
    var credentials: AWSCredentials
    /// Whether moto checks signatures (only when this test started it: the switch is global to the server).
    var verifiesSignatures: Bool
    var server: ChildServer?

    static var requireServers: Bool { ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] == "1" }

    /// The service, or a cancelled (skipped) test when there is none and none is required.
    static func start() async throws -> S3TestService {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["HERALD_TEST_S3_ENDPOINT"], !url.isEmpty {
            let credentials = AWSCredentials(
                accessKeyID: environment["AWS_ACCESS_KEY_ID"] ?? "testing",
                secretAccessKey: environment["AWS_SECRET_ACCESS_KEY"] ?? "testing"
            )
            return S3TestService(
                endpoint: try ObjectStoreConfiguration.parseEndpoint(url),
                credentials: credentials,
                verifiesSignatures: false,
                server: nil
            )
        }
        let port = try freeLocalPort()
        let server = try ChildServer(arguments: ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)])
        guard await server.waitUntilServing("http://127.0.0.1:\(port)/moto-api/", seconds: 30) else {
            let log = server.log
            server.stop()
            let reason = "moto did not start (python3 -m moto.server; pip install 'moto[server]'), and HERALD_TEST_S3_ENDPOINT is unset"
            if requireServers { throw SetupError(description: "\(reason) (HERALD_TEST_REQUIRE_SERVERS=1). Its output:\n\(log)") }
            try Test.cancel("Skipped: \(reason).")
        }
        let endpoint = S3Endpoint(scheme: "http", host: "127.0.0.1", port: port)
        do {
            let credentials = try await enforceSignatures(endpoint: endpoint)
            return S3TestService(endpoint: endpoint, credentials: credentials, verifiesSignatures: true, server: server)
        } catch {
            server.stop()
            throw error
        }
    }

    /// Creates an IAM user allowed `s3:*` and makes moto check every later request's signature and access key: moto
    /// recomputes each signature with botocore, so the S3 calls below are verified by an independent implementation.
    static func enforceSignatures(endpoint: S3Endpoint) async throws -> AWSCredentials {
        // Unauthenticated until the switch below; the key only routes the call to IAM.
        let setup = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "setup")
        let user = "herald-archive-test"
        _ = try await iam(endpoint, setup, ["Action": "CreateUser", "UserName": user])
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        _ = try await iam(endpoint, setup, ["Action": "PutUserPolicy", "UserName": user, "PolicyName": "archive", "PolicyDocument": policy])
        let created = try await iam(endpoint, setup, ["Action": "CreateAccessKey", "UserName": user])
        guard let key = created.child("CreateAccessKeyResult")?.child("AccessKey"), let id = key.value("AccessKeyId"),
            let secret = key.value("SecretAccessKey")
        else {
            throw ObjectStoreError.invalidResponse(operation: "IAM CreateAccessKey", reason: "no access key in the answer")
        }
        try await checkSignatures(true, endpoint: endpoint)
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret)
    }

    /// Turns moto's signature and permission checks on or off for every request that follows.
    static func checkSignatures(_ on: Bool, endpoint: S3Endpoint) async throws {
        var reset = HTTPClientRequest(url: "\(endpoint)/moto-api/reset-auth")
        reset.method = .POST
        // The number of requests let through unchecked.
        reset.body = .bytes(ByteBuffer(string: on ? "0" : "inf"))
        let response = try await HTTPClient.shared.execute(reset, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else {
            throw ObjectStoreError.invalidResponse(operation: "moto reset-auth", reason: "HTTP \(response.status.code)")
        }
    }

    /// One IAM query-API call, signed like any AWS request.
    static func iam(_ endpoint: S3Endpoint, _ credentials: AWSCredentials, _ parameters: [String: String]) async throws -> XMLTree {
        let form = (parameters.merging(["Version": "2010-05-08"]) { $1 })
            .map { "\(SigV4Signer.uriEncode($0.key, encodeSlash: true))=\(SigV4Signer.uriEncode($0.value, encodeSlash: true))" }
            .sorted()
            .joined(separator: "&")
        let body = Array(form.utf8)
        let hash = SigV4Signer.payloadHash(body)
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "iam")
        let headers = signer.sign(
            SigV4Signer.Request(
                method: "POST",
                path: "/",
                headers: [
                    ("host", endpoint.authority), ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
                    ("x-amz-content-sha256", hash),
                ],
                payloadHash: hash
            ),
            date: Date()
        )
        var request = HTTPClientRequest(url: "\(endpoint)/")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let answer = Array(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok, let tree = XMLTree.parse(answer) else {
            throw ObjectStoreError.invalidResponse(
                operation: "IAM \(parameters["Action"] ?? "")",
                reason: "HTTP \(response.status.code): \(String(decoding: answer, as: UTF8.self))"
            )
        }
        return tree
    }

    func stop() { server?.stop() }
}

@Suite(.serialized) struct S3ServerTests {
    /// The archive's whole life against moto (or `HERALD_TEST_S3_ENDPOINT`).
    ///
    /// With a moto started here, the first part runs with moto checking every signature. moto (werkzeug) re-quotes
    /// reserved characters in paths and query values before it checks, so even boto3 fails its check for a key such as
    /// `a$b` or a list prefix with a `/`; the second part (prefixed listings, such keys) runs with the checks off, and the
    /// signatures of such requests are covered by the botocore vectors in ``SigV4Tests``.
    @Test(.timeLimit(.minutes(3))) func archiveLifecycleAgainstARealS3Service() async throws {
        let service = try await S3TestService.start()
        defer { service.stop() }
        let bucket = "herald-test-\(UUID().uuidString.prefix(8).lowercased())"
        let configuration = S3Configuration(
            bucket: bucket,
            prefix: "archive",
            region: "us-east-1",
            endpoint: service.endpoint,
            credentials: service.credentials
        )
        let store = S3ObjectStore(configuration: configuration, httpClient: .shared, requestTimeout: .seconds(20), maxAttempts: 2)
        let whole = S3ObjectStore(
            configuration: S3Configuration(bucket: bucket, region: "us-east-1", endpoint: service.endpoint, credentials: service.credentials),
            httpClient: .shared
        )

        // MARK: Signed and checked
        try await store.createBucket()
        try await store.createBucket()

        // Five days of one site, alternately STANDARD and GLACIER, and a key with a space.
        let keys = (1...5).map { "events/site-a/2024-01-0\($0).ndjson.gz" }
        for (index, key) in keys.enumerated() {
            let storageClass: StorageClass = index % 2 == 0 ? .standard : .glacier
            try await store.put(key: key, bytes: Array("day \(index)\n".utf8), contentType: "application/gzip", storageClass: storageClass)
        }
        let spaced = "events/site b/2024-01-01.ndjson.gz"
        try await store.put(key: spaced, bytes: [0, 1, 2, 255], contentType: "application/gzip")
        #expect(try await store.get(key: spaced) == [0, 1, 2, 255])

        // Paged listing of the whole bucket: the objects sit under the configured prefix.
        let firstPage = try await whole.listPage(prefix: "", continuationToken: nil, maxKeys: 2)
        #expect(firstPage.objects.count == 2)
        #expect(firstPage.nextContinuationToken != nil)
        let everything = try await whole.list(prefix: "", pageSize: 2)
        // In byte order: ' ' sorts before '-'.
        #expect(everything.map(\.key) == ([spaced] + keys).map { "archive/" + $0 })
        #expect(everything.map(\.storageClass) == [.standard, .standard, .glacier, .standard, .glacier, .standard])
        #expect(everything.map(\.size) == [4] + keys.indices.map { Int64("day \($0)\n".utf8.count) })
        #expect(everything.allSatisfy { abs($0.lastModified.timeIntervalSinceNow) < 600 })

        // STANDARD reads; GLACIER needs a restore first.
        #expect(try await store.get(key: keys[0]) == Array("day 0\n".utf8))
        await #expect(throws: ObjectStoreError.archived(key: keys[1], storageClass: .glacier)) { try await store.get(key: keys[1]) }
        try await store.requestRestore(key: keys[1], days: 1)
        // moto completes a restore at once; AWS takes hours, and a repeat while it runs is accepted too.
        try await store.requestRestore(key: keys[1], days: 1)
        #expect(try await store.get(key: keys[1]) == Array("day 1\n".utf8))
        // Restoring what is not archived is a no-op; restoring what does not exist is not.
        try await store.requestRestore(key: keys[0], days: 1)
        await #expect(throws: ObjectStoreError.notFound(key: "events/none.gz")) { try await store.requestRestore(key: "events/none.gz", days: 1) }
        await #expect(throws: ObjectStoreError.notFound(key: "events/none.gz")) { try await store.get(key: "events/none.gz") }

        try await store.delete(key: keys[0])
        try await store.delete(key: keys[0])
        await #expect(throws: ObjectStoreError.notFound(key: keys[0])) { try await store.get(key: keys[0]) }
        #expect(try await whole.list(prefix: "").count == 5)

        if service.verifiesSignatures {
            // A wrong secret is refused, and the error names the fix without echoing the secret.
            var wrong = configuration
            wrong.credentials.secretAccessKey = "not-the-secret-ZZZ"
            let refused = S3ObjectStore(configuration: wrong, httpClient: .shared)
            do {
                _ = try await refused.get(key: keys[2])
                Issue.record("a wrong secret was accepted")
            } catch let error as ObjectStoreError {
                guard case .requestFailed(_, 403, "SignatureDoesNotMatch", _, _) = error else { throw error }
                #expect(error.description.contains("AWS_SECRET_ACCESS_KEY"))
                #expect(!error.description.contains("not-the-secret-ZZZ"))
            }
            try await S3TestService.checkSignatures(false, endpoint: service.endpoint)
        }

        // MARK: What moto cannot check

        // Prefixed listings, more than one page, following continuation tokens.
        let first = try await store.listPage(prefix: "events/site-a/", continuationToken: nil, maxKeys: 2)
        #expect(first.objects.map(\.key) == Array(keys.dropFirst().prefix(2)))
        #expect(first.nextContinuationToken != nil)
        let listed = try await store.list(prefix: "events/site-a/", pageSize: 2)
        #expect(listed.map(\.key) == Array(keys.dropFirst()))
        #expect(listed.map(\.storageClass) == [.glacier, .standard, .glacier, .standard])
        #expect(try await store.list(prefix: "events/").count == 5)
        #expect(try await store.list(prefix: "events/site b/").map(\.key) == [spaced])
        #expect(try await store.list(prefix: "nothing/").isEmpty)

        // Reserved and non-ASCII characters in a key.
        let odd = "events/site c/ü+$&=,;@:!'()*.ndjson.gz"
        try await store.put(key: odd, bytes: [3, 4], contentType: "application/gzip")
        #expect(try await store.get(key: odd) == [3, 4])
        #expect(try await store.list(prefix: "events/site c/").map(\.key) == [odd])
        try await store.delete(key: odd)
        #expect(try await store.list(prefix: "events/site c/").isEmpty)

        // The configuration URL path, with the configured class.
        let environment = [
            "AWS_ACCESS_KEY_ID": service.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": service.credentials.secretAccessKey,
            "AWS_REGION": "us-east-1",
        ]
        let parsed = try ObjectStoreConfiguration.parse(
            "s3://\(bucket)/via-url?endpoint=\(service.endpoint)&storageClass=GLACIER", environment: environment)
        let fromURL = parsed.makeStore(httpClient: .shared)
        try await fromURL.put(key: "x/1.gz", bytes: [1], contentType: "application/gzip")
        #expect(try await fromURL.list(prefix: "x/").map(\.storageClass) == [.glacier])
        await #expect(throws: ObjectStoreError.archived(key: "x/1.gz", storageClass: .glacier)) { try await fromURL.get(key: "x/1.gz") }

        // A missing bucket is an error a person can act on.
        let missing = S3ObjectStore(
            configuration: S3Configuration(
                bucket: bucket + "-none", region: "us-east-1", endpoint: service.endpoint, credentials: service.credentials),
            httpClient: .shared
        )
        do {
            _ = try await missing.list(prefix: "")
            Issue.record("listing a missing bucket succeeded")
        } catch let error as ObjectStoreError {
            guard case .requestFailed(_, 404, "NoSuchBucket", _, _) = error else { throw error }
            #expect(error.description.contains("Create the bucket"))
        }
    }

    /// Retries against a scripted server: 503s then success, a first answer too slow for the timeout, an error that is
    /// not retried, and a non-S3 answer.
    @Test(.timeLimit(.minutes(1))) func retriesAndTimeouts() async throws {
        let port = try freeLocalPort()
        let script = #"""
            import sys, time, collections
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            seen = collections.Counter()
            class H(BaseHTTPRequestHandler):
                def log_message(self, *a): pass
                def answer(self, status, body, kind="application/xml"):
                    self.send_response(status); self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                def do_GET(self):
                    seen[self.path] += 1; n = seen[self.path]
                    if self.path == "/ping": return self.answer(200, b"ok")
                    if "Authorization" not in self.headers or "x-amz-content-sha256" not in self.headers:
                        return self.answer(400, b"<Error><Code>Unsigned</Code></Error>")
                    if self.path == "/b/flaky":
                        if n < 3: return self.answer(503, b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>")
                        return self.answer(200, ("attempt %d" % n).encode())
                    if self.path == "/b/slow":
                        if n == 1: time.sleep(3)
                        return self.answer(200, ("attempt %d" % n).encode())
                    if self.path == "/b/denied":
                        denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>%d</RequestId></Error>"
                        return self.answer(403, (denied % n).encode())
                    if self.path == "/b/proxy":
                        return self.answer(502, b"<html><body>Bad gateway</body></html>", "text/html")
                    return self.answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
            ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """#
        let server: ChildServer
        do {
            server = try ChildServer(arguments: ["python3", "-c", script, String(port)])
        } catch {
            if S3TestService.requireServers { throw error }
            try Test.cancel("Skipped: python3 is not available to script a flaky server.")
        }
        defer { server.stop() }
        guard await server.waitUntilServing("http://127.0.0.1:\(port)/ping", seconds: 15) else {
            if S3TestService.requireServers { throw SetupError(description: "the scripted server did not start: \(server.log)") }
            try Test.cancel("Skipped: the scripted server did not start: \(server.log)")
        }
        let store = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "b",
                region: "us-east-1",
                endpoint: S3Endpoint(scheme: "http", host: "127.0.0.1", port: port),
                credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")
            ),
            httpClient: .shared,
            requestTimeout: .seconds(1),
            maxAttempts: 3
        )
        #expect(try await store.get(key: "flaky") == Array("attempt 3".utf8))
        #expect(try await store.get(key: "slow") == Array("attempt 2".utf8))
        await #expect(throws: ObjectStoreError.notFound(key: "none")) { try await store.get(key: "none") }
        // Not retried: one attempt, request id 1.
        await #expect(
            throws: ObjectStoreError.requestFailed(
                operation: "GET s3://b/denied", status: 403, code: "AccessDenied", message: "Access Denied", requestID: "1")
        ) { try await store.get(key: "denied") }
        do {
            _ = try await store.get(key: "proxy")
            Issue.record("a 502 page was accepted")
        } catch let error as ObjectStoreError {
            guard case .requestFailed(_, 502, nil, _, _) = error else { throw error }
            #expect(error.description.contains("not an S3 error document"))
        }

        // Nothing listens: every attempt fails to connect, and the error says how many were made.
        let closedPort = try freeLocalPort()
        let unreachable = S3ObjectStore(
            configuration: S3Configuration(
                bucket: "b",
                region: "us-east-1",
                endpoint: S3Endpoint(scheme: "http", host: "127.0.0.1", port: closedPort),
                credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")
            ),
            httpClient: .shared,
            requestTimeout: .seconds(2),
            maxAttempts: 2
        )
        do {
            _ = try await unreachable.get(key: "k")
            Issue.record("a closed port answered")
        } catch let error as ObjectStoreError {
            guard case .unavailable(_, 2, _) = error else { throw error }
            #expect(error.description.contains("failed after 2 attempts"))
        }
    }
}
