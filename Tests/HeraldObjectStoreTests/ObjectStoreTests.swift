import AsyncHTTPClient
import Foundation
import Testing

@testable import HeraldObjectStore

@Suite struct ConfigurationTests {
    static let environment = [
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ]

    /// The message of the configuration error `parse` throws, or nil when it does not throw one.
    static func failure(_ url: String, environment: [String: String] = environment) -> String? {
        do {
            _ = try ObjectStoreConfiguration.parse(url, environment: environment)
            return nil
        } catch let ObjectStoreError.invalidConfiguration(message) {
            return message
        } catch {
            return nil
        }
    }

    @Test func directories() throws {
        #expect(try ObjectStoreConfiguration.parse("file:///var/lib/herald/archive", environment: [:]) == .directory(path: "/var/lib/herald/archive"))
        #expect(try ObjectStoreConfiguration.parse("file://localhost/srv/a%20b", environment: [:]) == .directory(path: "/srv/a b"))
        #expect(try ObjectStoreConfiguration.parse("/var/lib/herald/archive", environment: [:]) == .directory(path: "/var/lib/herald/archive"))
        #expect(try ObjectStoreConfiguration.parse("  archive ", environment: [:]) == .directory(path: "archive"))
        let store = try ObjectStoreConfiguration.parse("/tmp/x", environment: [:]).makeStore(httpClient: .shared)
        #expect(store is DirectoryObjectStore)
        #expect(store.describe == "directory /tmp/x")

        #expect(Self.failure("")?.contains("empty") == true)
        #expect(Self.failure("file://server/share")?.contains("'server' is a host") == true)
        #expect(Self.failure("file:///")?.contains("no absolute path") == true)
        #expect(Self.failure("gs://bucket")?.contains("unsupported scheme 'gs://'") == true)
        #expect(Self.failure("/tmp/a\u{0}b")?.contains("control character") == true)
    }

    @Test func s3WithEverything() throws {
        var environment = Self.environment
        environment["AWS_SESSION_TOKEN"] = "session-token"
        environment["AWS_REGION"] = "eu-west-1"
        let parsed = try ObjectStoreConfiguration.parse(
            "s3://herald-archive/raw/events/?region=us-east-1&endpoint=http://127.0.0.1:5000&storageClass=glacier",
            environment: environment
        )
        guard case .s3(let configuration) = parsed else {
            Issue.record("not S3: \(parsed)")
            return
        }
        #expect(configuration.bucket == "herald-archive")
        #expect(configuration.prefix == "raw/events")
        #expect(configuration.region == "us-east-1")
        #expect(configuration.endpoint == S3Endpoint(scheme: "http", host: "127.0.0.1", port: 5000))
        #expect(configuration.storageClass == .glacier)
        #expect(configuration.credentials.sessionToken == "session-token")
        #expect(configuration.addressing == .automatic)
        #expect(!configuration.usesVirtualHost)

        let store = parsed.makeStore(httpClient: .shared)
        #expect(store is S3ObjectStore)
        #expect(store.describe == "s3://herald-archive/raw/events at http://127.0.0.1:5000 (region us-east-1, storage class GLACIER)")
        for text in [store.describe, parsed.description, "\(parsed)", String(reflecting: parsed)] {
            #expect(!text.contains("wJalrXUtnFEMI"))
            #expect(!text.contains("session-token"))
        }
    }

