import Foundation
import HeraldCore
import HeraldSecurity
import HeraldStorage

/// A provisioning token as listed (never its secret).
struct SCIMToken: Sendable {
    var id: UUID
    var organizationId: UUID
    var name: String
    var tokenPrefix: String
    var createdBy: UUID
    var createdAt: Date
    var lastUsedAt: Date?
}

/// A provisioned user: the Herald account it stands for and the attributes the identity provider sent.
struct SCIMUserRecord: Sendable {
    var organizationId: UUID
    var userId: UUID
    /// The SCIM attributes as sent (userName, externalId, name, displayName, emails, active), decrypted.
    var attributes: [String: JSONValue]
    var active: Bool
    var version: Int64
    var createdAt: Date
    var updatedAt: Date

    var userName: String { attributes["userName"]?.stringValue ?? "" }
    var externalId: String? { attributes["externalId"]?.stringValue }
}

struct SCIMGroupRecord: Sendable {
    var id: UUID
    var organizationId: UUID
    var displayName: String
    var externalId: String?
    var role: Role?
    var version: Int64
    var createdAt: Date
    var updatedAt: Date
}

/// SCIM provisioning's rows. Tokens are resolved through the tenant-free directory (hash → organization); every
/// other query runs in the organization's scope. User attributes are encrypted; lookups use keyed hashes.
struct SCIMStore: Sendable {
    let cipher: FieldCipher
    typealias T = UsersTables

    // MARK: Tokens

