import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// Bcrypt password hashing on its own thread pool, so a burst of logins never stalls the event loops or the store.
///
/// Passwords are first reduced with SHA-256 (base64, 44 bytes) because bcrypt ignores everything after 72 bytes;
/// long passphrases keep all their strength.
public struct PasswordHasher: Sendable {
    public static let minimumLength = 8
    public static let maximumLength = 256
    public static let defaultCost: UInt8 = 12

    public let cost: UInt8
    private let threadPool: NIOThreadPool
    /// A real hash to compare against when the account does not exist, so both paths take the same time.
    private let decoyHash: String

    public init(cost: UInt8 = PasswordHasher.defaultCost, threadPool: NIOThreadPool) {
        self.cost = cost
        self.threadPool = threadPool
        self.decoyHash = Bcrypt.hash(Self.prehash("herald-decoy-password"), cost: cost)
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { Bcrypt.hash(Self.prehash(password), cost: cost) }
    }

    public func verify(_ password: String, against hash: String?) async throws -> Bool {
        let stored = hash ?? decoyHash
        let matches = try await threadPool.runIfActive { Bcrypt.verify(Self.prehash(password), hash: stored) }
        return hash != nil && matches
    }

    static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }
}
