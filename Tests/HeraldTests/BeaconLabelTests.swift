import Crypto
import Foundation
import Testing

@testable import NotificationsService

/// The labels a beacon's visit carries: read by hand on the hot path, so checked against what Foundation reads.
@Suite("Beacon labels")
struct BeaconLabelTests {
    @Test(
        arguments: [
            ("https://www.google.com/search?q=hoodie", "google.com"),
            ("http://Shop.Example.COM:8080/products", "shop.example.com"),
            ("https://news.ycombinator.com", "news.ycombinator.com"),
            ("https://example.org#top", "example.org"),
            ("https://user:secret@example.org/", "example.org"),
            ("https://[2001:db8::1]/path", "[2001:db8::1]"),
            ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
            ("android-app://com.google.android.gm/", "com.google.android.gm"),
            ("not a url at all", nil),
            ("https:///no-host", nil),
            ("", nil),
        ] as [(String, String?)])
    func referrerHosts(_ referrer: String, _ expected: String?) {
        #expect(NotificationsService.referrerHost(referrer) == expected)
    }

    /// Every plain referrer the fast reading accepts gives the host URLComponents gives.
    @Test func theFastReadingAgreesWithURLComponents() {
        let referrers = [
            "https://www.google.com/search?q=hoodie", "http://a.b-c.d:1/x", "https://EXAMPLE.com?x=1", "https://example.com",
            "https://sub.domain.example.co.uk/a/b/c?d#e", "http://localhost:3000/", "https://127.0.0.1/x",
        ]
        for referrer in referrers {
            let fast = NotificationsService.plainHost(referrer)
            #expect(fast != nil, "\(referrer)")
            #expect(fast == URLComponents(string: referrer)?.host?.lowercased(), "\(referrer)")
        }
        for other in [
            "https://user@example.com/", "https://user:secret@example.com/", "https://example.com:80a/", "https://ex%41mple.com/",
            "https://exämple.com/", "ftp://example.com/",
        ] {
            #expect(NotificationsService.plainHost(other) == nil, "\(other)")
        }
    }

    @Test(
        arguments: [
            ("Newsletter", "newsletter"),
            ("  Spring Sale\u{00A0}", "spring sale"),
            ("\tsummer\u{0007}\n", "summer"),
            ("\u{2003}\u{2003}", nil),
            ("", nil),
            (String(repeating: "x", count: 150), String(repeating: "x", count: 100)),
        ] as [(String, String?)])
    func utmLabels(_ text: String, _ expected: String?) {
        #expect(NotificationsService.label(text) == expected)
        // The same as Foundation's trimming of whitespace.
        let foundation = text.removingControlCharactersForTest.trimmingCharacters(in: .whitespaces)
        #expect(NotificationsService.label(text) == (foundation.isEmpty ? nil : String(foundation.prefix(100)).lowercased()))
    }

    /// Pseudonyms from the pre-keyed HMAC are those of an HMAC keyed afresh, so ids hashed before and after a
    /// restart on the same day still match.
    @Test func pseudonymsMatchAFreshlyKeyedHMAC() {
        let salt = SymmetricKey(size: .bits256)
        let site = UUID()
        let keyed = HMAC<SHA256>(key: salt)
        for id in ["visitor-0001", "session:abc12345", "ünïcode-visitor"] {
            var fresh = HMAC<SHA256>(key: salt)
            fresh.update(data: Array(site.uuidString.lowercased().utf8))
            fresh.update(data: [0x3A])
            fresh.update(data: Array(id.utf8))
            let expected = fresh.finalize().prefix(16).map { String(format: "%02x", $0) }.joined()
            #expect(VisitorHasher.pseudonym(id, siteId: site, salt: keyed) == expected)
            #expect(VisitorHasher.pseudonym(id, siteId: site, salt: keyed) == expected, "the keyed HMAC must not be consumed")
        }
    }
}

extension String {
    fileprivate var removingControlCharactersForTest: String {
        String(String.UnicodeScalarView(unicodeScalars.filter { !($0.value < 0x20 || (0x7F...0x9F).contains($0.value)) }))
    }

    /// The fast path's reading of `/widget/v1/{publicKey}/…`, on UTF-8 bytes.
    @Test func widgetPathsNameTheirPublicKey() {
        #expect(widgetPublicKey(in: "/widget/v1/pk_abc/beacons", suffix: "/beacons") == "pk_abc")
        #expect(widgetPublicKey(in: "/widget/v1/pk_abc/feed", suffix: "/feed") == "pk_abc")
        #expect(widgetPublicKey(in: "/widget/v1/pk_abc/feed", suffix: "/beacons") == nil)
        #expect(widgetPublicKey(in: "/widget/v1//beacons", suffix: "/beacons") == nil)
        #expect(widgetPublicKey(in: "/widget/v1/a/b/beacons", suffix: "/beacons") == nil)
        #expect(widgetPublicKey(in: "/widget/v2/pk_abc/beacons", suffix: "/beacons") == nil)
        #expect(widgetPublicKey(in: "/widget/v1/pké/feed", suffix: "/feed") == "pké")
        #expect(widgetPublicKey(in: "/widget/v1/beacons", suffix: "/beacons") == nil)
    }
}
