import Foundation
import HeraldContracts
import HeraldCore
import HeraldHTTP
import HeraldSecurity
import NIOHTTP1
import Synchronization

/// The access directory of a process that does not run the Users service: asks the Users service's internal API
/// (`DirectoryContract`) and keeps each answer a few seconds, so a burst of requests makes one call. A revoked
/// session, a removed member or a rotated key is therefore honoured within `ttl` on other services (5 s by
/// default). When the Users service does not answer, requests that need it fail with 503 and Retry-After; public
/// routes that need no directory (the widget's feed, beacons) are unaffected.
public final class UsersDirectoryClient: AccessDirectory {
    let client: ServiceClient
    let ttl: Duration
    private let cache = Mutex<[String: (answer: Answer, expires: ContinuousClock.Instant)]>([:])
    static let maxEntries = 50_000

    enum Answer: Sendable {
        case role(Role?)
        case site(SiteRef?)
        case session(Bool)
        case delegated(DirectoryContract.DelegatedSessionBody?)
    }

    public init(client: ServiceClient, ttl: Duration = .seconds(5)) {
        self.client = client
        self.ttl = ttl
    }

    public func role(of userId: UUID, in organizationId: UUID) async throws -> Role? {
        let path = DirectoryContract.rolePath(organizationId: organizationId, userId: userId)
        if case .role(let role)? = cached(path) { return role }
        let role = try await fetch(path, DirectoryContract.RoleBody.self)?.role
        store(path, .role(role))
        return role
    }

    public func site(_ siteId: UUID) async throws -> SiteRef? {
        let path = DirectoryContract.sitePath(siteId: siteId)
        if case .site(let site)? = cached(path) { return site }
        let site = try await fetch(path, DirectoryContract.SiteBody.self).map { SiteRef(siteId: $0.siteId, organizationId: $0.organizationId) }
        store(path, .site(site))
        return site
    }

    public func site(forSecretKey key: String) async throws -> SiteRef? {
        guard key.hasPrefix("sk_"), key.utf8.count <= 128 else { return nil }
        // Cached under the key's hash: the secret itself is never kept in memory longer than the request.
        let cacheKey = "sk:" + SecretToken.hash(key).hexString
        if case .site(let site)? = cached(cacheKey) { return site }
        let body = try JSONEncoder().encode(DirectoryContract.SiteKeyLookup(secretKey: key))
        let site = try await fetch(DirectoryContract.siteKeyLookupPath, DirectoryContract.SiteBody.self, post: body)
            .map { SiteRef(siteId: $0.siteId, organizationId: $0.organizationId) }
        store(cacheKey, .site(site))
        return site
    }

    public func isSessionActive(_ sessionId: UUID, userId: UUID) async throws -> Bool {
        let path = DirectoryContract.sessionPath(userId: userId, sessionId: sessionId)
        if case .session(let active)? = cached(path) { return active }
        let active = try await fetch(path, DirectoryContract.SessionBody.self)?.active ?? false
        store(path, .session(active))
        return active
    }

    public func externalSession(token: String) async throws -> ExternalSession? {
        guard let found = try await delegatedSession(.providerToken, token), let organizationId = found.organizationId else { return nil }
        return ExternalSession(userId: found.userId, sessionId: found.sessionId, organizationId: organizationId)
    }

    public func browserSession(secret: String) async throws -> BrowserSession? {
        try await delegatedSession(.browserCookie, secret).map {
            BrowserSession(userId: $0.userId, sessionId: $0.sessionId, organizationId: $0.organizationId)
        }
    }

    /// Cached under the credential's hash, like site keys; a refusal (401) is not cached, its reason is passed on.
    private func delegatedSession(
        _ kind: DirectoryContract.DelegatedSessionLookup.Kind, _ credential: String
    ) async throws
        -> DirectoryContract.DelegatedSessionBody?
    {
        let cacheKey = "\(kind.rawValue):" + SecretToken.hash(credential).hexString
        if case .delegated(let found)? = cached(cacheKey) { return found }
        let body = try JSONEncoder().encode(DirectoryContract.DelegatedSessionLookup(kind: kind, credential: credential))
        let found = try await fetch(DirectoryContract.delegatedSessionLookupPath, DirectoryContract.DelegatedSessionBody.self, post: body)
        store(cacheKey, .delegated(found))
        return found
    }

    /// The decoded answer, nil for 404; anything else is the Users service failing.
    private func fetch<T: Decodable>(_ path: String, _ type: T.Type, post body: Data? = nil) async throws -> T? {
        let answer: (status: Int, body: Data)
        do {
            answer = try await client.send(body == nil ? .GET : .POST, path, json: body)
        } catch let unavailable as ServiceClient.Unavailable {
            let seconds = max(1, Int(unavailable.retryAfter.components.seconds) + (unavailable.retryAfter.components.attoseconds > 0 ? 1 : 0))
            throw HeraldError(
                status: 503, slug: "dependency-unavailable", title: "Service unavailable",
                detail: "Herald cannot check access right now (\(unavailable.description)). Try again in \(seconds) seconds.",
                headers: [("Retry-After", String(seconds))]
            )
        }
        switch answer.status {
        case 200: return try JSONDecoder().decode(T.self, from: answer.body)
        case 404: return nil
        case 422 where path == DirectoryContract.delegatedSessionLookupPath:
            // The Users service refused the credential itself (a provider token failing its checks): say why.
            let detail = (try? JSONDecoder().decode(RefusalBody.self, from: answer.body))?.detail
            throw HeraldError.unauthorized(detail ?? "The credential was refused.")
        default:
            throw HeraldError(
                status: 503, slug: "dependency-unavailable", title: "Service unavailable",
                detail: "The Users service answered \(answer.status) to an access check; check HERALD_INTERNAL_TOKEN on both services.",
                headers: [("Retry-After", "5")]
            )
        }
    }

    /// The detail of the Users service's refusal.
    private struct RefusalBody: Decodable {
        var detail: String?
    }

    private func cached(_ key: String) -> Answer? {
        cache.withLock { cache in
            guard let entry = cache[key] else { return nil }
            guard entry.expires > .now else {
                cache[key] = nil
                return nil
            }
            return entry.answer
        }
    }

    private func store(_ key: String, _ answer: Answer) {
        cache.withLock { cache in
            // Bounded: past the limit the oldest answers go first (expired ones before them).
            if cache.count >= Self.maxEntries {
                let now = ContinuousClock.now
                cache = cache.filter { $0.value.expires > now }
                if cache.count >= Self.maxEntries {
                    for key in cache.sorted(by: { $0.value.expires < $1.value.expires }).prefix(Self.maxEntries / 10).map(\.key) {
                        cache[key] = nil
                    }
                }
            }
            cache[key] = (answer, .now + ttl)
        }
    }
}
