import Foundation
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import Hummingbird

/// SCIM errors (RFC 7644 §3.12): thrown as ``HeraldError``s whose slug carries the scimType, rendered by
/// ``SCIMErrorDocument`` for every path under `/scim/`.
enum SCIMError {
    static func make(_ status: Int, _ scimType: String?, _ detail: String, headers: [(String, String)] = []) -> HeraldError {
        HeraldError(
            status: status, slug: scimType.map { "scim-\($0)" } ?? "scim", title: "SCIM error", detail: detail, headers: headers)
    }
    static func invalidFilter(_ detail: String) -> HeraldError { make(400, "invalidFilter", detail) }
    static func invalidValue(_ detail: String) -> HeraldError { make(400, "invalidValue", detail) }
    static func invalidSyntax(_ detail: String) -> HeraldError { make(400, "invalidSyntax", detail) }
    static func invalidPath(_ detail: String) -> HeraldError { make(400, "invalidPath", detail) }
    static func noTarget(_ detail: String) -> HeraldError { make(400, "noTarget", detail) }
    static func mutability(_ detail: String) -> HeraldError { make(400, "mutability", detail) }
    static func uniqueness(_ detail: String) -> HeraldError { make(409, "uniqueness", detail) }
    static func notFound(_ detail: String) -> HeraldError { make(404, nil, detail) }
    static func preconditionFailed() -> HeraldError {
        make(412, nil, "The resource changed since the version named in If-Match. Read it again and retry.")
    }
    static func unauthorized(_ detail: String) -> HeraldError {
        make(401, nil, detail, headers: [("WWW-Authenticate", "Bearer realm=\"herald-scim\"")])
    }
}

/// The URNs SCIM messages and resources are named by.
enum SCIMSchema {
    static let user = "urn:ietf:params:scim:schemas:core:2.0:User"
    static let group = "urn:ietf:params:scim:schemas:core:2.0:Group"
    static let listResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    static let patchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    static let searchRequest = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    static let serviceProviderConfig = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    static let resourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
    static let schema = "urn:ietf:params:scim:schemas:core:2.0:Schema"
}

/// Encoding SCIM responses: `application/scim+json`, ETags from resource versions.
enum SCIMResponse {
    static let contentType = "application/scim+json"
    /// Largest request body a SCIM endpoint reads.
    static let maxBody = 256 * 1024
    /// Largest page a list returns (advertised as filter.maxResults).
    static let maxResults = 100

    static func etag(_ version: Int64) -> String { "W/\"\(version)\"" }

    static func make(
        _ value: [String: JSONValue], status: HTTPResponse.Status = .ok, etag: String? = nil, location: String? = nil
    )
        -> Response
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(JSONValue.object(value))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: contentType]
        if let etag { headers[.eTag] = etag }
        if let location { headers[.location] = location }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func list(_ resources: [[String: JSONValue]], total: Int, startIndex: Int) -> Response {
        make([
            "schemas": .array([.string(SCIMSchema.listResponse)]),
            "totalResults": .number(Double(total)),
            "startIndex": .number(Double(startIndex)),
            "itemsPerPage": .number(Double(resources.count)),
            "Resources": .array(resources.map { .object($0) }),
        ])
    }

    /// Reads a JSON object body (any JSON media type; SCIM clients send `application/scim+json`).
    static func body(_ request: Request) async throws -> [String: JSONValue] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBody)
        } catch {
            throw HeraldError.payloadTooLarge(limit: maxBody)
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView)), case .object(let object) = value else {
            throw SCIMError.invalidSyntax("The request body must be a JSON object.")
        }
        return object
    }

    /// `If-Match` (RFC 7644 §3.14): a list of ETags or `*`; a mismatch is 412.
    static func checkIfMatch(_ request: Request, version: Int64) throws {
        guard let header = request.headers[.ifMatch] else { return }
        let tags = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // An empty header names no version: as if it were absent.
        if tags.isEmpty { return }
        let current = etag(version)
        let strong = "\"\(version)\""
        if tags.contains("*") || tags.contains(current) || tags.contains(strong) { return }
        throw SCIMError.preconditionFailed()
    }

    /// Whether `If-None-Match` names the current version (a GET may then answer 304).
    static func notModified(_ request: Request, version: Int64) -> Bool {
        guard let header = request.headers[.ifNoneMatch] else { return false }
        let tags = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return tags.contains("*") || tags.contains(etag(version)) || tags.contains("\"\(version)\"")
    }

    static func meta(resourceType: String, created: Date, lastModified: Date, location: String, version: Int64) -> JSONValue {
        .object([
            "resourceType": .string(resourceType),
            "created": .string(ISO8601.string(from: created)),
            "lastModified": .string(ISO8601.string(from: lastModified)),
            "location": .string(location),
            "version": .string(etag(version)),
        ])
    }
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): which attributes a response carries. Names are
/// case-insensitive and may carry the schema URN; `id` and `schemas` are always returned.
struct SCIMProjection: Sendable {
    var attributes: [String]?
    var excluded: [String]?

    init(attributes: String?, excluded: String?, schema: String) {
        func names(_ text: String?) -> [String]? {
            guard let text, !text.isEmpty else { return nil }
            return text.split(separator: ",").map { SCIMProjection.strip(String($0).trimmingCharacters(in: .whitespaces), schema: schema) }
        }
        self.attributes = names(attributes)
        self.excluded = names(excluded)
    }

