import Foundation
import HeraldContracts
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldSecurity
import HeraldStorage
import Hummingbird

struct SiteRequest: Decodable {
    var name: String?
    var domain: String?
    var timezone: String?
}

extension UsersService {
    func addSiteRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        router.get("organizations/:orgId/sites", use: listSites)
        router.post("organizations/:orgId/sites", use: createSite)
        let site = router.group("sites/:siteId")
        site.get(use: getSite)
        site.patch(use: updateSite)
        site.delete(use: deleteSite)
        site.post("keys/rotate", use: rotateSiteKeys)
    }

    static func newKeys() -> (publicKey: String, secretKey: String) {
        (SecretToken.make(prefix: "pk_", bytes: 18), SecretToken.make(prefix: "sk_", bytes: 32))
    }

    func siteChanged(_ site: Site) -> SiteUpdated {
        SiteUpdated(
            siteId: site.id, organizationId: site.organizationId, name: site.name, domain: site.domain, timezone: site.timezone,
            publicKey: site.publicKey
        )
    }

    @Sendable func listSites(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<Page<SiteBody>> {
        let grant = try await access.organization(from: context, .sitesRead)
        let list = try await database.transaction(grant.scope) { try await sites.list(organizationId: grant.organizationId, in: $0) }
        return JSONResponse(Page(items: list.map { SiteBody($0, publicBaseURL: publicBaseURL) }))
    }

    @Sendable func createSite(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SiteBody> {
        let grant = try await access.organization(from: context, .sitesManage)
        let body = try await BodyReader(request: request, context: context).decode(as: SiteRequest.self)
        var validator = Validator()
        let name = validator.requireText(body.name, field: "name", maxLength: 100)
        let domain = SiteDomain.validate(body.domain, field: "domain", into: &validator) ?? ""
        let timezone = SiteDomain.validateTimeZone(body.timezone, field: "timezone", into: &validator) ?? "UTC"
        try validator.check()
        let now = Date()
        let keys = Self.newKeys()
        let site = Site(
            id: .v7(at: now), organizationId: grant.organizationId, name: name, domain: domain, timezone: timezone,
            publicKey: keys.publicKey, createdAt: now, updatedAt: now, keysRotatedAt: now
        )
        let meta = RequestMeta(request: request, context: context)
        try await write(grant.scope) { tx in
            try await sites.insert(site, secretKey: keys.secretKey, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "site.created", organizationId: grant.organizationId, actorUserId: grant.userId, targetType: "site",
                    targetId: site.id.lowercased, details: ["name": name, "domain": domain], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                SiteCreated(
                    siteId: site.id, organizationId: site.organizationId, name: name, domain: domain, timezone: timezone,
                    publicKey: site.publicKey
                ),
                organizationId: grant.organizationId,
                siteId: site.id,
                in: tx
            )
        }
        return JSONResponse(SiteBody(site, secretKey: keys.secretKey, publicBaseURL: publicBaseURL), status: .created)
    }

    func loadSite(_ grant: SiteAccess, in tx: any SQLExecutor) async throws -> Site {
        guard let site = try await sites.find(grant.siteId, organizationId: grant.organizationId, in: tx) else {
            throw HeraldError.notFound("Site \(grant.siteId.lowercased)")
        }
        return site
    }

    @Sendable func getSite(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SiteBody> {
        let grant = try await access.site(from: context, .sitesRead)
        let site = try await database.transaction(grant.scope) { try await loadSite(grant, in: $0) }
        return JSONResponse(SiteBody(site, publicBaseURL: publicBaseURL))
    }

    @Sendable func updateSite(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SiteBody> {
        let grant = try await access.site(from: context, .sitesManage)
        let body = try await BodyReader(request: request, context: context).decode(as: SiteRequest.self)
        var validator = Validator()
        let name = validator.optionalText(body.name, field: "name", maxLength: 100)
        let domain = body.domain == nil ? nil : SiteDomain.validate(body.domain, field: "domain", into: &validator)
        let timezone = SiteDomain.validateTimeZone(body.timezone, field: "timezone", into: &validator)
        try validator.check()
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        let site = try await write(grant.scope) { tx -> Site in
            var site = try await loadSite(grant, in: tx)
            var changed: [String] = []
            if let name, name != site.name {
                site.name = name
                changed.append("name")
            }
            if let domain, domain != site.domain {
                site.domain = domain
                changed.append("domain")
            }
            if let timezone, timezone != site.timezone {
                site.timezone = timezone
                changed.append("timezone")
            }
            guard !changed.isEmpty else { return site }
            site.updatedAt = now
            try await sites.update(site, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "site.updated", organizationId: grant.organizationId, actorUserId: grant.userId, targetType: "site",
                    targetId: site.id.lowercased, details: ["fields": changed.joined(separator: ",")], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(siteChanged(site), organizationId: grant.organizationId, siteId: site.id, in: tx)
            return site
        }
        return JSONResponse(SiteBody(site, publicBaseURL: publicBaseURL))
    }

    @Sendable func deleteSite(_ request: Request, context: HeraldRequestContext) async throws -> Response {
        let grant = try await access.site(from: context, .sitesManage)
        let now = Date()
        let meta = RequestMeta(request: request, context: context)
        try await write(grant.scope) { tx in
            let site = try await loadSite(grant, in: tx)
            try await sites.delete(site, in: tx)
            try await audit.append(
                AuditEntry(
                    action: "site.deleted", organizationId: grant.organizationId, actorUserId: grant.userId, targetType: "site",
                    targetId: site.id.lowercased, details: ["name": site.name, "domain": site.domain], meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                SiteDeleted(siteId: site.id, organizationId: site.organizationId),
                organizationId: grant.organizationId,
                siteId: site.id,
                in: tx
            )
        }
        return Response(status: .noContent)
    }

    /// Replaces the site's secret key; the old one stops working at once. The widget's public key is kept,
    /// so pages that embed the site need no change.
    @Sendable func rotateSiteKeys(_ request: Request, context: HeraldRequestContext) async throws -> JSONResponse<SiteBody> {
        let grant = try await access.site(from: context, .siteKeysRotate)
        let now = Date()
        let secretKey = Self.newKeys().secretKey
        let meta = RequestMeta(request: request, context: context)
        let site = try await write(grant.scope) { tx -> Site in
            var site = try await loadSite(grant, in: tx)
            try await sites.rotateSecret(site, to: secretKey, now: now, in: tx)
            site.keysRotatedAt = now
            site.updatedAt = now
            try await audit.append(
                AuditEntry(
                    action: "site.keys_rotated", organizationId: grant.organizationId, actorUserId: grant.userId,
                    targetType: "site", targetId: site.id.lowercased, meta: meta),
                now: now,
                in: tx
            )
            try await Outbox.append(
                SiteKeysRotated(siteId: site.id, organizationId: site.organizationId, publicKey: site.publicKey, rotatedAt: now),
                organizationId: grant.organizationId,
                siteId: site.id,
                in: tx
            )
            return site
        }
        return JSONResponse(SiteBody(site, secretKey: secretKey, publicBaseURL: publicBaseURL), headers: tokenHeaders)
    }
}

/// Site domains: a host name (or `localhost`, or an IP address), optionally with a port. A pasted URL is
/// reduced to its host so `https://shop.example.com/` is accepted as `shop.example.com`.
enum SiteDomain {
    static func validate(_ value: String?, field: String, into validator: inout Validator) -> String? {
        guard let value else {
            validator.add(field, "is required")
            return nil
        }
        guard let domain = normalize(value) else {
            validator.add(field, "must be a host name like shop.example.com (use the xn-- form for international names)")
            return nil
        }
        return domain
    }

    static func normalize(_ value: String) -> String? {
        var text = value.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text.removeFirst(scheme.count) }
        if let end = text.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { text = String(text[..<end]) }
        if text.hasSuffix(".") { text.removeLast() }
        guard !text.isEmpty, text.count <= 260 else { return nil }
        var host = text
        if let colon = text.lastIndex(of: ":") {
            guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            host = String(text[..<colon])
        }
        if host == "localhost" || (IPAddress.parseIPv4(host) != nil) { return text }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, host.count <= 253 else { return nil }
        for label in labels {
            guard !label.isEmpty, label.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-"),
                label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
            else { return nil }
        }
        return text
    }

    static func validateTimeZone(_ value: String?, field: String, into validator: inout Validator) -> String? {
        guard let value else { return nil }
        guard value.count <= 64, TimeZone(identifier: value) != nil, value.contains("/") || value == "UTC" else {
            validator.add(field, "must be an IANA time zone such as Europe/Paris or UTC")
            return nil
        }
        return value
    }
}
