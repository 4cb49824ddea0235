import ArgumentParser
import Foundation
import HeraldApp
import HeraldCore
import HeraldSecurity
import HeraldTelemetry
import Hummingbird
import Logging

/// The `herald` command: a thin entry point over HeraldApp.
@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Self-hostable social-proof notifications.",
        subcommands: [Serve.self, Migrate.self, Backup.self, Restore.self, Keys.self, Analytics.self, Mail.self],
        defaultSubcommand: Serve.self
    )
}

/// Options shared by every command that touches the store. Each also reads a HERALD_* variable; a flag wins.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory for the embedded store and generated keys (HERALD_DATA_DIR, default ./herald-data).")
    var dataDirectory: String?

    @Option(help: "postgres://user:pass@host:port/db to use PostgreSQL; unset uses the embedded SQLite store (HERALD_DATABASE_URL).")
    var databaseURL: String?

    func apply(to config: inout HeraldConfiguration) {
        if let dataDirectory { config.dataDirectory = dataDirectory }
        if let databaseURL { config.databaseURL = databaseURL.isEmpty ? nil : databaseURL }
    }

    /// The configuration from the environment with these flags on top, and the process's logger.
    func load() throws -> (HeraldConfiguration, Logger) {
        var config = try HeraldConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
        apply(to: &config)
        return (config, bootstrapLogging(config))
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run Herald's services (all of them, in one process, by default).")

    @Option(help: "Address to listen on (HERALD_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (HERALD_PORT, default 8080).")
    var port: String?

    @Option(help: "Comma-separated services to run: users, notifications, analytics, integrations, billing, or all (HERALD_SERVICES).")
    var services: String?

    @Flag(help: "Do not apply pending migrations on start (run `herald migrate` separately).")
    var noMigrate = false

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runReportingErrors {
            var config = try HeraldConfiguration.fromEnvironment(ProcessInfo.processInfo.environment)
            if let host { config.host = host }
            if let port { config.port = try HeraldConfiguration.parsePort(port) }
            if let services { config.services = try ServiceName.parseList(services) }
            if noMigrate { config.migrateOnStart = false }
            store.apply(to: &config)
            let logger = bootstrapLogging(config)
            try PortCheck.ensureAvailable(host: config.host, port: config.port)
            let app = try await buildApplication(config, logger: logger)
            try await app.runService()
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await runReportingErrors {
            let (config, logger) = try store.load()
            let applied = try await HeraldRuntime.migrate(config, logger: logger)
            print(applied == 0 ? "herald: the schema is up to date" : "herald: applied \(applied) migration(s)")
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage keys.",
        subcommands: [Generate.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new key set as environment variables, to share one set between several instances."
        )

        func run() async throws {
            try await runReportingErrors {
                let ring = try KeyRing.generate()
                for (name, value) in ring.environmentForm { print("\(name)=\(value)") }
            }
        }
    }
}

/// Configures swift-log once: text by default, one JSON object per line with HERALD_LOG_FORMAT=json.
func bootstrapLogging(_ config: HeraldConfiguration) -> Logger {
    let json = config.environment["HERALD_LOG_FORMAT"]?.lowercased() == "json"
    let level = config.environment["HERALD_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
    // Inside a span (a request, a consumed event) every line carries trace_id and span_id, beside request_id.
    LoggingSystem.bootstrap(
        { label, provider in
            var handler: any LogHandler
            if json {
                var jsonHandler = JSONLogHandler(label: label)
                jsonHandler.metadataProvider = provider
                handler = jsonHandler
            } else {
                handler = StreamLogHandler.standardOutput(label: label, metadataProvider: provider)
            }
            handler.logLevel = level
            return handler
        },
        metadataProvider: HeraldTracing.loggingMetadataProvider
    )
    var logger = Logger(label: "herald")
    logger.logLevel = level
    return logger
}

/// Turns any failure into one line on standard error and a non-zero exit status: no stack traces.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let line = String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        FileHandle.standardError.write(Data("herald: \(line)\n".utf8))
        throw ExitCode.failure
    }
}
