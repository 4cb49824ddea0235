import Foundation
import HTTPTypes
import HeraldCore
import HeraldSecurity
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat

/// Who is calling, once authenticated.
public enum Principal: Sendable, Equatable {
    /// A signed-in user, through an access token of a live session.
    case user(userId: UUID, sessionId: UUID)
    /// A site's secret API key (`sk_…`): server-to-server calls for that site only.
    case siteKey(siteId: UUID, organizationId: UUID)
}

/// The request context of every Herald route: request id, client address and the authenticated principal.
public struct HeraldRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The `X-Request-Id` of this request, taken from the client when well-formed, generated otherwise.
    public var requestId: String = ""
    /// The client's address: the socket peer, or the first untrusted hop of `X-Forwarded-For` behind a trusted proxy.
    public var clientIP: String {
        get { resolvedClientIP ?? remoteAddress?.ipAddress ?? "" }
        set { resolvedClientIP = newValue }
    }
    /// Set when a trusted proxy named the client; otherwise the socket peer is formatted only when asked for.
    private var resolvedClientIP: String?
    public var principal: Principal?
    /// The only organization the caller's session may act in: set for sessions opened through an organization's
    /// single sign-on (and its provider's session tokens), whose provider vouches for the user there alone.
    public var sessionOrganization: UUID?
    /// Why the presented credentials were refused. Public routes ignore it; routes that need a caller throw it.
    public var authenticationFailure: HeraldError?
    /// Set by ``HTTPMetricsMiddleware`` when metrics are on: what the request's labels are.
    public var observation: RequestObservation?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// JSON request bodies are small; larger ones are refused with 413 before decoding.
    public var maxUploadSize: Int { 256 * 1024 }

    public var requestDecoder: JSONDecoder { JSONDecoder.herald }

    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder.herald
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    /// The signed-in user, or 401.
    public func requireUser() throws -> (userId: UUID, sessionId: UUID) {
        if let authenticationFailure { throw authenticationFailure }
        guard case .user(let userId, let sessionId) = principal else {
            throw HeraldError.unauthorized(
                principal == nil
                    ? "Sign in and send the access token as 'Authorization: Bearer <token>'."
                    : "This endpoint needs a user's access token, not a site key."
            )
        }
        return (userId, sessionId)
    }

    /// The signed-in user, refusing sessions limited to one organization: for what reaches beyond it (creating an
    /// organization, joining another one).
    public func requireUnlimitedUser() throws -> (userId: UUID, sessionId: UUID) {
        let user = try requireUser()
        if sessionOrganization != nil {
            throw HeraldError.forbidden(
                "This session was opened through an organization's single sign-on and acts only in that organization. "
                    + "Sign in with your Herald password to do this.")
        }
        return user
    }

    /// A path parameter that must be a UUID; anything else names a resource that cannot exist, so 404.
    public func uuidParameter(_ name: String, resource: String) throws -> UUID {
        guard let text = parameters.get(name), let id = UUID(text: text) else {
            throw HeraldError.notFound(resource)
        }
        return id
    }
}
