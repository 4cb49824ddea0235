import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// How a process reaches the services it does not run: today the Users service, for access checks.
public struct ServiceLinks: Sendable, Equatable {
    /// The Users service's base URL (HERALD_USERS_URL), for processes that do not run it: access checks then go
    /// over HTTP instead of reading the Users tables.
    public var usersURL: String?
    /// The token the Users service's internal API accepts (HERALD_INTERNAL_TOKEN, at least 32 characters): set it
    /// on the Users service and on its callers.
    public var internalToken: String?

    public init(usersURL: String? = nil, internalToken: String? = nil) {
        self.usersURL = usersURL
        self.internalToken = internalToken
    }
}

extension HeraldConfiguration {
    static func readServiceLinks(_ environment: [String: String]) throws -> ServiceLinks {
        var links = ServiceLinks()
        if let url = environment["HERALD_USERS_URL"], !url.isEmpty {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ConfigurationError("HERALD_USERS_URL must be the Users service's http(s) URL, such as https://users.internal:8081")
            }
            links.usersURL = url
        }
        links.internalToken = try secret(environment, "HERALD_INTERNAL_TOKEN", minimum: 32)
        if links.usersURL != nil && links.internalToken == nil {
            throw ConfigurationError("HERALD_USERS_URL needs HERALD_INTERNAL_TOKEN, the token the Users service's internal API accepts")
        }
        return links
    }

    /// The HTTP client for calls to other services: over https it trusts HERALD_TLS_CLIENT_CA_FILE (the services'
    /// own CA) when set and presents this process's certificate (HERALD_TLS_CERT_FILE), so mutual TLS between
    /// services needs certificates valid for both server and client authentication.
    func makeServiceHTTPClient() throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv13
        if let server = self.tls {
            if let ca = server.clientCAFile {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
                } catch {
                    throw ConfigurationError("HERALD_TLS_CLIENT_CA_FILE: cannot read PEM certificates from \(ca) (\(error))")
                }
            }
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(server.certificateFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: server.keyFile, format: .pem))
            } catch {
                throw ConfigurationError("HERALD_TLS_CERT_FILE/HERALD_TLS_KEY_FILE: cannot be read as this service's client identity (\(error))")
            }
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(1), read: .seconds(5))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
