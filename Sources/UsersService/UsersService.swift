import Foundation
import HeraldCore
import HeraldEvents
import HeraldHTTP
import HeraldModules
import HeraldOIDC
import HeraldSecurity
import HeraldStorage
import Hummingbird
import Logging

/// The Users service: accounts, sign-in sessions, organizations and their members, invitations, sites and
/// their keys, and the audit log. It also answers the authorization questions of every other service
/// (``UsersDirectory``).
public struct UsersService: HeraldModule {
    public static let name = "users"
    let database: any Database
    let bus: any EventBus
    let tokens: AccessTokenService
    let passwords: PasswordHasher
    let cipher: FieldCipher
    let policy: SessionPolicy
    let throttle: LoginThrottle
    let access: AccessControl
    let logger: Logger
    /// Where browsers reach Herald, for the embed snippet (`HERALD_PUBLIC_URL`).
    let publicBaseURL: String
    /// The token other services present on the internal API (HERALD_INTERNAL_TOKEN); nil turns that API off.
    let internalToken: String?

    let accounts: AccountStore
    let sessions: SessionStore
    let organizations: OrganizationStore
    let invitations: InvitationStore
    let scim: SCIMStore
    let rateLimiter: any RateLimiter
    let sites = SiteStore()
    let audit = AuditLogStore()
    let sso: SingleSignOnStore
    let linker: SingleSignOnLinker
    /// Organizations' OpenID Connect providers: discovery, token endpoint and keys, cached.
    let oidc: OIDCClient

    /// How long an invitation can be accepted.
    static let invitationLifetime: TimeInterval = 7 * 86_400

    public init(
        database: any Database,
        bus: any EventBus,
        tokens: AccessTokenService,
        passwords: PasswordHasher,
        cipher: FieldCipher,
        policy: SessionPolicy,
        rateLimiter: any RateLimiter,
        publicBaseURL: String,
        internalToken: String? = nil,
        outbound: OutboundGuard = OutboundGuard(),
        logger: Logger
    ) {
        self.publicBaseURL = publicBaseURL
        self.internalToken = internalToken
        self.database = database
        self.bus = bus
        self.tokens = tokens
        self.passwords = passwords
        self.cipher = cipher
        self.policy = policy
        self.throttle = LoginThrottle(limiter: rateLimiter)
        self.rateLimiter = rateLimiter
        self.logger = logger
        self.accounts = AccountStore(cipher: cipher)
        self.sessions = SessionStore(policy: policy)
        self.organizations = OrganizationStore(cipher: cipher)
        self.invitations = InvitationStore(cipher: cipher)
        self.scim = SCIMStore(cipher: cipher)
        self.sso = SingleSignOnStore(cipher: cipher)
        self.linker = SingleSignOnLinker(accounts: accounts, organizations: organizations, store: sso, audit: audit)
        self.oidc = OIDCClient(outbound: outbound)
        self.access = AccessControl(directory: Self.directory(database: database, policy: policy, cipher: cipher, oidc: oidc))
    }

    /// The authorization directory backed by this service's tables, for in-process use by every service.
    public var directory: any AccessDirectory { access.directory }

    /// The same directory without the rest of the service, for processes that do not run the Users routes.
    public static func directory(database: any Database, policy: SessionPolicy, cipher: FieldCipher, outbound: OutboundGuard) -> any AccessDirectory {
        directory(database: database, policy: policy, cipher: cipher, oidc: OIDCClient(outbound: outbound))
    }

    static func directory(database: any Database, policy: SessionPolicy, cipher: FieldCipher, oidc: OIDCClient) -> UsersDirectory {
        let sessions = SessionStore(policy: policy)
        let store = SingleSignOnStore(cipher: cipher)
        let audit = AuditLogStore()
        let linker = SingleSignOnLinker(
            accounts: AccountStore(cipher: cipher), organizations: OrganizationStore(cipher: cipher), store: store, audit: audit)
        return UsersDirectory(
            database: database, sessions: sessions,
            externalTokens: ExternalSessionTokens(
                database: database, sessions: sessions, store: store, linker: linker, audit: audit, oidc: oidc))
    }

    /// Appends the changes other services audit to the audit log.
    public var consumers: [any EventConsumer] { [AuditConsumer()] }

    /// Adds the service's routes.
    public func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        addAuthRoutes(to: router)
        addAccountRoutes(to: router)
        addOrganizationRoutes(to: router)
        addSiteRoutes(to: router)
        addInternalRoutes(to: router)
        addSingleSignOnRoutes(to: router)
        addBrowserSessionRoutes(to: router)
        addSCIMTokenRoutes(to: router)
        addSCIMRoutes(to: router)
        router.get(".well-known/jwks.json") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [
                    .contentType: "application/jwk-set+json", .cacheControl: "public, max-age=300",
                    .accessControlAllowOrigin: "*", .crossOriginResourcePolicy: "cross-origin",
                ],
                body: ResponseBody(byteBuffer: ByteBuffer(string: tokens.jwksJSON))
            )
        }
    }

    /// Runs `body` in a transaction and wakes event consumers once it committed.
    func write<T: Sendable>(_ scope: TenantScope, _ body: (any SQLExecutor) async throws -> T) async throws -> T {
        let result = try await database.transaction(scope, body)
        bus.didCommitEvents()
        return result
    }
}

