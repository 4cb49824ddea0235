import Foundation
import HeraldCore

/// A place to keep archive files by key: a local directory or an S3-compatible bucket.
///
/// Keys are relative, `/`-separated paths (`events/site-1/2024-01-31.ndjson.gz`); every store refuses the same
/// keys (see ``ObjectKey``), so an archive can move between a directory and a bucket unchanged.
public protocol ObjectStore: Sendable {
    /// Stores `bytes` under `key`, replacing any object already there. Readers see the old or the new object, never part
    /// of one.
    func put(key: String, bytes: [UInt8], contentType: String) async throws

    /// The object's bytes.
    ///
    /// - Throws: ``ObjectStoreError/notFound(key:)`` when there is no such object, and
    ///   ``ObjectStoreError/archived(key:storageClass:)`` when it sits in an archive storage class and has to be restored
    ///   with ``requestRestore(key:days:)`` before it can be read.
    func get(key: String) async throws -> [UInt8]

    /// Every object whose key starts with `prefix` (plain string prefix, as in S3), in key order.
    func list(prefix: String) async throws -> [ObjectInfo]

    /// Removes the object. Removing a key that does not exist succeeds, as it does in S3.
    func delete(key: String) async throws

    /// Asks for an archived object to be made readable for `days` days. Completes when the request is accepted, not when
    /// the object is readable: S3 Glacier takes hours. A no-op for objects that are readable already and for directories.
    ///
    /// - Throws: ``ObjectStoreError/notFound(key:)`` when there is no such object.
    func requestRestore(key: String, days: Int) async throws

    /// Where the objects go, for logs: never credentials.
    var describe: String { get }
}

/// One stored object, as listed.
public struct ObjectInfo: Sendable, Hashable {
    /// The object's key, relative to the store (without the bucket's configured prefix).
    public var key: String
    /// Size in bytes.
    public var size: Int64
    /// The storage class; a directory reports ``StorageClass/standard`` for everything.
    public var storageClass: StorageClass
    /// When the object was last written.
    public var lastModified: Date

    public init(key: String, size: Int64, storageClass: StorageClass, lastModified: Date) {
        self.key = key
        self.size = size
        self.storageClass = storageClass
        self.lastModified = lastModified
    }
}

/// An S3 storage class (`x-amz-storage-class`). Unknown values that a service reports are kept as they are.
public struct StorageClass: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// Frequently read data; the default.
    public static let standard = StorageClass(rawValue: "STANDARD")
    /// Infrequent access, readable at once.
    public static let standardInfrequentAccess = StorageClass(rawValue: "STANDARD_IA")
    /// Infrequent access in one availability zone, readable at once.
    public static let oneZoneInfrequentAccess = StorageClass(rawValue: "ONEZONE_IA")
    /// Moved between tiers by S3, readable at once in its default tiers.
    public static let intelligentTiering = StorageClass(rawValue: "INTELLIGENT_TIERING")
    /// Glacier Flexible Retrieval: must be restored before it can be read.
    public static let glacier = StorageClass(rawValue: "GLACIER")
    /// Glacier Instant Retrieval: archive pricing, readable at once.
    public static let glacierInstantRetrieval = StorageClass(rawValue: "GLACIER_IR")
    /// Glacier Deep Archive: must be restored (12 hours or more) before it can be read.
    public static let deepArchive = StorageClass(rawValue: "DEEP_ARCHIVE")
    /// Legacy reduced redundancy.
    public static let reducedRedundancy = StorageClass(rawValue: "REDUCED_REDUNDANCY")

    /// The classes Herald accepts in configuration.
    public static let known: [StorageClass] = [
        .standard, .standardInfrequentAccess, .oneZoneInfrequentAccess, .intelligentTiering, .glacier,
        .glacierInstantRetrieval, .deepArchive, .reducedRedundancy,
    ]

    /// Whether objects in this class have to be restored before a GET succeeds.
    public var requiresRestore: Bool { self == .glacier || self == .deepArchive }

    public var description: String { rawValue }
}

