"""Web push against the real binary and a push service the test runs: Herald sends each new activity, encrypted for
the browser's subscription (RFC 8291, aes128gcm) and signed with VAPID (RFC 8292); the push service checks the
VAPID JWT against the advertised key and decrypts the payload with the subscription's private key (http_ece), as
a browser would. An ended subscription (410) is never pushed again; bad subscriptions are refused; other tenants see
nothing."""
import base64
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conftest import Herald, published_site, wait_for


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    """Answers like a push service: 201 for /push/ok-*, 410 for /push/gone-*; records every request."""

    def __init__(self):
        self.requests = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                service.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                status = 410 if "/gone-" in self.path else 201
                self.send_response(status)
                if status == 201:
                    self.send_header("Location", f"http://127.0.0.1:{service.port}/message/{len(service.requests)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Browser:
    """A browser's push subscription: its own P-256 key and auth secret."""

    def __init__(self, endpoint):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self):
        public = self.key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, body):
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def vapid_key():
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(raw), b64url(public)


def verify_vapid(authorization, endpoint_origin, advertised):
    """The JWT is ES256 over header.claims, for the endpoint's origin, signed by the key the browser subscribed with."""
    assert authorization.startswith("vapid t="), authorization
    token, k = [part.strip() for part in authorization[len("vapid "):].split(",")]
    token, k = token[2:], k[2:]
    assert k == advertised
    header, claims, signature = token.split(".")
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    claims = json.loads(unb64url(claims))
    assert claims["aud"] == endpoint_origin and claims["sub"] == "mailto:ops@herald.test"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k))
    try:
        public.verify(der, f"{header}.{token.split('.')[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        pytest.fail("the VAPID signature does not verify")


def test_new_activities_are_pushed_encrypted_and_signed(store):
    push = PushService()
    private, public = vapid_key()
    server = Herald(database_url=store, env={
        "HERALD_BCRYPT_COST": "10", "HERALD_VAPID_PRIVATE_KEY": private, "HERALD_VAPID_SUBJECT": "mailto:ops@herald.test",
        "HERALD_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8"}).start()
    try:
        w = published_site(server)
        site, h = w["site"], w["h"]
        widget = server.url(f"/widget/v1/{site['publicKey']}")
        info = requests.get(widget + "/push").json()
        assert info == {"available": True, "enabled": False, "publicKey": public}
        r = requests.put(server.url(f"/sites/{site['id']}/notifications/{w['n']['id']}/push"), headers=h,
                         json={"enabled": True, "title": "{{siteName}}: {{firstName}}"})
        assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["title"] == "{{siteName}}: {{firstName}}", r.text
        assert requests.get(widget + "/push").json()["enabled"] is True

        base = f"http://127.0.0.1:{push.port}/push"
        browser, ended = Browser(f"{base}/ok-{uuid.uuid4()}"), Browser(f"{base}/gone-{uuid.uuid4()}")
        for b in (browser, ended):
            r = requests.post(widget + "/push-subscriptions", json=b.subscription(), headers={"Origin": "https://kites.example.com"})
            assert r.status_code == 201, r.text
            assert r.headers["access-control-allow-origin"] == "*"
        # The same endpoint again renews it rather than adding a second one.
        assert requests.post(widget + "/push-subscriptions", json=browser.subscription()).status_code == 201
        assert requests.get(server.url(f"/sites/{site['id']}/push/subscriptions"), headers=h).json() == {"active": 2, "gone": 0}

        r = requests.post(server.url(f"/sites/{site['id']}/activities"), headers={"Authorization": f"Bearer {site['secretKey']}"},
                          json={"type": "purchase", "firstName": "Sarah", "city": "Austin", "productName": "Blue Kite",
                                "productUrl": "https://kites.example.com/blue"})
        assert r.status_code == 202, r.text
        assert wait_for(lambda: len(push.requests) >= 2, timeout=30), server.output()[-3000:]
        delivered = next(x for x in push.requests if "/ok-" in x["path"])
        headers = delivered["headers"]
        assert headers["content-encoding"] == "aes128gcm" and headers["content-type"] == "application/octet-stream"
        assert int(headers["ttl"]) > 0 and headers["urgency"] == "normal"
        verify_vapid(headers["authorization"], f"http://127.0.0.1:{push.port}", public)
        payload = browser.decrypt(delivered["body"])
        assert payload["title"] == "Kite Shop: Sarah"
        assert payload["body"].startswith("Sarah from Austin") and "Blue Kite" in payload["body"]
        assert payload["url"] == "https://kites.example.com/blue" and payload["tag"] == w["n"]["id"]
        # Only the subscription's own key reads it.
        with pytest.raises(Exception):
            Browser(browser.endpoint).decrypt(delivered["body"])

        # The ended subscription is marked gone and its delivery failed; the sent one has the push service's id.
        url = server.url(f"/sites/{site['id']}/push/deliveries")
        done = wait_for(lambda: (lambda d: d if sorted(x["status"] for x in d) == ["failed", "sent"] else None)(
            requests.get(url, headers=h).json()["items"]), timeout=20)
        assert done, requests.get(url, headers=h).json()
        failed = next(d for d in done if d["status"] == "failed")
        assert "410" in failed["lastError"] and failed["subscriptionId"]
        sent = next(d for d in done if d["status"] == "sent")
        assert sent["providerMessageId"].startswith(f"http://127.0.0.1:{push.port}/message/")
        assert requests.get(server.url(f"/sites/{site['id']}/push/subscriptions"), headers=h).json() == {"active": 1, "gone": 1}

        # The visitor turns push off: the next activity reaches no one.
        assert requests.delete(widget + "/push-subscriptions", json={"endpoint": browser.endpoint}).status_code == 204
        before = len(push.requests)
        requests.post(server.url(f"/sites/{site['id']}/activities"), headers={"Authorization": f"Bearer {site['secretKey']}"},
                      json={"type": "purchase", "firstName": "Tom"})
        time.sleep(2)
        assert len(push.requests) == before

        worker = requests.get(server.url("/widget/v1/push-worker.js"))
        assert worker.status_code == 200 and "javascript" in worker.headers["content-type"] and "showNotification" in worker.text
    finally:
        server.stop()
        push.stop()


def test_subscriptions_are_checked_and_settings_private():
    private, _ = vapid_key()
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_VAPID_PRIVATE_KEY": private, "HERALD_VAPID_SUBJECT": "mailto:ops@herald.test"}).start()
    try:
        w = published_site(server)
        widget = server.url(f"/widget/v1/{w['site']['publicKey']}")
        good = Browser("https://push.example.net/send/abc").subscription()
        for body, field in [({}, "endpoint"), ({**good, "endpoint": "not a url"}, "endpoint"),
                            ({**good, "endpoint": "ftp://push.example.net/x"}, "endpoint"),
                            ({**good, "keys": {"p256dh": "AAAA", "auth": good["keys"]["auth"]}}, "keys.p256dh"),
                            ({**good, "keys": {"p256dh": good["keys"]["p256dh"], "auth": "AAAA"}}, "keys.auth"),
                            ({"endpoint": good["endpoint"]}, "keys"),
                            # Push endpoints inside the operator's network are refused (no HERALD_OUTBOUND_ALLOW_CIDRS here).
                            ({**good, "endpoint": "http://10.0.0.7/push"}, "endpoint"),
                            ({**good, "endpoint": "http://127.0.0.1:9/push"}, "endpoint")]:
            r = requests.post(widget + "/push-subscriptions", json=body)
            assert r.status_code == 422 and field in {e["field"] for e in r.json()["errors"]}, (body, r.text)
        assert requests.post(server.url("/widget/v1/no-such-key/push-subscriptions"), json=good).status_code == 404
        # One address may subscribe a few browsers a minute, not fill the site's subscriptions.
        statuses = [requests.post(widget + "/push-subscriptions", json=Browser(f"https://push.example.net/s/{i}").subscription()).status_code
                    for i in range(12)]
        assert 429 in statuses, statuses
        limited = requests.post(widget + "/push-subscriptions", json=good)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
        assert requests.delete(widget + "/push-subscriptions", json={}).status_code == 422
        counter = requests.post(server.url(f"/sites/{w['site']['id']}/notifications"), headers=w["h"],
                                json={"name": "Count", "type": "counter"}).json()
        r = requests.put(server.url(f"/sites/{w['site']['id']}/notifications/{counter['id']}/push"), headers=w["h"], json={"enabled": True})
        assert r.status_code == 422
        stranger = server.auth(server.signup()["token"])
        for path in ["/push/subscriptions", "/push/deliveries", f"/notifications/{w['n']['id']}/push"]:
            assert requests.get(server.url(f"/sites/{w['site']['id']}{path}"), headers=stranger).status_code in (403, 404), path
    finally:
        server.stop()

    bare = Herald(env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        w = published_site(bare)
        widget = bare.url(f"/widget/v1/{w['site']['publicKey']}")
        assert requests.get(widget + "/push").json() == {"available": False, "enabled": False}
        r = requests.post(widget + "/push-subscriptions", json=Browser("https://push.example.net/x").subscription())
        assert r.status_code == 409 and "HERALD_VAPID_PRIVATE_KEY" in r.json()["detail"]
        r = requests.put(bare.url(f"/sites/{w['site']['id']}/notifications/{w['n']['id']}/push"), headers=w["h"], json={"enabled": True})
        assert r.status_code == 409 and r.json()["type"].endswith("push-unavailable")
    finally:
        bare.stop()
