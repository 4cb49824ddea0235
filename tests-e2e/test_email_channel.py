"""The email channel against the real binary and a real SMTP server (aiosmtpd): a new activity goes out by email to
a site's opted-in recipients, with a one-click unsubscribe (RFC 8058) that is honoured; a refused address is marked
bounced; temporary refusals are retried; the per-site hourly limit defers rather than drops; every email is a
delivery record; other tenants see nothing; and without a mail transport email cannot be turned on."""
import base64
import json
import os
import tempfile
import time
import uuid

import pytest
import requests

from conftest import Herald, postgres_url_or_skip, published_site, wait_for
from test_reports import SENDGRID, SINK, received, start_process


@pytest.fixture
def smtp():
    work = tempfile.mkdtemp(prefix="herald-smtp-")
    mail = os.path.join(work, "mail")
    proc, port = start_process(["python3", SINK, "--dir", mail, "--ready-file", os.path.join(work, "port"),
                                "--reject-recipient", "gone", "--defer-recipient", "later"], os.path.join(work, "port"))
    yield {"url": f"smtp://127.0.0.1:{port}?tls=none", "dir": mail}
    proc.terminate()
    proc.wait()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request):
    return postgres_url_or_skip() if request.param == "postgres" else None


def start(smtp, store=None, **extra):
    env = {"HERALD_BCRYPT_COST": "10", "HERALD_MAIL_URL": smtp["url"], "HERALD_MAIL_FROM": "Shop updates <updates@herald.test>"}
    env.update(extra)
    return Herald(database_url=store, env=env).start()


def world(server):
    return published_site(server, content={"activityTypes": ["purchase"]})


def api(server, w, method, path, **kwargs):
    return requests.request(method, server.url(f"/sites/{w['site']['id']}{path}"), headers=w["h"], **kwargs)


def activity(server, w, **fields):
    body = {"type": "purchase", "firstName": "Sarah", "city": "Austin", "productName": "Blue Kite"}
    body.update(fields)
    r = requests.post(server.url(f"/sites/{w['site']['id']}/activities"), json=body,
                      headers={"Authorization": f"Bearer {w['site']['secretKey']}"})
    assert r.status_code == 202, r.text