/// Why an object store operation failed, worded so that an operator can act on it. Never carries a secret.
public enum ObjectStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// There is no object under the key.
    case notFound(key: String)
    /// The object is in an archive storage class and has to be restored before it can be read.
    case archived(key: String, storageClass: StorageClass?)
    /// The key cannot be used (absolute, `..`, control characters, …).
    case invalidKey(key: String, reason: String)
    /// The store's configuration is unusable; the message names the offending part.
    case invalidConfiguration(String)
    /// The object is larger than the store is willing to read into memory.
    case tooLarge(key: String, limit: Int)
    /// The service answered with an error. `code` and `message` are S3's (`AccessDenied`, `NoSuchBucket`, …).
    case requestFailed(operation: String, status: Int, code: String?, message: String?, requestID: String?)
    /// The service answered with something that is not a valid S3 response.
    case invalidResponse(operation: String, reason: String)
    /// The service could not be reached or did not answer in time, after every retry.
    case unavailable(operation: String, attempts: Int, reason: String)
    /// A file system call failed.
    case fileSystem(operation: String, path: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let key):
            return "No object '\(key)' in the store."
        case .archived(let key, let storageClass):
            let cls = storageClass.map { " (\($0.rawValue))" } ?? ""
            return "Object '\(key)' is archived\(cls) and must be restored before it can be read: request a restore, "
                + "then retry once it completes (hours for GLACIER, up to 48 for DEEP_ARCHIVE)."
        case .invalidKey(let key, let reason):
            // debugDescription escapes control characters, so the message is safe to log.
            return "Invalid object key \(key.debugDescription): \(reason)."
        case .invalidConfiguration(let message):
            return "Invalid object store configuration: \(message)"
        case .tooLarge(let key, let limit):
            return "Object '\(key)' is larger than the \(limit)-byte limit for reading it into memory."
        case .requestFailed(let operation, let status, let code, let message, let requestID):
            var text = "\(operation) failed with HTTP \(status)"
            if let code { text += " \(code)" }
            if let message, !message.isEmpty { text += ": \(message)" }
            if let requestID { text += " (request id \(requestID))" }
            if let hint = Self.hint(status: status, code: code) { text += ". \(hint)" }
            return text
        case .invalidResponse(let operation, let reason):
            return "\(operation) returned an unexpected response: \(reason)."
        case .unavailable(let operation, let attempts, let reason):
            return "\(operation) failed after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(reason). "
                + "Check that the endpoint is reachable."
        case .fileSystem(let operation, let path, let reason):
            return "\(operation) \(path) failed: \(reason)."
        }
    }

    /// What to look at for the usual S3 errors.
    static func hint(status: Int, code: String?) -> String? {
        switch code {
        case "SignatureDoesNotMatch":
            return "Check AWS_SECRET_ACCESS_KEY, and that the clock of this machine is right."
        case "InvalidAccessKeyId":
            return "Check AWS_ACCESS_KEY_ID: the service does not know it."
        case "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
            return "The AWS_SESSION_TOKEN is invalid or expired; renew the temporary credentials."
        case "AccessDenied":
            return "The credentials lack permission for this operation on the bucket (s3:PutObject, s3:GetObject, "
                + "s3:ListBucket, s3:DeleteObject, s3:RestoreObject)."
        case "NoSuchBucket":
            return "Create the bucket, or fix the bucket name in the archive URL."
        case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
            return "The bucket is in another region: set region= in the archive URL to the bucket's region."
        case "InvalidStorageClass":
            return "The service does not support this storage class; change storageClass= in the archive URL."
        case "RequestTimeTooSkewed":
            return "The clock of this machine is off; synchronise it (NTP)."
        default:
            return status >= 500 ? "The service had an internal error; try again later." : nil
        }
    }
}

/// The rules every store applies to keys and list prefixes.
public enum ObjectKey {
    /// The longest key S3 accepts, in UTF-8 bytes.
    public static let maximumLength = 1024

    /// The longest path segment, in UTF-8 bytes: the usual file system limit for one name (NAME_MAX).
    public static let maximumSegmentLength = 255

    /// Names the directory store uses for files being written; refused as keys so they never collide.
    static let temporaryMarker = ".herald-tmp-"

    /// Checks that `key` is a relative path of non-empty segments of at most 255 bytes, without `.`/`..`, control
    /// characters (NUL included) or a leading, trailing or doubled `/`.
    public static func validate(_ key: String) throws {
        guard !key.isEmpty else { throw ObjectStoreError.invalidKey(key: key, reason: "it is empty") }
        guard key.utf8.count <= maximumLength else {
            throw ObjectStoreError.invalidKey(key: key, reason: "it is longer than \(maximumLength) bytes")
        }
        guard !key.containsControlCharacters else {
            throw ObjectStoreError.invalidKey(key: key, reason: "it contains a control character")
        }
        guard !key.hasPrefix("/") else {
            throw ObjectStoreError.invalidKey(key: key, reason: "it is absolute; keys are relative paths")
        }
        for segment in key.split(separator: "/", omittingEmptySubsequences: false) {
            try validate(segment: segment, of: key)
        }
    }

    /// Checks a list prefix: empty, or the start of a valid key (its last segment may be partial or empty).
    public static func validatePrefix(_ prefix: String) throws {
        if prefix.isEmpty { return }
        guard prefix.utf8.count <= maximumLength else {
            throw ObjectStoreError.invalidKey(key: prefix, reason: "the prefix is longer than \(maximumLength) bytes")
        }
        guard !prefix.containsControlCharacters else {
            throw ObjectStoreError.invalidKey(key: prefix, reason: "the prefix contains a control character")
        }
        guard !prefix.hasPrefix("/") else {
            throw ObjectStoreError.invalidKey(key: prefix, reason: "the prefix is absolute; keys are relative paths")
        }
        // Only whole segments are checked: the last one may be the start of a name such as `..x`.
        for segment in prefix.split(separator: "/", omittingEmptySubsequences: false).dropLast() {
            try validate(segment: segment, of: prefix)
        }
    }

    private static func validate(segment: Substring, of key: String) throws {
        if segment.isEmpty {
            throw ObjectStoreError.invalidKey(key: key, reason: "it has an empty path segment (a leading, trailing or doubled '/')")
        }
        if segment == "." || segment == ".." {
            throw ObjectStoreError.invalidKey(key: key, reason: "it has a '\(segment)' segment")
        }
        // Keys must fit a directory store too, so that archives can move between stores.
        if segment.utf8.count > maximumSegmentLength {
            throw ObjectStoreError.invalidKey(key: key, reason: "a path segment is longer than \(maximumSegmentLength) bytes")
        }
        if segment.hasPrefix(temporaryMarker) {
            throw ObjectStoreError.invalidKey(key: key, reason: "segments starting with '\(temporaryMarker)' are reserved")
        }
    }
}
