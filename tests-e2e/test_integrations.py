"""Integrations end to end, against local servers that speak Shopify's and WooCommerce's documented APIs:
signed webhooks in (verified, deduplicated, never lost), OAuth, imports, Zapier, and Standard Webhooks out."""
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
import uuid

import pytest
import requests
from standardwebhooks import Webhook

from conftest import Herald, wait_for
from fakes import FakeShopify, FakeWooCommerce, Receiver

API_KEY, API_SECRET = "herald-test-app", "shpss_" + "s" * 32
SHOP = "acme.myshopify.com"



def a_day_ago(layout):
    # Orders of yesterday: the feed hides activities older than a week, so a fixed date would expire.
    return time.strftime(layout, time.gmtime(time.time() - 86_400))


def shopify_order(order_id, first="Sarah", city="Austin", title="Blue Hoodie"):
    # The documented orders/create webhook body, trimmed to the fields that matter plus some noise.
    return {"id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "email": "sarah@example.com",
            "created_at": a_day_ago("%Y-%m-%dT%H:%M:%S+00:00"), "currency": "USD", "total_price": "49.00",
            "customer": {"id": 42, "email": "sarah@example.com", "first_name": first, "last_name": "Connor"},
            "billing_address": {"first_name": first, "last_name": "Connor", "city": city, "province": "Texas", "country": "United States",
                                "country_code": "US", "province_code": "TX"},
            "line_items": [{"id": 1, "title": title, "quantity": 1, "price": "49.00", "product_id": 7}]}


def woo_order(order_id, first="Luis", city="Madrid", name="Red Scarf"):
    return {"id": order_id, "status": "processing", "date_created_gmt": a_day_ago("%Y-%m-%dT%H:%M:%S"),
            "billing": {"first_name": first, "last_name": "García", "email": "luis@example.com", "city": city, "state": "M", "country": "ES"},
            "shipping": {"first_name": first, "city": city, "country": "ES"},
            "line_items": [{"id": 3, "name": name, "product_id": 99, "quantity": 1}]}


@pytest.fixture
def fake_shopify():
    # Recent orders: the feed hides activities older than a week.
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
    orders = [{"id": f"gid://shopify/Order/{2000 + i}", "createdAt": recent,
               "customer": {"firstName": f"Imported{i}", "lastName": "Buyer", "email": f"b{i}@example.com"},
               "billingAddress": {"city": "Denver", "province": "Colorado", "country": "United States"}, "shippingAddress": None,
               "lineItems": {"edges": [{"node": {"title": "Green Cap"}}]}} for i in range(6)]
    orders.append({**orders[0], "id": "gid://shopify/Order/1001"})  # also arrives by webhook: imported once
    server = FakeShopify(API_KEY, API_SECRET, orders)
    yield server
    server.close()


@pytest.fixture
def world(store, fake_shopify):
    server = Herald(database_url=store, env={
        "HERALD_BCRYPT_COST": "10", "HERALD_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8,::1/128",
        "HERALD_SHOPIFY_API_KEY": API_KEY, "HERALD_SHOPIFY_API_SECRET": API_SECRET, "HERALD_SHOPIFY_ADMIN_ORIGIN": fake_shopify.base,
        "HERALD_WEBHOOK_RETRY_SCHEDULE": "0,1,1,1", "HERALD_WEBHOOK_DISABLE_AFTER": "2",
    }).start()
    owner = server.signup()
    auth = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Shops"}, headers=auth).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "Shop", "domain": "shop.example.com"}, headers=auth).json()
    assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200)
    n = requests.post(server.url(f"/sites/{site['id']}/notifications"), json={"name": "Recent", "type": "recent_activity"}, headers=auth).json()
    requests.post(server.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=auth)
    yield {"server": server, "auth": auth, "site": site, "fake": fake_shopify}
    server.stop()


def api(world, method, path, **kwargs):
    return requests.request(method, world["server"].url(path), headers=world["auth"], **kwargs)


def feed_text(world):
    return requests.get(world["server"].url(f"/widget/v1/{world['site']['publicKey']}/feed")).text


def activities(world):
    return api(world, "GET", f"/sites/{world['site']['id']}/activities").json()["items"]


def create_integration(world, body, status=201):
    r = api(world, "POST", f"/sites/{world['site']['id']}/integrations", json=body)
    assert r.status_code == status, r.text
    return r.json()


def deliveries(world, integration):
    return api(world, "GET", f"/sites/{world['site']['id']}/integrations/{integration['id']}/deliveries").json()["items"]


