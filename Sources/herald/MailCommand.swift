import ArgumentParser
import Foundation
import HeraldMail
import Logging

/// `herald mail …`: check the mail settings without running the server.
struct Mail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the mail settings (HERALD_MAIL_URL, HERALD_MAIL_FROM, …).",
        subcommands: [Test.self]
    )

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a short test message with the settings in the environment and print what the mail system said."
        )

        @Option(help: "The address to send the test message to.")
        var to: String

        @Flag(help: "Print the SMTP dialogue (passwords are never printed) to standard error.")
        var verbose = false

        func run() async throws {
            try await runReportingErrors {
                let environment = ProcessInfo.processInfo.environment
                let settings = try MailConfiguration.fromEnvironment(environment)
                guard let from = settings.from, settings.isEnabled else {
                    throw MailError.permanent("mail is not configured: set HERALD_MAIL_URL and HERALD_MAIL_FROM")
                }
                var logger = Logger(label: "herald.mail") { label in
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = .debug
                    return handler
                }
                logger.logLevel = verbose ? .debug : .error
                let transport = try settings.makeTransport(logger: logger)
                let host = ProcessInfo.processInfo.hostName
                let message = try MailMessage(
                    from: from,
                    to: [try MailAddress.parse(to)],
                    subject: "Herald test message",
                    text: """
                        This is a test message from Herald on \(host), sent with `herald mail test`.

                        Mail is set up: \(settings)
                        If you did not expect it, you can ignore it.
                        """
                )
                let receipt = try await transport.send(message)
                print("herald: test message to \(message.to[0].address) \(receipt)")
            }
        }
    }
}
