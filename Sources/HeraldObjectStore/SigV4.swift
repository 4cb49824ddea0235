import Crypto
import Foundation

/// An AWS access key, with the session token of temporary credentials. Prints without its secret.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `AWS_ACCESS_KEY_ID`; not secret.
    public var accessKeyID: String
    /// `AWS_SECRET_ACCESS_KEY`.
    public var secretAccessKey: String
    /// `AWS_SESSION_TOKEN`, for temporary credentials (STS, instance roles).
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>\(sessionToken == nil ? "" : ", sessionToken: <redacted>"))"
    }

    public var debugDescription: String { description }

    // `dump` and string interpolation of containing values go through the mirror: keep the secret out of it too.
    public var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "secretAccessKey": "<redacted>"], displayStyle: .struct)
    }
}

/// AWS Signature Version 4 for requests signed in the `Authorization` header.
///
/// The caller gives the path already URI-encoded, exactly as it is sent: S3 signs that path as it is and does not encode
/// it a second time, unlike other AWS services.
struct SigV4Signer: Sendable {
    static let algorithm = "AWS4-HMAC-SHA256"
    /// SHA-256 of the empty payload.
    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    var credentials: AWSCredentials
    var region: String
    var service: String

    /// What is signed of a request.
    struct Request {
        var method: String
        /// The URI-encoded path, as sent.
        var path: String
        /// Query parameters, not encoded.
        var query: [(name: String, value: String)] = []
        /// Headers to sign (`host` among them); `x-amz-date` and `x-amz-security-token` are added by ``sign(_:date:)``.
        var headers: [(name: String, value: String)]
        /// Hex SHA-256 of the body (the value of `x-amz-content-sha256` for S3).
        var payloadHash: String
    }

    /// The `x-amz-date` value and the credential-scope day of `date`.
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let day = pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2)
        return (day + "T" + pad(c.hour, 2) + pad(c.minute, 2) + pad(c.second, 2) + "Z", day)
    }

    /// The canonical request and its `SignedHeaders` list.
    func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        let encoded: [(name: String, value: String)] = request.query.map { parameter in
            (Self.uriEncode(parameter.name, encodeSlash: true), Self.uriEncode(parameter.value, encodeSlash: true))
        }
        // Sorted by encoded name, then value; the encoded text is ASCII, so String order is byte order.
        let sortedQuery = encoded.sorted { lhs, rhs in lhs.name == rhs.name ? lhs.value < rhs.value : lhs.name < rhs.name }
        let query = sortedQuery.map { $0.name + "=" + $0.value }.joined(separator: "&")
        var headers: [String: [String]] = [:]
        for (name, value) in request.headers {
            headers[name.lowercased(), default: []].append(Self.normalizeHeaderValue(value))
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0, default: []].joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let path = request.path.isEmpty ? "/" : request.path
        let text = [request.method, path, query, canonicalHeaders, signedHeaders, request.payloadHash].joined(separator: "\n")
        return (text, signedHeaders)
    }

    func credentialScope(day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    func stringToSign(canonicalRequest: String, amzDate: String, day: String) -> String {
        [Self.algorithm, amzDate, credentialScope(day: day), Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))]
            .joined(separator: "\n")
    }

    /// The hex signature of `stringToSign` with the key derived for `day`.
    func signature(stringToSign: String, day: String) -> String {
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    /// The headers to send: the request's, `x-amz-date`, `x-amz-security-token` for temporary credentials, and
    /// `Authorization`.
    func sign(_ request: Request, date: Date) -> [(name: String, value: String)] {
        let (amzDate, day) = Self.timestamps(date)
        var request = request
        request.headers.removeAll { ["x-amz-date", "x-amz-security-token", "authorization"].contains($0.name.lowercased()) }
        request.headers.append(("x-amz-date", amzDate))
        if let token = credentials.sessionToken {
            request.headers.append(("x-amz-security-token", token))
        }
        let (canonical, signedHeaders) = canonicalRequest(request)
        let signature = signature(stringToSign: stringToSign(canonicalRequest: canonical, amzDate: amzDate, day: day), day: day)
        let authorization =
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(credentialScope(day: day)), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return request.headers + [("Authorization", authorization)]
    }

    /// RFC 3986 encoding as SigV4 wants it: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex), and `/` too
    /// unless `encodeSlash` is false (object key paths).
    static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Header values are trimmed and runs of spaces collapsed to one.
    static func normalizeHeaderValue(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex SHA-256 of a payload, for `x-amz-content-sha256`.
    static func payloadHash(_ bytes: [UInt8]) -> String {
        bytes.isEmpty ? emptyPayloadHash : hex(SHA256.hash(data: bytes))
    }
}
