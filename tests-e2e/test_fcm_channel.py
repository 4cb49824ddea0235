"""Push through Firebase Cloud Messaging's HTTP v1 API against the real binary and a local stand-in that speaks it
(scripts/lib/fcm_fake.py): Herald signs an RS256 assertion with a fresh service account, exchanges it for an access
token, and sends each new activity to the FCM registration tokens that subscribed. An UNREGISTERED token ends its
subscription, a 503 is retried after its Retry-After, a revoked access token is replaced once."""
import json
import os
import subprocess
import tempfile
import time
import uuid
from datetime import datetime

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import ROOT, Herald, published_site, wait_for

FAKE = os.path.join(ROOT, "scripts", "lib", "fcm_fake.py")


def start_process(args, ready_file, timeout=15):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = wait_for(lambda: open(ready_file).read().strip() if os.path.exists(ready_file) else None, timeout=timeout)
    if not port:
        proc.kill()
        raise RuntimeError("did not start: " + proc.stderr.read().decode())
    return proc, int(port)


@pytest.fixture
def fcm():
    """The FCM stand-in and a fresh service account (a new RSA key) whose token_uri is the stand-in's."""
    work = tempfile.mkdtemp(prefix="herald-fcm-")
    account_file = os.path.join(work, "service-account.json")
    proc, port = start_process(["python3", FAKE, "--service-account", account_file, "--ready-file", os.path.join(work, "port")],
                               os.path.join(work, "port"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    base = f"http://127.0.0.1:{port}"
    account = {"type": "service_account", "project_id": "herald-e2e", "private_key_id": uuid.uuid4().hex, "private_key": pem,
               "client_email": "herald-sender@herald-e2e.iam.gserviceaccount.com", "client_id": "1",
               "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": f"{base}/token"}
    with open(account_file, "w") as f:
        json.dump(account, f)
    yield {"url": base, "account_file": account_file, "account": account}
    proc.terminate()
    proc.wait()


def control(fcm, path, **body):
    assert requests.post(fcm["url"] + "/_fake/" + path, json=body).status_code == 200


def messages(fcm):
    return requests.get(fcm["url"] + "/_fake/messages").json()


def token_requests(fcm):
    return requests.get(fcm["url"] + "/_fake/token-requests").json()


def fcm_token():
    # Registration tokens look like "<instance id>:APA91b…" with base64url characters.
    return "e" + uuid.uuid4().hex[:10] + ":APA91b" + uuid.uuid4().hex + uuid.uuid4().hex + "-_x"


def publish(server, site, **fields):
    r = requests.post(server.url(f"/sites/{site['id']}/activities"), headers={"Authorization": f"Bearer {site['secretKey']}"},
                      json={"type": "purchase", **fields})
    assert r.status_code == 202, r.text


def sent_to(fcm, token, status=200):
    return [m for m in messages(fcm) if m.get("token") == token and m["status"] == status]


def test_activities_reach_fcm_tokens_and_fcm_answers_are_honoured(store, fcm):
    server = Herald(database_url=store, env={
        "HERALD_BCRYPT_COST": "10", "HERALD_FCM_SERVICE_ACCOUNT_FILE": fcm["account_file"], "HERALD_FCM_BASE_URL": fcm["url"]}).start()
    try:
        w = published_site(server)
        site, h = w["site"], w["h"]
        widget = server.url(f"/widget/v1/{site['publicKey']}")
        r = requests.put(server.url(f"/sites/{site['id']}/notifications/{w['n']['id']}/push"), headers=h,
                         json={"enabled": True, "title": "{{siteName}}: {{firstName}}"})
        assert r.status_code == 200, r.text
        # FCM only: push is available and on, but there is no VAPID key for a browser's own push service.
        assert requests.get(widget + "/push").json() == {"available": True, "enabled": True}
        r = requests.post(widget + "/push-subscriptions", json={"endpoint": "https://push.example.net/x",
                                                                "keys": {"p256dh": "AAAA", "auth": "AAAA"}})
        assert r.status_code == 409 and "HERALD_VAPID_PRIVATE_KEY" in r.json()["detail"], r.text

        good, gone, slow = fcm_token(), fcm_token(), fcm_token()
        for token in (good, gone, slow):
            r = requests.post(widget + "/push-subscriptions", json={"fcmToken": token}, headers={"Origin": "https://kites.example.com"})
            assert r.status_code == 201 and r.json() == {"subscribed": True}, r.text
        # The same token again renews the subscription rather than adding one.
        assert requests.post(widget + "/push-subscriptions", json={"fcmToken": good}).status_code == 201
        counts = server.url(f"/sites/{site['id']}/push/subscriptions")
        assert requests.get(counts, headers=h).json() == {"active": 3, "gone": 0}

        control(fcm, "unregister", token=gone)
        control(fcm, "unavailable", token=slow, retryAfter=1, times=1)
        publish(server, site, firstName="Sarah", city="Austin", productName="Blue Kite", productUrl="https://kites.example.com/blue")
        assert wait_for(lambda: sent_to(fcm, good) and sent_to(fcm, slow) and sent_to(fcm, gone, 404), timeout=30), \
            (messages(fcm), server.output()[-3000:])

        message = sent_to(fcm, good)[0]
        assert message["path"] == "/v1/projects/herald-e2e/messages:send"
        body = message["body"]["message"]
        assert body["token"] == good
        assert body["notification"]["title"] == "Kite Shop: Sarah"
        assert body["notification"]["body"].startswith("Sarah from Austin") and "Blue Kite" in body["notification"]["body"]
        assert body["webpush"]["notification"]["title"] == "Kite Shop: Sarah"
        assert body["webpush"]["notification"]["tag"] == w["n"]["id"]
        assert body["webpush"]["fcm_options"]["link"] == "https://kites.example.com/blue"
        assert int(body["webpush"]["headers"]["TTL"]) == 3600
        assert body["data"]["url"] == "https://kites.example.com/blue" and body["data"]["title"] == "Kite Shop: Sarah"

        # The 503 was retried after its Retry-After (1 s), within the same attempt.
        first, second = [m for m in messages(fcm) if m.get("token") == slow][:2]
        assert first["status"] == 503 and second["status"] == 200 and second["at"] - first["at"] >= 0.9
        # One access token served every send: it is kept until shortly before it expires.
        assert [t["accepted"] for t in token_requests(fcm)] == [True]

        deliveries = server.url(f"/sites/{site['id']}/push/deliveries")
        done = wait_for(lambda: (lambda d: d if sorted(x["status"] for x in d) == ["failed", "sent", "sent"] else None)(
            requests.get(deliveries, headers=h).json()["items"]), timeout=20)
        assert done, requests.get(deliveries, headers=h).json()
        failed = next(d for d in done if d["status"] == "failed")
        assert "UNREGISTERED" in failed["lastError"], failed
        assert all(d["providerMessageId"].startswith("projects/herald-e2e/messages/") for d in done if d["status"] == "sent")
        assert requests.get(counts, headers=h).json() == {"active": 2, "gone": 1}

        # FCM stops accepting the access token (revoked): Herald gets a fresh one once and sends.
        control(fcm, "revoke")
        publish(server, site, firstName="Tom")
        assert wait_for(lambda: len(sent_to(fcm, good)) == 2 and len(sent_to(fcm, slow)) == 2, timeout=30), messages(fcm)
        assert [t["accepted"] for t in token_requests(fcm)] == [True, True]
        assert not sent_to(fcm, gone, 200) and len(sent_to(fcm, gone, 404)) == 1, "an ended token is never sent to again"

        # A long Retry-After is left to the retry schedule, and honoured.
        control(fcm, "unavailable", token=good, retryAfter=600, times=1)
        before = time.time()
        publish(server, site, firstName="Ana")
        waiting = wait_for(lambda: [d for d in requests.get(deliveries, headers=h).json()["items"]
                                    if d["status"] == "pending" and d.get("lastError") and "503" in d["lastError"]], timeout=30)
        assert waiting, requests.get(deliveries, headers=h).json()
        next_attempt = waiting[0]["nextAttemptAt"]
        assert datetime.fromisoformat(next_attempt.replace("Z", "+00:00")).timestamp() >= before + 590, waiting[0]

        # The app turns push off: the token ends.
        assert requests.delete(widget + "/push-subscriptions", json={"fcmToken": slow}).status_code == 204
        assert requests.get(counts, headers=h).json() == {"active": 1, "gone": 2}

        stranger = server.auth(server.signup()["token"])
        for path in ("/push/subscriptions", "/push/deliveries"):
            assert requests.get(server.url(f"/sites/{site['id']}{path}"), headers=stranger).status_code in (403, 404), path
    finally:
        server.stop()
    assert fcm["account"]["private_key"].split("\n")[1] not in server.output(), "the service account's key is never logged"


def test_fcm_tokens_are_checked(fcm):
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_FCM_SERVICE_ACCOUNT_FILE": fcm["account_file"],
                         "HERALD_FCM_BASE_URL": fcm["url"]}).start()
    try:
        w = published_site(server)
        widget = server.url(f"/widget/v1/{w['site']['publicKey']}")
        for body in [{"fcmToken": "short"}, {"fcmToken": 5}, {"fcmToken": None}, {"fcmToken": "has spaces in it and is long enough"},
                     {"fcmToken": "x" * 4097}, {"fcmToken": fcm_token(), "endpoint": "https://push.example.net/x"}]:
            r = requests.post(widget + "/push-subscriptions", json=body)
            assert r.status_code == 422, (body, r.text)
            assert {e["field"] for e in r.json()["errors"]} & {"fcmToken", "endpoint"}, r.json()
        assert requests.delete(widget + "/push-subscriptions", json={"fcmToken": "short"}).status_code == 422
        # Unsubscribing an unknown token is not an error (the browser may have been forgotten already).
        assert requests.delete(widget + "/push-subscriptions", json={"fcmToken": fcm_token()}).status_code == 204
    finally:
        server.stop()

    # Without FCM an FCM token is refused; a broken service account stops the start with a one-line reason.
    bare = Herald(env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        w = published_site(bare)
        r = requests.post(bare.url(f"/widget/v1/{w['site']['publicKey']}/push-subscriptions"), json={"fcmToken": fcm_token()})
        assert r.status_code == 409 and r.json()["type"].endswith("push-unavailable"), r.text
    finally:
        bare.stop()
    broken = os.path.join(tempfile.mkdtemp(prefix="herald-fcm-"), "sa.json")
    with open(broken, "w") as f:
        json.dump({**fcm["account"], "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, f)
    with pytest.raises(RuntimeError) as failure:
        Herald(env={"HERALD_FCM_SERVICE_ACCOUNT_FILE": broken}).start()
    assert "HERALD_FCM_SERVICE_ACCOUNT_FILE" in str(failure.value) and "private_key" in str(failure.value)
