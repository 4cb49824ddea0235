import Foundation
import HTTPTypes
import HeraldApp
import HeraldCore
import HeraldStorage
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@Suite("Storage contract (SQLite and PostgreSQL)")
struct StorageContractTests {
    @Test(arguments: TestStore.available)
    func auditLogIsAppendOnlyAndTamperingIsDetected(store: TestStore) async throws {
        try await withApp(store) { client, environment in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            _ = try await client.createSite(owner.token, organization: org)
            _ = try await client.call(.patch, "/organizations/\(org)", json: ["name": "Renamed"], token: owner.token)
            #expect(try await client.call(.get, "/organizations/\(org)/audit-logs/verify", token: owner.token).json["valid"] as? Bool == true)

            let orgId = try #require(UUID(uuidString: org))
            try await environment.withDatabase { database in
                // The store itself refuses edits...
                await #expect(throws: (any Error).self) {
                    try await database.transaction(.organization(orgId)) { tx in
                        try await tx.execute("UPDATE \(Table("users", "audit_logs")) SET action = 'site.viewed' WHERE action = 'site.created'")
                    }
                }
                // ...and someone who bypasses that (here by dropping the guard) is caught by the hash chain.
                try await database.transaction(.organization(orgId)) { tx in
                    if tx.dialect == .postgres {
                        try await tx.execute("ALTER TABLE users.audit_logs DISABLE TRIGGER audit_logs_append_only")
                    } else {
                        try await tx.execute("DROP TRIGGER users_audit_logs_no_update")
                    }
                    try await tx.execute("UPDATE \(Table("users", "audit_logs")) SET action = 'site.viewed' WHERE action = 'site.created'")
                }
            }
            let verify = try await client.call(.get, "/organizations/\(org)/audit-logs/verify", token: owner.token)
            #expect(verify.json["valid"] as? Bool == false)
            let chains = verify.json["chains"] as? [[String: Any]] ?? []
            let broken = try #require(chains.first { ($0["valid"] as? Bool) == false })
            #expect(broken["chain"] as? String == "org:\(org)")
            #expect(broken["brokenAtChainSequence"] as? Int == 2)
        }
    }

    @Test(arguments: TestStore.available)
    func deletingAnAuditRecordIsDetected(store: TestStore) async throws {
        try await withApp(store) { client, environment in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            _ = try await client.createSite(owner.token, organization: org)
            let orgId = try #require(UUID(uuidString: org))
            try await environment.withDatabase { database in
                try await database.transaction(.organization(orgId)) { tx in
                    if tx.dialect == .postgres {
                        try await tx.execute("ALTER TABLE users.audit_logs DISABLE TRIGGER audit_logs_append_only")
                    } else {
                        try await tx.execute("DROP TRIGGER users_audit_logs_no_delete")
                    }
                    try await tx.execute("DELETE FROM \(Table("users", "audit_logs")) WHERE action = 'site.created'")
                }
            }
            let verify = try await client.call(.get, "/organizations/\(org)/audit-logs/verify", token: owner.token)
            #expect(verify.json["valid"] as? Bool == false)
        }
    }

    @Test(arguments: TestStore.available)
    func noPlaintextEmailOrNameAtRest(store: TestStore) async throws {
        let email = "very-private-\(UUID().lowercased.prefix(8))@example.org"
        let name = "Zebediah Quxworth"
        try await withApp(store) { client, environment in
            let user = try await client.signup(email: email, name: name)
            let org = try await client.createOrganization(user.token)
            _ = try await client.call(.post, "/organizations/\(org)/invitations", json: ["email": "invited-\(email)"], token: user.token)
            _ = try await client.call(.post, "/auth/login", json: ["email": email, "password": "wrong one!"])
            let everything = try await StoredBytes.dump(environment)
            #expect(everything.count > 1000)
            #expect(!everything.contains(email), "the email is stored in clear")
            #expect(!everything.contains(name), "the name is stored in clear")
            #expect(!everything.contains("invited-\(email)"), "the invited email is stored in clear")
        }
    }

    @Test(arguments: TestStore.available)
    func restartingLosesNothing(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        let first = try await buildApplication(environment.configuration(), logger: testLogger)
        let saved = Mutex<(organization: String, email: String)>(("", ""))
        try await first.test(.router) { client in
            let user = try await client.signup()
            let organization = try await client.createOrganization(user.token, name: "Survivor")
            saved.withLock { $0 = (organization, user.email) }
        }
        let (organization, email) = saved.withLock { $0 }
        let second = try await buildApplication(environment.configuration(), logger: testLogger)
        try await second.test(.router) { client in
            let login = try await client.call(.post, "/auth/login", json: ["email": email, "password": "a long passphrase"])
            #expect(login.status == .ok)
            let token = try #require(login["accessToken"])
            #expect(try await client.call(.get, "/organizations/\(organization)", token: token)["name"] == "Survivor")
        }
    }

    @Test func rowLevelSecurityBindsHeraldsOwnRole() async throws {
        guard TestStore.available.contains(.postgres) else { return }
        try await withApp(.postgres) { client, environment in
            let owner = try await client.signup()
            let org = try await client.createOrganization(owner.token)
            _ = try await client.createSite(owner.token, organization: org)
            let orgId = try #require(UUID(uuidString: org))
            try await environment.withDatabase { database in
                func count(_ table: String, _ scope: TenantScope) async throws -> Int {
                    try await database.transaction(scope) { tx in
                        try await tx.queryFirst("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)")?.get("n") ?? -1
                    }
                }
                for table in ["users.sites", "users.organizations", "users.memberships", "users.audit_logs"] {
                    let withoutTenant = try await count(table, .system)
                    let otherTenant = try await count(table, .organization(UUID()))
                    let ownTenant = try await count(table, .organization(orgId))
                    #expect(withoutTenant == 0, "\(table) is visible without a tenant")
                    #expect(otherTenant == 0, "\(table) is visible to another tenant")
                    #expect(ownTenant > 0, "\(table) is hidden from its own tenant")
                }
                // Writing a row for another tenant is refused by the policy's check.
                await #expect(throws: (any Error).self) {
                    try await database.transaction(.organization(UUID())) { tx in
                        try await tx.execute(
                            "INSERT INTO users.organizations (id, name, created_by, created_at, updated_at) VALUES (\(orgId), 'x', \(UUID()), now(), now())"
                        )
                    }
                }
            }
        }
    }

    @Test(arguments: TestStore.available)
    func editedMigrationsAreRefused(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let migrator = Migrator(database: database, logger: testLogger)
            let original = MigrationSet(
                owner: "contract_test",
                migrations: [
                    Migration(version: 1, name: "t", sqlite: ["CREATE TABLE ct_one (id INTEGER)"], postgres: ["CREATE TABLE ct_one (id INTEGER)"])
                ]
            )
            let firstRun = try await migrator.migrate([original])
            let secondRun = try await migrator.migrate([original])
            let pending = try await migrator.pending([original])
            #expect(firstRun == 1)
            #expect(secondRun == 0)
            #expect(pending.isEmpty)
            let edited = MigrationSet(
                owner: "contract_test",
                migrations: [
                    Migration(version: 1, name: "t", sqlite: ["CREATE TABLE ct_two (id INTEGER)"], postgres: ["CREATE TABLE ct_two (id INTEGER)"])
                ]
            )
            await #expect(throws: StorageError.self) { try await migrator.migrate([edited]) }
        }
    }

    /// A read runs beside a writing transaction instead of waiting for it (SQLite's reader connection, PostgreSQL's
    /// pool), sees only what has committed, and cannot write.
    @Test(arguments: TestStore.available)
    func readsRunBesideAWriteAndCannotWrite(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let table = "ct_read_\(store.rawValue)"
            try await database.transaction(.system) { tx in
                _ = try await tx.query("CREATE TABLE \(unsafeRaw: table) (n INTEGER)")
                _ = try await tx.query("INSERT INTO \(unsafeRaw: table) (n) VALUES (1)")
            }
            @Sendable func numbers() async throws -> [Int] {
                try await database.read(.system) { tx in
                    try await tx.query("SELECT n FROM \(unsafeRaw: table) ORDER BY n").map { try $0.get("n") }
                }
            }
            let (began, writerBegan) = AsyncStream<Void>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await database.transaction(.system) { tx in
                        _ = try await tx.query("INSERT INTO \(unsafeRaw: table) (n) VALUES (2)")
                        writerBegan.yield()
                        try await Task.sleep(for: .seconds(3))
                    }
                }
                for await _ in began { break }
                let started = ContinuousClock.now
                #expect(try await numbers() == [1])
                #expect(ContinuousClock.now - started < .seconds(2), "the read waited for the write")
                try await group.waitForAll()
            }
            #expect(try await numbers() == [1, 2])
            await #expect(throws: (any Error).self) {
                try await database.read(.system) { tx in
                    _ = try await tx.query("INSERT INTO \(unsafeRaw: table) (n) VALUES (3)")
                }
            }
            #expect(try await numbers() == [1, 2])
        }
    }

    /// The embedded store's writer never checkpoints (that would hold the only writer while pages are copied); the
    /// reader's connection does it beside the writer, and empties the WAL file whenever it passes its limit.
    @Test func theEmbeddedStoreCheckpointsBesideTheWriter() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-checkpoint-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("store.sqlite").path
        func size(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1 }
        let database = try await SQLiteDatabase.open(path: path, logger: testLogger, walFramesBeforeTruncate: 64)
        do {
            try await database.transaction(.system) { try await $0.execute("CREATE TABLE ct_checkpoint (b BLOB)") }
            // About 2 MB: some 500 pages of WAL, far past the limit of 64.
            for _ in 0..<20 {
                try await database.transaction(.system) { try await $0.execute("INSERT INTO ct_checkpoint (b) VALUES (randomblob(100000))") }
            }
            // Checkpointed into the file, and the WAL emptied each time it passed 64 pages: what is left in it is at
            // most the pages written since (4,120 bytes a page with its header).
            let walLimit = 65 * 4_120 + 32
            let deadline = ContinuousClock.now + .seconds(20)
            while size(path + "-wal") > walLimit || size(path) < 2_000_000, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(size(path + "-wal") <= walLimit)
            #expect(size(path) >= 2_000_000)
            let rows: Int? = try await database.read(.system) { try await $0.queryFirst("SELECT COUNT(*) AS n FROM ct_checkpoint")?.get("n") }
            #expect(rows == 20)
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }

    @Test(arguments: TestStore.available)
    func nulCharactersAreRefusedAlikeOnEveryStore(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let table = "ct_text_\(store.rawValue)"
            let column = store == .postgres ? "JSONB" : "TEXT"
            try await database.transaction(.system) { tx in
                _ = try await tx.query("CREATE TABLE \(unsafeRaw: table) (t TEXT, j \(unsafeRaw: column))")
            }
            func insert(_ text: String, json: String) async throws {
                try await database.transaction(.system) { tx in
                    _ = try await tx.query("INSERT INTO \(unsafeRaw: table) (t, j) VALUES (\(text), \(SQLJSON(json)))")
                }
            }
            for (text, json) in [("a\u{0}b", "{}"), ("ok", #"{"a":"x\u0000"}"#)] {
                await #expect {
                    try await insert(text, json: json)
                } throws: { error in
                    (error as? HeraldError)?.status == 422
                }
            }
            // An escaped backslash followed by "u0000" is ordinary text.
            try await insert(#"back\u0000slash"#, json: #"{"a":"\\u0000"}"#)
        }
    }

    /// A page cursor binds a time it read back; if a microsecond were lost on the way (PostgresNIO's Date encoding
    /// truncates), `(created_at, id) < cursor` would skip every row that shares the time. Many times round-trip
    /// exactly: read, through the cursor's text, bound again, equal to the stored value.
    /// Multi-row inserts (a `VALUES` list in SQLite, `unnest` of one array per column in PostgreSQL) store every kind of
    /// value exactly: text that looks like array syntax, NULLs among values and columns of NULLs only, extreme
    /// numbers, times to the microsecond, and an upsert's `RETURNING`.
    @Test(arguments: TestStore.available)
    func multiRowInsertsStoreEveryValueExactly(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let table = Table("ct", "rows_\(store.rawValue)")
            let types =
                store == .postgres
                ? "(n INTEGER PRIMARY KEY, t TEXT, i BIGINT, d DOUBLE PRECISION, b BOOLEAN, u UUID, w TIMESTAMPTZ, z TEXT)"
                : "(n INTEGER PRIMARY KEY, t TEXT, i INTEGER, d REAL, b INTEGER, u TEXT, w INTEGER, z TEXT)"
            if store == .postgres { try await database.transaction(.system) { _ = try await $0.query("CREATE SCHEMA IF NOT EXISTS ct") } }
            try await database.transaction(.system) { _ = try await $0.query("CREATE TABLE \(table) \(unsafeRaw: types)") }
            let texts = [
                "plain", "", "NULL", "{a,b}", "quote \" and \\ backslash", "comma, space", "ünïcödé ✓", "  padded  ", "new\nline", "\\\"",
            ]
            let uuid = UUID()
            let time = Date(timeIntervalSince1970: 1_796_000_000.123457)
            let rows: [[SQLValue]] = texts.enumerated().map { n, text in
                [
                    .int(Int64(n)), .text(text), n == 3 ? .null : .int(n % 2 == 0 ? Int64.max - Int64(n) : Int64.min + Int64(n)),
                    n == 4 ? .null : .double(n == 0 ? 1e-05 : 49.5 * Double(n) + 0.1), .bool(n % 2 == 0), n == 5 ? .null : .uuid(uuid),
                    .date(time.addingTimeInterval(Double(n) * 0.000_001)), .null,
                ]
            }
            let returned = try await database.transaction(.system) { tx in
                var returned = 0
                for statement in SQL.insert(
                    into: table, alias: "r", columns: ["n", "t", "i", "d", "b", "u", "w", "z"], rows: rows,
                    suffix: " ON CONFLICT (n) DO UPDATE SET t = excluded.t RETURNING n"
                ) {
                    returned += try await tx.query(statement).count
                }
                return returned
            }
            #expect(returned == texts.count)
            let stored = try await database.query("SELECT * FROM \(table) ORDER BY n")
            #expect(stored.count == texts.count)
            for (n, row) in stored.enumerated() {
                #expect(try row.get("t", as: String.self) == texts[n])
                #expect(try row.get("i", as: Int64?.self) == (n == 3 ? nil : (n % 2 == 0 ? Int64.max - Int64(n) : Int64.min + Int64(n))))
                #expect(try row.get("d", as: Double?.self) == (n == 4 ? nil : (n == 0 ? 1e-05 : 49.5 * Double(n) + 0.1)))
                #expect(try row.get("b", as: Bool.self) == (n % 2 == 0))
                #expect(try row.get("u", as: UUID?.self) == (n == 5 ? nil : uuid))
                #expect(try row.get("w", as: Date.self).unixMicroseconds == time.addingTimeInterval(Double(n) * 0.000_001).unixMicroseconds)
                #expect(try row.get("z", as: String?.self) == nil)
            }
        }
    }

    /// Values appended column by column (``SQLArrayColumn``, the raw beacon events' insert) are stored as the same
    /// values given row by row; NULLs among values and a column of NULLs only included.
    @Test func columnArraysStoreWhatRowsStore() async throws {
        guard TestStore.available.contains(.postgres) else { return }
        let environment = try await TestEnvironment.make(.postgres)
        try await environment.withDatabase { database in
            let table = Table("ct", "arrays")
            try await database.transaction(.system) { tx in
                _ = try await tx.query("CREATE SCHEMA IF NOT EXISTS ct")
                _ = try await tx.query("CREATE TABLE \(table) (n BIGINT PRIMARY KEY, t TEXT, d DOUBLE PRECISION, u UUID, z TEXT, s SMALLINT)")
            }
            let uuid = UUID()
            let texts = ["plain", "", "NULL", "{a,\"b\"}", "ünïcödé ✓", "new\nline"]
            var n = SQLArrayColumn(.int8, capacity: 2), t = SQLArrayColumn(.text, capacity: 2), d = SQLArrayColumn(.float8, capacity: 2)
            var u = SQLArrayColumn(.uuid, capacity: 2), z = SQLArrayColumn(.text, capacity: 2), small = SQLArrayColumn(.int8, capacity: 2)
            for (index, text) in texts.enumerated() {
                n.append(Int64(index))
                t.append(index == 2 ? nil : text)
                d.append(index % 2 == 0 ? 49.5 * Double(index) : nil)
                u.append(index == 1 ? nil : uuid)
                z.append(nil as String?)
                small.append(Int64(index % 2))
            }
            #expect(n.count == texts.count && !z.hasValues && t.hasValues)
            try await database.transaction(.system) { tx in
                try await tx.execute(SQL.insert(into: table, columns: ["n", "t", "d", "u", "z", "s"], arrays: [n, t, d, u, z, small]))
            }
            let stored = try await database.query("SELECT * FROM \(table) ORDER BY n")
            #expect(stored.count == texts.count)
            for (index, row) in stored.enumerated() {
                #expect(try row.get("t", as: String?.self) == (index == 2 ? nil : texts[index]))
                #expect(try row.get("d", as: Double?.self) == (index % 2 == 0 ? 49.5 * Double(index) : nil))
                #expect(try row.get("u", as: UUID?.self) == (index == 1 ? nil : uuid))
                #expect(try row.get("z", as: String?.self) == nil)
                #expect(try row.get("s", as: Int64.self) == Int64(index % 2))
            }
            var nul = SQLArrayColumn(.text, capacity: 1)
            nul.append("a\u{0}b")
            #expect(nul.hasUnstorableText)
        }
    }

    /// Text with U+0000 in a multi-row insert is refused with the same 422 as a single value, on both stores (the
    /// PostgreSQL binary arrays would otherwise pass it to the server, which fails on it).
    @Test(arguments: TestStore.available)
    func multiRowInsertsRefuseTextWithNUL(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let table = Table("ct", "nul_\(store.rawValue)")
            if store == .postgres { try await database.transaction(.system) { _ = try await $0.query("CREATE SCHEMA IF NOT EXISTS ct") } }
            try await database.transaction(.system) { _ = try await $0.query("CREATE TABLE \(table) (n INTEGER PRIMARY KEY, t TEXT)") }
            await #expect(throws: HeraldError.self) {
                try await database.transaction(.system) { tx in
                    for statement in SQL.insert(into: table, columns: ["n", "t"], rows: [[.int(1), .text("ok")], [.int(2), .text("a\u{0}b")]]) {
                        try await tx.execute(statement)
                    }
                }
            }
            #expect(try await database.query("SELECT * FROM \(table)").isEmpty)
        }
    }

    @Test(arguments: TestStore.available)
    func timesReadBackAndBoundAgainNameTheSameMicrosecond(store: TestStore) async throws {
        let environment = try await TestEnvironment.make(store)
        try await environment.withDatabase { database in
            let table = "ct_time_\(store.rawValue)"
            let column = store == .postgres ? "TIMESTAMPTZ" : "INTEGER"
            try await database.transaction(.system) { tx in
                _ = try await tx.query("CREATE TABLE \(unsafeRaw: table) (n INTEGER, t \(unsafeRaw: column))")
                // One statement: a transaction that writes must stay short, or every PostgreSQL event bus on the
                // cluster waits for it (DatabaseEventBus reads only below the oldest running transaction).
                let base: Int64 = 1_796_000_000_123_456
                let rows: [SQL] = (0..<500).map { n in
                    "(\(n), \(Date(timeIntervalSince1970: Double(base + Int64(n) * 7_919) / 1_000_000)))"
                }
                _ = try await tx.query("INSERT INTO \(unsafeRaw: table) (n, t) VALUES \(SQL.joined(rows, separator: ", "))")
            }
            let mismatched = try await database.transaction(.system) { tx in
                // Read-only: no transaction id, so it holds no bus back however long it takes.
                var mismatched: [Int] = []
                for row in try await tx.query("SELECT n, t FROM \(unsafeRaw: table)") {
                    let n: Int = try row.get("n")
                    let stored: Date = try row.get("t")
                    let cursor = try #require(TimeCursor(TimeCursor(date: stored, id: UUID()).text))
                    let same = try await tx.queryFirst(
                        "SELECT COUNT(*) AS c FROM \(unsafeRaw: table) WHERE n = \(n) AND t = \(cursor.date) AND NOT (t < \(cursor.date))")
                    if try same?.get("c", as: Int.self) != 1 { mismatched.append(n) }
                }
                return mismatched
            }
            #expect(mismatched.isEmpty, "times that did not round-trip: \(mismatched.prefix(10))")
        }
    }
}

/// Everything a store holds, as text: the SQLite files byte for byte, or a pg_dump of the database.
enum StoredBytes {
    static func dump(_ environment: TestEnvironment) async throws -> String {
        if environment.store == .sqlite {
            var all = Data()
            for file in try FileManager.default.contentsOfDirectory(atPath: environment.dataDirectory) {
                all.append(FileManager.default.contents(atPath: environment.dataDirectory + "/" + file) ?? Data())
            }
            return String(decoding: all, as: UTF8.self)
        }
        // As the cluster's superuser: pg_dump as Herald's role would see nothing through row-level security.
        guard let databaseURL = environment.databaseURL, let name = URLComponents(string: databaseURL)?.path,
            let admin = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_ADMIN_URL"], var components = URLComponents(string: admin)
        else { throw TestFailure("no database URL") }
        components.path = name
        components.query = nil
        let url = components.string ?? ""
        let pgDump =
            try FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")
            .sorted().last.map { "/usr/lib/postgresql/\($0)/bin/pg_dump" } ?? "pg_dump"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: pgDump)
        process.arguments = ["--data-only", "--dbname", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("pg_dump failed") }
        return String(decoding: data, as: UTF8.self)
    }
}
