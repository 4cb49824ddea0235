import Foundation
import HeraldPush
import Testing

@testable import NotificationsService

@Suite("Push channel: web push and FCM subscriptions")
struct PushChannelTests {
    @Test func bothKindsOfSubscriptionSurviveTheirStoredForm() throws {
        let web = PushTarget.webPush(
            WebPushSubscription(
                endpoint: try #require(URL(string: "https://push.example.net/send/abc")), p256dh: Array(repeating: 4, count: 65),
                auth: Array(repeating: 7, count: 16)))
        let fcm = PushTarget.fcm(token: "eAbc:APA91bHx-_y.z")
        for target in [web, fcm] {
            #expect(PushSubscriptionStore.decode(PushSubscriptionStore.encode(target)) == target)
        }
        #expect(PushSubscriptionStore.encode(fcm) == "fcm eAbc:APA91bHx-_y.z")
        // A web push subscription's key is its endpoint (as before FCM), an FCM token's cannot be mistaken for one.
        #expect(web.key == "https://push.example.net/send/abc")
        #expect(fcm.key == "fcm:eAbc:APA91bHx-_y.z")
        #expect(PushSubscriptionStore.decode("fcm") == nil && PushSubscriptionStore.decode("fcm a b") == nil)
    }
}
