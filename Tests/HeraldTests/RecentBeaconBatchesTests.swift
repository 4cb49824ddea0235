import Foundation
import HeraldContracts
import Testing

/// The in-process hand-over of committed beacon batches to the consumers: bounded by beacons, oldest forgotten first.
@Suite("Recent beacon batches")
struct RecentBeaconBatchesTests {
    func batch(beacons: Int, visitor: String = "v") -> BeaconBatch {
        let beacon = RecordedBeacon(
            type: "impression", notificationId: UUID(), variantId: nil, activityId: nil, goal: nil, path: "/", at: 1)
        let visit = Visit(
            visitor: visitor, session: nil, day: 20_000, device: "desktop", country: nil, bot: false, referrer: nil, utmSource: nil,
            utmMedium: nil, utmCampaign: nil, beacons: Array(repeating: beacon, count: beacons))
        return BeaconBatch(siteId: UUID(), timezone: "UTC", receivedAt: 1, visits: [visit])
    }

    @Test func aRememberedBatchIsFoundUntilNewerOnesPushItOut() {
        let recent = RecentBeaconBatches(capacity: 100)
        let ids = (0..<5).map { _ in UUID() }
        for (index, id) in ids.enumerated() { recent.remember(batch(beacons: 30, visitor: "v\(index)"), eventId: id) }
        // 5 × 30 beacons against room for 100: the two oldest are forgotten, the rest kept intact.
        #expect(recent.batch(eventId: ids[0]) == nil)
        #expect(recent.batch(eventId: ids[1]) == nil)
        for index in 2..<5 {
            #expect(recent.batch(eventId: ids[index])?.visits.first?.visitor == "v\(index)")
            #expect(recent.batch(eventId: ids[index])?.visits.first?.beacons.count == 30)
        }
        #expect(recent.batch(eventId: UUID()) == nil)
    }

    @Test func aBatchLargerThanTheWholeCapacityIsNotKept() {
        let recent = RecentBeaconBatches(capacity: 10)
        let kept = UUID()
        recent.remember(batch(beacons: 5), eventId: kept)
        let huge = UUID()
        recent.remember(batch(beacons: 11), eventId: huge)
        #expect(recent.batch(eventId: huge) == nil)
        #expect(recent.batch(eventId: kept) != nil)
    }

    @Test func manyBatchesStayWithinTheCapacity() {
        let recent = RecentBeaconBatches(capacity: 1_000)
        var ids: [UUID] = []
        for _ in 0..<5_000 {
            let id = UUID()
            ids.append(id)
            recent.remember(batch(beacons: 3), eventId: id)
        }
        let kept = ids.filter { recent.batch(eventId: $0) != nil }
        #expect(kept.count == 333)
        #expect(kept == Array(ids.suffix(333)))
    }
}
