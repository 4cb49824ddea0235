import Crypto
import Foundation
import HeraldCore
import HeraldStorage
import Synchronization

/// Pseudonymous visitor ids: the widget's random id is hashed with a salt of the site-local day before it is
/// stored or published anywhere, so a visitor can be counted once per day but never followed across days.
/// Salts are random, shared by every instance through the store, and deleted two days after their day.
final class VisitorHasher: Sendable {
    let database: any Database
    let salts = VisitorSaltStore()
    /// Each day's salt as an HMAC already keyed with it: keying costs as much as hashing an id.
    private let cache = Mutex<[Int: HMAC<SHA256>]>([:])

    init(database: any Database) {
        self.database = database
    }

    /// The day's keyed HMAC when this process has it, without waiting: for ``BeaconsFastRoute`` on the event loop.
    func cachedKeyedHash(day: Int) -> HMAC<SHA256>? {
        cache.withLock { $0[day] }
    }

    /// An HMAC keyed with the salt of a local day, creating the salt on first use (the first instance to do so wins).
    func keyedHash(day: Int) async throws -> HMAC<SHA256> {
        if let keyed = cache.withLock({ $0[day] }) { return keyed }
        let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let bytes = try await database.transaction(.system) { tx in try await salts.saltOf(day: day, creating: fresh, in: tx) }
        let keyed = HMAC<SHA256>(key: SymmetricKey(data: bytes))
        cache.withLock { cache in
            cache = cache.filter { $0.key >= day - 2 }
            cache[day] = keyed
        }
        return keyed
    }

    /// The pseudonym of an id on a site: 128 bits of HMAC-SHA256 keyed with the day's salt, hex.
    static func pseudonym(_ id: String, siteId: UUID, salt keyed: HMAC<SHA256>) -> String {
        var hmac = keyed
        hmac.update(data: Array(siteId.lowercased.utf8))
        hmac.update(data: [0x3A])
        hmac.update(data: Array(id.utf8))
        return hmac.finalize().prefix(16).hexString
    }

    /// Forgets salts more than two days old, after which yesterday's pseudonyms can never be recomputed.
    func prune(now: Date = Date()) async throws {
        let oldest = LocalTime.dayKey(days: Int(now.timeIntervalSince1970 / 86_400) - 2)
        try await database.transaction(.system) { tx in try await salts.delete(before: oldest, in: tx) }
        cache.withLock { $0 = $0.filter { $0.key >= oldest } }
    }
}

/// What a User-Agent says about the device and whether it is a crawler. Both answers are remembered per
/// User-Agent (a site's visitors send a few hundred distinct ones), so the string work runs once for each.
enum UserAgentClass {
    struct Answer {
        var device: String
        var bot: Bool
    }

    private static let cache = Mutex<[String: Answer]>([:])
    static let cacheLimit = 4096

    static func classify(_ userAgent: String) -> Answer {
        if let known = cache.withLock({ $0[userAgent] }) { return known }
        let answer = Answer(device: device(userAgent), bot: isBot(userAgent))
        cache.withLock { cache in
            if cache.count >= cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[userAgent] = answer
        }
        return answer
    }

    /// `mobile`, `tablet` or `desktop`.
    static func device(_ userAgent: String) -> String {
        let ua = Array(userAgent.utf8.prefix(1024).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
        if has(ua, "ipad") || has(ua, "tablet") || (has(ua, "android") && !has(ua, "mobile")) { return "tablet" }
        if has(ua, "mobi") || has(ua, "iphone") || has(ua, "android") { return "mobile" }
        return "desktop"
    }

    /// Crawlers that say so (Googlebot, bingbot, AhrefsBot, facebookexternalhit, Lighthouse, …). Headless browsers
    /// and HTTP libraries that do not declare themselves are not guessed at: a guess would drop real visitors.
    static func isBot(_ userAgent: String) -> Bool {
        let ua = Array(userAgent.utf8.prefix(1024).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
        let markers: [StaticString] = [
            "spider", "crawler", "crawling", "slurp", "facebookexternalhit", "lighthouse", "pingdom", "gtmetrix", "uptimerobot",
        ]
        for marker in markers where has(ua, marker) { return true }
        // A word ending in "bot" (before any '-'): googlebot, bingbot/2.0, ahrefsbot; "cubot" is a phone maker.
        func isWordByte(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F || byte >= 0x80
        }
        var index = 0
        while index < ua.count {
            guard isWordByte(ua[index]) else {
                index += 1
                continue
            }
            let start = index
            while index < ua.count, isWordByte(ua[index]) { index += 1 }
            let word = ua[start..<index]
            if word.count >= 3, word.suffix(3).elementsEqual("bot".utf8), !word.elementsEqual("cubot".utf8) { return true }
            // Skip the rest of a hyphenated token: only its first part counts.
            while index < ua.count, isWordByte(ua[index]) || ua[index] == 0x2D { index += 1 }
        }
        return false
    }

    private static func has(_ haystack: [UInt8], _ needle: StaticString) -> Bool {
        let count = needle.utf8CodeUnitCount
        guard count <= haystack.count else { return false }
        let first = needle.utf8Start[0]
        var index = 0
        while index <= haystack.count - count {
            if haystack[index] == first {
                var offset = 1
                while offset < count, haystack[index + offset] == needle.utf8Start[offset] { offset += 1 }
                if offset == count { return true }
            }
            index += 1
        }
        return false
    }
}
