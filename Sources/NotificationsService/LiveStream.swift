import Foundation
import NIOCore
import ServiceLifecycle
import Synchronization

/// Fans events out to the pages that hold a Server-Sent Events connection, per site.
///
/// Each connection has a small buffer keeping the newest messages; a page that cannot keep up loses old
/// messages, never slows the others. Connections are limited per site and in total.
final class LiveStream: Sendable {
    struct Connections {
        var bySite: [UUID: [UUID: AsyncStream<ByteBuffer>.Continuation]] = [:]
        var total = 0
        var closed = false
    }

    private let state = Mutex(Connections())
    let maxConnections: Int
    let maxPerSite: Int

    init(maxConnections: Int = 20_000, maxPerSite: Int = 5_000) {
        self.maxConnections = maxConnections
        self.maxPerSite = maxPerSite
    }

    enum SubscribeError: Error { case full, closed }

    /// Opens a connection's message stream; it ends when the connection closes, `close` is called, or Herald
    /// shuts down.
    func subscribe(siteId: UUID) throws(SubscribeError) -> (messages: AsyncStream<ByteBuffer>, close: @Sendable () -> Void) {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingNewest(32))
        let result: SubscribeError? = state.withLock { state in
            if state.closed { return .closed }
            if state.total >= maxConnections || state.bySite[siteId, default: [:]].count >= maxPerSite { return .full }
            state.bySite[siteId, default: [:]][id] = continuation
            state.total += 1
            return nil
        }
        if let result { throw result }
        continuation.onTermination = { [weak self] _ in self?.remove(siteId: siteId, id: id) }
        return (stream, { continuation.finish() })
    }

    private func remove(siteId: UUID, id: UUID) {
        state.withLock { state in
            if state.bySite[siteId]?.removeValue(forKey: id) != nil { state.total -= 1 }
            if state.bySite[siteId]?.isEmpty == true { state.bySite[siteId] = nil }
        }
    }

    func hasListeners(siteId: UUID) -> Bool {
        state.withLock { !($0.bySite[siteId]?.isEmpty ?? true) }
    }

    var connectionCount: Int { state.withLock { $0.total } }

    /// Sends one SSE message (`event:` and one `data:` line) to every page of the site.
    func publish(siteId: UUID, event: String, data: String) {
        let message = ByteBuffer(string: "event: \(event)\ndata: \(data.replacingOccurrences(of: "\n", with: " "))\n\n")
        let targets = state.withLock { Array(($0.bySite[siteId] ?? [:]).values) }
        for continuation in targets { continuation.yield(message) }
    }

    /// A comment line keeps idle connections open through proxies.
    func ping() {
        let message = ByteBuffer(string: ": ping\n\n")
        let targets = state.withLock { $0.bySite.values.flatMap(\.values) }
        for continuation in targets { continuation.yield(message) }
    }

    /// Ends every stream so in-flight responses finish and shutdown can complete.
    func closeAll() {
        let targets = state.withLock { state in
            state.closed = true
            return state.bySite.values.flatMap(\.values)
        }
        for continuation in targets { continuation.finish() }
    }
}

/// Pings open streams periodically and closes them all when Herald shuts down.
struct LiveStreamService: Service {
    let stream: LiveStream
    let pingInterval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: pingInterval)
                stream.ping()
            }
        }
        stream.closeAll()
    }
}
