import Foundation
import HeraldCore
import HeraldHTTP
import HeraldModules
import HeraldRedis
import HeraldStorage
import Hummingbird
import NIOCore

struct HealthBody: Encodable, Sendable {
    var status: String
    var checks: [String: String]?
}

/// Liveness, readiness and the API description.
func addOperationalRoutes(
    to router: some RouterMethods<HeraldRequestContext>, database: any Database, migrator: Migrator, redis: RedisClient?,
    dependencies: [DependencyCheck]
) {
    router.get("healthz") { _, _ in
        JSONResponse(HealthBody(status: "ok"))
    }
    // Only the database makes Herald not ready: without Redis events wait in the outbox and limits are not counted,
    // without ClickHouse reports answer 503 and events wait to be shipped, but pages keep getting their popups. Taking
    // every instance out of the load balancer for those would turn a degraded service into an outage.
    router.get("readyz") { _, _ -> JSONResponse<HealthBody> in
        var failures: [String] = []
        var degraded = false
        var checks: [String: String] = [:]
        do {
            try await database.ping()
            checks["database"] = "ok"
        } catch {
            checks["database"] = "unreachable"
            failures.append("the database does not answer")
        }
        for dependency in dependencies {
            do {
                try await withDeadline(.milliseconds(500), dependency.check)
                checks[dependency.name] = "ok"
            } catch {
                checks[dependency.name] = "unreachable"
                degraded = true
            }
        }
        if let redis {
            do {
                try await withDeadline(.milliseconds(500)) { try await redis.ping() }
                checks["redis"] = "ok"
            } catch {
                checks["redis"] = "unreachable"
                degraded = true
            }
        }
        if failures.isEmpty {
            let pending = (try? await migrator.pending(HeraldRuntime.migrationSets)) ?? ["unknown"]
            checks["migrations"] = pending.isEmpty ? "ok" : "pending"
            if !pending.isEmpty { failures.append("\(pending.count) migrations are not applied; run herald migrate") }
        }
        guard failures.isEmpty else {
            throw HeraldError(status: 503, slug: "not-ready", title: "Not ready", detail: failures.joined(separator: "; "))
        }
        return JSONResponse(HealthBody(status: degraded ? "degraded" : "ready", checks: checks))
    }
    let document = OpenAPIDocument.bytes
    router.get("openapi.json") { _, _ in
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .cacheControl: "public, max-age=300", .accessControlAllowOrigin: "*"],
            body: ResponseBody(byteBuffer: document)
        )
    }
}

/// The OpenAPI 3.1 document, kept in the repository and bundled with the binary.
enum OpenAPIDocument {
    static let bytes: ByteBuffer = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            return ByteBuffer(string: #"{"openapi":"3.1.0","info":{"title":"Herald","version":"0"},"paths":{}}"#)
        }
        return ByteBuffer(bytes: data)
    }()
}
