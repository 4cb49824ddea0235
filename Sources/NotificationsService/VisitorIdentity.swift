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
    private let cache = Mutex<[Int: SymmetricKey]>([:])

    init(database: any Database) {
        self.database = database
    }

    /// The salt of a local day, creating it on first use (the first instance to do so wins).
    func salt(day: Int) async throws -> SymmetricKey {
        if let key = cache.withLock({ $0[day] }) { return key }
        let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let bytes = try await database.transaction(.system) { tx in try await salts.saltOf(day: day, creating: fresh, in: tx) }
        let key = SymmetricKey(data: bytes)
        cache.withLock { cache in
            cache = cache.filter { $0.key >= day - 2 }
            cache[day] = key
        }
        return key
    }

    /// The pseudonym of an id on a site: 128 bits of HMAC-SHA256, hex.
    static func pseudonym(_ id: String, siteId: UUID, salt: SymmetricKey) -> String {
        var hmac = HMAC<SHA256>(key: salt)
        hmac.update(data: Array(siteId.lowercased.utf8))
        hmac.update(data: [0x3A])
        hmac.update(data: Array(id.utf8))
        return hmac.finalize().prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Forgets salts more than two days old, after which yesterday's pseudonyms can never be recomputed.
    func prune(now: Date = Date()) async throws {
        let oldest = LocalTime.dayKey(days: Int(now.timeIntervalSince1970 / 86_400) - 2)
        try await database.transaction(.system) { tx in try await salts.delete(before: oldest, in: tx) }
        cache.withLock { $0 = $0.filter { $0.key >= oldest } }
    }
}

struct VisitorSaltStore: Sendable {
    func saltOf(day: Int, creating fresh: [UInt8], in tx: any SQLExecutor) async throws -> [UInt8] {
        try await tx.execute(
            """
            INSERT INTO \(NotificationTables.visitorSalts) (day, salt, created_at) VALUES (\(day), \(fresh), \(Date()))
            ON CONFLICT (day) DO NOTHING
            """
        )
        guard let row = try await tx.queryFirst("SELECT salt FROM \(NotificationTables.visitorSalts) WHERE day = \(day)") else {
            throw StorageError.other("the visitor salt of \(day) vanished")
        }
        return try row.get("salt")
    }

    func delete(before day: Int, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(NotificationTables.visitorSalts) WHERE day < \(day)")
    }
}

/// What a User-Agent says about the device and whether it is a crawler.
enum UserAgentClass {
    /// `mobile`, `tablet` or `desktop`.
    static func device(_ userAgent: String) -> String {
        let ua = userAgent.lowercased()
        if ua.contains("ipad") || ua.contains("tablet") || (ua.contains("android") && !ua.contains("mobile")) { return "tablet" }
        if ua.contains("mobi") || ua.contains("iphone") || ua.contains("android") { return "mobile" }
        return "desktop"
    }

    /// Crawlers that say so (Googlebot, bingbot, AhrefsBot, facebookexternalhit, Lighthouse, …). Headless browsers
    /// and HTTP libraries that do not declare themselves are not guessed at: a guess would drop real visitors.
    static func isBot(_ userAgent: String) -> Bool {
        let ua = userAgent.lowercased()
        for marker in ["spider", "crawler", "crawling", "slurp", "facebookexternalhit", "lighthouse", "pingdom", "gtmetrix", "uptimerobot"]
        where ua.contains(marker) {
            return true
        }
        for token in ua.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            let word = token.split(separator: "-").first ?? token
            if word.hasSuffix("bot") && word != "cubot" { return true }
        }
        return false
    }
}
