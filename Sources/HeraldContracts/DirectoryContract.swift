import Foundation
import HeraldCore
import HeraldSecurity

/// The Users service's internal API, which answers the authorization questions of services running in other
/// processes (`HERALD_USERS_URL`): memberships, site ownership, site keys and live sessions. Callers present
/// `Authorization: Bearer <HERALD_INTERNAL_TOKEN>`; between processes it travels on mutual TLS.
public enum DirectoryContract {
    public static func rolePath(organizationId: UUID, userId: UUID) -> String {
        "/internal/v1/organizations/\(organizationId.uuidString.lowercased())/members/\(userId.uuidString.lowercased())/role"
    }

    public static func sitePath(siteId: UUID) -> String {
        "/internal/v1/sites/\(siteId.uuidString.lowercased())"
    }

    /// A POST, so a secret key never appears in a URL or an access log.
    public static let siteKeyLookupPath = "/internal/v1/site-keys/lookup"

    public static func sessionPath(userId: UUID, sessionId: UUID) -> String {
        "/internal/v1/users/\(userId.uuidString.lowercased())/sessions/\(sessionId.uuidString.lowercased())"
    }

    /// A POST: the credential is a bearer secret (a provider's session token, a dashboard cookie's secret).
    public static let delegatedSessionLookupPath = "/internal/v1/delegated-sessions/lookup"

    /// A session that another credential stands for: a provider's session token (`provider-token`) or the
    /// dashboard's cookie (`browser-cookie`).
    public struct DelegatedSessionLookup: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case providerToken = "provider-token", browserCookie = "browser-cookie" }
        public var kind: Kind
        public var credential: String

        public init(kind: Kind, credential: String) {
            self.kind = kind
            self.credential = credential
        }
    }

    public struct DelegatedSessionBody: Codable, Sendable, Equatable {
        public var userId: UUID
        public var sessionId: UUID
        /// The one organization the session acts in, if it is limited.
        public var organizationId: UUID?

        public init(userId: UUID, sessionId: UUID, organizationId: UUID?) {
            self.userId = userId
            self.sessionId = sessionId
            self.organizationId = organizationId
        }
    }

    public struct RoleBody: Codable, Sendable, Equatable {
        public var role: Role

        public init(role: Role) {
            self.role = role
        }
    }

    public struct SiteBody: Codable, Sendable, Equatable {
        public var siteId: UUID
        public var organizationId: UUID

        public init(siteId: UUID, organizationId: UUID) {
            self.siteId = siteId
            self.organizationId = organizationId
        }
    }

    public struct SiteKeyLookup: Codable, Sendable, Equatable {
        public var secretKey: String

        public init(secretKey: String) {
            self.secretKey = secretKey
        }
    }

    public struct SessionBody: Codable, Sendable, Equatable {
        public var active: Bool

        public init(active: Bool) {
            self.active = active
        }
    }
}