    init(attributes: [String]?, excluded: [String]?, schema: String) {
        self.attributes = attributes.map { $0.map { SCIMProjection.strip($0, schema: schema) } }
        self.excluded = excluded.map { $0.map { SCIMProjection.strip($0, schema: schema) } }
    }

    static func strip(_ name: String, schema: String) -> String {
        let lower = name.lowercased()
        let prefix = schema.lowercased() + ":"
        if lower.hasPrefix(prefix) { return String(lower.dropFirst(prefix.count)) }
        // Another resource's core schema (a search over users and groups names either).
        for other in [SCIMSchema.user, SCIMSchema.group] where lower.hasPrefix(other.lowercased() + ":") {
            return String(lower.dropFirst(other.count + 1))
        }
        return lower
    }

    func apply(_ resource: [String: JSONValue]) -> [String: JSONValue] {
        var result = resource
        if let attributes {
            result = [:]
            for (key, value) in resource {
                let lower = key.lowercased()
                if lower == "id" || lower == "schemas" {
                    result[key] = value
                    continue
                }
                if attributes.contains(lower) {
                    result[key] = value
                    continue
                }
                // Sub-attributes: `name.givenName` keeps `name` with only `givenName`.
                let subs = attributes.filter { $0.hasPrefix(lower + ".") }.map { String($0.dropFirst(lower.count + 1)) }
                guard !subs.isEmpty else { continue }
                switch value {
                case .object(let object):
                    let kept = object.filter { subs.contains($0.key.lowercased()) }
                    if !kept.isEmpty { result[key] = .object(kept) }
                case .array(let items):
                    let kept: [JSONValue] = items.compactMap { item in
                        guard case .object(let object) = item else { return nil }
                        let sub = object.filter { subs.contains($0.key.lowercased()) }
                        return sub.isEmpty ? nil : .object(sub)
                    }
                    if !kept.isEmpty { result[key] = .array(kept) }
                default: break
                }
            }
        }
        if let excluded {
            for key in result.keys {
                let lower = key.lowercased()
                guard lower != "id", lower != "schemas" else { continue }
                if excluded.contains(lower) {
                    result[key] = nil
                    continue
                }
                let subs = excluded.filter { $0.hasPrefix(lower + ".") }.map { String($0.dropFirst(lower.count + 1)) }
                guard !subs.isEmpty else { continue }
                if case .object(let object) = result[key] {
                    result[key] = .object(object.filter { !subs.contains($0.key.lowercased()) })
                } else if case .array(let items) = result[key] {
                    result[key] = .array(
                        items.map { item in
                            guard case .object(let object) = item else { return item }
                            return .object(object.filter { !subs.contains($0.key.lowercased()) })
                        })
                }
            }
        }
        return result
    }
}

/// A filter of the form `attribute eq "value"` (RFC 7644 §3.4.2.2), which is what identity providers send to find
/// a resource before creating it. Attribute names are case-insensitive; anything else is `invalidFilter`.
struct SCIMFilter: Sendable, Equatable {
    /// The attribute path, lower-cased, URN removed (`username`, `emails.value`, `externalid`).
    var attribute: String
    var value: String

    static func parse(_ text: String, schema: String) throws -> SCIMFilter {
        var scanner = Substring(text.trimmingCharacters(in: .whitespaces))
        func fail() -> HeraldError {
            SCIMError.invalidFilter(
                "Herald supports filters of the form 'attribute eq \"value\"' (userName, externalId, emails.value, id; displayName for groups).")
        }
        guard let space = scanner.firstIndex(of: " ") else { throw fail() }
        var attribute = SCIMProjection.strip(String(scanner[..<space]), schema: schema)
        scanner = scanner[space...].drop(while: { $0 == " " })
        guard scanner.lowercased().hasPrefix("eq ") else { throw fail() }
        scanner = scanner.dropFirst(3).drop(while: { $0 == " " })
        // emails[value eq "x"] is the same question as emails.value eq "x".
        if attribute.hasSuffix("]") { throw fail() }
        let valueText = String(scanner).trimmingCharacters(in: .whitespaces)
        let value: String
        if valueText.hasPrefix("\"") {
            guard let decoded = try? JSONDecoder().decode(String.self, from: Data(valueText.utf8)) else { throw fail() }
            value = decoded
        } else if valueText == "true" || valueText == "false" {
            value = valueText
        } else {
            throw fail()
        }
        if attribute == "emails" { attribute = "emails.value" }
        guard !attribute.isEmpty, attribute.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "$" }) else {
            throw fail()
        }
        return SCIMFilter(attribute: attribute, value: value)
    }
}

/// Page parameters (RFC 7644 §3.4.2.4): `startIndex` is 1-based (less than 1 means 1), `count` is at most
/// ``SCIMResponse/maxResults`` (negative means 0).
struct SCIMPage: Sendable {
    var startIndex: Int
    var count: Int

    init(startIndex: String?, count: String?) throws {
        func integer(_ text: String?, _ name: String) throws -> Int? {
            guard let text else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw SCIMError.invalidValue("\(name) must be an integer.")
            }
            return value
        }
        self.startIndex = max(1, try integer(startIndex, "startIndex") ?? 1)
        self.count = min(SCIMResponse.maxResults, max(0, try integer(count, "count") ?? SCIMResponse.maxResults))
    }

    init(startIndex: Int?, count: Int?) {
        self.startIndex = max(1, startIndex ?? 1)
        self.count = min(SCIMResponse.maxResults, max(0, count ?? SCIMResponse.maxResults))
    }

    var offset: Int { startIndex - 1 }
}
