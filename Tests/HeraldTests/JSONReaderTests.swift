import Foundation
import HeraldContracts
import HeraldCore
import Testing

@Suite("JSONReader (the beacon path's JSON)")
struct JSONReaderTests {
    /// What Foundation's parser makes of a document, in JSONNode's terms (objects keyed, so order-free).
    static func foundation(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    static func same(_ node: JSONNode, _ any: Any) -> Bool {
        switch (node, any) {
        case (.null, is NSNull): return true
        case (.string(let a), let b as String): return a == b
        case (.bool(let a), let b as Bool): return a == b
        case (.number(let a), let b as NSNumber): return a == b.doubleValue
        case (.array(let a), let b as [Any]): return a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
        case (.object(let members), let b as [String: Any]):
            var keyed: [String: JSONNode] = [:]
            for member in members { keyed[member.key] = member.value }
            return keyed.count == b.count && keyed.allSatisfy { key, value in b[key].map { same(value, $0) } ?? false }
        default: return false
        }
    }

    @Test(arguments: [
        #"{"visitorId":"abc-12345","events":[{"type":"impression","at":1733000000000,"value":-12.5e2}]}"#,
        #"  [1, -0, 0.5, 1e3, 2E-2, 123456789012345678, true, false, null, "x"]  "#,
        #"{"a":"\u00e9\ud83d\ude00\n\t\"\\\/","b":{},"c":[],"d":[[[]]]}"#,
        #""caf\u00e9""#, "0", "-1", "3.14159", #"{"dup":1,"dup":2}"#, "\"Grüße 👋\"",
    ])
    func readsWhatFoundationReads(_ text: String) throws {
        let node = try JSONReader.read(Array(text.utf8))
        let reference = try #require(Self.foundation(text))
        #expect(Self.same(node, reference), "\(node)")
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{'a':1}", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "[+1]", "nul", "tru", "[NaN]",
        "[Infinity]", "\"\u{01}\"", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "{\"a\" 1}", "[1 2]", "{} {}", "1e400",
        "[1]x",
    ])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONReader.Failure.self) { try JSONReader.read(Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONReader.Failure.self) { try JSONReader.read([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONReader.Failure.self) { try JSONReader.read([0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONReader.Failure.self) { try JSONReader.read(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { try JSONReader.read(Array(fine.utf8)) }
    }

    @Test func fieldsReportTypesAndPaths() throws {
        let node = try JSONReader.read(Array(#"{"a":"x","n":"1","list":[{"id":"nope"}],"gone":null}"#.utf8))
        var validator = Validator()
        let fields = JSONFields(node)
        #expect(fields.string("a", required: true, into: &validator) == "x")
        #expect(fields.number("n", into: &validator) == nil)
        #expect(fields.string("missing", required: true, into: &validator) == nil)
        #expect(fields.string("gone", required: true, into: &validator) == nil)
        let list = try #require(fields.array("list", into: &validator))
        #expect(JSONFields(list[0].node, path: list[0].path).uuid("id", into: &validator) == nil)
        #expect(validator.errors.map(\.field) == ["n", "missing", "gone", "list.0.id"])
        #expect(validator.errors.map(\.message).prefix(3) == ["must be a number", "is required", "must not be null"])
    }

    @Test func beaconBatchesRoundTripThroughTheHandWrittenJSON() throws {
        let batch = BeaconBatch(
            siteId: UUID(), timezone: "America/Chicago", receivedAt: 1_733_000_000_123,
            visits: [
                Visit(
                    visitor: "0123456789abcdef0123456789abcdef", session: nil, day: 20_261_204, device: "mobile", country: "US", bot: false,
                    referrer: "google.com", utmSource: "news \"letter\"", utmMedium: nil, utmCampaign: "x\ny",
                    beacons: [
                        RecordedBeacon(type: "pageview", path: "/", at: 1_733_000_000_000),
                        RecordedBeacon(
                            type: "conversion", notificationId: UUID(), variantId: UUID(), goal: "purchase", value: 49.95, at: 1_733_000_000_001,
                            firstConversion: true, firstSeenAt: 1_732_000_000_000, previousConversionAt: 1_731_000_000_000,
                            touches: [Touch(notificationId: UUID(), variantId: nil, kind: "click", at: 1_732_999_999_000)]
                        ),
                    ]
                )
            ]
        )
        let decoded = try BeaconBatch(json: batch.encodedJSON())
        #expect(decoded.encodedJSON() == batch.encodedJSON() && decoded.visits == batch.visits)
        let viaFoundation = try JSONDecoder().decode(BeaconBatch.self, from: Data(batch.encodedJSON().utf8))
        #expect(viaFoundation.visits == decoded.visits && viaFoundation.siteId == decoded.siteId)
    }

    /// JSONWriter's strings (escaped in runs) and UUIDs (written from their bytes) read back as written, by
    /// Foundation's parser.
    @Test func theWriterEscapesWhatJSONRequires() throws {
        let texts = [
            "", "plain", "\"quoted\"", "back\\slash", "line\nbreak\r\ttab", "\u{0}\u{1}\u{1F}nul and units", "ünïcödé ✓ 🚀",
            "end with escape\"", "\\start", String(repeating: "long run ", count: 40) + "\n",
        ]
        let ids = [UUID(), UUID(uuidString: "00000000-0000-0000-0000-000000000000")!, UUID(uuidString: "FFFFFFFF-ABCD-EF01-2345-6789ABCDEF0A")!]
        var json = JSONWriter()
        json.beginObject()
        for (index, text) in texts.enumerated() { json.field("t\(index)", text) }
        for (index, id) in ids.enumerated() { json.field("u\(index)", id) }
        json.endObject()
        let object = try #require(Self.foundation(json.text) as? [String: Any])
        for (index, text) in texts.enumerated() { #expect(object["t\(index)"] as? String == text) }
        for (index, id) in ids.enumerated() { #expect(object["u\(index)"] as? String == id.uuidString.lowercased()) }
    }
}
