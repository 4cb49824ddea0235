import Crypto
import Foundation
import HeraldCore

/// Every secret key Herald needs: JWT signing keys, data-encryption keys and the blind-index key.
///
/// Keys come from environment variables (so several instances share one set) or, when none are set, from
/// `keys.json` in the data directory, generated on the first start with owner-only permissions.
public struct KeyRing: Sendable {
    /// Ed25519 signing keys, the first signs new tokens; the rest still verify tokens signed before a rotation.
    public var signingKeys: [SigningKey]
    /// AES-256 keys by version; the highest version encrypts, every version decrypts.
    public var dataKeys: [DataKey]
    /// HMAC key for blind indexes (equality lookups on encrypted fields).
    public var blindIndexKey: SymmetricKey

    public struct SigningKey: Sendable {
        public var kid: String
        public var key: Curve25519.Signing.PrivateKey

        public init(kid: String, key: Curve25519.Signing.PrivateKey) {
            self.kid = kid
            self.key = key
        }
    }

    public struct DataKey: Sendable {
        public var version: UInt32
        public var key: SymmetricKey

        public init(version: UInt32, key: SymmetricKey) {
            self.version = version
            self.key = key
        }
    }

    public static let environmentVariables = ["HERALD_JWT_KEYS", "HERALD_DATA_KEYS", "HERALD_BLIND_INDEX_KEY"]

    public init(signingKeys: [SigningKey], dataKeys: [DataKey], blindIndexKey: SymmetricKey) throws {
        guard !signingKeys.isEmpty else { throw KeyRingError.invalid("at least one JWT signing key is required") }
        guard !dataKeys.isEmpty else { throw KeyRingError.invalid("at least one data-encryption key is required") }
        guard blindIndexKey.bitCount == 256 else { throw KeyRingError.invalid("the blind-index key must be 32 bytes") }
        self.signingKeys = signingKeys
        self.dataKeys = dataKeys.sorted { $0.version > $1.version }
        self.blindIndexKey = blindIndexKey
    }

    /// A fresh set of keys.
    public static func generate() throws -> KeyRing {
        let kid = "k" + String(UInt64(Date().timeIntervalSince1970), radix: 36) + SecretToken.random(bytes: 4)
        return try KeyRing(
            signingKeys: [SigningKey(kid: kid, key: Curve25519.Signing.PrivateKey())],
            dataKeys: [DataKey(version: 1, key: SymmetricKey(size: .bits256))],
            blindIndexKey: SymmetricKey(size: .bits256)
        )
    }

