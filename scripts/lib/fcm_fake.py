#!/usr/bin/env python3
"""A local stand-in for Firebase Cloud Messaging's HTTP v1 API and Google's OAuth token endpoint, for tests.

It knows one service account (--service-account, the JSON file the Firebase console downloads; read on every token
request, so a test may write it after the fake picked its port) and answers as Google documents:

  POST <token_uri path> (form: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion=<JWT>)
      The assertion must be an RS256 JWT signed by the account's private key, with iss = client_email,
      aud = token_uri, scope containing https://www.googleapis.com/auth/firebase.messaging, iat not in the future
      and exp after now, at most an hour after iat. 200 {"access_token", "expires_in": 3599, "token_type": "Bearer"};
      otherwise 400 {"error": "invalid_grant", "error_description"}.
  POST /v1/projects/{project_id}/messages:send with `Authorization: Bearer <access token>`
      401 UNAUTHENTICATED for an unknown or revoked token, 403 PERMISSION_DENIED for another project, 400
      INVALID_ARGUMENT for a malformed message (message.token, notification and data strings, https links only in
      webpush.fcm_options.link), else 200 {"name": "projects/{project_id}/messages/{n}"}.

Test controls (not FCM's): POST /_fake/unregister {"token"} answers 404 UNREGISTERED for that token from now on;
POST /_fake/invalid {"token"} answers 400 INVALID_ARGUMENT about message.token; POST /_fake/unavailable
{"token", "retryAfter", "times"} answers 503 UNAVAILABLE with Retry-After that many times; POST /_fake/revoke
makes every access token issued so far answer 401; GET /_fake/messages and GET /_fake/token-requests list what
came in (every send attempt, with the status answered). With --port 0 it picks a free port and writes it to
--ready-file once listening. Runs until SIGTERM or SIGINT. Needs the `cryptography` package.

    python3 scripts/lib/fcm_fake.py --service-account /tmp/sa.json --ready-file /tmp/fcm/port
"""

import argparse
import base64
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def google_error(status, code, message, error_code=None, field=None):
    details = []
    if error_code:
        details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code})
    if field:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": field, "description": message}]})
    body = {"error": {"code": status, "message": message, "status": code}}
    if details:
        body["error"]["details"] = details
    return body


class State:
    def __init__(self, account_file):
        self.account_file = account_file
        self.lock = threading.Lock()
        self.tokens = {}  # access token -> expiry
        self.revoked = set()
        self.unregistered = set()
        self.invalid = set()
        self.unavailable = {}  # registration token -> [retry_after, times]
        self.messages = []
        self.token_requests = []

    def account(self):
        with open(self.account_file) as handle:
            return json.load(handle)


