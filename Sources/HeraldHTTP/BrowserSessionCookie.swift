import Crypto
import Foundation
import HeraldSecurity

/// The dashboard's session: an HttpOnly cookie page scripts cannot read, standing for a Herald session, and the
/// CSRF token every state-changing request made with it must repeat in `X-CSRF-Token`.
///
/// The cookie is `SameSite=Strict` (another site's page cannot make the browser send it) and `Secure` when Herald
/// is served over https. The CSRF token is derived from the cookie's secret, so it needs no storage, and a page can
/// only learn it from Herald's own answer, which other origins cannot read.
public enum BrowserSessionCookie {
    public static let name = "herald_session"
    /// Secrets of browser sessions start with this, so they are never mistaken for anything else.
    public static let prefix = "bs_"

    public static func csrfToken(for secret: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Data("herald-csrf\n\(secret)".utf8))))
    }

    /// Whether a request's CSRF header answers the cookie's secret, compared in constant time.
    public static func csrfMatches(_ presented: String?, secret: String) -> Bool {
        guard let presented, !presented.isEmpty else { return false }
        return SecretToken.constantTimeEquals(SecretToken.hash(presented), SecretToken.hash(csrfToken(for: secret)))
    }

    /// The `Set-Cookie` value; `maxAge` 0 clears it.
    public static func setCookie(_ secret: String, maxAge: Int, secure: Bool) -> String {
        httpOnlyCookie(name, secret, path: "/", maxAge: maxAge, sameSite: "Strict", secure: secure)
    }

    /// A `Set-Cookie` value for a cookie page scripts cannot read: Herald's session cookie and the sign-in's state
    /// cookie differ only in name, path and SameSite. `maxAge` 0 clears it.
    public static func httpOnlyCookie(_ name: String, _ value: String, path: String, maxAge: Int, sameSite: String, secure: Bool) -> String {
        "\(name)=\(value); Path=\(path); Max-Age=\(maxAge); HttpOnly; SameSite=\(sameSite)" + (secure ? "; Secure" : "")
    }
}

/// The Herald session a browser's dashboard cookie stands for.
public struct BrowserSession: Sendable, Equatable {
    public var userId: UUID
    public var sessionId: UUID
    /// Set when the session was opened through an organization's single sign-on.
    public var organizationId: UUID?

    public init(userId: UUID, sessionId: UUID, organizationId: UUID?) {
        self.userId = userId
        self.sessionId = sessionId
        self.organizationId = organizationId
    }
}
