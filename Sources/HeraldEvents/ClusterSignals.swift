import Foundation

/// Messages every instance of a deployment hears at once: cache invalidations and live pushes. Not durable and not
/// for facts (events carry those): a signal an instance misses while disconnected costs it a stale cache until its
/// next refresh, nothing more.
public protocol ClusterSignals: Sendable {
    /// Sends `message` to the other instances listening on `channel`.
    func broadcast(_ channel: String, _ message: String) async
    /// What other instances broadcast on `channel`, while the stream is consumed. After a gap in listening (the
    /// connection to the other instances was lost and is back) every channel receives ``ClusterSignal/resync``:
    /// messages may have been missed, so whatever a listener keeps from them may be stale.
    func messages(_ channel: String) -> AsyncStream<String>
}

public enum ClusterSignal {
    /// Delivered to every listener after a gap in listening: drop what other instances' messages would have changed.
    public static let resync = "*"
}

/// One process: there is nobody else to tell.
public struct LocalSignals: ClusterSignals {
    public init() {}

    public func broadcast(_ channel: String, _ message: String) async {}

    public func messages(_ channel: String) -> AsyncStream<String> {
        // Never yields; iteration ends when the consuming task is cancelled. The continuation is kept by its own
        // termination handler, so the stream does not end when this function returns.
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        continuation.onTermination = { _ in _ = continuation }
        return stream
    }
}