def deliveries(server, w, **params):
    r = api(server, w, "GET", "/email/deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_new_activities_are_emailed_with_one_click_unsubscribe(smtp, store):
    server = start(smtp, store)
    try:
        w = world(server)
        settings = api(server, w, "GET", f"/notifications/{w['n']['id']}/email").json()
        assert settings == {**settings, "enabled": False, "available": True}
        r = api(server, w, "PUT", f"/notifications/{w['n']['id']}/email", json={"enabled": True, "subject": "{{firstName}} bought at {{siteName}}"})
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is True
        for address in ["Ann@Example.com", "bob@example.com", "gone@example.com", "later@example.com"]:
            r = api(server, w, "POST", "/email/recipients", json={"email": address})
            assert r.status_code == 201, r.text
        again = api(server, w, "POST", "/email/recipients", json={"email": "ann@example.com "})
        assert again.status_code == 200 and again.json()["email"] == "ann@example.com"
        recipients = {r["email"]: r for r in api(server, w, "GET", "/email/recipients").json()["items"]}
        assert set(recipients) == {"ann@example.com", "bob@example.com", "gone@example.com", "later@example.com"}

        activity(server, w)
        activity(server, w, type="signup", firstName="Nobody")  # the notification shows purchases only
        messages = received(smtp["dir"], 2)
        assert messages, server.output()[-3000:]
        time.sleep(1)
        messages = received(smtp["dir"], 2)
        assert sorted(m["rcpt_tos"][0] for m in messages) == ["ann@example.com", "bob@example.com"]
        first = messages[0]["parsed"]
        assert first["subject"] == "Sarah bought at Kite Shop"
        assert first["text"].startswith("Sarah from Austin"), first["text"]
        assert "Blue Kite" in first["text"] and "Unsubscribe: http" in first["text"]
        assert first["from"] == "Shop updates <updates@herald.test>" and not first["defects"]
        headers = {k.lower(): v for k, v in first["headers"]}
        unsubscribe = headers.get("list-unsubscribe", "")
        assert unsubscribe.startswith("<http") and "/email/unsubscribe/" in unsubscribe, first
        assert headers.get("list-unsubscribe-post") == "List-Unsubscribe=One-Click"

        # The refused address is marked bounced; the deferred one is retried and stays pending with its error.
        gone = wait_for(lambda: (lambda d: d if d and d[0]["status"] == "failed" else None)(
            deliveries(server, w, status="failed")), timeout=20)
        assert gone, deliveries(server, w)
        assert gone[0]["recipientId"] == recipients["gone@example.com"]["id"] and "550" in gone[0]["lastError"], gone
        assert wait_for(lambda: next(r for r in api(server, w, "GET", "/email/recipients").json()["items"]
                                     if r["email"] == "gone@example.com")["status"] == "bounced", timeout=10)
        later = wait_for(lambda: [d for d in deliveries(server, w, status="pending") if d["attempts"] >= 1], timeout=20)
        assert later and later[0]["recipientId"] == recipients["later@example.com"]["id"] and later[0]["nextAttemptAt"], later
        sent = deliveries(server, w, status="sent")
        assert len(sent) == 2 and all(d["attempts"] == 1 and d["sentAt"] for d in sent)
        assert all(d["notificationId"] == w["n"]["id"] for d in deliveries(server, w))

        # Opening the link shows a button (mail scanners open links); the one-click POST unsubscribes.
        link = unsubscribe.strip("<>")
        path = link[link.index("/email/unsubscribe/"):]
        page = requests.get(server.url(path))
        assert page.status_code == 200 and "<form" in page.text and "text/html" in page.headers["content-type"]
        ann = recipients["ann@example.com"]
        token_for_ann = messages[[m["rcpt_tos"][0] for m in messages].index("ann@example.com")]["parsed"]
        ann_link = {k.lower(): v for k, v in token_for_ann["headers"]}["list-unsubscribe"].strip("<>")
        ann_path = ann_link[ann_link.index("/email/unsubscribe/"):]
        done = requests.post(server.url(ann_path), data="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200, done.text
        assert requests.post(server.url(ann_path)).status_code == 200  # twice is fine
        status = {r["email"]: r["status"] for r in api(server, w, "GET", "/email/recipients").json()["items"]}
        assert status["ann@example.com"] == "unsubscribed"
        # A forged or altered link does nothing.
        forged = ann_path[:-3] + ("AAA" if not ann_path.endswith("AAA") else "BBB")
        assert requests.post(server.url(forged)).status_code == 404
        other = ann_path.replace(ann["id"], str(uuid.uuid4()))
        assert requests.post(server.url(other)).status_code == 404
        # The owner cannot subscribe them again.
        r = api(server, w, "POST", "/email/recipients", json={"email": "ann@example.com"})
        assert r.status_code == 409 and r.json()["type"].endswith("recipient-unsubscribed"), r.text

        # The next activity reaches only who is still subscribed.
        activity(server, w, firstName="Tom")
        assert wait_for(lambda: len(received(smtp["dir"], 3) or []) >= 3, timeout=20)
        time.sleep(1)
        latest = [m for m in received(smtp["dir"], 3) if m["parsed"]["subject"].startswith("Tom")]
        assert [m["rcpt_tos"][0] for m in latest] == ["bob@example.com"]
    finally:
        server.stop()


def test_sendgrid_carries_the_email_and_its_events_reach_the_recipient():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    signing_key = ec.generate_private_key(ec.SECP256R1())
    verification_key = base64.b64encode(signing_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    work = tempfile.mkdtemp(prefix="herald-sendgrid-")
    proc, port = start_process(["python3", SENDGRID, "--key", "SG.test-key", "--dir", work, "--ready-file", os.path.join(work, "port"),
                                "--mode", "ok"], os.path.join(work, "port"))
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_MAIL_URL": "sendgrid://", "HERALD_SENDGRID_API_KEY": "SG.test-key",
                         "HERALD_SENDGRID_URL": f"http://127.0.0.1:{port}", "HERALD_MAIL_FROM": "updates@herald.test",
                         "HERALD_SENDGRID_EVENT_KEY": verification_key}).start()

    def events(payload, key=signing_key, timestamp=None):
        body = json.dumps(payload).encode()
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        return requests.post(server.url("/email/events/sendgrid"), data=body, headers={
            "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})

    try:
        w = world(server)
        assert api(server, w, "PUT", f"/notifications/{w['n']['id']}/email", json={"enabled": True}).status_code == 200
        api(server, w, "POST", "/email/recipients", json={"email": "fan@example.com"})
        activity(server, w, firstName="Lee")
        records = wait_for(lambda: [f for f in os.listdir(work) if f.startswith("request-")] or None, timeout=30)
        assert records, server.output()[-2000:]
        record = json.load(open(os.path.join(work, records[0])))
        assert record["status"] == 202 and record["key_ok"] is True
        body = record["body"]
        assert body["personalizations"][0]["to"] == [{"email": "fan@example.com"}]
        assert body["subject"] == "New at Kite Shop" and body["content"][0]["value"].startswith("Lee from Austin")
        assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/email/unsubscribe/" in body["headers"]["List-Unsubscribe"]
        sent = wait_for(lambda: deliveries(server, w, status="sent"), timeout=10)
        assert sent and sent[0]["providerMessageId"], deliveries(server, w)

        # SendGrid reports back with the tags Herald gave the email: a bounce marks that recipient bounced.
        tags = body["personalizations"][0]["custom_args"]
        assert tags["herald_recipient"] and tags["herald_organization"] == w["org"]["id"]
        status = lambda: {r["email"]: r["status"] for r in api(server, w, "GET", "/email/recipients").json()["items"]}  # noqa: E731
        event = {"email": "fan@example.com", "timestamp": int(time.time()), "sg_event_id": "e1", "sg_message_id": "m1", **tags}
        for refused in [events([{**event, "event": "bounce", "type": "bounce"}], key=ec.generate_private_key(ec.SECP256R1())),
                        events([{**event, "event": "bounce", "type": "bounce"}], timestamp=int(time.time()) - 3600),
                        requests.post(server.url("/email/events/sendgrid"), json=[{**event, "event": "bounce"}])]:
            assert refused.status_code == 400 and refused.json()["type"].endswith("bad-signature"), refused.text
        assert events({"not": "a list"}).status_code == 400
        ok = events([{**event, "event": "delivered"}, {**event, "event": "bounce", "type": "blocked", "reason": "try later"},
                     {**event, "event": "open"}, {"event": "bounce", "email": "someone@else.example"}])
        assert ok.status_code == 204, ok.text
        assert status()["fan@example.com"] == "subscribed"
        assert events([{**event, "event": "bounce", "type": "bounce", "reason": "550 5.1.1 user unknown"}]).status_code == 204
        assert status()["fan@example.com"] == "bounced"
        fan = next(r for r in api(server, w, "GET", "/email/recipients").json()["items"])
        assert "550 5.1.1" in fan["statusReason"]
        # A later event never brings a bounced address back, and the next activity skips it.
        assert events([{**event, "event": "unsubscribe"}]).status_code == 204
        assert status()["fan@example.com"] == "bounced"
    finally:
        server.stop()
        proc.terminate()
        proc.wait()


def test_the_hourly_limit_defers_instead_of_dropping(smtp):
    server = start(smtp, HERALD_EMAIL_PER_SITE_PER_HOUR="2")
    try:
        w = world(server)
        api(server, w, "PUT", f"/notifications/{w['n']['id']}/email", json={"enabled": True})
        api(server, w, "POST", "/email/recipients", json={"email": "fan@example.com"})
        for name in ["A", "B", "C"]:
            activity(server, w, firstName=name)
        assert received(smtp["dir"], 2)
        waiting = wait_for(lambda: [d for d in deliveries(server, w, status="pending") if d["lastError"]], timeout=20)
        assert waiting and "email deliveries of the last hour" in waiting[0]["lastError"] and waiting[0]["attempts"] == 0, deliveries(server, w)
        time.sleep(1.5)
        assert len(received(smtp["dir"], 2)) == 2
        assert waiting[0]["title"] == "New at Kite Shop"
    finally:
        server.stop()


def test_many_recipients_get_one_delivery_each_from_one_activity(smtp, store):
    """Fan-out writes deliveries in multi-row batches of 200: 450 recipients cross two batch boundaries, and a
    redelivered activity adds nothing."""
    server = start(smtp, store, HERALD_EMAIL_PER_SITE_PER_HOUR="1")
    try:
        w = world(server)
        api(server, w, "PUT", f"/notifications/{w['n']['id']}/email", json={"enabled": True})
        for i in range(450):
            assert api(server, w, "POST", "/email/recipients", json={"email": f"fan{i}@example.com"}).status_code == 201
        activity(server, w, firstName="Batch")

        def all_deliveries():
            items, cursor = [], None
            while True:
                r = api(server, w, "GET", "/email/deliveries", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
                assert r.status_code == 200, r.text
                items += r.json()["items"]
                cursor = r.json().get("nextCursor")
                if not cursor:
                    return items
        found = wait_for(lambda: (lambda items: len(items) == 450 and items)(all_deliveries()), timeout=30, interval=0.5)
        assert found, len(all_deliveries())
        assert len({d["recipientId"] for d in found}) == 450
        assert all(d["title"] == "New at Kite Shop" for d in found)
    finally:
        server.stop()


def test_settings_are_checked_and_private(smtp):
    server = start(smtp)
    try:
        w = world(server)
        base = f"/notifications/{w['n']['id']}/email"
        for body, field in [({}, "enabled"), ({"enabled": "yes"}, "enabled"), ({"enabled": True, "subject": "x" * 201}, "subject"),
                            ({"enabled": True, "subject": "{{#city}}unclosed"}, "subject")]:
            r = api(server, w, "PUT", base, json=body)
            assert r.status_code == 422 and field in {e["field"] for e in r.json()["errors"]}, (body, r.text)
        counter = api(server, w, "POST", "/notifications", json={"name": "Count", "type": "counter"}).json()
        r = api(server, w, "PUT", f"/notifications/{counter['id']}/email", json={"enabled": True})
        assert r.status_code == 422 and "recent_activity" in r.text
        for address in ["not-an-email", "", "a@b", "x" * 300 + "@example.com"]:
            assert api(server, w, "POST", "/email/recipients", json={"email": address}).status_code == 422, address
        assert api(server, w, "GET", "/email/deliveries", params={"status": "lost"}).status_code == 422
        assert api(server, w, "DELETE", f"/email/recipients/{uuid.uuid4()}").status_code == 404

        recipient = api(server, w, "POST", "/email/recipients", json={"email": "private@example.com"}).json()
        stranger = server.auth(server.signup()["token"])
        for method, path in [("GET", "/email/recipients"), ("GET", "/email/deliveries"), ("GET", base),
                             ("DELETE", f"/email/recipients/{recipient['id']}")]:
            r = requests.request(method, server.url(f"/sites/{w['site']['id']}{path}"), headers=stranger)
            assert r.status_code in (403, 404), (method, path, r.status_code)
        assert requests.get(server.url(f"/sites/{w['site']['id']}/email/recipients")).status_code == 401
        assert api(server, w, "DELETE", f"/email/recipients/{recipient['id']}").status_code == 204
        assert requests.get(server.url("/email/unsubscribe/nonsense")).status_code == 404
    finally:
        server.stop()

    # Without a mail transport the channel says so and cannot be turned on.
    bare = Herald(env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        w = world(bare)
        base = f"/notifications/{w['n']['id']}/email"
        assert api(bare, w, "GET", base).json()["available"] is False
        r = api(bare, w, "PUT", base, json={"enabled": True})
        assert r.status_code == 409 and "HERALD_MAIL_URL" in r.json()["detail"], r.text
        assert api(bare, w, "PUT", base, json={"enabled": False}).status_code == 200
    finally:
        bare.stop()