/// Answers authorization questions from the Users service's tables. Routing lookups (site → organization,
/// secret key → site) use the tenant-free directory tables; memberships are read in the organization's scope.
public struct UsersDirectory: AccessDirectory {
    let database: any Database
    let sessions: SessionStore
    let externalTokens: ExternalSessionTokens?
    let sites = SiteStore()

    public func externalSession(token: String) async throws -> ExternalSession? {
        try await externalTokens?.session(for: token)
    }

    public func browserSession(secret: String) async throws -> BrowserSession? {
        try await database.transaction(.system) { try await BrowserSessionStore().session(secret: secret, now: Date(), in: $0) }
    }

    public func role(of userId: UUID, in organizationId: UUID) async throws -> Role? {
        try await database.transaction(.organization(organizationId, user: userId)) { tx in
            try await OrganizationStore.role(of: userId, in: organizationId, tx: tx)
        }
    }

    public func site(_ siteId: UUID) async throws -> SiteRef? {
        try await database.transaction(.system) { try await sites.route(siteId: siteId, in: $0) }
    }

    public func site(forSecretKey key: String) async throws -> SiteRef? {
        guard key.hasPrefix("sk_"), key.utf8.count <= 128 else { return nil }
        return try await database.transaction(.system) { try await sites.route(secretKey: key, in: $0) }
    }

    public func isSessionActive(_ sessionId: UUID, userId: UUID) async throws -> Bool {
        let now = Date()
        return try await database.transaction(.system) { tx in
            guard let session = try await sessions.find(sessionId: sessionId, in: tx) else { return false }
            return session.userId == userId && sessions.isLive(session, now: now)
        }
    }
}

/// Slows and then refuses repeated failed sign-ins, per account and per client address.
struct LoginThrottle: Sendable {
    let limiter: any RateLimiter
    static let window: Duration = .seconds(15 * 60)
    /// Failures per account in the window before sign-in is refused.
    static let accountLimit = 10
    /// Failures per client address in the window before sign-in is refused.
    static let addressLimit = 50
    /// Failures after which each further failure is answered more slowly.
    static let slowAfter = 3

    func accountKey(_ emailIndex: [UInt8]) -> String { "login:account:" + emailIndex.prefix(16).hexString }
    func addressKey(_ ip: String) -> String { "login:ip:" + ip }

    /// Throws 429 with Retry-After when the account or the address has failed too often.
    func check(emailIndex: [UInt8], ip: String, now: Date) async throws {
        for (key, limit) in [(accountKey(emailIndex), Self.accountLimit), (addressKey(ip), Self.addressLimit)] {
            let (count, oldest) = await limiter.count(key, window: Self.window, now: now)
            if count >= limit {
                let retryAfter = Int(((oldest ?? now).addingTimeInterval(Self.window.seconds)).timeIntervalSince(now).rounded(.up))
                throw HeraldError.tooManyRequests(
                    retryAfter: retryAfter,
                    detail: "Too many failed sign-in attempts. Try again in \(max(1, retryAfter / 60 + 1)) minutes or reset your password."
                )
            }
        }
    }

    /// Records a failure and returns how long to hold the response back.
    func recordFailure(emailIndex: [UInt8], ip: String, now: Date) async -> Duration {
        let failures = await limiter.hit(accountKey(emailIndex), window: Self.window, now: now)
        _ = await limiter.hit(addressKey(ip), window: Self.window, now: now)
        guard failures > Self.slowAfter else { return .zero }
        return .milliseconds(min(250 * (1 << min(failures - Self.slowAfter - 1, 5)), 4000))
    }

    func recordSuccess(emailIndex: [UInt8]) async {
        await limiter.reset(accountKey(emailIndex))
    }
}

extension UsersService {
    /// Versioned migrations, one list per dialect. Never edit a migration that has landed; append a new one.
    ///
    /// Tenant-scoped tables (organizations, memberships, invitations, sites, audit logs) carry row-level security
    /// policies in PostgreSQL, forced on the table owner, keyed on `herald.org_id` / `herald.user_id` which
    /// Herald sets per transaction. Without them a query sees no rows. Routing tables (`site_directory`,
    /// `invitation_tokens`) hold only identifiers and hashes, so keys can be resolved before the tenant is known.
    public static let migrations = MigrationSet(
        owner: "users",
        migrations: [
            UsersMigrations.v1,
            UsersMigrations.v2,
            UsersMigrations.v3,
            UsersMigrations.v4,
            UsersMigrations.v5,
        ]
    )
}

/// The service's migrations, one file each under `Migrations/`.
enum UsersMigrations {}

extension UsersService {
    /// One organization's audit chains after a check.
    public struct AuditChainCheck: Sendable {
        public var organizationId: UUID
        public var valid: Bool
        public var records: Int
        public var broken: [String]
    }

    /// Recomputes the audit chains of every organization (`herald restore` runs it on the restored store). On
    /// PostgreSQL listing every organization needs a role that bypasses row-level security, as backups do.
    public static func checkAuditChains(database: any Database) async throws -> [AuditChainCheck] {
        let organizations = try await database.transaction(.system) { try await OrganizationStore.allIds(in: $0) }
        var checks: [AuditChainCheck] = []
        for organizationId in organizations {
            let verification = try await database.transaction(.organization(organizationId)) {
                try await AuditLogStore().verify(organizationId: organizationId, in: $0)
            }
            checks.append(
                AuditChainCheck(
                    organizationId: organizationId, valid: verification.valid, records: verification.checkedRecords,
                    broken: verification.chains.filter { !$0.valid }.map(\.chain)
                )
            )
        }
        return checks
    }
}
