import Foundation
import HTTPTypes
import HeraldCore
import Hummingbird
import NIOCore
import NIOFoundationCompat

extension Request {
    /// Decodes a JSON body, turning every way it can be wrong into a problem a person can act on: 413 when too
    /// large, 415 for another media type, 400 for malformed JSON, 422 naming the field for wrong types. Handlers
    /// read bodies through ``BodyReader``, which calls this.
    func decodeJSON<T: Decodable>(as type: T.Type, context: HeraldRequestContext) async throws -> T {
        if let contentType = headers[.contentType], !contentType.isEmpty {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard mediaType == "application/json" || mediaType.hasSuffix("+json") else {
                throw HeraldError(
                    status: 415,
                    slug: "unsupported-media-type",
                    title: "Unsupported media type",
                    detail: "Send the body as JSON with 'Content-Type: application/json' (got '\(contentType.prefix(100))')."
                )
            }
        }
        var request = self
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw HeraldError.payloadTooLarge(limit: context.maxUploadSize)
        }
        return try JSONBody.decode(type, from: Data(buffer: buffer))
    }
}

/// JSON decoding with errors that name the offending field.
public enum JSONBody {
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw HeraldError.badRequest("The request body is empty; send a JSON object.", slug: "malformed-json")
        }
        do {
            return try JSONDecoder.herald.decode(T.self, from: data)
        } catch let error as DecodingError {
            throw problem(for: error)
        }
    }

    static func path(_ codingPath: [any CodingKey], appending key: (any CodingKey)? = nil) -> String {
        let keys = codingPath + (key.map { [$0] } ?? [])
        let path = keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? "(body)" : path
    }

    static func problem(for error: DecodingError) -> HeraldError {
        switch error {
        case .keyNotFound(let key, let context):
            return .validation(field: path(context.codingPath, appending: key), "is required")
        case .valueNotFound(_, let context):
            return .validation(field: path(context.codingPath), "must not be null")
        case .typeMismatch(let expected, let context):
            if context.codingPath.isEmpty {
                return .badRequest("The request body must be a JSON \(describe(expected)).", slug: "malformed-json")
            }
            return .validation(field: path(context.codingPath), "must be \(describe(expected))")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .badRequest("The request body is not valid JSON.", slug: "malformed-json")
            }
            return .validation(field: path(context.codingPath), context.debugDescription)
        @unknown default:
            return .badRequest("The request body could not be read.", slug: "malformed-json")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        let name = String(describing: type)
        switch name {
        case "String": return "a string"
        case "Int", "Int64", "Int32", "Double", "Float", "UInt8": return "a number"
        case "Bool": return "true or false"
        case _ where name.hasPrefix("Array") || name.hasPrefix("["): return "an array"
        case _ where name.hasPrefix("Dictionary"): return "an object"
        default: return "an object"
        }
    }
}
