import AsyncHTTPClient
import Foundation
import Testing

@testable import HeraldObjectStore

/// AWS's worked examples ("Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk",
/// S3 API reference) and cross-checks computed with botocore's `S3SigV4Auth` for what the examples do not cover.
@Suite struct SigV4Tests {
    static let credentials = AWSCredentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    static let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    static let host = "examplebucket.s3.amazonaws.com"
    static let empty = SigV4Signer.emptyPayloadHash

    let signer = SigV4Signer(credentials: Self.credentials, region: "us-east-1", service: "s3")

    func signature(_ headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name == "Authorization" }?.value.components(separatedBy: "Signature=").last
    }

    @Test func timestampsAreUTC() {
        let (amzDate, day) = SigV4Signer.timestamps(Self.date)
        #expect(amzDate == "20130524T000000Z")
        #expect(day == "20130524")
        #expect(SigV4Signer.timestamps(Date(timeIntervalSince1970: 1_700_000_000.9)).amzDate == "20231114T221320Z")
    }

    @Test func getObjectExample() {
        let request = SigV4Signer.Request(
            method: "GET",
            path: "/test.txt",
            headers: [("Host", Self.host), ("Range", "bytes=0-9"), ("x-amz-content-sha256", Self.empty), ("x-amz-date", "20130524T000000Z")],
            payloadHash: Self.empty
        )
        let (canonical, signedHeaders) = signer.canonicalRequest(request)
        #expect(
            canonical == """
                GET
                /test.txt

                host:examplebucket.s3.amazonaws.com
                range:bytes=0-9
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;range;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """
        )
        #expect(signedHeaders == "host;range;x-amz-content-sha256;x-amz-date")
        let stringToSign = signer.stringToSign(canonicalRequest: canonical, amzDate: "20130524T000000Z", day: "20130524")
        #expect(
            stringToSign == """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
                """
        )
        #expect(
            signer.signature(stringToSign: stringToSign, day: "20130524") == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )

        let signed = signer.sign(request, date: Self.date)
        #expect(
            signed.first { $0.name == "Authorization" }?.value
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
        #expect(signed.filter { $0.name.lowercased() == "x-amz-date" }.map(\.value) == ["20130524T000000Z"])
    }

    @Test func putObjectExample() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let hash = SigV4Signer.payloadHash(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let path = "/" + SigV4Signer.uriEncode("test$file.text", encodeSlash: false)
        #expect(path == "/test%24file.text")
        let request = SigV4Signer.Request(
            method: "PUT",
            path: path,
            headers: [
                ("Host", Self.host), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("x-amz-content-sha256", hash),
            ],
            payloadHash: hash
        )
        let signed = signer.sign(request, date: Self.date)
        #expect(
            signed.first { $0.name == "Authorization" }?.value.contains(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,") == true)
        #expect(signature(signed) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func bucketLifecycleExampleSignsAValuelessParameter() {
        let request = SigV4Signer.Request(
            method: "GET",
            path: "/",
            query: [("lifecycle", "")],
            headers: [("Host", Self.host), ("x-amz-content-sha256", Self.empty)],
            payloadHash: Self.empty
        )
        #expect(signer.canonicalRequest(request).text.split(separator: "\n", omittingEmptySubsequences: false)[2] == "lifecycle=")
        #expect(signature(signer.sign(request, date: Self.date)) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjectsExampleSortsTheQuery() {
        let request = SigV4Signer.Request(
            method: "GET",
            path: "/",
            query: [("prefix", "J"), ("max-keys", "2")],
            headers: [("Host", Self.host), ("x-amz-content-sha256", Self.empty)],
            payloadHash: Self.empty
        )
        #expect(signature(signer.sign(request, date: Self.date)) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    /// The generic SigV4 test suite's `get-vanilla-query-order-key-case` (service "service", no payload header).
    @Test func genericSuiteVector() {
        let signer = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1",
            service: "service"
        )
        let request = SigV4Signer.Request(
            method: "GET",
            path: "/",
            query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [("Host", "example.amazonaws.com")],
            payloadHash: Self.empty
        )
        let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
        #expect(signature(signer.sign(request, date: date)) == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    /// botocore: the GET example again with a session token, which is sent and signed.
    @Test func sessionTokenIsSentAndSigned() {
        var credentials = Self.credentials
        credentials.sessionToken = "FQoGZXIvYXdzEXAMPLETOKEN"
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "s3")
        let request = SigV4Signer.Request(
            method: "GET",
            path: "/test.txt",
            headers: [("Host", Self.host), ("Range", "bytes=0-9"), ("x-amz-content-sha256", Self.empty)],
            payloadHash: Self.empty
        )
        let signed = signer.sign(request, date: Self.date)
        #expect(signed.contains { $0.name == "x-amz-security-token" && $0.value == "FQoGZXIvYXdzEXAMPLETOKEN" })
        #expect(signed.first { $0.name == "Authorization" }?.value.contains("x-amz-date;x-amz-security-token,") == true)
        #expect(signature(signed) == "eefbe0ab53223ec024b3d5221dc6dfd45e333e958ef3242bb7ee30d44e591246")
    }

    /// botocore: a path-style PUT to a non-default port, with a key that needs encoding, a content type and a class.
    @Test func pathStylePutWithAnEncodedKey() {
        let body = Array("hello".utf8)
        let hash = SigV4Signer.payloadHash(body)
        let configuration = S3Configuration(
            bucket: "herald-test",
            prefix: "archive",
            region: "us-east-1",
            endpoint: S3Endpoint(scheme: "http", host: "127.0.0.1", port: 5000),
            credentials: Self.credentials
        )
        let store = S3ObjectStore(configuration: configuration, httpClient: .shared)
        let (scheme, authority, path) = store.address(key: store.fullKey("events/site b/ü+$&=.gz"))
        #expect(scheme == "http")
        #expect(authority == "127.0.0.1:5000")
        #expect(path == "/herald-test/archive/events/site%20b/%C3%BC%2B%24%26%3D.gz")
        let request = SigV4Signer.Request(
            method: "PUT",
            path: path,
            headers: [
                ("host", authority), ("x-amz-content-sha256", hash), ("content-type", "application/gzip"),
                ("x-amz-storage-class", "GLACIER"),
            ],
            payloadHash: hash
        )
        #expect(signature(signer.sign(request, date: Self.date)) == "e59c3d767702c80bfe90b97ebc4e569414fd1d414574b20d73bd4a83edeb35ac")
    }

    /// botocore: a ListObjectsV2 page request whose prefix and continuation token need encoding.
    @Test func listQueryIsEncodedAndSorted() {
        let request = SigV4Signer.Request(
            method: "GET",
            path: "/herald-test",
            query: [("list-type", "2"), ("max-keys", "2"), ("prefix", "archive/events/"), ("continuation-token", "a+b==")],
            headers: [("host", "127.0.0.1:5000"), ("x-amz-content-sha256", Self.empty)],
            payloadHash: Self.empty
        )
        let lines = signer.canonicalRequest(request).text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[2] == "continuation-token=a%2Bb%3D%3D&list-type=2&max-keys=2&prefix=archive%2Fevents%2F")
        #expect(signature(signer.sign(request, date: Self.date)) == "e13e0f90edfddc790fcafe7e18512545c6cfed64db42e9691b2fc09b1d7ad263")
    }

    @Test func uriEncoding() {
        #expect(SigV4Signer.uriEncode("a-b_c.d~e", encodeSlash: true) == "a-b_c.d~e")
        #expect(SigV4Signer.uriEncode("a b/c+d=é*", encodeSlash: true) == "a%20b%2Fc%2Bd%3D%C3%A9%2A")
        #expect(SigV4Signer.uriEncode("a b/c", encodeSlash: false) == "a%20b/c")
        #expect(SigV4Signer.normalizeHeaderValue("  a   b \t c ") == "a b c")
    }

    @Test func credentialsNeverPrintTheSecret() {
        var credentials = Self.credentials
        credentials.sessionToken = "TOKEN-SECRET"
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in [credentials.description, credentials.debugDescription, "\(credentials)", String(reflecting: credentials), dumped] {
            #expect(!text.contains("wJalrXUtnFEMI"))
            #expect(!text.contains("TOKEN-SECRET"))
        }
        #expect(credentials.description.contains("AKIAIOSFODNN7EXAMPLE"))
    }
}
