import Crypto
import Foundation

/// Application-level encryption for personal data (emails, names) with AES-256-GCM and versioned keys.
///
/// Each value is bound to its place (`users.email:<id>`) through the associated data, so a ciphertext copied
/// into another row or column fails to decrypt. Stored form: `0x01 ‖ key version (4 bytes) ‖ nonce ‖ ciphertext ‖ tag`.
public struct FieldCipher: Sendable {
    private let keys: [KeyRing.DataKey]
    private let blindIndexKey: SymmetricKey

    public init(keyRing: KeyRing) {
        self.keys = keyRing.dataKeys
        self.blindIndexKey = keyRing.blindIndexKey
    }

    /// The key version new values are encrypted with.
    public var currentVersion: UInt32 { keys[0].version }

    public func encrypt(_ plaintext: String, context: String) throws -> [UInt8] {
        let current = keys[0]
        let sealed = try AES.GCM.seal(Data(plaintext.utf8), using: current.key, authenticating: Data(context.utf8))
        guard let combined = sealed.combined else { throw FieldCipherError.cannotDecrypt }
        var output: [UInt8] = [0x01]
        withUnsafeBytes(of: current.version.bigEndian) { output.append(contentsOf: $0) }
        output.append(contentsOf: combined)
        return output
    }

    public func decrypt(_ ciphertext: [UInt8], context: String) throws -> String {
        guard ciphertext.count > 5 + 12 + 16, ciphertext[0] == 0x01 else { throw FieldCipherError.cannotDecrypt }
        let version = ciphertext[1..<5].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        guard let key = keys.first(where: { $0.version == version }) else { throw FieldCipherError.unknownKeyVersion(version) }
        do {
            let box = try AES.GCM.SealedBox(combined: Data(ciphertext[5...]))
            let plaintext = try AES.GCM.open(box, using: key.key, authenticating: Data(context.utf8))
            return String(decoding: plaintext, as: UTF8.self)
        } catch {
            throw FieldCipherError.cannotDecrypt
        }
    }

    /// The key version a stored value was encrypted with (for re-encryption after a rotation).
    public static func keyVersion(of ciphertext: [UInt8]) -> UInt32? {
        guard ciphertext.count > 5 else { return nil }
        return ciphertext[1..<5].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
    }

    /// A keyed hash for equality lookups on an encrypted value: the same input gives the same index, and the
    /// index reveals nothing without the key. `purpose` keeps indexes of different fields apart.
    public func blindIndex(_ value: String, purpose: String) -> [UInt8] {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(purpose):\(value)".utf8), using: blindIndexKey)
        return Array(mac)
    }
}

public enum FieldCipherError: Error, CustomStringConvertible {
    case cannotDecrypt
    case unknownKeyVersion(UInt32)

    public var description: String {
        switch self {
        case .cannotDecrypt: "an encrypted field failed authentication"
        case .unknownKeyVersion(let version): "an encrypted field uses data key version \(version), which is not configured"
        }
    }
}