    func insertToken(_ token: SCIMToken, secret: String, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.scimTokens) (id, organization_id, name, token_prefix, created_by, created_at, last_used_at)
            VALUES (\(token.id), \(token.organizationId), \(token.name), \(token.tokenPrefix), \(token.createdBy), \(token.createdAt), NULL)
            """
        )
        try await tx.execute(
            """
            INSERT INTO \(T.scimTokenDirectory) (token_hash, token_id, organization_id)
            VALUES (\(SecretToken.hash(secret)), \(token.id), \(token.organizationId))
            """
        )
    }

    func tokens(organizationId: UUID, in tx: any SQLExecutor) async throws -> [SCIMToken] {
        try await tx.query("SELECT * FROM \(T.scimTokens) WHERE organization_id = \(organizationId) ORDER BY created_at, id").map(decodeToken)
    }

    func token(_ id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> SCIMToken? {
        try await tx.queryFirst("SELECT * FROM \(T.scimTokens) WHERE id = \(id) AND organization_id = \(organizationId)").map(decodeToken)
    }

    func deleteToken(_ id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.scimTokenDirectory) WHERE token_id = \(id) AND organization_id = \(organizationId)")
        try await tx.execute("DELETE FROM \(T.scimTokens) WHERE id = \(id) AND organization_id = \(organizationId)")
    }

    /// The token and organization a bearer secret belongs to (tenant-free).
    func route(secret: String, in tx: any SQLExecutor) async throws -> (tokenId: UUID, organizationId: UUID)? {
        guard
            let row = try await tx.queryFirst(
                "SELECT token_id, organization_id FROM \(T.scimTokenDirectory) WHERE token_hash = \(SecretToken.hash(secret))"
            )
        else { return nil }
        return (try row.get("token_id"), try row.get("organization_id"))
    }

    func touchToken(_ id: UUID, organizationId: UUID, now: Date, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            "UPDATE \(T.scimTokens) SET last_used_at = \(now) WHERE id = \(id) AND organization_id = \(organizationId)"
        )
    }

    func decodeToken(_ row: SQLRow) throws -> SCIMToken {
        SCIMToken(
            id: try row.get("id"), organizationId: try row.get("organization_id"), name: try row.get("name"),
            tokenPrefix: try row.get("token_prefix"), createdBy: try row.get("created_by"), createdAt: try row.get("created_at"),
            lastUsedAt: try row.get("last_used_at")
        )
    }

    // MARK: Users

    func userNameIndex(_ userName: String, organizationId: UUID) -> [UInt8] {
        // userName is caseExact false (RFC 7643 §4.1.1).
        cipher.blindIndex(organizationId.lowercased + "\u{0}" + userName.lowercased(), purpose: "scim-user-name")
    }

    func externalIdIndex(_ externalId: String, organizationId: UUID) -> [UInt8] {
        cipher.blindIndex(organizationId.lowercased + "\u{0}" + externalId, purpose: "scim-external-id")
    }

    func emailIndex(_ email: String, organizationId: UUID) -> [UInt8] {
        cipher.blindIndex(organizationId.lowercased + "\u{0}" + EmailAddress.normalize(email), purpose: "scim-email")
    }

    private func context(_ record: SCIMUserRecord) -> String {
        "users.scim_users.attributes:\(record.organizationId.lowercased):\(record.userId.lowercased)"
    }

    private func encryptedAttributes(_ record: SCIMUserRecord) throws -> [UInt8] {
        let data = try JSONEncoder.herald.encode(JSONValue.object(record.attributes))
        return try cipher.encrypt(String(decoding: data, as: UTF8.self), context: context(record))
    }

    /// Inserts a provisioned user; a userName already used in the organization, or an account already provisioned,
    /// is a uniqueness conflict.
    func insertUser(_ record: SCIMUserRecord, email: String, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                INSERT INTO \(T.scimUsers) (organization_id, user_id, user_name_index, external_id_index, email_index,
                    attributes_encrypted, active, version, created_at, updated_at)
                VALUES (\(record.organizationId), \(record.userId), \(userNameIndex(record.userName, organizationId: record.organizationId)),
                    \(record.externalId.map { externalIdIndex($0, organizationId: record.organizationId) }),
                    \(emailIndex(email, organizationId: record.organizationId)), \(try encryptedAttributes(record)), \(record.active),
                    \(record.version), \(record.createdAt), \(record.updatedAt))
                """
            )
        } catch StorageError.uniqueViolation {
            throw SCIMError.uniqueness("A user with this userName or email is already provisioned in this organization.")
        }
    }

    func updateUser(_ record: SCIMUserRecord, email: String, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                UPDATE \(T.scimUsers) SET
                    user_name_index = \(userNameIndex(record.userName, organizationId: record.organizationId)),
                    external_id_index = \(record.externalId.map { externalIdIndex($0, organizationId: record.organizationId) }),
                    email_index = \(emailIndex(email, organizationId: record.organizationId)),
                    attributes_encrypted = \(try encryptedAttributes(record)), active = \(record.active), version = \(record.version),
                    updated_at = \(record.updatedAt)
                WHERE organization_id = \(record.organizationId) AND user_id = \(record.userId)
                """
            )
        } catch StorageError.uniqueViolation {
            throw SCIMError.uniqueness("Another provisioned user already has this userName.")
        }
    }

    func deleteUser(_ userId: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.scimGroupMembers) WHERE organization_id = \(organizationId) AND user_id = \(userId)")
        try await tx.execute("DELETE FROM \(T.scimUsers) WHERE organization_id = \(organizationId) AND user_id = \(userId)")
    }

    func user(_ userId: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> SCIMUserRecord? {
        try await tx.queryFirst(
            "SELECT * FROM \(T.scimUsers) WHERE organization_id = \(organizationId) AND user_id = \(userId)"
        ).map(decodeUser)
    }

    /// Users matching one indexed attribute (or all), oldest first: `(total, page)`.
    enum UserLookup: Sendable {
        case all
        case userName(String)
        case externalId(String)
        case email(String)
        case id(UUID)
    }

    func users(
        organizationId: UUID, lookup: UserLookup, offset: Int, limit: Int, in tx: any SQLExecutor
    ) async throws -> (total: Int, users: [SCIMUserRecord]) {
        let condition: SQL
        switch lookup {
        case .all: condition = ""
        case .userName(let value): condition = "AND user_name_index = \(userNameIndex(value, organizationId: organizationId))"
        case .externalId(let value): condition = "AND external_id_index = \(externalIdIndex(value, organizationId: organizationId))"
        case .email(let value): condition = "AND email_index = \(emailIndex(value, organizationId: organizationId))"
        case .id(let value): condition = "AND user_id = \(value)"
        }
        let count = try await tx.queryFirst(
            "SELECT COUNT(*) AS total FROM \(T.scimUsers) WHERE organization_id = \(organizationId) \(condition)"
        )
        let total: Int = try count?.get("total") ?? 0
        guard limit > 0 else { return (total, []) }
        let rows = try await tx.query(
            """
            SELECT * FROM \(T.scimUsers) WHERE organization_id = \(organizationId) \(condition)
            ORDER BY created_at, user_id LIMIT \(limit) OFFSET \(offset)
            """
        )
        return (total, try rows.map(decodeUser))
    }

    func decodeUser(_ row: SQLRow) throws -> SCIMUserRecord {
        var record = SCIMUserRecord(
            organizationId: try row.get("organization_id"), userId: try row.get("user_id"), attributes: [:],
            active: try row.get("active"), version: try row.get("version"), createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
        let text = try cipher.decrypt(try row.get("attributes_encrypted"), context: context(record))
        record.attributes = (try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))).objectValue ?? [:]
        return record
    }

    // MARK: Groups

    static func displayNameKey(_ name: String) -> String { name.lowercased() }

    func insertGroup(_ group: SCIMGroupRecord, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                INSERT INTO \(T.scimGroups) (id, organization_id, display_name, display_name_key, external_id, role, version, created_at, updated_at)
                VALUES (\(group.id), \(group.organizationId), \(group.displayName), \(Self.displayNameKey(group.displayName)),
                    \(group.externalId), \(group.role?.rawValue), \(group.version), \(group.createdAt), \(group.updatedAt))
                """
            )
        } catch StorageError.uniqueViolation {
            throw SCIMError.uniqueness("A group with this displayName already exists in this organization.")
        }
    }

    func updateGroup(_ group: SCIMGroupRecord, in tx: any SQLExecutor) async throws {
        do {
            try await tx.execute(
                """
                UPDATE \(T.scimGroups) SET display_name = \(group.displayName), display_name_key = \(Self.displayNameKey(group.displayName)),
                    external_id = \(group.externalId), role = \(group.role?.rawValue), version = \(group.version), updated_at = \(group.updatedAt)
                WHERE id = \(group.id) AND organization_id = \(group.organizationId)
                """
            )
        } catch StorageError.uniqueViolation {
            throw SCIMError.uniqueness("Another group already has this displayName.")
        }
    }

    func deleteGroup(_ id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.scimGroupMembers) WHERE group_id = \(id) AND organization_id = \(organizationId)")
        try await tx.execute("DELETE FROM \(T.scimGroups) WHERE id = \(id) AND organization_id = \(organizationId)")
    }

    func group(_ id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> SCIMGroupRecord? {
        try await tx.queryFirst("SELECT * FROM \(T.scimGroups) WHERE id = \(id) AND organization_id = \(organizationId)").map(decodeGroup)
    }

    enum GroupLookup: Sendable {
        case all
        case displayName(String)
        case externalId(String)
        case id(UUID)
    }

    func groups(
        organizationId: UUID, lookup: GroupLookup, offset: Int, limit: Int, in tx: any SQLExecutor
    ) async throws -> (total: Int, groups: [SCIMGroupRecord]) {
        let condition: SQL
        switch lookup {
        case .all: condition = ""
        case .displayName(let value): condition = "AND display_name_key = \(Self.displayNameKey(value))"
        case .externalId(let value): condition = "AND external_id = \(value)"
        case .id(let value): condition = "AND id = \(value)"
        }
        let count = try await tx.queryFirst(
            "SELECT COUNT(*) AS total FROM \(T.scimGroups) WHERE organization_id = \(organizationId) \(condition)"
        )
        let total: Int = try count?.get("total") ?? 0
        guard limit > 0 else { return (total, []) }
        let rows = try await tx.query(
            """
            SELECT * FROM \(T.scimGroups) WHERE organization_id = \(organizationId) \(condition)
            ORDER BY created_at, id LIMIT \(limit) OFFSET \(offset)
            """
        )
        return (total, try rows.map(decodeGroup))
    }

    func members(ofGroup id: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> [UUID] {
        try await tx.query(
            "SELECT user_id FROM \(T.scimGroupMembers) WHERE group_id = \(id) AND organization_id = \(organizationId) ORDER BY user_id"
        ).map { try $0.get("user_id") }
    }

    func setMembers(ofGroup id: UUID, organizationId: UUID, to users: [UUID], in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.scimGroupMembers) WHERE group_id = \(id) AND organization_id = \(organizationId)")
        for user in Set(users) {
            try await tx.execute(
                "INSERT INTO \(T.scimGroupMembers) (group_id, user_id, organization_id) VALUES (\(id), \(user), \(organizationId))"
            )
        }
    }

    /// The groups a user belongs to, by name.
    func groups(ofUser userId: UUID, organizationId: UUID, in tx: any SQLExecutor) async throws -> [SCIMGroupRecord] {
        try await tx.query(
            """
            SELECT g.* FROM \(T.scimGroupMembers) m JOIN \(T.scimGroups) g ON g.id = m.group_id
            WHERE m.organization_id = \(organizationId) AND m.user_id = \(userId) ORDER BY g.display_name_key
            """
        ).map(decodeGroup)
    }

    func decodeGroup(_ row: SQLRow) throws -> SCIMGroupRecord {
        let role: String? = try row.get("role")
        return SCIMGroupRecord(
            id: try row.get("id"), organizationId: try row.get("organization_id"), displayName: try row.get("display_name"),
            externalId: try row.get("external_id"), role: role.flatMap(Role.init(rawValue:)), version: try row.get("version"),
            createdAt: try row.get("created_at"), updatedAt: try row.get("updated_at")
        )
    }
}
