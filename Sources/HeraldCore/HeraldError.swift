import Foundation

/// One invalid field in a request, named by its JSON path (`email`, `rules.0.value`).
public struct FieldError: Codable, Sendable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// An error that Herald reports to a client as an RFC 9457 problem document.
///
/// Every failure a client can cause is one of these; anything else that escapes a handler is a bug
/// and is reported as a generic 500 without internals.
public struct HeraldError: Error, Sendable, CustomStringConvertible {
    /// HTTP status code.
    public var status: Int
    /// Short slug naming the kind of problem; becomes the problem `type` (`/problems/<slug>`).
    public var slug: String
    /// Human-readable summary that does not change between occurrences.
    public var title: String
    /// Human-readable explanation specific to this occurrence, written so a person can act on it.
    public var detail: String
    /// Invalid fields, for validation problems.
    public var errors: [FieldError]
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: [(String, String)]

    public init(
        status: Int,
        slug: String,
        title: String,
        detail: String,
        errors: [FieldError] = [],
        headers: [(String, String)] = []
    ) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public var description: String { "\(status) \(slug): \(detail)" }

    public static func badRequest(_ detail: String, slug: String = "bad-request") -> HeraldError {
        HeraldError(status: 400, slug: slug, title: "Bad request", detail: detail)
    }

    public static func validation(_ errors: [FieldError], detail: String? = nil) -> HeraldError {
        let summary = errors.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        return HeraldError(
            status: 422,
            slug: "validation-failed",
            title: "Validation failed",
            detail: detail ?? "The request has invalid fields: \(summary)",
            errors: errors
        )
    }

    public static func validation(field: String, _ message: String) -> HeraldError {
        .validation([FieldError(field: field, message: message)])
    }

    public static func unauthorized(_ detail: String = "A valid access token is required.") -> HeraldError {
        HeraldError(
            status: 401,
            slug: "unauthorized",
            title: "Unauthorized",
            detail: detail,
            headers: [("WWW-Authenticate", "Bearer realm=\"herald\"")]
        )
    }

    public static func forbidden(_ detail: String) -> HeraldError {
        HeraldError(status: 403, slug: "forbidden", title: "Forbidden", detail: detail)
    }

    public static func notFound(_ what: String) -> HeraldError {
        HeraldError(status: 404, slug: "not-found", title: "Not found", detail: "\(what) was not found.")
    }

    public static func conflict(_ detail: String, slug: String = "conflict") -> HeraldError {
        HeraldError(status: 409, slug: slug, title: "Conflict", detail: detail)
    }

    public static func tooManyRequests(retryAfter seconds: Int, detail: String) -> HeraldError {
        HeraldError(
            status: 429,
            slug: "rate-limited",
            title: "Too many requests",
            detail: detail,
            headers: [("Retry-After", String(max(1, seconds)))]
        )
    }

    public static func payloadTooLarge(limit: Int) -> HeraldError {
        HeraldError(
            status: 413,
            slug: "payload-too-large",
            title: "Payload too large",
            detail: "The request body is larger than the limit of \(limit) bytes."
        )
    }

    public static func unavailable(_ detail: String) -> HeraldError {
        HeraldError(status: 503, slug: "service-unavailable", title: "Service unavailable", detail: detail)
    }
}

/// An RFC 9457 problem document as sent on the wire (`application/problem+json`).
public struct ProblemDocument: Codable, Sendable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var instance: String?
    public var requestId: String?
    public var errors: [FieldError]?

    public init(_ error: HeraldError, instance: String?, requestId: String?) {
        self.type = "/problems/\(error.slug)"
        self.title = error.title
        self.status = error.status
        self.detail = error.detail
        self.instance = instance
        self.requestId = requestId
        self.errors = error.errors.isEmpty ? nil : error.errors
    }
}
