"""A small OpenID Connect provider for the tests, speaking the documented protocol with real RSA keys:
discovery, JWKS, the authorization endpoint (approves at once, as a signed-in user would), and the token
endpoint with client authentication and PKCE (S256) checks. It also mints Clerk-style session tokens
(RS256, `sid`, `azp`, no audience). Knobs let a test make it misbehave: sign with a key it does not
publish, name the wrong audience or nonce, or issue an expired token."""
import base64
import hashlib
import json
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RSAKey:
    def __init__(self, kid=None):
        self.kid = kid or uuid.uuid4().hex[:12]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self):
        numbers = self.private.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": b64url(e)}

    def sign(self, claims, kid=None, alg="RS256"):
        header = {"alg": alg, "typ": "JWT", "kid": kid if kid is not None else self.kid}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = self.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)


class OIDCProvider:
    def __init__(self, client_id="herald-client", client_secret="provider-secret"):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.client_secret = client_secret
        self.keys = [RSAKey()]
        self.unpublished = RSAKey()  # signs forged tokens: same shape, a key the JWKS does not hold
        self.user = {"sub": "user-1", "email": "sso.user@example.com", "email_verified": True, "name": "Sso User"}
        self.mode = None  # None | "bad-signature" | "wrong-audience" | "expired" | "unknown-kid" | "wrong-nonce"
        self.codes = {}
        self.token_requests = []
        self.jwks_fetches = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()

    def rotate(self):
        """Publishes a new key and signs with it from now on (the old one stays published)."""
        self.keys.insert(0, RSAKey())

    def id_token(self, nonce, audience=None, mode=None):
        now = int(time.time())
        claims = dict(self.user)
        claims.update({"iss": self.issuer, "aud": audience or self.client_id, "iat": now, "exp": now + 300, "nonce": nonce})
        mode = mode or self.mode
        if mode == "wrong-audience":
            claims["aud"] = "someone-else"
        if mode == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        if mode == "wrong-nonce":
            claims["nonce"] = "not-the-nonce"
        if mode == "bad-signature":
            # Published kid, wrong key: the signature cannot verify.
            return self.unpublished.sign(claims, kid=self.keys[0].kid)
        if mode == "unknown-kid":
            return self.unpublished.sign(claims)
        return self.keys[0].sign(claims)

    def session_token(self, sub=None, sid="sess_1", azp="https://app.example.com", lifetime=60, key=None, extra=None, kid=None):
        """A Clerk-style session token: RS256, short-lived, `sid` and `azp`, no audience."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": sub or self.user["sub"], "sid": sid, "azp": azp, "iat": now, "nbf": now - 5, "exp": now + lifetime}
        claims.update(extra or {})
        return (key or self.keys[0]).sign(claims, kid=kid)

    def _handler(provider):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/.well-known/openid-configuration":
                    return self.reply(200, {
                        "issuer": provider.issuer,
                        "authorization_endpoint": provider.issuer + "/authorize",
                        "token_endpoint": provider.issuer + "/token",
                        "jwks_uri": provider.issuer + "/jwks",
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "code_challenge_methods_supported": ["S256"],
                        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                    })
                if url.path == "/jwks":
                    with provider.lock:
                        provider.jwks_fetches += 1
                    return self.reply(200, {"keys": [k.jwk() for k in provider.keys]})
                if url.path == "/authorize":
                    problems = []
                    if query.get("response_type") != "code":
                        problems.append("response_type")
                    if query.get("client_id") != provider.client_id:
                        problems.append("client_id")
                    if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                        problems.append("pkce")
                    if "openid" not in query.get("scope", "").split():
                        problems.append("scope")
                    if not query.get("state") or not query.get("nonce"):
                        problems.append("state/nonce")
                    redirect = query.get("redirect_uri", "")
                    if problems:
                        return self.reply(400, {"error": "invalid_request", "problems": problems})
                    code = uuid.uuid4().hex
                    with provider.lock:
                        provider.codes[code] = {
                            "challenge": query["code_challenge"], "redirect_uri": redirect, "nonce": query["nonce"],
                            "client_id": query["client_id"]}
                    location = redirect + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.reply(404, {"error": "not_found"})

            def do_POST(self):
                url = urllib.parse.urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if url.path != "/token":
                    return self.reply(404, {"error": "not_found"})
                with provider.lock:
                    provider.token_requests.append({"form": form, "authorization": self.headers.get("Authorization")})
                expected = "Basic " + base64.b64encode(f"{provider.client_id}:{provider.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.reply(401, {"error": "invalid_client"})
                with provider.lock:
                    grant = provider.codes.pop(form.get("code", ""), None)
                if grant is None or form.get("grant_type") != "authorization_code":
                    return self.reply(400, {"error": "invalid_grant", "error_description": "unknown or used code"})
                if form.get("redirect_uri") != grant["redirect_uri"]:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"})
                verifier = form.get("code_verifier", "")
                if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                self.reply(200, {
                    "access_token": uuid.uuid4().hex, "token_type": "Bearer", "expires_in": 300,
                    "id_token": provider.id_token(grant["nonce"]),
                }, headers={"Cache-Control": "no-store"})

        return Handler