    @Test func s3OnAWS() throws {
        var environment = Self.environment
        environment["AWS_DEFAULT_REGION"] = "eu-central-1"
        guard case .s3(let configuration) = try ObjectStoreConfiguration.parse("s3://herald-archive", environment: environment) else {
            Issue.record("not S3")
            return
        }
        #expect(configuration.region == "eu-central-1")
        #expect(configuration.prefix == "")
        #expect(configuration.storageClass == .standard)
        #expect(configuration.endpoint == nil)
        #expect(configuration.usesVirtualHost)
        let store = S3ObjectStore(configuration: configuration, httpClient: .shared)
        let address = store.address(key: "events/a b.gz")
        #expect(address.authority == "herald-archive.s3.eu-central-1.amazonaws.com")
        #expect(address.path == "/events/a%20b.gz")
        #expect(store.address(key: nil).path == "/")

        // Dotted bucket names stay in the path (the wildcard certificate does not cover them).
        guard case .s3(let dotted) = try ObjectStoreConfiguration.parse("s3://logs.example.com?region=us-west-2", environment: environment) else {
            Issue.record("not S3")
            return
        }
        let dottedAddress = S3ObjectStore(configuration: dotted, httpClient: .shared).address(key: "k")
        #expect(dottedAddress.authority == "s3.us-west-2.amazonaws.com")
        #expect(dottedAddress.path == "/logs.example.com/k")

        guard
            case .s3(let forced) = try ObjectStoreConfiguration.parse(
                "s3://bucket?endpoint=https://minio.internal:9000&addressing=virtual",
                environment: Self.environment
            )
        else {
            Issue.record("not S3")
            return
        }
        #expect(forced.region == "us-east-1")
        let forcedAddress = S3ObjectStore(configuration: forced, httpClient: .shared).address(key: "k")
        #expect(forcedAddress.authority == "bucket.minio.internal:9000")
        #expect(forcedAddress.path == "/k")
        #expect(S3Endpoint(scheme: "https", host: "::1", port: 443).authority == "[::1]")
    }

    @Test func s3Mistakes() {
        #expect(Self.failure("s3://herald-archive")?.contains("no region") == true)
        #expect(Self.failure("s3://herald-archive?region=us-east-1", environment: [:])?.contains("AWS_ACCESS_KEY_ID is not set") == true)
        let noSecret = ["AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": ""]
        #expect(Self.failure("s3://herald-archive?region=us-east-1", environment: noSecret)?.contains("AWS_SECRET_ACCESS_KEY is not set") == true)
        #expect(Self.failure("s3://herald-archive?region=us-east-1&storageClass=COLD")?.contains("storageClass 'COLD' is not one of") == true)
        #expect(Self.failure("s3://herald-archive?region=us-east-1&colour=blue")?.contains("unknown option 'colour'") == true)
        #expect(Self.failure("s3://herald-archive?region=us-east-1&region=eu-west-1")?.contains("appears twice") == true)
        #expect(Self.failure("s3://key:secret@herald-archive?region=us-east-1")?.contains("credentials do not belong") == true)
        #expect(Self.failure("s3://key:wJalrXUtnFEMI@herald-archive")?.contains("wJalrXUtnFEMI") == false)
        #expect(Self.failure("s3://Herald_Archive?region=us-east-1")?.contains("not a valid bucket name") == true)
        #expect(Self.failure("s3://ab?region=us-east-1")?.contains("not a valid bucket name") == true)
        #expect(Self.failure("s3:///prefix?region=us-east-1")?.contains("names no bucket") == true)
        #expect(Self.failure("s3://bucket/a/../b?region=us-east-1")?.contains("prefix 'a/../b'") == true)
        #expect(Self.failure("s3://bucket?region=US%20East")?.contains("region 'US East'") == true)
        #expect(Self.failure("s3://bucket?endpoint=ftp://host")?.contains("must be http:// or https://") == true)
        #expect(Self.failure("s3://bucket?endpoint=localhost:9000")?.contains("endpoint") == true)
        #expect(Self.failure("s3://bucket?endpoint=http://host:9000/path")?.contains("without a path") == true)
        #expect(Self.failure("s3://bucket?endpoint=http://u:p@host:9000")?.contains("must not carry credentials") == true)
        #expect(Self.failure("s3://bucket?region=us-east-1&addressing=sideways")?.contains("addressing 'sideways'") == true)
        #expect(Self.failure("s3://bucket:9000?region=us-east-1")?.contains("use endpoint=") == true)
    }
}

