import Foundation

/// Refuses outbound requests to addresses inside the operator's network: loopback, private, link-local,
/// carrier-grade NAT, multicast and cloud metadata ranges, unless `HERALD_OUTBOUND_ALLOW_CIDRS` allows them.
/// Checked when a URL is registered and again, after DNS resolution, before every request.
public struct OutboundGuard: Sendable {
    public let allowed: [CIDR]

    public init(allowed: [CIDR] = []) {
        self.allowed = allowed
    }

    static let blockedRanges: [String] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
    ]
    static let blocked: [CIDR] = blockedRanges.compactMap { CIDR($0) }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case notHTTP
        case noHost
        case unresolvable(String)
        case privateAddress(String)

        public var description: String {
            switch self {
            case .notHTTP: "must be an http or https URL"
            case .noHost: "has no host"
            case .unresolvable(let host): "names a host that does not resolve (\(host))"
            case .privateAddress(let address):
                "resolves to \(address), a private, loopback, link-local or metadata address; Herald does not send requests there"
            }
        }
    }

    public func isAllowed(_ address: IPAddress) -> Bool {
        if allowed.contains(where: { $0.contains(address) }) { return true }
        return !Self.blocked.contains { $0.contains(address) }
    }

    /// Resolves the URL's host and checks every address it resolves to.
    public func check(_ urlText: String) async throws(Refusal) -> URL {
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .notHTTP
        }
        guard let host = url.host, !host.isEmpty else { throw .noHost }
        let addresses = await Self.resolve(host, port: url.port ?? (scheme == "https" ? 443 : 80))
        guard !addresses.isEmpty else { throw .unresolvable(host) }
        for address in addresses where !isAllowed(address) { throw .privateAddress(address.description) }
        return url
    }

    /// Every address a name resolves to (a literal resolves to itself).
    static func resolve(_ host: String, port: Int) async -> [IPAddress] {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = IPAddress(bare), IPAddress.parseIPv4(bare) != nil || bare.contains(":") { return [literal] }
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(bare, String(port), &hints, &result) == 0, let first = result else {
                    continuation.resume(returning: [])
                    return
                }
                defer { freeaddrinfo(first) }
                var addresses: [IPAddress] = []
                var cursor: UnsafeMutablePointer<addrinfo>? = first
                while let info = cursor {
                    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                    if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0,
                        let ip = IPAddress(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                    {
                        addresses.append(ip)
                    }
                    cursor = info.pointee.ai_next
                }
                continuation.resume(returning: addresses)
            }
        }
    }
}
