import Foundation
import HTTPTypes
import HeraldCore
import Hummingbird
import NIOCore
import NIOFoundationCompat

/// A JSON response with a chosen status and extra headers, encoded with Herald's encoder.
public struct JSONResponse<Body: Encodable & Sendable>: ResponseGenerator {
    public var status: HTTPResponse.Status
    public var body: Body
    public var headers: HTTPFields

    public init(_ body: Body, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder.herald
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = try encoder.encode(body)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
    }
}

/// A page of a list. Every list endpoint answers with this shape.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var items: [Item]
    /// Pass as `cursor` to get the next page; absent on the last page.
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String? = nil) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

extension Request {
    /// A `limit` query parameter between 1 and `max`, `default` when absent; a bad value is a 422 naming it.
    public func limit(default defaultValue: Int = 50, max: Int = 200) throws -> Int {
        guard let text = uri.queryParameters.get("limit") else { return defaultValue }
        guard let value = Int(text), (1...max).contains(value) else {
            throw HeraldError.validation(field: "limit", "must be a whole number from 1 to \(max)")
        }
        return value
    }
}
