import Foundation
import HeraldStorage

/// The salts of visitor pseudonyms, one per site-local day, shared by every instance.
struct VisitorSaltStore: Sendable {
    func saltOf(day: Int, creating fresh: [UInt8], in tx: any SQLExecutor) async throws -> [UInt8] {
        try await tx.execute(
            """
            INSERT INTO \(NotificationsTables.visitorSalts) (day, salt, created_at) VALUES (\(day), \(fresh), \(Date()))
            ON CONFLICT (day) DO NOTHING
            """
        )
        guard let row = try await tx.queryFirst("SELECT salt FROM \(NotificationsTables.visitorSalts) WHERE day = \(day)") else {
            throw StorageError.other("the visitor salt of \(day) vanished")
        }
        return try row.get("salt")
    }

    func delete(before day: Int, in tx: any SQLExecutor) async throws {
        try await tx.execute("DELETE FROM \(NotificationsTables.visitorSalts) WHERE day < \(day)")
    }
}
