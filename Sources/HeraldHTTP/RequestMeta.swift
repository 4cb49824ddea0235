import Foundation
import HTTPTypes
import Hummingbird

/// Where a request came from, as recorded in audit logs and sessions.
public struct RequestMeta: Sendable {
    public var ip: String
    public var userAgent: String
    public var requestId: String

    public init(ip: String, userAgent: String, requestId: String) {
        self.ip = ip
        self.userAgent = userAgent
        self.requestId = requestId
    }

    public init(request: Request, context: HeraldRequestContext) {
        self.ip = context.clientIP
        self.userAgent = String((request.headers[.userAgent] ?? "").prefix(300))
        self.requestId = context.requestId
    }

    /// For work that does not start from a request (CLI, consumers).
    public static let system = RequestMeta(ip: "", userAgent: "herald", requestId: "")
}