@Suite struct S3ResponseTests {
    @Test func listPage() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>archive/</Prefix>
            <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
            <Contents><Key>archive/a &amp; b.gz</Key><LastModified>2024-01-31T12:00:00.000Z</LastModified>
            <ETag>&quot;x&quot;</ETag><Size>123</Size><StorageClass>GLACIER</StorageClass></Contents>
            <Contents><Key>archive/c.gz</Key><LastModified>2024-01-31T12:00:01Z</LastModified><Size>0</Size></Contents>
            <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>
            """
        let page = try ListObjectsPage(Array(xml.utf8))
        #expect(page.nextContinuationToken == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        #expect(
            page.objects == [
                ObjectInfo(key: "archive/a & b.gz", size: 123, storageClass: .glacier, lastModified: Date(timeIntervalSince1970: 1_706_702_400)),
                ObjectInfo(key: "archive/c.gz", size: 0, storageClass: .standard, lastModified: Date(timeIntervalSince1970: 1_706_702_401)),
            ]
        )
        let last = try ListObjectsPage(Array("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>".utf8))
        #expect(last.objects.isEmpty)
        #expect(last.nextContinuationToken == nil)

        #expect(throws: ListObjectsPage.ParseError.self) { try ListObjectsPage(Array("not xml".utf8)) }
        #expect(throws: ListObjectsPage.ParseError.self) { try ListObjectsPage(Array("<Error/>".utf8)) }
        #expect(throws: ListObjectsPage.ParseError.self) {
            try ListObjectsPage(Array("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>".utf8))
        }
        #expect(throws: ListObjectsPage.ParseError.self) {
            try ListObjectsPage(Array("<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>".utf8))
        }
    }

    @Test func errorDocuments() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message>
            <StorageClass>GLACIER</StorageClass><RequestId>4442587FB7D0A2F9</RequestId></Error>
            """
        let error = S3ErrorBody(Array(xml.utf8))
        #expect(error.code == "InvalidObjectState")
        #expect(error.message == "The operation is not valid for the object's storage class")
        #expect(error.storageClass == "GLACIER")
        #expect(error.requestID == "4442587FB7D0A2F9")
        #expect(error.isErrorDocument)
        #expect(S3ErrorBody([]) == S3ErrorBody(Array("<html>oops</html>".utf8)))
        #expect(!S3ErrorBody(Array("<html>oops</html>".utf8)).isErrorDocument)
    }

    @Test func errorsSayWhatToDo() {
        let denied = ObjectStoreError.requestFailed(
            operation: "PUT s3://b/k",
            status: 403,
            code: "SignatureDoesNotMatch",
            message: "The request signature we calculated does not match",
            requestID: "R1"
        )
        #expect(
            denied.description == "PUT s3://b/k failed with HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match "
                + "(request id R1). Check AWS_SECRET_ACCESS_KEY, and that the clock of this machine is right."
        )
        let region = ObjectStoreError.requestFailed(operation: "GET", status: 400, code: "AuthorizationHeaderMalformed", message: nil, requestID: nil)
        #expect(region.description.contains("set region="))
        #expect(ObjectStoreError.archived(key: "k", storageClass: .deepArchive).description.contains("(DEEP_ARCHIVE) and must be restored"))
        #expect(ObjectStoreError.invalidKey(key: "a\u{0}b", reason: "r").description == "Invalid object key \"a\\0b\": r.")
        #expect(StorageClass.glacier.requiresRestore && StorageClass.deepArchive.requiresRestore)
        #expect(!StorageClass.glacierInstantRetrieval.requiresRestore && !StorageClass.standard.requiresRestore)
    }

    @Test func requestBodies() {
        #expect(
            String(decoding: S3XMLBody.restoreRequest(days: 7, tier: "Standard"), as: UTF8.self)
                == "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>7</Days>"
                + "<GlacierJobParameters><Tier>Standard</Tier></GlacierJobParameters></RestoreRequest>"
        )
        #expect(S3XMLBody.createBucket(region: "us-east-1").isEmpty)
        #expect(String(decoding: S3XMLBody.createBucket(region: "eu-west-1"), as: UTF8.self).contains("<LocationConstraint>eu-west-1<"))
    }

    @Test func backoffGrows() {
        #expect((200...250).contains(S3ObjectStore.backoff(attempt: 1).components.attoseconds / 1_000_000_000_000_000))
        #expect(S3ObjectStore.backoff(attempt: 3) >= .milliseconds(800))
        #expect(S3ObjectStore.backoff(attempt: 30) <= .milliseconds(6250))
        #expect(!S3ObjectStore.isRetryable(HTTPClientError.invalidURL))
        #expect(S3ObjectStore.isRetryable(HTTPClientError.connectTimeout))
        #expect(S3ObjectStore.isRetryable(HTTPClientError.remoteConnectionClosed))
    }
}
