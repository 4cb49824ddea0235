"""Billing kept in step with Stripe: localstripe (PyPI) plays Stripe's REST API and sends its webhooks; the tests
also sign webhook payloads themselves (forged, stale, duplicate and out-of-order ones)."""
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests

from conftest import Herald, free_port, wait_for

WEBHOOK_SECRET = "whsec_e2e_billing_secret"
STRIPE_KEY = "sk_test_herald_e2e"


@pytest.fixture(scope="module")
def localstripe():
    exe = shutil.which("localstripe") or os.path.join(os.path.dirname(sys.executable), "localstripe")
    if not os.path.exists(exe):
        if os.environ.get("HERALD_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail("localstripe is required (pip install localstripe)")
        pytest.skip("localstripe is not installed")
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="localstripe-", suffix=".log", delete=False)
    proc = subprocess.Popen([exe, "--port", str(port), "--from-scratch"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {STRIPE_KEY}"}

    def ready():
        try:
            return requests.get(base + "/v1/plans", headers=headers, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    assert wait_for(ready, timeout=30), "localstripe did not start"
    yield {"base": base, "headers": headers}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def billing(localstripe, store):
    server = Herald(database_url=store, env={
        "HERALD_BCRYPT_COST": "10", "HERALD_STRIPE_SECRET_KEY": STRIPE_KEY, "HERALD_STRIPE_API_URL": localstripe["base"],
        "HERALD_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }).start()
    # localstripe signs its webhooks like Stripe: t=…,v1=hex(HMAC-SHA256(secret, "t.body")).
    r = requests.post(localstripe["base"] + f"/_config/webhooks/herald-{server.port}",
                      data={"url": server.url("/billing/stripe/webhook"), "secret": WEBHOOK_SECRET})
    assert r.status_code == 200, r.text
    yield {"server": server, "stripe": localstripe}
    server.stop()


def new_site(server):
    owner = server.signup()
    auth = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Billing Co"}, headers=auth).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "Shop", "domain": "shop.example.com"},
                         headers=auth).json()
    assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200)
    return auth, org, site


def stripe_get(stripe, path):
    r = requests.get(stripe["base"] + path, headers=stripe["headers"])
    assert r.status_code == 200, r.text
    return r.json()


def signed_post(server, event, secret=WEBHOOK_SECRET, timestamp=None):
    body = json.dumps(event).encode()
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return requests.post(server.url("/billing/stripe/webhook"), data=body,
                         headers={"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"})


def event(kind, obj, created=None):
    return {"id": "evt_" + uuid.uuid4().hex[:24], "object": "event", "type": kind, "created": created or int(time.time()),
            "data": {"object": obj}}


def subscription(server, auth, site):
    r = requests.get(server.url(f"/sites/{site['id']}/subscription"), headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_subscriptions_upgrades_and_invoices_are_kept_in_step_with_stripe(billing):
    server, stripe = billing["server"], billing["stripe"]
    auth, org, site = new_site(server)
    assert subscription(server, auth, site)["billing"] == "stripe"

    # Without a payment method Stripe cannot charge: a clear 402, and nothing changes here.
    r = requests.post(server.url(f"/sites/{site['id']}/subscription"), json={"plan": "starter"}, headers=auth)
    assert r.status_code == 402, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert subscription(server, auth, site)["status"] == "trialing"

    r = requests.post(server.url(f"/sites/{site['id']}/subscription"),
                      json={"plan": "starter", "paymentMethod": "pm_card_visa", "billingEmail": "billing@example.com"}, headers=auth)
    assert r.status_code == 200, r.text
    sub = r.json()["subscription"]
    assert sub["status"] == "active" and sub["plan"]["id"] == "starter"
    assert sub["stripeCustomerId"].startswith("cus_") and sub["stripeSubscriptionId"].startswith("sub_")
    remote = stripe_get(stripe, f"/v1/subscriptions/{sub['stripeSubscriptionId']}")
    assert remote["status"] == "active"
    assert remote["items"]["data"][0]["plan"]["id"] == "herald_starter_month"
    assert remote["items"]["data"][0]["plan"]["amount"] == 1900
    customer = stripe_get(stripe, f"/v1/customers/{sub['stripeCustomerId']}")
    assert customer["metadata"]["herald_organization_id"] == org["id"]
    assert customer["email"] == "billing@example.com"

    # An upgrade moves the Stripe subscription to the new plan at once.
    r = requests.post(server.url(f"/sites/{site['id']}/subscription"), json={"plan": "growth"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["effective"] == "now" and r.json()["prorationAmount"] > 0
    remote = stripe_get(stripe, f"/v1/subscriptions/{sub['stripeSubscriptionId']}")
    assert remote["items"]["data"][0]["plan"]["id"] == "herald_growth_month"
    assert subscription(server, auth, site)["plan"]["id"] == "growth"

    # Invoices come from Stripe: the first one was paid when the subscription started.
    r = requests.get(server.url(f"/sites/{site['id']}/invoices"), headers=auth)
    assert r.status_code == 200, r.text
    invoices = r.json()["items"]
    assert any(i["status"] == "paid" and i["amountPaid"] == 1900 and i["currency"] == "usd" for i in invoices), invoices

    # localstripe's own webhooks (customer.subscription.created, invoice.payment_succeeded) arrive signed and are
    # applied without changing what is right.
    time.sleep(2.5)
    now = subscription(server, auth, site)
    assert now["status"] == "active" and now["plan"]["id"] == "growth", now

    # A viewer of another organization sees nothing.
    other = server.signup()
    r = requests.get(server.url(f"/sites/{site['id']}/invoices"), headers=server.auth(other["token"]))
    assert r.status_code == 404


def test_stripe_webhooks_are_verified_deduplicated_and_safe_out_of_order(billing):
    server, stripe = billing["server"], billing["stripe"]
    auth, org, site = new_site(server)
    r = requests.post(server.url(f"/sites/{site['id']}/subscription"), json={"plan": "starter", "paymentMethod": "pm_card_visa"},
                      headers=auth)
    assert r.status_code == 200, r.text
    sub = r.json()["subscription"]
    customer, sub_id = sub["stripeCustomerId"], sub["stripeSubscriptionId"]
    # Let localstripe's own webhooks for the new subscription land first (it sends them about a second later).
    time.sleep(2.5)
    invoice = {"id": "in_" + uuid.uuid4().hex[:20], "object": "invoice", "customer": customer, "subscription": sub_id,
               "status": "open", "amount_due": 1900, "amount_paid": 0, "currency": "usd", "created": int(time.time())}

    failed = event("invoice.payment_failed", invoice)
    # Forged (wrong secret), stale (outside 300 s), unsigned and malformed deliveries are refused with 400.
    assert signed_post(server, failed, secret="whsec_wrong").status_code == 400
    assert signed_post(server, failed, timestamp=int(time.time()) - 400).status_code == 400
    assert requests.post(server.url("/billing/stripe/webhook"), data=json.dumps(failed)).status_code == 400
    r = requests.post(server.url("/billing/stripe/webhook"), data=b"{}", headers={"Stripe-Signature": "t=1"})
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/problem+json")
    assert subscription(server, auth, site)["status"] == "active"

    # A failed payment: past due, with a grace period; delivery continues meanwhile.
    r = signed_post(server, failed)
    assert r.status_code == 200 and r.json() == {"received": True, "duplicate": False, "applied": True}, r.text
    now = subscription(server, auth, site)
    assert now["status"] == "past_due" and now["graceEndsAt"] and not now["delivery"]["paused"], now
    # The same event again is recognised and changes nothing.
    r = signed_post(server, failed)
    assert r.status_code == 200 and r.json()["duplicate"] is True

    # Paid: active again; a late copy of an older failure for the same (now paid) invoice does not undo it.
    paid_invoice = dict(invoice, status="paid", amount_paid=1900)
    assert signed_post(server, event("invoice.paid", paid_invoice)).status_code == 200
    assert subscription(server, auth, site)["status"] == "active"
    late = event("invoice.payment_failed", invoice, created=int(time.time()) - 60)
    assert signed_post(server, late).status_code == 200
    assert subscription(server, auth, site)["status"] == "active"
    r = requests.get(server.url(f"/sites/{site['id']}/invoices"), headers=auth)
    mine = [i for i in r.json()["items"] if i["id"] == invoice["id"]]
    assert mine and mine[0]["status"] == "paid", r.json()

    # Subscription snapshots: a newer one applies, an older one arriving after it is ignored.
    remote = stripe_get(stripe, f"/v1/subscriptions/{sub_id}")
    newer = dict(remote, status="past_due")
    assert signed_post(server, event("customer.subscription.updated", newer, created=int(time.time()) + 5)).status_code == 200
    assert subscription(server, auth, site)["status"] == "past_due"
    older = dict(remote, status="active")
    assert signed_post(server, event("customer.subscription.updated", older, created=int(time.time()) - 30)).status_code == 200
    assert subscription(server, auth, site)["status"] == "past_due"

    # Deleted in Stripe: the subscription ends and the organization falls back to the free plan.
    deleted = dict(remote, status="canceled")
    assert signed_post(server, event("customer.subscription.deleted", deleted, created=int(time.time()) + 10)).status_code == 200
    now = subscription(server, auth, site)
    assert now["status"] == "canceled" and now["plan"]["id"] == "free", now

    # Another customer's events are acknowledged and ignored.
    stranger = dict(invoice, id="in_stranger", customer="cus_not_herald")
    r = signed_post(server, event("invoice.payment_failed", stranger))
    assert r.status_code == 200 and r.json()["applied"] is False
