import Foundation
import HeraldApp
import NIOCore
import NIOPosix

/// Binds the address once before start-up so "address in use" is a clear message, not a failure deep inside
/// the server's start.
enum PortCheck {
    static func ensureAvailable(host: String, port: Int) throws {
        let channel: any Channel
        do {
            channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port)
                .wait()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ConfigurationError("cannot listen on \(host):\(port): the address is already in use")
        } catch let error as IOError where error.errnoCode == EACCES {
            throw ConfigurationError("cannot listen on \(host):\(port): permission denied")
        } catch {
            throw ConfigurationError("cannot listen on \(host):\(port): \(error)")
        }
        try? channel.close().wait()
    }
}
