import Foundation
import HTTPTypes
import HeraldApp
import HeraldHTTP
import Hummingbird
import HummingbirdTesting
import IntegrationsService
import Testing

@Suite("Notifications API")
struct NotificationsAPITests {
    @Test(arguments: TestStore.available)
    func createFromNameAndTypeWithDefaults(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            for type in ["recent_activity", "counter", "live_visitors", "announcement"] {
                let created = try await client.call(
                    .post, "/sites/\(fixture.site)/notifications", json: ["name": "N \(type)", "type": type], token: fixture.token)
                #expect(created.status == .created, "\(type): \(created.text)")
                #expect(created["status"] == "draft")
                let settings = try #require(created.json["settings"] as? [String: Any])
                #expect(settings["firstDelaySeconds"] as? Double == 3)
                #expect(settings["displaySeconds"] as? Double == 7)
                #expect(settings["gapSeconds"] as? Double == 5)
                #expect(!(created["effectiveTemplate"] ?? "").isEmpty)
            }
            let list = try await client.call(.get, "/sites/\(fixture.site)/notifications", token: fixture.token)
            #expect(list.items.count == 4)
        }
    }

    @Test(arguments: TestStore.available)
    func invalidInputNamesTheField(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let path = "/sites/\(fixture.site)/notifications"
            let badTemplate = try await client.call(
                .post, path, json: ["name": "x", "type": "recent_activity", "message": "{{nmae}} bought"], token: fixture.token)
            expectProblem(badTemplate, .unprocessableContent)
            let templateError = (badTemplate.json["errors"] as? [[String: Any]])?.first
            #expect(templateError?["field"] as? String == "message")
            #expect((templateError?["message"] as? String)?.contains("nmae") == true)

            let badRegex = try await client.call(
                .post, path,
                json: ["name": "x", "type": "recent_activity", "rules": ["all": [["field": "path", "op": "regex", "value": "(a+)+$"]]]],
                token: fixture.token
            )
            expectProblem(badRegex, .unprocessableContent)
            #expect((badRegex.json["errors"] as? [[String: Any]])?.first?["field"] as? String == "rules.all.0.value")

            let badSettings = try await client.call(
                .post, path, json: ["name": "x", "type": "counter", "settings": ["displaySeconds": 0, "position": "middle"]], token: fixture.token
            )
            expectProblem(badSettings, .unprocessableContent)
            let fields = Set(((badSettings.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(fields.contains("settings.position"))

            let badType = try await client.call(.post, path, json: ["name": "x", "type": "banner"], token: fixture.token)
            expectProblem(badType, .unprocessableContent)
            let noName = try await client.call(.post, path, json: ["type": "counter"], token: fixture.token)
            expectProblem(noName, .unprocessableContent)
            let badCTA = try await client.call(
                .post, path, json: ["name": "x", "type": "announcement", "content": ["cta": ["text": "Go", "url": "javascript:alert(1)"]]],
                token: fixture.token
            )
            expectProblem(badCTA, .unprocessableContent)
            let oneVariant = try await client.call(
                .post, path, json: ["name": "x", "type": "recent_activity", "variants": [["name": "A", "weight": 50]]], token: fixture.token
            )
            expectProblem(oneVariant, .unprocessableContent)
        }
    }

    @Test(arguments: TestStore.available)
    func updatesMergeAndTypeIsFixed(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let id = try await client.createNotification(
                fixture, ["name": "Recent", "type": "recent_activity", "settings": ["displaySeconds": 4]], publish: false)
            let path = "/sites/\(fixture.site)/notifications/\(id)"
            let updated = try await client.call(
                .put, path, json: ["settings": ["gapSeconds": 9], "message": "{{firstName}} did it"], token: fixture.token)
            #expect(updated.status == .ok, "\(updated.text)")
            let settings = try #require(updated.json["settings"] as? [String: Any])
            #expect(settings["displaySeconds"] as? Double == 4)
            #expect(settings["gapSeconds"] as? Double == 9)
            #expect(updated["message"] == "{{firstName}} did it")
            let cleared = try await client.call(.patch, path, json: ["message": NSNull()], token: fixture.token)
            #expect(cleared["message"] == nil)
            expectProblem(try await client.call(.put, path, json: ["type": "counter"], token: fixture.token), .unprocessableContent)
            #expect(try await client.call(.delete, path, token: fixture.token).status == .noContent)
            expectProblem(try await client.call(.get, path, token: fixture.token), .notFound)
        }
    }

    @Test(arguments: TestStore.available)
    func onlyPublishedNotificationsReachTheFeedAndPauseIsImmediate(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let id = try await client.createNotification(
                fixture, ["name": "Announce", "type": "announcement", "message": "Free shipping today"], publish: false)
            #expect(try await client.feedItems(fixture).isEmpty)
            _ = try await client.call(.post, "/sites/\(fixture.site)/notifications/\(id)/publish", token: fixture.token)
            let feed = try await client.feedItems(fixture)
            #expect(feed.count == 1)
            #expect(((feed.first?["runs"] as? [[String: Any]])?.first?["text"] as? String) == "Free shipping today")
            let paused = try await client.call(.post, "/sites/\(fixture.site)/notifications/\(id)/pause", token: fixture.token)
            #expect(paused["status"] == "paused")
            #expect(try await client.feedItems(fixture).isEmpty)
        }
    }

    @Test(arguments: TestStore.available)
    func activitiesBecomeFeedItemsWithPrivacy(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            _ = try await client.createNotification(fixture, ["name": "Recent", "type": "recent_activity"])
            let recorded = try await client.recordActivity(
                fixture,
                [
                    "type": "purchase", "firstName": "Sarah Jane", "lastName": "Connor", "email": "sarah@example.com", "city": "Austin",
                    "productName": "Blue Hoodie", "productUrl": "https://shop.example.com/p/blue", "imageUrl": "javascript:alert(1)",
                ]
            )
            expectProblem(recorded, .unprocessableContent)  // the image URL must be http(s)
            let ok = try await client.recordActivity(
                fixture,
                [
                    "type": "purchase", "firstName": "Sarah Jane", "lastName": "Connor", "email": "sarah@example.com", "city": "Austin",
                    "productName": "Blue Hoodie", "productUrl": "https://shop.example.com/p/blue",
                ]
            )
            #expect(ok.status == .accepted, "\(ok.text)")
            var feedText = ""
            try await eventually("the activity in the feed") {
                feedText = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed").text
                return feedText.contains("Blue Hoodie")
            }
            #expect(feedText.contains("Sarah from Austin purchased Blue Hoodie"))
            #expect(!feedText.contains("Connor"))
            #expect(!feedText.contains("sarah@example.com"))
            #expect(!feedText.contains("Jane"))

            // The owner's activity log shows provenance.
            let log = try await client.call(.get, "/sites/\(fixture.site)/activities", token: fixture.token)
            let provenance = try #require(log.items.first?["provenance"] as? [String: Any])
            #expect(provenance["source"] as? String == "api")
            #expect(provenance["authenticatedBy"] as? String == "site-key")
            #expect(provenance["signatureVerified"] as? Bool == false)

            // Anonymous names: "Someone", and no location.
            let settings = try await client.call(
                .put, "/sites/\(fixture.site)/widget-settings", json: ["privacy": ["names": "anonymous", "location": "none"]], token: fixture.token
            )
            #expect(settings.status == .ok, "\(settings.text)")
            let anonymous = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed").text
            #expect(anonymous.contains("Someone purchased Blue Hoodie"))
            #expect(!anonymous.contains("Sarah"))
        }
    }

    @Test(arguments: TestStore.available)
    func idempotencyKeyRecordsOnce(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let body: [String: Any] = ["type": "signup", "firstName": "Ann"]
            let first = try await client.recordActivity(fixture, body, key: "order-1001")
            let second = try await client.recordActivity(fixture, body, key: "order-1001")
            #expect(first.status == .accepted)
            #expect(second.status == .accepted)
            #expect(first["id"] == second["id"])
            #expect(second.headers[.known("Idempotent-Replayed")] == "true")
            let conflicting = try await client.recordActivity(fixture, ["type": "signup", "firstName": "Bob"], key: "order-1001")
            expectProblem(conflicting, .unprocessableContent)
            try await eventually("the activity to be stored") {
                try await client.call(.get, "/sites/\(fixture.site)/activities", token: fixture.token).items.count == 1
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await client.call(.get, "/sites/\(fixture.site)/activities", token: fixture.token).items.count == 1)
        }
    }

    @Test(arguments: TestStore.available)
    func intakeIsAuthorizedAndThrottled(store: TestStore) async throws {
        try await withApp(store, configure: { $0.integrationOptions.activitiesPerMinute = 3 }) { client, _ in
            let fixture = try await client.siteFixture()
            let other = try await client.siteFixture()
            let path = "/sites/\(fixture.site)/activities"
            // Another site's key: 404; no key: 401; a member's token works.
            expectProblem(try await client.call(.post, path, json: ["type": "signup"], token: other.secretKey), .notFound)
            expectProblem(try await client.call(.post, path, json: ["type": "signup"]), .unauthorized)
            #expect(try await client.call(.post, path, json: ["type": "signup"], token: fixture.token).status == .accepted)
            let invalid = try await client.call(.post, path, json: ["type": "Not A Type!", "rating": 9, "email": "nope"], token: fixture.secretKey)
            expectProblem(invalid, .unprocessableContent)
            let fields = Set(((invalid.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["type", "rating", "email"])
            #expect(try await client.call(.post, path, json: ["type": "signup"], token: fixture.secretKey).status == .accepted)
            #expect(try await client.call(.post, path, json: ["type": "signup"], token: fixture.secretKey).status == .accepted)
            let flood = try await client.call(.post, path, json: ["type": "signup"], token: fixture.secretKey)
            expectProblem(flood, .tooManyRequests)
            #expect(flood.headers[.retryAfter] != nil)
        }
    }

    @Test(arguments: TestStore.available)
    func feedIsCacheableWithETagAndCORS(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            _ = try await client.createNotification(fixture, ["name": "A", "type": "announcement"])
            let feed = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed")
            #expect(feed.status == .ok)
            let etag = try #require(feed.headers[.eTag])
            #expect(feed.headers[.cacheControl]?.contains("s-maxage=5") == true)
            #expect(feed.headers[.cacheControl]?.contains("max-age=0") == true)
            #expect(feed.headers[.accessControlAllowOrigin] == "*")
            #expect(feed.headers[.crossOriginResourcePolicy] == "cross-origin")
            let again = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            let preflight = try await client.call(.options, "/widget/v1/\(fixture.publicKey)/beacons")
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "*")
            let unknown = try await client.call(.get, "/widget/v1/pk_unknown/feed")
            expectProblem(unknown, .notFound)
            #expect(unknown.headers[.accessControlAllowOrigin] == "*")
            // The API itself does not allow other origins.
            #expect(try await client.call(.get, "/organizations", token: fixture.token).headers[.accessControlAllowOrigin] == nil)
            let script = try await client.call(.get, "/widget.js")
            #expect(script.status == .ok)
            #expect(script.headers[.contentType]?.hasPrefix("application/javascript") == true)
            #expect(script.text.contains("herald-notifications"))
        }
    }

    @Test(arguments: TestStore.available)
    func beaconsAreCountedPerNotificationAndVariant(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let id = try await client.createNotification(
                fixture,
                [
                    "name": "AB", "type": "announcement",
                    "variants": [["name": "A", "weight": 50], ["name": "B", "weight": 50, "message": "Hello B"]],
                ]
            )
            let detail = try await client.call(.get, "/sites/\(fixture.site)/notifications/\(id)", token: fixture.token)
            let variants = (detail.json["variants"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            #expect(variants.count == 2)
            #expect(detail["abTestId"] != nil)
            let beacons: [String: Any] = [
                "visitorId": "visitor-0001",
                "events": [
                    ["type": "impression", "notificationId": id, "variantId": variants[0], "path": "/"],
                    ["type": "impression", "notificationId": id, "variantId": variants[1], "path": "/"],
                    ["type": "hover", "notificationId": id, "variantId": variants[1], "path": "/"],
                    ["type": "click", "notificationId": id, "variantId": variants[1], "path": "/"],
                    ["type": "conversion", "notificationId": id, "variantId": variants[1], "goal": "signup"],
                    ["type": "heartbeat", "path": "/pricing"],
                    // Control characters (NUL included, which PostgreSQL cannot store) are dropped from labels.
                    ["type": "close", "notificationId": id, "variantId": variants[1], "path": "/cart\u{0}\u{7}"],
                ],
            ]
            let accepted = try await client.call(
                .post, "/widget/v1/\(fixture.publicKey)/beacons",
                raw: String(decoding: try JSONSerialization.data(withJSONObject: beacons), as: UTF8.self),
                headers: [.contentType: "text/plain;charset=UTF-8"])
            #expect(accepted.status == .accepted, "\(accepted.text)")
            let bad = try await client.call(
                .post, "/widget/v1/\(fixture.publicKey)/beacons", json: ["visitorId": "x", "events": [["type": "explode"]]])
            expectProblem(bad, .unprocessableContent)

            var summary: [String: Any] = [:]
            try await eventually("the beacons to be counted") {
                summary = try await client.call(.get, "/sites/\(fixture.site)/analytics", token: fixture.token).json
                return ((summary["totals"] as? [String: Any])?["impressions"] as? Int) == 2
            }
            let totals = try #require(summary["totals"] as? [String: Any])
            #expect(totals["clicks"] as? Int == 1)
            #expect(totals["conversions"] as? Int == 1)
            let notification = try #require((summary["notifications"] as? [[String: Any]])?.first)
            #expect(notification["notificationId"] as? String == id)
            let perVariant = (notification["variants"] as? [[String: Any]]) ?? []
            #expect(perVariant.count == 2)
            let b = perVariant.first { $0["variantId"] as? String == variants[1] }?["metrics"] as? [String: Any]
            #expect(b?["clicks"] as? Int == 1)
            #expect(b?["hovers"] as? Int == 1)

            let presence = try await client.call(.get, "/widget/v1/\(fixture.publicKey)/presence?path=/pricing")
            #expect(presence.json["visitors"] as? Int == 1)
            expectProblem(
                try await client.call(.get, "/sites/\(fixture.site)/analytics?from=2026-13-01", token: fixture.token), .unprocessableContent)
            expectProblem(
                try await client.call(.get, "/sites/\(fixture.site)/analytics?from=2026-05-02&to=2026-05-01", token: fixture.token),
                .unprocessableContent)
        }
    }

    @Test(arguments: TestStore.available)
    func otherTenantsSeeNothing(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let id = try await client.createNotification(fixture, ["name": "Secret campaign", "type": "announcement"])
            let stranger = try await client.signup()
            for path in [
                "/sites/\(fixture.site)/notifications", "/sites/\(fixture.site)/notifications/\(id)", "/sites/\(fixture.site)/templates",
                "/sites/\(fixture.site)/activities", "/sites/\(fixture.site)/analytics", "/sites/\(fixture.site)/widget-settings",
            ] {
                let result = try await client.call(.get, path, token: stranger.token)
                expectProblem(result, .notFound)
                #expect(!result.text.contains("Secret campaign"))
            }
            expectProblem(try await client.call(.post, "/sites/\(fixture.site)/notifications/\(id)/pause", token: stranger.token), .notFound)
            expectProblem(try await client.call(.delete, "/sites/\(fixture.site)/notifications/\(id)", token: stranger.token), .notFound)
        }
    }

    @Test(arguments: TestStore.available)
    func countersAndTemplates(store: TestStore) async throws {
        try await withApp(store) { client, _ in
            let fixture = try await client.siteFixture()
            let template = try await client.call(
                .post, "/sites/\(fixture.site)/templates",
                json: ["name": "Hot", "type": "counter", "body": #"{{count}} {{count | plural: "shopper", "shoppers"}} bought in {{windowHours}}h"#],
                token: fixture.token
            )
            #expect(template.status == .created, "\(template.text)")
            let templateId = try #require(template["id"])
            let list = try await client.call(.get, "/sites/\(fixture.site)/templates", token: fixture.token)
            #expect(list.items.contains { $0["builtIn"] as? Bool == true })
            #expect(list.items.contains { $0["id"] as? String == templateId })
            expectProblem(
                try await client.call(
                    .post, "/sites/\(fixture.site)/templates", json: ["name": "Bad", "type": "counter", "body": "{{#count}}"], token: fixture.token),
                .unprocessableContent
            )
            _ = try await client.createNotification(
                fixture, ["name": "Counter", "type": "counter", "templateId": templateId, "content": ["minimumCount": 1, "windowHours": 24]]
            )
            for name in ["A", "B", "C"] {
                _ = try await client.recordActivity(fixture, ["type": "purchase", "firstName": name])
            }
            try await eventually("the counter to reach 3") {
                try await client.call(.get, "/widget/v1/\(fixture.publicKey)/feed").text.contains("3 shoppers bought in 24h")
            }
        }
    }
}