def shopify_post(url, body, secret, webhook_id, topic="orders/create", shop=SHOP, signature=None):
    raw = json.dumps(body).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return requests.post(url, data=raw, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Hmac-Sha256": signature or digest, "X-Shopify-API-Version": "2025-01"})


def test_shopify_webhooks_are_verified_deduplicated_and_become_one_activity(world):
    secret = "shopify-webhook-secret"
    integration = create_integration(world, {"type": "shopify", "name": "Acme store", "config": {"shopDomain": SHOP, "webhookSecret": secret}})
    assert integration["credentials"]["webhookSecret"].startswith("…") and secret not in json.dumps(integration)
    url = integration["webhookUrl"]
    assert url.startswith(world["server"].base + "/hooks/")

    webhook_id = str(uuid.uuid4())
    first = shopify_post(url, shopify_order(1001), secret, webhook_id)
    assert first.status_code == 200, first.text
    assert wait_for(lambda: "Sarah from Austin purchased Blue Hoodie" in feed_text(world)), feed_text(world)
    again = shopify_post(url, shopify_order(1001), secret, webhook_id)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    forged = shopify_post(url, shopify_order(1002, first="Mallory"), secret, str(uuid.uuid4()), signature=base64.b64encode(b"x" * 32).decode())
    assert forged.status_code == 401
    assert forged.headers["Content-Type"] == "application/problem+json"
    other_shop = shopify_post(url, shopify_order(1003, first="Eve"), secret, str(uuid.uuid4()), shop="evil.myshopify.com")
    assert other_shop.status_code == 401
    ignored = shopify_post(url, {"id": 5}, secret, str(uuid.uuid4()), topic="products/update")
    assert ignored.status_code == 200

    time.sleep(1.0)
    recorded = [a for a in activities(world) if a["provenance"]["source"] == "shopify"]
    assert len(recorded) == 1
    assert recorded[0]["provenance"]["signatureVerified"] is True
    assert recorded[0]["provenance"]["sourceEventId"] == "order:1001"
    assert "Mallory" not in feed_text(world)

    statuses = wait_for(lambda: (lambda s: s if "ignored" in s else None)([d["status"] for d in deliveries(world, integration)]), 5)
    assert sorted(statuses) == ["accepted", "duplicate", "ignored", "rejected", "rejected"], statuses
    reasons = [d["reason"] for d in deliveries(world, integration) if d["status"] == "rejected"]
    assert any("X-Shopify-Hmac-Sha256" in r for r in reasons) and any("another shop" in r for r in reasons)


def test_woocommerce_ping_signature_and_import(world):
    secret = "woo-webhook-secret"
    woo = FakeWooCommerce("ck_test", "cs_test", [woo_order(501), woo_order(502, first="Ana", name="Blue Mug")])
    try:
        integration = create_integration(world, {"type": "woocommerce", "name": "Woo", "config": {
            "storeUrl": woo.base, "webhookSecret": secret, "consumerKey": "ck_test", "consumerSecret": "cs_test"}})
        url = integration["webhookUrl"]
        ping = requests.post(url, data="webhook_id=17", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert ping.status_code == 200

        raw = json.dumps(woo_order(500)).encode()
        signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
        headers = {"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Resource": "order",
                   "X-WC-Webhook-Event": "created", "X-WC-Webhook-Delivery-ID": "d-500", "X-WC-Webhook-Signature": signature}
        assert requests.post(url, data=raw, headers=headers).status_code == 200
        assert wait_for(lambda: "Luis from Madrid purchased Red Scarf" in feed_text(world))
        assert requests.post(url, data=raw, headers=headers).json()["status"] == "duplicate"
        assert requests.post(url, data=raw, headers={**headers, "X-WC-Webhook-Signature": "bm9wZQ==", "X-WC-Webhook-Delivery-ID": "d-x"}).status_code == 401

        job = api(world, "POST", f"/sites/{world['site']['id']}/integrations/{integration['id']}/imports", json={"count": 10})
        assert job.status_code == 202, job.text
        location = job.headers["Location"]
        done = wait_for(lambda: (lambda j: j if j["status"] != "running" else None)(api(world, "GET", location).json()), 15)
        assert done and done["status"] == "completed", done
        assert done["imported"] == 2
        assert wait_for(lambda: "Ana from Madrid purchased Blue Mug" in feed_text(world))
    finally:
        woo.close()


def test_generic_webhook_mapping_standard_signatures_and_rejections(world):
    bad = create_integration(world, {"type": "webhook", "name": "Forms", "config": {
        "mapping": {"firstName": "/person/name", "city": "/nowhere/city"},
        "samplePayload": {"person": {"name": "Ann"}, "where": {"city": "Oslo"}}}}, status=422)
    fields = [e["field"] for e in bad["errors"]]
    assert "config.mapping.city" in fields

    integration = create_integration(world, {"type": "webhook", "name": "Forms", "config": {
        "mapping": {"firstName": "/person/name", "city": "/where/city", "productName": "/plan", "sourceEventId": "/id"},
        "activityType": "signup", "samplePayload": {"id": "e1", "person": {"name": "Ann"}, "where": {"city": "Oslo"}, "plan": "Pro plan"}}})
    secret = integration["webhookSecret"]
    assert secret.startswith("whsec_")
    fetched = api(world, "GET", f"/sites/{world['site']['id']}/integrations/{integration['id']}").json()
    assert "webhookSecret" not in fetched and secret not in json.dumps(fetched)

    signer = Webhook(secret)
    def send(payload, msg_id=None, when=None):
        msg_id = msg_id or "msg_" + uuid.uuid4().hex
        when = when or time.time()
        body = json.dumps(payload)
        from datetime import datetime, timezone
        signature = signer.sign(msg_id, datetime.fromtimestamp(when, tz=timezone.utc), body)
        return requests.post(integration["webhookUrl"], data=body, headers={
            "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(int(when)), "webhook-signature": signature})

    assert send({"id": "e2", "person": {"name": "Olga"}, "where": {"city": "Oslo"}, "plan": "Pro plan"}).status_code == 200
    assert wait_for(lambda: "Olga from Oslo signed up Pro plan" in feed_text(world)), feed_text(world)
    stale = send({"id": "e3", "person": {"name": "Old"}}, when=time.time() - 600)
    assert stale.status_code == 401
    assert "300" in stale.json()["detail"]
    misfit = send({"something": "else"})
    assert misfit.status_code == 200  # accepted for processing, then recorded as rejected with the reason
    rejected = wait_for(lambda: [d for d in deliveries(world, integration) if d["status"] == "rejected" and d["reason"] and "none of the mapped" in d["reason"]], 5)
    assert rejected, deliveries(world, integration)


def test_shopify_oauth_install_and_graphql_import_within_the_throttle(world):
    fake = world["fake"]
    secret = "shopify-webhook-secret"
    integration = create_integration(world, {"type": "shopify", "name": "Acme", "config": {"shopDomain": SHOP, "webhookSecret": secret}})
    # An order that also comes by webhook before the import.
    shopify_post(integration["webhookUrl"], shopify_order(1001), secret, str(uuid.uuid4()))
    not_connected = api(world, "POST", f"/sites/{world['site']['id']}/integrations/{integration['id']}/imports", json={"count": 7})
    assert not_connected.status_code == 409

    def signed(params):
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        return {**params, "hmac": hmac.new(API_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()}

    install = requests.get(world["server"].url("/integrations/shopify/install"),
                           params=signed({"shop": SHOP, "timestamp": str(int(time.time()))}), allow_redirects=False)
    assert install.status_code == 302, install.text
    authorize = urllib.parse.urlparse(install.headers["Location"])
    query = dict(urllib.parse.parse_qsl(authorize.query))
    assert authorize.path == "/admin/oauth/authorize" and query["client_id"] == API_KEY and query["state"]
    assert query["redirect_uri"].endswith("/integrations/shopify/callback")

    forged = requests.get(world["server"].url("/integrations/shopify/callback"),
                          params={"code": "good-code", "shop": SHOP, "state": query["state"], "timestamp": "1", "hmac": "00" * 32})
    assert forged.status_code == 401
    callback_params = signed({"code": "good-code", "shop": SHOP, "state": query["state"], "timestamp": str(int(time.time()))})
    connected = requests.get(world["server"].url("/integrations/shopify/callback"), params=callback_params)
    assert connected.status_code == 200, connected.text
    assert connected.json()["status"] == "connected"
    reused = requests.get(world["server"].url("/integrations/shopify/callback"), params=callback_params)
    assert reused.status_code == 401
    details = api(world, "GET", f"/sites/{world['site']['id']}/integrations/{integration['id']}").json()
    assert details["credentials"]["accessToken"].startswith("…") and fake.token not in json.dumps(details)

    job = api(world, "POST", f"/sites/{world['site']['id']}/integrations/{integration['id']}/imports", json={"count": 7})
    assert job.status_code == 202
    done = wait_for(lambda: (lambda j: j if j["status"] != "running" else None)(api(world, "GET", job.headers["Location"]).json()), 30, 0.25)
    assert done and done["status"] == "completed", done
    assert done["imported"] == 6 and done["skipped"] == 1
    assert fake.throttled == 0, f"Herald exceeded the cost budget {fake.throttled} times"
    assert fake.queries >= 4
    assert wait_for(lambda: "Imported5 from Denver purchased Green Cap" in feed_text(world)), feed_text(world)[:1500]


def test_outbound_webhooks_retry_then_succeed_with_valid_signatures(world):
    receiver = Receiver(script=[500, 503])
    try:
        created = api(world, "POST", f"/sites/{world['site']['id']}/webhooks", json={"url": receiver.base + "/herald", "eventTypes": ["activity.captured"]})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        assert "secret" not in api(world, "GET", f"/sites/{world['site']['id']}/webhooks/{endpoint['id']}").json()

        r = requests.post(world["server"].url(f"/sites/{world['site']['id']}/activities"),
                          json={"type": "purchase", "firstName": "Wendy", "lastName": "Secret", "email": "w@example.com", "productName": "Kite"},
                          headers={"Authorization": f"Bearer {world['site']['secretKey']}"})
        assert r.status_code == 202
        assert wait_for(lambda: len(receiver.requests) >= 3, 20), receiver.requests
        time.sleep(0.5)
        assert len(receiver.requests) == 3
        ids = {req["headers"]["webhook-id"] for req in receiver.requests}
        assert len(ids) == 1  # the same message, retried
        for req in receiver.requests:
            payload = Webhook(secret).verify(req["body"], {k: req["headers"][k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")})
            assert payload["type"] == "activity.captured"
            assert payload["data"]["firstName"] == "Wendy"
            assert "Secret" not in req["body"].decode() and "w@example.com" not in req["body"].decode()

        messages = wait_for(lambda: (lambda m: m if m and m[0]["status"] == "delivered" else None)(
            api(world, "GET", f"/sites/{world['site']['id']}/webhooks/{endpoint['id']}/deliveries").json()["items"]), 5)
        assert messages, "no delivered message"
        attempts = messages[0]["attemptLog"]
        assert [a.get("statusCode") for a in attempts] == [500, 503, 200]
    finally:
        receiver.close()


def test_retry_after_410_and_disabling(world):
    slow = Receiver(script=[503], headers={"Retry-After": "2"})
    gone = Receiver(script=[410])
    failing = Receiver(script=[500] * 50)
    try:
        ids = {}
        for name, receiver in (("slow", slow), ("gone", gone), ("failing", failing)):
            ids[name] = api(world, "POST", f"/sites/{world['site']['id']}/webhooks",
                            json={"url": receiver.base, "eventTypes": ["activity.captured"]}).json()["id"]
        for i in range(2):
            requests.post(world["server"].url(f"/sites/{world['site']['id']}/activities"), json={"type": "signup", "firstName": f"R{i}"},
                          headers={"Authorization": f"Bearer {world['site']['secretKey']}"})
        def retried():
            first = slow.requests[0]["headers"]["webhook-id"] if slow.requests else None
            same = [r for r in slow.requests if r["headers"]["webhook-id"] == first]
            return same if len(same) >= 2 else None
        same = wait_for(retried, 15)
        assert same, slow.requests
        assert same[1]["at"] - same[0]["at"] >= 1.8  # honoured Retry-After: 2 over a 1 s schedule

        endpoint = lambda name: api(world, "GET", f"/sites/{world['site']['id']}/webhooks/{ids[name]}").json()
        assert wait_for(lambda: endpoint("gone")["status"] == "disabled", 10)
        assert "410" in endpoint("gone")["disabledReason"]
        assert len(gone.requests) == 1

        # Two messages exhausted their retries in a row: the endpoint is disabled (HERALD_WEBHOOK_DISABLE_AFTER=2).
        assert wait_for(lambda: endpoint("failing")["status"] == "disabled", 30), endpoint("failing")
        messages = api(world, "GET", f"/sites/{world['site']['id']}/webhooks/{ids['failing']}/deliveries").json()["items"]
        assert all(m["status"] == "dead" for m in messages) and all(m["attempts"] == 4 for m in messages)
        # A dead message can be re-sent by hand once the endpoint is enabled again.
        failing.script = []
        assert api(world, "PUT", f"/sites/{world['site']['id']}/webhooks/{ids['failing']}", json={"status": "enabled"}).status_code == 200
        resend = api(world, "POST", f"/sites/{world['site']['id']}/webhooks/{ids['failing']}/deliveries/{messages[0]['id']}/resend")
        assert resend.status_code == 202
        assert wait_for(lambda: any(m["status"] == "delivered" for m in api(
            world, "GET", f"/sites/{world['site']['id']}/webhooks/{ids['failing']}/deliveries").json()["items"]), 10)
    finally:
        for receiver in (slow, gone, failing):
            receiver.close()


def test_secret_rotation_signs_with_both_secrets(world):
    receiver = Receiver()
    try:
        endpoint = api(world, "POST", f"/sites/{world['site']['id']}/webhooks", json={"url": receiver.base, "eventTypes": ["activity.captured"]}).json()
        rotated = api(world, "POST", f"/sites/{world['site']['id']}/webhooks/{endpoint['id']}/rotate-secret").json()
        assert rotated["secret"] != endpoint["secret"] and rotated["previousSecretExpiresAt"]
        requests.post(world["server"].url(f"/sites/{world['site']['id']}/activities"), json={"type": "signup"},
                      headers={"Authorization": f"Bearer {world['site']['secretKey']}"})
        assert wait_for(lambda: receiver.requests, 10)
        req = receiver.requests[0]
        headers = {k: req["headers"][k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(endpoint["secret"]).verify(req["body"], headers)
        Webhook(rotated["secret"]).verify(req["body"], headers)
    finally:
        receiver.close()


def test_zapier_rest_hooks_and_action(world):
    receiver = Receiver()
    sk = {"Authorization": f"Bearer {world['site']['secretKey']}"}
    base = world["server"].url
    try:
        assert requests.get(base("/zapier/me"), headers=sk).json()["siteId"] == world["site"]["id"]
        assert requests.get(base("/zapier/me"), headers=world["auth"]).status_code == 401
        samples = requests.get(base("/zapier/samples/activity.captured"), headers=sk).json()
        assert isinstance(samples, list) and samples[0]["data"]["firstName"]
        hook = requests.post(base("/zapier/hooks"), json={"hookUrl": receiver.base + "/zap", "event": "activity.captured"}, headers=sk)
        assert hook.status_code == 201, hook.text
        action = requests.post(base("/zapier/actions/activities"), json={"type": "signup", "firstName": "Zed", "city": "Lyon"}, headers=sk)
        assert action.status_code == 202
        assert action.json()["provenance"]["source"] == "zapier"
        assert wait_for(lambda: receiver.requests, 10)
        assert json.loads(receiver.requests[0]["body"])["data"]["firstName"] == "Zed"
        assert wait_for(lambda: "Zed from Lyon signed up" in feed_text(world))
        assert requests.delete(base(f"/zapier/hooks/{hook.json()['id']}"), headers=sk).status_code == 204
    finally:
        receiver.close()


def test_outbound_urls_inside_the_network_are_refused():
    server = Herald(env={"HERALD_BCRYPT_COST": "10"}).start()  # no HERALD_OUTBOUND_ALLOW_CIDRS
    hosts_line = "10.20.30.40 herald-ssrf-private.test\n"
    patched = os.access("/etc/hosts", os.W_OK)
    if patched:
        with open("/etc/hosts", "a") as f:
            f.write(hosts_line)
    try:
        owner = server.signup()
        auth = server.auth(owner["token"])
        org = requests.post(server.url("/organizations"), json={"name": "X"}, headers=auth).json()
        site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "S", "domain": "s.example.com"}, headers=auth).json()
        urls = ["http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://localhost:8080/x", "http://[::1]/x",
                "http://10.0.0.5/x", "http://167772161/x", "http://0x7f000001/x", "http://192.168.1.1/x"]
        if patched:
            urls.append("http://herald-ssrf-private.test/x")
        for url in urls:
            r = requests.post(server.url(f"/sites/{site['id']}/webhooks"), json={"url": url, "eventTypes": ["activity.captured"]}, headers=auth)
            assert r.status_code == 422, f"{url}: {r.status_code} {r.text}"
            assert r.json()["errors"][0]["field"] == "url"
        ftp = requests.post(server.url(f"/sites/{site['id']}/webhooks"), json={"url": "ftp://example.com/x", "eventTypes": ["activity.captured"]}, headers=auth)
        assert ftp.status_code == 422
    finally:
        if patched:
            with open("/etc/hosts") as f:
                content = f.read()
            with open("/etc/hosts", "w") as f:
                f.write(content.replace(hosts_line, ""))
        server.stop()
