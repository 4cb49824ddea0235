import NIOCore

/// One SMTP reply: a three-digit code and its text lines (several for a multi-line reply).
struct SMTPReply: Sendable, Equatable {
    var code: Int
    var lines: [String]

    var isPositiveCompletion: Bool { (200..<300).contains(code) }
    var isTransientFailure: Bool { (400..<500).contains(code) }

    /// `250 first line / second line`, cleaned for logs and error messages.
    var summary: String {
        MailText.sanitized("\(code) " + lines.filter { !$0.isEmpty }.joined(separator: " / "))
    }
}

/// Failures of the wire below the SMTP dialogue; the transport turns them into ``MailError``s naming the step.
enum SMTPWireError: Error, Equatable {
    case timedOut
    case closed
    case replyTooLong
    case malformedReply(String)
    case unexpectedData
}

/// Splits bytes into SMTP replies (RFC 5321 section 4.2): lines end in CRLF (a bare LF is accepted), every line of a
/// reply starts with the same code, `-` after the code continues the reply and a space or nothing ends it.
struct SMTPReplyParser {
    private var pending: [UInt8] = []
    private var lines: [String] = []
    private var code: Int?

    /// The longest line accepted; RFC 5321 allows 512, servers' texts sometimes exceed it.
    static let maximumLineLength = 4096
    /// The most lines one reply may have; EHLO replies have a few dozen at most.
    static let maximumLines = 200

    /// True when bytes of an unfinished reply are buffered.
    var hasPartialInput: Bool { !pending.isEmpty || !lines.isEmpty }

    /// Adds `bytes` and returns every reply they complete.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [SMTPReply] {
        var replies: [SMTPReply] = []
        for byte in bytes {
            guard byte == 0x0A else {
                pending.append(byte)
                guard pending.count <= Self.maximumLineLength else { throw SMTPWireError.replyTooLong }
                continue
            }
            if pending.last == 0x0D { pending.removeLast() }
            let line = pending
            pending.removeAll(keepingCapacity: true)
            if let reply = try take(line) { replies.append(reply) }
        }
        return replies
    }

    private mutating func take(_ line: [UInt8]) throws -> SMTPReply? {
        let digits = line.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ (0x30...0x39).contains($0) }),
            let lineCode = Int(String(decoding: digits, as: UTF8.self)), (200...599).contains(lineCode)
        else {
            throw SMTPWireError.malformedReply(MailText.sanitized(String(decoding: line.prefix(80), as: UTF8.self)))
        }
        if let code, code != lineCode {
            throw SMTPWireError.malformedReply("a multi-line reply changed its code from \(code) to \(lineCode)")
        }
        let separator = line.count > 3 ? line[3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            throw SMTPWireError.malformedReply(MailText.sanitized(String(decoding: line.prefix(80), as: UTF8.self)))
        }
        lines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
        guard lines.count <= Self.maximumLines else { throw SMTPWireError.replyTooLong }
        if separator == UInt8(ascii: "-") {
            code = lineCode
            return nil
        }
        defer {
            lines = []
            code = nil
        }
        return SMTPReply(code: lineCode, lines: lines)
    }
}

/// The extensions a server listed in its EHLO reply.
struct SMTPCapabilities: Sendable, Equatable {
    var keywords: Set<String> = []
    var authMechanisms: Set<String> = []
    /// The largest message the server accepts (SIZE), when it said; 0 means no limit.
    var sizeLimit: Int?

    init() {}

    init(ehlo reply: SMTPReply) {
        // The first line is the server's greeting name; each further line is `KEYWORD [parameters]`.
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ").map(String.init)
            guard let first = words.first else { continue }
            let keyword = first.uppercased()
            if keyword.hasPrefix("AUTH=") {
                // Some old servers list mechanisms as `AUTH=LOGIN PLAIN`.
                keywords.insert("AUTH")
                authMechanisms.formUnion([String(keyword.dropFirst(5))] + words.dropFirst().map { $0.uppercased() })
                continue
            }
            keywords.insert(keyword)
            switch keyword {
            case "AUTH": authMechanisms.formUnion(words.dropFirst().map { $0.uppercased() })
            case "SIZE": sizeLimit = words.count > 1 ? Int(words[1]) : nil
            default: break
            }
        }
    }

    func supports(_ keyword: String) -> Bool { keywords.contains(keyword) }
}

/// The DATA section of an SMTP transaction (RFC 5321 section 4.5.2): every line ends in CRLF (bare CR and LF
/// become CRLF), a line that starts with `.` gets a second one, and `.` on its own line ends it.
enum SMTPData {
    static func encode(_ message: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(message.count + message.count / 50 + 8)
        var atLineStart = true
        var previousWasCR = false
        for byte in message {
            if byte == 0x0A && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = byte == 0x0D
            if byte == 0x0D || byte == 0x0A {
                buffer.writeBytes([0x0D, 0x0A])
                atLineStart = true
                continue
            }
            if atLineStart && byte == UInt8(ascii: ".") { buffer.writeInteger(UInt8(ascii: ".")) }
            buffer.writeInteger(byte)
            atLineStart = false
        }
        if !atLineStart { buffer.writeBytes([0x0D, 0x0A]) }
        buffer.writeBytes(Array(".\r\n".utf8))
        return buffer
    }
}

/// Reads replies off the connection and hands them, one per request, to the dialogue. Lives on the channel's
/// event loop; the transport reaches it through `NIOLoopBound`.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var parser = SMTPReplyParser()
    private var replies: [SMTPReply] = []
    private var waiter: (promise: EventLoopPromise<SMTPReply>, timeout: Scheduled<Void>)?
    private var failure: (any Error)?
    private var context: ChannelHandlerContext?
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        fail(SMTPWireError.closed)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            replies += try parser.feed(bytes.readableBytesView)
        } catch {
            fail(error)
            context.close(promise: nil)
            return
        }
        deliver()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPWireError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    /// True when the server sent something the client has not asked for yet: after the reply to STARTTLS that
    /// would be plaintext smuggled into the encrypted session (CVE-2011-0411), so it is refused.
    var hasUnreadInput: Bool { !replies.isEmpty || parser.hasPartialInput }

    /// Writes `bytes` (if any) and waits up to `timeout` for the next reply.
    ///
    /// A reply that arrived unasked (a server's `421` before it hangs up) answers the request without writing.
    func exchange(_ bytes: ByteBuffer?, timeout: TimeAmount) -> EventLoopFuture<SMTPReply> {
        if !replies.isEmpty { return eventLoop.makeSucceededFuture(replies.removeFirst()) }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        guard let context else { return eventLoop.makeFailedFuture(SMTPWireError.closed) }
        guard waiter == nil else { return eventLoop.makeFailedFuture(SMTPWireError.malformedReply("a reply is already awaited")) }
        let promise = eventLoop.makePromise(of: SMTPReply.self)
        // Armed before the write, so a server that stops reading cannot stall the write forever.
        let timeout = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.fail(SMTPWireError.timedOut)
            self?.context?.close(promise: nil)
        }
        waiter = (promise, timeout)
        if let bytes {
            context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenFailure { [weak self] error in
                self?.fail(error)
            }
        }
        return promise.futureResult
    }

    private func deliver() {
        guard let waiter, !replies.isEmpty else { return }
        self.waiter = nil
        waiter.timeout.cancel()
        waiter.promise.succeed(replies.removeFirst())
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        guard let waiter else { return }
        self.waiter = nil
        waiter.timeout.cancel()
        waiter.promise.fail(failure ?? error)
    }
}
