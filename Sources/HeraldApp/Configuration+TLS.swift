import Foundation
import NIOSSL

/// TLS on Herald's own port: a certificate and key, and, for mutual TLS between services, the CA whose certificates
/// clients must present. Only TLS 1.3 is offered.
public struct ServerTLSConfiguration: Sendable {
    public var certificateFile: String
    public var keyFile: String
    /// When set, a client without a certificate signed by this CA is refused during the handshake.
    public var clientCAFile: String?

    public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    /// Reads the files; the error says which one is wrong.
    public func makeTLSConfiguration() throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw ConfigurationError("HERALD_TLS_CERT_FILE: cannot read a PEM certificate chain from \(certificateFile) (\(error))")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw ConfigurationError("HERALD_TLS_KEY_FILE: cannot read a PEM private key from \(keyFile) (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv13
        if let clientCAFile {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCAFile))
            } catch {
                throw ConfigurationError("HERALD_TLS_CLIENT_CA_FILE: cannot read PEM certificates from \(clientCAFile) (\(error))")
            }
            // Clients are services, known by their certificate, not by a host name.
            tls.certificateVerification = .noHostnameVerification
        }
        return tls
    }

    /// HERALD_TLS_CERT_FILE and HERALD_TLS_KEY_FILE together, HERALD_TLS_CLIENT_CA_FILE only with them.
    static func fromEnvironment(_ environment: [String: String]) throws -> ServerTLSConfiguration? {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        switch (value("HERALD_TLS_CERT_FILE"), value("HERALD_TLS_KEY_FILE")) {
        case (let cert?, let key?):
            let tls = ServerTLSConfiguration(certificateFile: cert, keyFile: key, clientCAFile: value("HERALD_TLS_CLIENT_CA_FILE"))
            _ = try tls.makeTLSConfiguration()
            return tls
        case (nil, nil):
            if value("HERALD_TLS_CLIENT_CA_FILE") != nil {
                throw ConfigurationError("HERALD_TLS_CLIENT_CA_FILE needs HERALD_TLS_CERT_FILE and HERALD_TLS_KEY_FILE (mutual TLS is TLS first)")
            }
            return nil
        default:
            throw ConfigurationError("HERALD_TLS_CERT_FILE and HERALD_TLS_KEY_FILE go together")
        }
    }
}
