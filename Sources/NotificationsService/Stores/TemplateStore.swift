import Foundation
import HeraldCore
import HeraldStorage

/// A saved message template.
struct StoredTemplate: Sendable {
    var id: UUID
    var siteId: UUID
    var name: String
    var type: NotificationType
    var body: String
    var createdAt: Date
    var updatedAt: Date
}

struct TemplateStore: Sendable {
    typealias T = NotificationsTables

    func insert(_ template: StoredTemplate, organizationId: UUID, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.templates) (id, site_id, organization_id, name, type, body, created_at, updated_at)
            VALUES (\(template.id), \(template.siteId), \(organizationId), \(template.name), \(template.type.rawValue), \(template.body),
                \(template.createdAt), \(template.updatedAt))
            """
        )
    }

    func list(siteId: UUID, in tx: any SQLExecutor) async throws -> [StoredTemplate] {
        try await tx.query("SELECT * FROM \(T.templates) WHERE site_id = \(siteId) ORDER BY created_at, id").map(decode)
    }

    func find(_ id: UUID, siteId: UUID, in tx: any SQLExecutor) async throws -> StoredTemplate? {
        try await tx.queryFirst("SELECT * FROM \(T.templates) WHERE id = \(id) AND site_id = \(siteId)").map(decode)
    }

    func decode(_ row: SQLRow) throws -> StoredTemplate {
        let typeText: String = try row.get("type")
        return StoredTemplate(
            id: try row.get("id"),
            siteId: try row.get("site_id"),
            name: try row.get("name"),
            type: NotificationType(rawValue: typeText) ?? .recentActivity,
            body: try row.get("body"),
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at")
        )
    }
}
