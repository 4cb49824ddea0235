import Foundation
import HTTPTypes
import HeraldCore
import HummingbirdTesting
import NIOCore
import Testing

/// Changes made in the Notifications, Integrations and Analytics services reach the organization's hash-chained
/// audit log (kept by the Users service) through `audit.recorded` events, and the chain still verifies.
@Suite("Audit trail across services")
struct AuditTrailTests {
    @Test(arguments: TestStore.available)
    func everyServiceAuditsItsChanges(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let token = fixture.token
            let site = "/sites/\(fixture.site)"

            // Notifications: create, update, publish, pause, delete; a template.
            let created = try await client.call(
                .post, "\(site)/notifications", json: ["name": "Recent buyers", "type": "recent_activity"], token: token)
            try #require(created.status == .created, "\(created.text)")
            let notification = try #require(created["id"])
            #expect(try await client.call(.patch, "\(site)/notifications/\(notification)", json: ["name": "Buyers"], token: token).status == .ok)
            #expect(try await client.call(.post, "\(site)/notifications/\(notification)/publish", token: token).status == .ok)
            #expect(try await client.call(.post, "\(site)/notifications/\(notification)/pause", token: token).status == .ok)
            #expect(try await client.call(.delete, "\(site)/notifications/\(notification)", token: token).status == .noContent)
            let template = try await client.call(
                .post, "\(site)/templates", json: ["name": "Short", "type": "recent_activity", "body": "{{firstName}} bought"], token: token)
            #expect(template.status == .created, "\(template.text)")

            // Integrations: create, update, delete; a webhook endpoint: create, update, rotate the secret, delete.
            let integration = try await client.call(
                .post, "\(site)/integrations",
                json: [
                    "type": "woocommerce", "name": "Shop", "config": ["storeUrl": "https://shop.example.com", "webhookSecret": "woo-secret-value"],
                ],
                token: token
            )
            try #require(integration.status == .created, "\(integration.text)")
            let integrationId = try #require(integration["id"])
            #expect(try await client.call(.put, "\(site)/integrations/\(integrationId)", json: ["name": "Woo"], token: token).status == .ok)
            #expect(try await client.call(.delete, "\(site)/integrations/\(integrationId)", token: token).status == .noContent)
            let endpoint = try await client.call(
                .post, "\(site)/webhooks", json: ["url": "https://93.184.216.34/hook", "eventTypes": ["activity.captured"]], token: token)
            try #require(endpoint.status == .created, "\(endpoint.text)")
            let endpointId = try #require(endpoint["id"])
            #expect(try await client.call(.patch, "\(site)/webhooks/\(endpointId)", json: ["description": "CRM"], token: token).status == .ok)
            #expect(try await client.call(.post, "\(site)/webhooks/\(endpointId)/rotate-secret", token: token).status == .ok)
            #expect(try await client.call(.delete, "\(site)/webhooks/\(endpointId)", token: token).status == .noContent)

            // Analytics: a scheduled report created, updated and deleted, and an export. The Analytics service learns
            // about the site from its event too.
            var report = JSONResult(status: .notFound, headers: [:], body: .init())
            try await eventually("the site to reach the analytics service") {
                report = try await client.call(
                    .post, "\(site)/analytics/scheduled-reports",
                    json: ["name": "Weekly", "frequency": "weekly", "recipients": ["owner@example.com"]], token: token
                )
                return report.status == .created
            }
            let reportId = try #require(report["id"])
            let renamed = try await client.call(.patch, "\(site)/analytics/scheduled-reports/\(reportId)", json: ["name": "Monday"], token: token)
            #expect(renamed.status == .ok, "\(renamed.text)")
            #expect(try await client.call(.delete, "\(site)/analytics/scheduled-reports/\(reportId)", token: token).status == .noContent)
            let export = try await client.call(.post, "\(site)/analytics/export", json: ["report": "summary", "format": "csv"], token: token)
            #expect(export.status == .accepted, "\(export.text)")

            let expected: Set<String> = [
                "notification.created", "notification.updated", "notification.published", "notification.paused", "notification.deleted",
                "template.created", "integration.created", "integration.updated", "integration.deleted", "webhook_endpoint.created",
                "webhook_endpoint.updated", "webhook_endpoint.secret_rotated", "webhook_endpoint.deleted", "scheduled_report.created",
                "scheduled_report.updated", "scheduled_report.deleted", "export.created",
            ]
            var records: [[String: Any]] = []
            try await eventually("every change to reach the audit log") {
                records = try await client.call(.get, "/organizations/\(fixture.organization)/audit-logs?limit=200", token: token).items
                return expected.isSubset(of: Set(records.compactMap { $0["action"] as? String }))
            }
            let published = try #require(records.first { $0["action"] as? String == "notification.published" })
            #expect(published["targetType"] as? String == "notification")
            #expect(published["targetId"] as? String == notification)
            #expect(published["actorUserId"] as? String != nil)
            #expect(published["requestId"] as? String != nil)
            #expect((published["details"] as? [String: Any])?["siteId"] as? String == fixture.site)
            // Recipients' addresses and credentials are not audit details.
            let text = records.map { "\($0)" }.joined()
            #expect(!text.contains("owner@example.com"))
            #expect(!text.contains("woo-secret-value"))

            let verify = try await client.call(.get, "/organizations/\(fixture.organization)/audit-logs/verify", token: token)
            #expect(verify.json["valid"] as? Bool == true, "\(verify.text)")
            #expect((verify.json["checkedRecords"] as? Int ?? 0) >= expected.count)
        }
    }

    @Test(arguments: TestStore.available)
    func aSiteKeysChangesAreAuditedAsTheKeys(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let key: HTTPFields = [.authorization: "Bearer \(fixture.secretKey)"]
            let hook = try await client.call(
                .post, "/zapier/hooks", json: ["hookUrl": "https://93.184.216.34/zap", "event": "activity.captured"], headers: key)
            try #require(hook.status == .created, "\(hook.text)")
            let hookId = try #require(hook["id"])
            #expect(try await client.call(.delete, "/zapier/hooks/\(hookId)", headers: key).status == .noContent)
            // A member's token is not a Zap's key.
            expectProblem(try await client.call(.get, "/zapier/me", token: fixture.token), .unauthorized)

            var records: [[String: Any]] = []
            try await eventually("the Zap's hook to reach the audit log") {
                records = try await client.call(.get, "/organizations/\(fixture.organization)/audit-logs?limit=200", token: fixture.token).items
                return records.filter { ($0["targetId"] as? String) == hookId }.count == 2
            }
            let created = try #require(records.first { $0["action"] as? String == "webhook_endpoint.created" && $0["targetId"] as? String == hookId })
            #expect(created["actorUserId"] == nil || created["actorUserId"] is NSNull)
            #expect((created["details"] as? [String: Any])?["via"] as? String == "site_key")
            let verify = try await client.call(.get, "/organizations/\(fixture.organization)/audit-logs/verify", token: fixture.token)
            #expect(verify.json["valid"] as? Bool == true, "\(verify.text)")
        }
    }
}
