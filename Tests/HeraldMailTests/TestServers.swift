import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import HeraldMail

/// The repository's root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Whether the Python test servers can run. With HERALD_TEST_REQUIRE_SERVERS=1 they are assumed to, so a missing
/// python3, aiosmtpd or openssl fails the tests instead of skipping them.
enum TestServers {
    static let required = ProcessInfo.processInfo.environment["HERALD_TEST_REQUIRE_SERVERS"] == "1"

    /// python3 with aiosmtpd (`pip install aiosmtpd`) and openssl, for the SMTP tests.
    static let smtpAvailable: Bool = required || (succeeds(["python3", "-c", "import aiosmtpd"]) && succeeds(["openssl", "version"]))

    /// python3, for the SendGrid fake.
    static let pythonAvailable: Bool = required || succeeds(["python3", "-c", "import http.server"])

    static func succeeds(_ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return false
        }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// A throwaway self-signed certificate for 127.0.0.1 and localhost, made once per test run with openssl.
struct TestCertificate: Sendable {
    var certificate: String
    var key: String

    static let shared: Result<TestCertificate, TestFailure> = {
        do {
            let directory = try TestServers.temporaryDirectory("herald-mail-cert")
            let certificate = directory.appendingPathComponent("cert.pem").path
            let key = directory.appendingPathComponent("key.pem").path
            let made = TestServers.succeeds([
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", certificate,
            ])
            return made
                ? .success(TestCertificate(certificate: certificate, key: key)) : .failure(TestFailure("openssl could not make a certificate"))
        } catch {
            return .failure(TestFailure("cannot make a certificate directory: \(error)"))
        }
    }()

    static func get() throws -> TestCertificate { try shared.get() }
}

/// A Python test server (scripts/lib/…) started on a free port; ``stop()`` ends it.
final class ServerProcess {
    let port: Int
    /// Where the server writes what it received.
    let outputDirectory: URL
    private let process: Process
    private let logFile: URL

    private init(port: Int, outputDirectory: URL, process: Process, logFile: URL) {
        self.port = port
        self.outputDirectory = outputDirectory
        self.process = process
        self.logFile = logFile
    }

    static func start(script: String, arguments: [String]) async throws -> ServerProcess {
        let directory = try TestServers.temporaryDirectory("herald-mail-server")
        let output = directory.appendingPathComponent("out")
        let ready = directory.appendingPathComponent("port")
        let log = directory.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", repositoryRoot.appendingPathComponent(script).path] + arguments
            + ["--port", "0", "--dir", output.path, "--ready-file", ready.path]
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        let server = ServerProcess(port: 0, outputDirectory: output, process: process, logFile: log)
        for _ in 0..<200 {
            if let text = try? String(contentsOf: ready, encoding: .utf8), let port = Int(text) {
                return ServerProcess(port: port, outputDirectory: output, process: process, logFile: log)
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let serverLog = server.log
        server.stop()
        throw TestFailure("\(script) did not start: \(serverLog)")
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Asks the server to stop, then kills it if it has not within two seconds (never blocks for longer), and
    /// removes its directory.
    func stop() {
        defer { try? FileManager.default.removeItem(at: outputDirectory.deletingLastPathComponent()) }
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<40 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The files the server wrote whose names end in `suffix`, sorted by name.
    func files(endingWith suffix: String) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { outputDirectory.appendingPathComponent($0) }
    }

    /// A JSON file the server wrote, as a dictionary.
    func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: outputDirectory.appendingPathComponent(name))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw TestFailure("\(name) is not an object") }
        return object
    }
}

/// Lines a scripted server received, shared with the test.
final class Transcript: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// A scripted SMTP server on 127.0.0.1 made with NIO: it sends `greeting` (nothing when nil) and answers each
/// command line with the reply of the first rule whose prefix matches (nothing when the reply is empty; with no
/// rules at all it never answers). Lines of message data are skipped; the rule for `.` answers the end of the data.
final class ScriptedSMTPServer: Sendable {
    let port: Int
    let transcript: Transcript
    private let channel: any Channel

