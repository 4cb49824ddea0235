import AnalyticsService
import Foundation
import HeraldObjectStore
import HeraldStorage
import Logging

extension HeraldRuntime {
    /// Brings archived raw events of `from`…`to` (UTC days) back into the store (`herald analytics restore`).
    public static func restoreAnalyticsArchive(
        _ config: HeraldConfiguration, from: String, to: String, organizationId: UUID?, logger: Logger
    ) async throws -> [EventArchive.RestoredDay] {
        var configured = config.analyticsOptions
        configured.archive = configured.archive ?? .directory(path: (config.dataDirectory as NSString).appendingPathComponent("archive"))
        let options = configured
        return try await withDatabase(config, logger: logger) { database in
            try await AnalyticsService.restoreArchive(
                database: database, options: options, from: from, to: to, organizationId: organizationId, logger: logger
            )
        }
    }
}
