import Foundation

/// An IP address as bytes: 4 for IPv4, 16 for IPv6. Parses the textual forms without touching DNS.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var text = text
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        if let v4 = Self.parseIPv4(text) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(text) {
            // IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address for every check Herald makes.
            if v6[0..<10].allSatisfy({ $0 == 0 }) && v6[10] == 0xFF && v6[11] == 0xFF {
                bytes = Array(v6[12..<16])
            } else {
                bytes = v6
            }
        } else {
            return nil
        }
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    /// Dotted-quad IPv4 only (`192.0.2.1`), nothing else.
    public static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt8(part) else { return nil }
            result.append(value)
        }
        return result
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        var text = Substring(text)
        var tail: [UInt8] = []
        // An embedded IPv4 address in the last 32 bits.
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(String(text[text.index(after: lastColon)...])) else { return nil }
            tail = v4
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                bytes.append(UInt8(value >> 8))
                bytes.append(UInt8(value & 0xFF))
            }
            return bytes
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 2 {
            guard let rest = groups(halves[1]) else { return nil }
            let missing = 16 - head.count - rest.count - tail.count
            guard missing >= 2 else { return nil }
            return head + [UInt8](repeating: 0, count: missing) + rest + tail
        }
        guard head.count + tail.count == 16 else { return nil }
        return head + tail
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `::1/128`).
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1)
        guard let address = parts.first.flatMap({ IPAddress(String($0)) }) else { return nil }
        let maxLength = address.bytes.count * 8
        let length: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maxLength).contains(parsed) else { return nil }
            length = parsed
        } else {
            length = maxLength
        }
        self.network = address
        self.prefixLength = length
    }

    public var description: String { "\(network)/\(prefixLength)" }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var remaining = prefixLength
        for index in 0..<network.bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if (address.bytes[index] & mask) != (network.bytes[index] & mask) { return false }
            remaining -= bits
        }
        return true
    }

    /// Parses a comma-separated list, reporting the first entry that is not a CIDR.
    public static func parseList(_ text: String) throws -> [CIDR] {
        try text.split(separator: ",").map { entry in
            guard let cidr = CIDR(String(entry)) else {
                throw HeraldError.badRequest("'\(entry)' is not an address range like 10.0.0.0/8 or ::1/128")
            }
            return cidr
        }
    }
}
