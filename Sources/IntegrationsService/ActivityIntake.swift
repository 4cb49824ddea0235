import Crypto
import Foundation
import HTTPTypes
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird
import NIOCore

/// The answer to a captured activity (and to its idempotent replays).
struct CapturedBody: Codable, Sendable {
    var id: UUID
    var siteId: UUID
    var type: String
    var status: String
    var occurredAt: Date
    var provenance: Provenance
}

extension IntegrationsService {
    static let idempotencyLifetime: TimeInterval = 86_400

    /// Records a real event from the site's server (secret key) or a member, and publishes `activity.captured`.
    /// With an `Idempotency-Key`, a retried request returns the first answer and records nothing twice.
    @Sendable func captureActivity(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        try await capture(request, context: context, grant: try await access.site(from: context, .activitiesWrite), source: "api")
    }

    /// Records an activity sent by an API client or a Zap, once the caller may record activities on the site.
    func capture(_ request: Request, context: HeraldRequestContext, grant: SiteAccess, source: String) async throws -> Response {
        let siteId = grant.siteId
        let idempotencyKey = try Self.idempotencyKey(request)
        let body = try await BodyReader(request: request, context: context).decode(as: ActivityRequest.self)
        let now = Date()
        let activityId = UUID.v7(at: now)
        let provenance = Provenance(
            source: source, receivedAt: now, signatureVerified: false,
            authenticatedBy: grant.userId.map { "user:\($0.lowercased)" } ?? "site-key"
        )
        let event = try body.validated(id: activityId, siteId: siteId, now: now, provenance: provenance, cipher: cipher)
        let requestHash = Self.hash(of: body)

        if let replay = try await replayIfKnown(idempotencyKey, siteId: siteId, hash: requestHash, grant: grant) { return replay }
        try await throttle(siteId: siteId, now: now)

        let answer = CapturedBody(
            id: activityId, siteId: siteId, type: event.type, status: "accepted", occurredAt: event.occurredAt, provenance: provenance)
        let encoded = String(decoding: try JSONEncoder.herald.encode(answer), as: UTF8.self)
        let stored: (status: Int, body: String)? = try await database.transaction(grant.scope) { tx in
            if let key = idempotencyKey {
                let inserted = try await IdempotencyStore().insert(
                    key: key, siteId: siteId, organizationId: grant.organizationId, requestHash: requestHash, status: 202, response: encoded,
                    now: now,
                    in: tx
                )
                // A concurrent request with the same key won: answer as it did.
                if !inserted { return try await Self.storedAnswer(key, siteId: siteId, hash: requestHash, in: tx) }
            }
            try await Outbox.append(event, organizationId: grant.organizationId, siteId: siteId, in: tx)
            return nil
        }
        if let stored { return Self.response(status: stored.status, body: stored.body, replayed: true) }
        bus.didCommitEvents()
        return Self.response(status: 202, body: encoded, replayed: false)
    }

    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x21 && $0.value < 0x7F }) else {
            throw HeraldError.badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters, such as a UUID.", slug: "bad-idempotency-key")
        }
        return key
    }

    /// The canonical request: the decoded fields, so whitespace or key order do not make two retries differ.
    static func hash(of body: ActivityRequest) -> String {
        let data = (try? JSONEncoder.herald.encode(body)) ?? Data()
        return SHA256.hash(data: data).hexString
    }

    func replayIfKnown(_ key: String?, siteId: UUID, hash: String, grant: SiteAccess) async throws -> Response? {
        guard let key else { return nil }
        let stored = try await database.transaction(grant.scope) { tx in
            try await Self.storedAnswer(key, siteId: siteId, hash: hash, in: tx)
        }
        return stored.map { Self.response(status: $0.status, body: $0.body, replayed: true) }
    }

    static func storedAnswer(_ key: String, siteId: UUID, hash: String, in tx: any SQLExecutor) async throws -> (status: Int, body: String)? {
        guard
            let answer = try await IdempotencyStore().find(
                key: key, siteId: siteId, since: Date().addingTimeInterval(-idempotencyLifetime), in: tx
            )
        else { return nil }
        guard answer.requestHash == hash else {
            throw HeraldError(
                status: 422, slug: "idempotency-key-reused", title: "Idempotency key reused",
                detail: "This Idempotency-Key was already used with a different request. Use a new key for a new activity."
            )
        }
        return (answer.status, answer.body)
    }

    static func response(status: Int, body: String, replayed: Bool) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if replayed { headers[.known("Idempotent-Replayed")] = "true" }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    func throttle(siteId: UUID, now: Date) async throws {
        let count = await limiter.hit("activities:\(siteId.lowercased)", window: .seconds(60), now: now)
        if count > options.activitiesPerMinute {
            throw HeraldError.tooManyRequests(
                retryAfter: 60,
                detail: "This site records at most \(options.activitiesPerMinute) activities a minute. Send fewer, or batch them over time."
            )
        }
    }
}

/// The body of `POST /sites/{siteId}/activities`: flat camelCase fields.
struct ActivityRequest: Codable, Sendable {
    init() {}

    var type: String?
    var firstName: String?
    var lastName: String?
    var email: String?
    var city: String?
    var region: String?
    var country: String?
    var productName: String?
    var productUrl: String?
    var imageUrl: String?
    var rating: Int?
    var occurredAt: Date?

    /// Checks every field and builds the event; last name and email are encrypted before they leave here.
    func validated(id: UUID, siteId: UUID, now: Date, provenance: Provenance, cipher: FieldCipher) throws -> ActivityCaptured {
        var validator = Validator()
        let type = validator.requireText(type, field: "type", maxLength: 32).lowercased()
        if !type.isEmpty && !ActivityTypes.isValid(type) {
            validator.add("type", "must be a lowercase word such as purchase, signup, review or custom (letters, digits, _)")
        }
        let firstName = validator.optionalText(firstName, field: "firstName", maxLength: 100)
        let lastName = validator.optionalText(lastName, field: "lastName", maxLength: 100)
        let email = email.map { validator.requireEmail($0, field: "email") }
        let city = validator.optionalText(city, field: "city", maxLength: 100)
        let region = validator.optionalText(region, field: "region", maxLength: 100)
        let country = validator.optionalText(country, field: "country", maxLength: 100)
        let productName = validator.optionalText(productName, field: "productName", maxLength: 200)
        for (field, value) in [("productUrl", productUrl), ("imageUrl", imageUrl)] {
            if let value, WebURL.validated(value) == nil { validator.add(field, "must be an absolute http or https URL") }
        }
        if let rating, !(1...5).contains(rating) { validator.add("rating", "must be a whole number from 1 to 5") }
        if let occurredAt, occurredAt > now.addingTimeInterval(300) {
            validator.add("occurredAt", "is in the future; send when the activity happened (RFC 3339, e.g. 2026-11-29T10:15:00Z)")
        }
        try validator.check()
        func sealed(_ value: String?, _ name: String) throws -> String? {
            try value.map { Data(try cipher.encrypt($0, context: "activity:\(id.lowercased):\(name)")).base64EncodedString() }
        }
        return ActivityCaptured(
            activityId: id, siteId: siteId, type: type, firstName: firstName, city: city, region: region, country: country,
            productName: productName, productUrl: productUrl.flatMap(WebURL.validated), imageUrl: imageUrl.flatMap(WebURL.validated),
            rating: rating, occurredAt: occurredAt ?? now, lastNameEncrypted: try sealed(lastName, "lastName"),
            emailEncrypted: try sealed(email, "email"), provenance: provenance
        )
    }
}