    /// Loads keys from the environment when any key variable is set, otherwise from (or into) `dataDirectory/keys.json`.
    public static func load(environment: [String: String], dataDirectory: String) throws -> (KeyRing, KeySource) {
        let present = environmentVariables.filter { environment[$0] != nil }
        if !present.isEmpty {
            guard present.count == environmentVariables.count else {
                let missing = environmentVariables.filter { environment[$0] == nil }.joined(separator: ", ")
                throw KeyRingError.invalid("\(present.joined(separator: ", ")) is set but \(missing) is not; set all key variables or none")
            }
            return (try fromEnvironment(environment), .environment)
        }
        let path = (dataDirectory as NSString).appendingPathComponent("keys.json")
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KeyRingError.invalid("cannot read \(path)")
            }
            return (try fromFile(data, path: path), .file(path))
        }
        let ring = try generate()
        let data = try JSONEncoder.herald.encode(ring.fileForm)
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw KeyRingError.invalid("cannot write \(path); is the data directory writable?")
        }
        return (ring, .generated(path))
    }

    public enum KeySource: Sendable, CustomStringConvertible {
        case environment
        case file(String)
        case generated(String)

        public var description: String {
            switch self {
            case .environment: "environment"
            case .file(let path): path
            case .generated(let path): "\(path) (generated)"
            }
        }
    }

    /// Parses `HERALD_JWT_KEYS` (`kid:base64url-seed,…`), `HERALD_DATA_KEYS` (`version:base64-key,…`) and
    /// `HERALD_BLIND_INDEX_KEY` (base64).
    static func fromEnvironment(_ environment: [String: String]) throws -> KeyRing {
        let jwt = try (environment["HERALD_JWT_KEYS"] ?? "").split(separator: ",").map { entry -> SigningKey in
            let parts = entry.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)
            guard parts.count == 2, isValidKid(String(parts[0])) else {
                throw KeyRingError.invalid("HERALD_JWT_KEYS entries must look like kid:base64url-key")
            }
            return SigningKey(kid: String(parts[0]), key: try signingKey(base64url: String(parts[1]), name: "HERALD_JWT_KEYS"))
        }
        let data = try (environment["HERALD_DATA_KEYS"] ?? "").split(separator: ",").map { entry -> DataKey in
            let parts = entry.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let version = UInt32(parts[0]), version > 0 else {
                throw KeyRingError.invalid("HERALD_DATA_KEYS entries must look like 1:base64-key")
            }
            return DataKey(version: version, key: try symmetricKey(base64: String(parts[1]), name: "HERALD_DATA_KEYS"))
        }
        let blind = try symmetricKey(base64: environment["HERALD_BLIND_INDEX_KEY"] ?? "", name: "HERALD_BLIND_INDEX_KEY")
        return try KeyRing(signingKeys: jwt, dataKeys: data, blindIndexKey: blind)
    }

    /// The three environment lines that reproduce this key ring on other instances.
    public var environmentForm: [(String, String)] {
        [
            ("HERALD_JWT_KEYS", signingKeys.map { "\($0.kid):\(Base64URL.encode($0.key.rawRepresentation))" }.joined(separator: ",")),
            (
                "HERALD_DATA_KEYS",
                dataKeys.map { "\($0.version):\($0.key.withUnsafeBytes { Data($0).base64EncodedString() })" }.joined(separator: ",")
            ),
            ("HERALD_BLIND_INDEX_KEY", blindIndexKey.withUnsafeBytes { Data($0).base64EncodedString() }),
        ]
    }

    struct FileForm: Codable {
        struct JWTKey: Codable {
            var kid: String
            var privateKey: String
        }
        struct StoredDataKey: Codable {
            var version: UInt32
            var key: String
        }
        var jwtKeys: [JWTKey]
        var dataKeys: [StoredDataKey]
        var blindIndexKey: String
    }

    var fileForm: FileForm {
        FileForm(
            jwtKeys: signingKeys.map { .init(kid: $0.kid, privateKey: Base64URL.encode($0.key.rawRepresentation)) },
            dataKeys: dataKeys.map { key in .init(version: key.version, key: key.key.withUnsafeBytes { Data($0).base64EncodedString() }) },
            blindIndexKey: blindIndexKey.withUnsafeBytes { Data($0).base64EncodedString() }
        )
    }

    static func fromFile(_ data: Data, path: String) throws -> KeyRing {
        let form: FileForm
        do {
            form = try JSONDecoder.herald.decode(FileForm.self, from: data)
        } catch {
            throw KeyRingError.invalid("\(path) is not a valid key file")
        }
        return try KeyRing(
            signingKeys: try form.jwtKeys.map { SigningKey(kid: $0.kid, key: try signingKey(base64url: $0.privateKey, name: path)) },
            dataKeys: try form.dataKeys.map { DataKey(version: $0.version, key: try symmetricKey(base64: $0.key, name: path)) },
            blindIndexKey: try symmetricKey(base64: form.blindIndexKey, name: path)
        )
    }

    static func isValidKid(_ kid: String) -> Bool {
        !kid.isEmpty && kid.count <= 64 && kid.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    static func signingKey(base64url: String, name: String) throws -> Curve25519.Signing.PrivateKey {
        guard let bytes = Base64URL.decode(base64url), bytes.count == 32,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes)
        else {
            throw KeyRingError.invalid("\(name) holds a malformed Ed25519 key; expected 32 bytes in base64url")
        }
        return key
    }

    static func symmetricKey(base64: String, name: String) throws -> SymmetricKey {
        guard let data = Data(base64Encoded: base64.trimmingCharacters(in: .whitespaces)), data.count == 32 else {
            throw KeyRingError.invalid("\(name) holds a malformed key; expected 32 bytes in base64")
        }
        return SymmetricKey(data: data)
    }
}

public enum KeyRingError: Error, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let reason): reason
        }
    }
}

/// Base64url without padding (RFC 4648 §5), as JWTs and JWKs use it.
public enum Base64URL {
    public static func encode<D: DataProtocol>(_ data: D) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { [UInt8]($0) }
    }
}
