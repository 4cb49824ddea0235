import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

struct Organization: Sendable {
    var id: UUID
    var name: String
    var createdBy: UUID
    var createdAt: Date
    var updatedAt: Date
}

struct Member: Sendable {
    var userId: UUID
    var email: String
    var name: String
    var role: Role
    var joinedAt: Date
}

/// Organizations and memberships. Every query runs in a tenant scope; PostgreSQL's policies enforce it again.
struct OrganizationStore: Sendable {
    let cipher: FieldCipher
    typealias T = UsersTables

    func insert(_ organization: Organization, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.organizations) (id, name, created_by, created_at, updated_at)
            VALUES (\(organization.id), \(organization.name), \(organization.createdBy), \(organization.createdAt), \(organization.updatedAt))
            """
        )
    }

    /// Every organization's id: only complete for a role that bypasses row-level security on PostgreSQL.
    static func allIds(in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query("SELECT id FROM \(T.organizations) ORDER BY id").map { try $0.get("id") }
    }

    func find(_ id: UUID, in tx: any SQLExecutor) async throws -> Organization? {
        try await tx.queryFirst("SELECT * FROM \(T.organizations) WHERE id = \(id)").map(decodeOrganization)
    }

    func rename(_ id: UUID, to name: String, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute("UPDATE \(T.organizations) SET name = \(name), updated_at = \(now) WHERE id = \(id)")
    }

    /// The organizations a user belongs to, with their role, oldest membership first.
    func list(forUser userId: UUID, in tx: any SQLExecutor) async throws -> [(Organization, Role)] {
        let rows = try await tx.query(
            """
            SELECT o.*, m.role FROM \(T.memberships) m JOIN \(T.organizations) o ON o.id = m.organization_id
            WHERE m.user_id = \(userId) ORDER BY m.created_at, o.id
            """
        )
        return try rows.map { (try decodeOrganization($0), try decodeRole($0)) }
    }

    func addMember(_ userId: UUID, to organizationId: UUID, role: Role, now: Date, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                INSERT INTO \(T.memberships) (organization_id, user_id, role, created_at)
                VALUES (\(organizationId), \(userId), \(role.rawValue), \(now))
                """
            )
        } catch StorageError.uniqueViolation {
            throw HeraldError.conflict("You are already a member of this organization.", slug: "already-member")
        }
    }

    func role(of userId: UUID, in organizationId: UUID, tx: any SQLExecutor) async throws -> Role? {
        try await tx.queryFirst(
            "SELECT role FROM \(T.memberships) WHERE organization_id = \(organizationId) AND user_id = \(userId)"
        ).map(decodeRole)
    }

    func members(of organizationId: UUID, in tx: any SQLExecutor) async throws -> [Member] {
        let rows = try await tx.query(
            """
            SELECT m.user_id, m.role, m.created_at, a.email_encrypted, a.name_encrypted
            FROM \(T.memberships) m JOIN \(T.accounts) a ON a.id = m.user_id
            WHERE m.organization_id = \(organizationId) ORDER BY m.created_at, m.user_id
            """
        )
        return try rows.map { row in
            let userId: UUID = try row.get("user_id")
            return Member(
                userId: userId,
                email: try cipher.decrypt(try row.get("email_encrypted"), context: "users.accounts.email:\(userId.lowercased)"),
                name: try cipher.decrypt(try row.get("name_encrypted"), context: "users.accounts.name:\(userId.lowercased)"),
                role: try decodeRole(row),
                joinedAt: try row.get("created_at")
            )
        }
    }

    func setRole(_ role: Role, of userId: UUID, in organizationId: UUID, tx: any SQLExecutor) async throws {
        try await tx.execute(
            "UPDATE \(T.memberships) SET role = \(role.rawValue) WHERE organization_id = \(organizationId) AND user_id = \(userId)"
        )
    }

    func removeMember(_ userId: UUID, from organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.memberships) WHERE organization_id = \(organizationId) AND user_id = \(userId)")
    }

    func ownerCount(of organizationId: UUID, in tx: any SQLExecutor) async throws -> Int {
        let row = try await tx.queryFirst(
            "SELECT COUNT(*) AS owners FROM \(T.memberships) WHERE organization_id = \(organizationId) AND role = 'owner'"
        )
        return try row?.get("owners") ?? 0
    }

    /// A member's role, for the authorization directory (which has no cipher).
    static func role(of userId: UUID, in organizationId: UUID, tx: any SQLExecutor) async throws -> Role? {
        let row = try await tx.queryFirst(
            "SELECT role FROM \(UsersTables.memberships) WHERE organization_id = \(organizationId) AND user_id = \(userId)"
        )
        return try row.flatMap { Role(rawValue: try $0.get("role", as: String.self)) }
    }

    func decodeOrganization(_ row: SQLRow) throws -> Organization {
        Organization(
            id: try row.get("id"),
            name: try row.get("name"),
            createdBy: try row.get("created_by"),
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }

    func decodeRole(_ row: SQLRow) throws -> Role {
        let text: String = try row.get("role")
        guard let role = Role(rawValue: text) else { throw StorageError.other("unknown role \(text)") }
        return role
    }
}
