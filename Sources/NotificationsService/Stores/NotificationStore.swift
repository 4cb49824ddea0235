import Foundation
import HeraldCore
import HeraldStorage

/// Notifications with their targeting rules and A/B variants, and custom templates.
struct NotificationStore: Sendable {
    typealias T = NotificationsTables

    func insert(_ notification: Notification, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            INSERT INTO \(T.notifications) (id, site_id, organization_id, name, type, status, template_id, message, settings, content,
                created_at, updated_at, published_at)
            VALUES (\(notification.id), \(notification.siteId), \(notification.organizationId), \(notification.name),
                \(notification.type.rawValue), \(notification.status.rawValue), \(notification.templateId), \(notification.message),
                \(try SQLJSON(encoding: notification.settings)), \(try SQLJSON(encoding: notification.content)),
                \(notification.createdAt), \(notification.updatedAt), \(notification.publishedAt))
            """
        )
        try await saveRules(notification, in: tx)
        try await saveVariants(notification, in: tx)
    }

    func update(_ notification: Notification, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.notifications) SET name = \(notification.name), status = \(notification.status.rawValue),
                template_id = \(notification.templateId), message = \(notification.message),
                settings = \(try SQLJSON(encoding: notification.settings)), content = \(try SQLJSON(encoding: notification.content)),
                updated_at = \(notification.updatedAt), published_at = \(notification.publishedAt)
            WHERE id = \(notification.id) AND site_id = \(notification.siteId)
            """
        )
        try await saveRules(notification, in: tx)
        try await saveVariants(notification, in: tx)
    }

    func setStatus(_ notification: Notification, in tx: any SQLExecutor) async throws {
        try await tx.execute(
            """
            UPDATE \(T.notifications) SET status = \(notification.status.rawValue), updated_at = \(notification.updatedAt),
                published_at = \(notification.publishedAt)
            WHERE id = \(notification.id) AND site_id = \(notification.siteId)
            """
        )
    }

    func delete(_ notification: Notification, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.notifications) WHERE id = \(notification.id) AND site_id = \(notification.siteId)")
    }

    private func saveRules(_ notification: Notification, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(T.targetingRules) WHERE notification_id = \(notification.id)")
        if let rules = notification.rules {
            try await tx.execute(
                """
                INSERT INTO \(T.targetingRules) (notification_id, organization_id, rules)
                VALUES (\(notification.id), \(notification.organizationId), \(try SQLJSON(encoding: rules)))
                """
            )
        }
    }

    /// Variants belong to the notification's A/B test; the test exists while there are variants.
    private func saveVariants(_ notification: Notification, in tx: any SQLExecutor) async throws {
        guard let testId = notification.abTestId, !notification.variants.isEmpty else {
            try await tx.execute("DELETE FROM \(T.abTests) WHERE notification_id = \(notification.id)")
            return
        }
        try await tx.execute(
            """
            INSERT INTO \(T.abTests) (id, notification_id, organization_id, created_at)
            VALUES (\(testId), \(notification.id), \(notification.organizationId), \(notification.updatedAt))
            ON CONFLICT (notification_id) DO NOTHING
            """
        )
        try await tx.execute("DELETE FROM \(T.abTestVariants) WHERE ab_test_id = \(testId)")
        for (position, variant) in notification.variants.enumerated() {
            try await tx.execute(
                """
                INSERT INTO \(T.abTestVariants) (id, ab_test_id, organization_id, position, name, weight, message)
                VALUES (\(variant.id), \(testId), \(notification.organizationId), \(position), \(variant.name), \(variant.weight), \(variant.message))
                """
            )
        }
    }

    func find(_ id: UUID, siteId: UUID, in tx: any SQLExecutor) async throws -> Notification? {
        try await load("WHERE n.id = \(id) AND n.site_id = \(siteId)", in: tx).first
    }

    func list(siteId: UUID, in tx: any SQLExecutor) async throws -> [Notification] {
        try await load("WHERE n.site_id = \(siteId)", in: tx)
    }

    func published(siteId: UUID, in tx: any SQLExecutor) async throws -> [Notification] {
        try await load("WHERE n.site_id = \(siteId) AND n.status = 'published'", in: tx)
    }

    private func load(_ filter: SQL, in tx: any SQLExecutor) async throws -> [Notification] {
        let rows = try await tx.query(
            """
            SELECT n.*, r.rules, t.id AS ab_test_id FROM \(T.notifications) n
            LEFT JOIN \(T.targetingRules) r ON r.notification_id = n.id
            LEFT JOIN \(T.abTests) t ON t.notification_id = n.id
            \(filter) ORDER BY n.created_at, n.id
            """
        )
        var notifications = try rows.map(decode)
        let testIds = notifications.compactMap(\.abTestId)
        if !testIds.isEmpty {
            let variantRows = try await tx.query(
                """
                SELECT * FROM \(T.abTestVariants) WHERE ab_test_id IN (\(SQL.joined(testIds.map { "\($0)" }, separator: ", ")))
                ORDER BY position
                """
            )
            var byTest: [UUID: [Variant]] = [:]
            for row in variantRows {
                let testId: UUID = try row.get("ab_test_id")
                byTest[testId, default: []].append(
                    Variant(id: try row.get("id"), name: try row.get("name"), weight: try row.get("weight"), message: try row.get("message"))
                )
            }
            for index in notifications.indices {
                if let testId = notifications[index].abTestId { notifications[index].variants = byTest[testId] ?? [] }
            }
        }
        return notifications
    }

    func decode(_ row: SQLRow) throws -> Notification {
        let decoder = JSONDecoder.herald
        let settingsText: String = try row.get("settings")
        let contentText: String = try row.get("content")
        let rulesText: String? = try row.get("rules")
        let typeText: String = try row.get("type")
        let statusText: String = try row.get("status")
        return Notification(
            id: try row.get("id"),
            siteId: try row.get("site_id"),
            organizationId: try row.get("organization_id"),
            name: try row.get("name"),
            type: NotificationType(rawValue: typeText) ?? .recentActivity,
            status: NotificationStatus(rawValue: statusText) ?? .draft,
            templateId: try row.get("template_id"),
            message: try row.get("message"),
            settings: try decoder.decode(DisplaySettings.self, from: Data(settingsText.utf8)),
            content: try decoder.decode(NotificationContent.self, from: Data(contentText.utf8)),
            rules: try rulesText.map { try decoder.decode(RuleNode.self, from: Data($0.utf8)) },
            abTestId: try row.get("ab_test_id"),
            variants: [],
            createdAt: try row.get("created_at"),
            updatedAt: try row.get("updated_at"),
            publishedAt: try row.get("published_at")
        )
    }
}