def check_assertion(account, assertion, now):
    """The reason the assertion is refused, or None."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return "Invalid JWT: not three parts"
    try:
        header, claims = json.loads(unb64url(parts[0])), json.loads(unb64url(parts[1]))
        signature = unb64url(parts[2])
    except (ValueError, UnicodeDecodeError):
        return "Invalid JWT: not base64url JSON"
    if header.get("alg") != "RS256":
        return "Invalid JWT: alg must be RS256"
    key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        return "the service account's key is not RSA"
    try:
        key.public_key().verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "Invalid JWT Signature."
    if claims.get("iss") != account["client_email"]:
        return "Invalid JWT: iss is not the service account's client_email"
    if claims.get("aud") != account["token_uri"]:
        return "Invalid JWT: aud is not the token URI"
    if SCOPE not in str(claims.get("scope", "")).split():
        return "Invalid JWT: the scope does not include firebase.messaging"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "Invalid JWT: iat and exp must be integers"
    if iat > now + 60:
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values"
    if exp <= now or exp - iat > 3600:
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values"
    return None


def check_message(body):
    """(field, reason) for a message FCM would refuse, or None."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return "message", "message is required"
    targets = [k for k in ("token", "topic", "condition") if k in message]
    if targets != ["token"] or not isinstance(message["token"], str) or not message["token"]:
        return "message.token", "exactly one target is required: a registration token"
    for section in ("notification",):
        value = message.get(section, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return f"message.{section}", "must map to strings"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return "message.data", "data values must be strings"
    webpush = message.get("webpush", {})
    if not isinstance(webpush, dict):
        return "message.webpush", "must be an object"
    link = (webpush.get("fcm_options") or {}).get("link")
    if link is not None and not str(link).startswith("https://"):
        return "message.webpush.fcm_options.link", "HTTPS URL is required"
    headers = webpush.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return "message.webpush.headers", "must map to strings"
    return None


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=None, headers=None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            with state.lock:
                if self.path == "/_fake/messages":
                    return self.reply(200, state.messages)
                if self.path == "/_fake/token-requests":
                    return self.reply(200, state.token_requests)
            self.reply(404, google_error(404, "NOT_FOUND", "Not found"))

        def do_POST(self):
            raw = self.body()
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/_fake/"):
                return self.control(path, json.loads(raw or b"{}"))
            account = state.account()
            if path == urllib.parse.urlsplit(account["token_uri"]).path:
                return self.token(account, raw)
            if path.startswith("/v1/projects/") and path.endswith("/messages:send"):
                return self.send(account, path, raw)
            self.reply(404, google_error(404, "NOT_FOUND", "Not found"))

        def control(self, path, body):
            with state.lock:
                if path == "/_fake/unregister":
                    state.unregistered.add(body["token"])
                elif path == "/_fake/invalid":
                    state.invalid.add(body["token"])
                elif path == "/_fake/unavailable":
                    state.unavailable[body["token"]] = [int(body.get("retryAfter", 1)), int(body.get("times", 1))]
                elif path == "/_fake/revoke":
                    state.revoked.update(state.tokens)
                else:
                    return self.reply(404, {"error": "unknown control"})
            self.reply(200, {})

        def token(self, account, raw):
            form = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
            now = int(time.time())
            reason = None
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
                reason = "Content-Type must be application/x-www-form-urlencoded"
            elif form.get("grant_type") != [GRANT]:
                reason = "Invalid grant_type"
            elif len(form.get("assertion", [])) != 1:
                reason = "assertion is required"
            else:
                reason = check_assertion(account, form["assertion"][0], now)
            with state.lock:
                state.token_requests.append({"at": time.time(), "accepted": reason is None, "reason": reason})
                if reason:
                    return self.reply(400, {"error": "invalid_grant", "error_description": reason})
                token = "ya29.fake-" + secrets.token_urlsafe(24)
                state.tokens[token] = now + 3599
            self.reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

        def send(self, account, path, raw):
            authorization = self.headers.get("Authorization", "")
            bearer = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
            record = {"at": time.time(), "path": path}
            with state.lock:
                known = bearer in state.tokens and bearer not in state.revoked and state.tokens[bearer] > time.time()
            if not known:
                return self.answer(record, None, 401, google_error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                    "or other valid authentication credential."))
            project = path[len("/v1/projects/"):-len("/messages:send")]
            if project != account["project_id"]:
                return self.answer(record, None, 403, google_error(
                    403, "PERMISSION_DENIED", f"Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager."
                    f"googleapis.com/projects/{project}' (or it may not exist)."))
            try:
                body = json.loads(raw)
            except ValueError:
                return self.answer(record, None, 400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
            record["body"] = body
            problem = check_message(body)
            if problem:
                return self.answer(record, body, 400, google_error(400, "INVALID_ARGUMENT", problem[1], "INVALID_ARGUMENT", problem[0]))
            registration = body["message"]["token"]
            with state.lock:
                unavailable = state.unavailable.get(registration)
                if unavailable and unavailable[1] > 0:
                    unavailable[1] -= 1
                    retry_after = unavailable[0]
                else:
                    retry_after = None
                unregistered = registration in state.unregistered
                invalid = registration in state.invalid
            if retry_after is not None:
                return self.answer(record, body, 503, google_error(503, "UNAVAILABLE", "The service is currently unavailable.",
                                                                   "UNAVAILABLE"), {"Retry-After": str(retry_after)})
            if unregistered:
                return self.answer(record, body, 404, google_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"))
            if invalid:
                return self.answer(record, body, 400, google_error(
                    400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT",
                    "message.token"))
            with state.lock:
                name = f"projects/{project}/messages/0:{len(state.messages) + 1}%{secrets.token_hex(8)}"
            self.answer(record, body, 200, {"name": name})

        def answer(self, record, body, status, reply, headers=None):
            record["status"] = status
            if body is not None:
                record["token"] = body.get("message", {}).get("token") if isinstance(body, dict) else None
            with state.lock:
                state.messages.append(record)
            self.reply(status, reply, headers)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-account", required=True, help="the service account JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", help="written with the port once listening")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(State(args.service_account)))
    server.daemon_threads = True
    if args.ready_file:
        temporary = args.ready_file + ".tmp"
        with open(temporary, "w") as handle:
            handle.write(str(server.server_address[1]))
        os.replace(temporary, args.ready_file)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