    private init(port: Int, transcript: Transcript, channel: any Channel) {
        self.port = port
        self.transcript = transcript
        self.channel = channel
    }

    static func start(greeting: String?, rules: [(String, String)]) async throws -> ScriptedSMTPServer {
        let transcript = Transcript()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(greeting: greeting, rules: rules, transcript: transcript))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let port = channel.localAddress?.port else { throw TestFailure("the scripted server has no port") }
        return ScriptedSMTPServer(port: port, transcript: transcript, channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }
}

private final class ScriptedHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let greeting: String?
    let rules: [(String, String)]
    let transcript: Transcript
    var pending = ""
    var inData = false

    init(greeting: String?, rules: [(String, String)], transcript: Transcript) {
        self.greeting = greeting
        self.rules = rules
        self.transcript = transcript
    }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += String(buffer: unwrapInboundIn(data))
        while let end = pending.range(of: "\r\n") {
            let line = String(pending[..<end.lowerBound])
            pending.removeSubrange(..<end.upperBound)
            if inData && line != "." { continue }
            inData = false
            transcript.append(line)
            guard !rules.isEmpty else { continue }  // a silent server
            guard let reply = rules.first(where: { line.uppercased().hasPrefix($0.0.uppercased()) })?.1 else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "500 5.5.1 unrecognised\r\n")), promise: nil)
                continue
            }
            if line.uppercased() == "DATA" && reply.hasPrefix("354") { inData = true }
            if !reply.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil) }
            if line.uppercased() == "QUIT" { context.close(promise: nil) }
        }
    }
}

/// Quoted-printable decoding (RFC 2045), to check what the writer encoded.
func decodeQuotedPrintable(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    let bytes = Array(text.utf8)
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "=") {
            if index + 2 < bytes.count, bytes[index + 1] == 0x0D, bytes[index + 2] == 0x0A {
                index += 3
                continue
            }
            if index + 2 < bytes.count, let value = UInt8(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                out.append(value)
                index += 3
                continue
            }
        }
        out.append(byte)
        index += 1
    }
    return out
}

/// The decoded text of RFC 2047 `B` encoded words separated by spaces.
func decodeEncodedWords(_ text: String) -> String {
    var bytes: [UInt8] = []
    for word in text.split(separator: " ") {
        guard word.hasPrefix("=?utf-8?B?"), word.hasSuffix("?=") else { return text }
        bytes += Data(base64Encoded: String(word.dropFirst(10).dropLast(2))).map { [UInt8]($0) } ?? []
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A message with every feature: two recipients, a non-ASCII subject and name, text and HTML, a PDF-like
/// attachment, a CSV with a non-ASCII name, and the one-click unsubscribe headers.
func richMessage(to recipients: [String] = ["ops@example.com", "Finance Team <finance@example.com>"]) throws -> MailMessage {
    var pdf = Array("%PDF-1.4\n".utf8)
    for index in 0..<3000 { pdf.append(UInt8(truncatingIfNeeded: index &* 31 &+ 7)) }
    return try MailMessage(
        from: try MailAddress("reports@example.com", name: "Herald Reports – Köln"),
        to: try recipients.map(MailAddress.parse),
        replyTo: try MailAddress("support@example.com"),
        subject: "Wöchentlicher Bericht: 1.234 Besucher 🎉",
        text: "Hallo,\n\n.this line starts with a dot\nGrüße aus Köln\n..two dots\n\nHerald",
        html: "<p>Hallo,</p><p>Grüße aus <b>Köln</b></p>",
        attachments: [
            try MailAttachment(fileName: "report-2024-05.pdf", contentType: "application/pdf", bytes: pdf),
            try MailAttachment(fileName: "Übersicht.csv", contentType: "text/csv; charset=utf-8", bytes: Array("day,visits\n2024-05-01,12\n".utf8)),
        ],
        headers: [
            try MailHeader("List-Unsubscribe", "<https://herald.example.com/unsubscribe/abc123>, <mailto:unsubscribe@example.com?subject=abc123>"),
            try MailHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
    )
}
