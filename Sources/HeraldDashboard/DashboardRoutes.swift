import Crypto
import Foundation
import HTTPTypes
import HeraldHTTP
import Hummingbird
import NIOCore
import NIOFoundationCompat

/// The dashboard for site owners (docs/DASHBOARD.md): three static files, a page, its script and its style, served by
/// the same binary at `/app`. Everything the page does goes through Herald's public API with the cookie session of
/// `/auth/browser-session`; the files themselves hold no data.
public enum Dashboard {
    /// No inline script or style anywhere, no other origin, no framing: the page can only run Herald's own script
    /// and talk to Herald's own API. It may frame only Herald's own pages (the notification preview).
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

    /// The preview page runs the real widget on sample data inside the dashboard: framed by Herald's own pages only,
    /// and it may show the products' images from any https address, as the widget does on a site.
    static let previewContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; "
        + "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

    struct Asset: Sendable {
        let bytes: ByteBuffer
        let contentType: String
        let etag: String
    }

    static func load(_ name: String, _ ext: String, contentType: String) -> Asset {
        let data = Bundle.module.url(forResource: name, withExtension: ext).flatMap { try? Data(contentsOf: $0) } ?? Data()
        // A content hash: the same on every instance, so a revalidation works whichever answers.
        let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
        return Asset(bytes: ByteBuffer(data: data), contentType: contentType, etag: "\"\(digest)\"")
    }

    public static func addRoutes(to router: some RouterMethods<HeraldRequestContext>) {
        let page = load("index", "html", contentType: "text/html; charset=utf-8")
        let script = load("app", "js", contentType: "text/javascript; charset=utf-8")
        let style = load("app", "css", contentType: "text/css; charset=utf-8")
        router.get("app") { request, _ in serve(page, request) }
        router.get("app/assets/app.js") { request, _ in serve(script, request) }
        router.get("app/assets/app.css") { request, _ in serve(style, request) }
        let previewPage = load("preview", "html", contentType: "text/html; charset=utf-8")
        let previewScript = load("preview", "js", contentType: "text/javascript; charset=utf-8")
        router.get("app/preview") { request, _ in serve(previewPage, request, framable: true) }
        router.get("app/assets/preview.js") { request, _ in serve(previewScript, request, framable: true) }
    }

    static func serve(_ asset: Asset, _ request: Request, framable: Bool = false) -> Response {
        var headers: HTTPFields = [
            .contentType: asset.contentType, .cacheControl: "no-cache", .eTag: asset.etag,
            .contentSecurityPolicy: framable ? previewContentSecurityPolicy : contentSecurityPolicy,
        ]
        if framable { headers[.xFrameOptions] = "SAMEORIGIN" }
        if request.headers[.ifNoneMatch] == asset.etag {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(asset.bytes.readableBytes)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.bytes))
    }
}
