import Crypto
import Foundation
import HeraldCore
import HeraldHTTP

/// A security event to record.
struct AuditEntry: Sendable {
    var action: String
    /// The organization the event belongs to; nil for events about a user's account (sign-in, sign-up).
    var organizationId: UUID?
    /// The account an account-level event is about (also who can see it, through their organizations).
    var subjectUserId: UUID?
    var actorUserId: UUID?
    var targetType: String?
    var targetId: String?
    var details: [String: String] = [:]
    var meta: RequestMeta
}

/// A recorded event as returned by the API.
struct AuditRecord: Sendable, Encodable {
    var id: UUID
    var sequence: Int64
    var chain: String
    var chainSequence: Int64
    var action: String
    var organizationId: UUID?
    var subjectUserId: UUID?
    var actorUserId: UUID?
    var targetType: String?
    var targetId: String?
    var ip: String?
    var userAgent: String?
    var requestId: String?
    var details: [String: String]
    var occurredAt: Date
    var previousHash: String
    var hash: String
    var occurredAtMicros: Int64
}

/// How audit records form hash chains: one per organization (`org:<id>`), one per account for account-level
/// events (`user:<id>`) and one for events with neither (`system`). Each record's hash covers its content and
/// the previous record's hash, so editing, deleting or reordering a record breaks every later link.
enum AuditChain {
    static func chain(for entry: AuditEntry) -> String {
        if let organizationId = entry.organizationId { return "org:\(organizationId.lowercased)" }
        if let subject = entry.subjectUserId { return "user:\(subject.lowercased)" }
        return "system"
    }

    /// The hash of a record: SHA-256 over its fields, each length-prefixed so no two records share an encoding.
    static func hash(of record: AuditRecord) -> String {
        var hasher = SHA256()
        func field(_ value: String?) {
            let bytes = Array((value ?? "\u{0}").utf8)
            var length = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        field(record.previousHash)
        field(record.id.lowercased)
        field(record.chain)
        field(String(record.chainSequence))
        field(record.action)
        field(record.organizationId?.lowercased)
        field(record.subjectUserId?.lowercased)
        field(record.actorUserId?.lowercased)
        field(record.targetType)
        field(record.targetId)
        field(record.ip)
        field(record.userAgent)
        field(record.requestId)
        for key in record.details.keys.sorted() {
            field(key)
            field(record.details[key])
        }
        field(String(record.occurredAtMicros))
        return hasher.finalize().hexString
    }

    /// The result of checking chains end to end.
    struct Verification: Sendable, Encodable {
        var valid: Bool
        var checkedRecords: Int
        var chains: [ChainResult]
    }

    struct ChainResult: Sendable, Encodable {
        var chain: String
        var records: Int
        var valid: Bool
        /// The first record whose hash or link does not match, when the chain is broken.
        var brokenAtChainSequence: Int64?
        var reason: String?
    }

    static func check(chain: String, records: [AuditRecord], head: (lastSeq: Int64, lastHash: String)?) -> ChainResult {
        var previous = ""
        for (index, record) in records.enumerated() {
            let expectedSequence = Int64(index + 1)
            if record.chainSequence != expectedSequence {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: expectedSequence,
                    reason: "record \(expectedSequence) is missing"
                )
            }
            if record.previousHash != previous {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: record.chainSequence,
                    reason: "the link to the previous record does not match"
                )
            }
            if hash(of: record) != record.hash {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: record.chainSequence,
                    reason: "the record's content does not match its hash"
                )
            }
            previous = record.hash
        }
        if let head {
            if head.lastSeq != Int64(records.count) || head.lastHash != previous {
                return ChainResult(
                    chain: chain, records: records.count, valid: false, brokenAtChainSequence: Int64(records.count + 1),
                    reason: "records at the end of the chain are missing"
                )
            }
        }
        return ChainResult(chain: chain, records: records.count, valid: true, brokenAtChainSequence: nil, reason: nil)
    }
}
