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
