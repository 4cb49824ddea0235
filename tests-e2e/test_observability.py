"""Prometheus metrics of the real binary (docs/OBSERVABILITY.md): `/metrics` behind HERALD_METRICS_TOKEN on the main
listener, or on a listener of its own with HERALD_METRICS_PORT, off otherwise; what a scrape holds after a feed fetch,
beacons and an outbound webhook; and scripts/check-observability.py run on that scrape, so the alert rules and
dashboards in deploy/ only use metrics a live Herald exposes."""
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest
import requests

from conftest import ROOT, Herald, free_port, wait_for
from fakes import Receiver

TOKEN = "metrics-" + uuid.uuid4().hex
FEED = "/widget/v1/{publicKey}/feed"
BEACONS = "/widget/v1/{publicKey}/beacons"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BASE_ENV = {"HERALD_BCRYPT_COST": "10"}

SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse(text):
    """[(name, {label: value}, value)] of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = {k: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)
                  for k, v in LABEL.findall(match.group(2) or "")}
        samples.append((match.group(1), labels, float(match.group(3).replace("Inf", "inf"))))
    return samples


def values(samples, name, **labels):
    """Values of the series of `name` whose labels include `labels`."""
    return [value for sample, have, value in samples if sample == name and all(have.get(k) == v for k, v in labels.items())]


def scrape(server, token=TOKEN):
    return requests.get(server.url("/metrics"), headers={"Authorization": f"Bearer {token}"}, timeout=10)


def traffic(server, receiver):
    """A site with a published notification; a feed fetch; a page's beacons and a crawler's; an activity that an
    outbound webhook delivers on its second attempt (the receiver answers 500 first)."""
    user = server.signup()
    auth = server.auth(user["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Metrics"}, headers=auth).json()["id"]
    site = requests.post(server.url(f"/organizations/{org}/sites"), json={"name": "Shop", "domain": "shop.example.com"},
                         headers=auth).json()
    notification = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=auth,
                                 json={"name": "Recent purchases", "type": "recent_activity"}).json()
    assert requests.post(server.url(f"/sites/{site['id']}/notifications/{notification['id']}/publish"),
                         headers=auth).status_code == 200
    feed = server.url(f"/widget/v1/{site['publicKey']}/feed")
    assert wait_for(lambda: requests.get(feed).status_code == 200, 15), "the site's feed never appeared"
    assert requests.get(feed).status_code == 200

    beacons = server.url(f"/widget/v1/{site['publicKey']}/beacons")
    page = {"visitorId": "metrics-visitor-0001", "events": [
        {"type": "pageview", "path": "/"},
        {"type": "impression", "notificationId": notification["id"], "path": "/"},
    ]}
    r = requests.post(beacons, json=page, headers={"User-Agent": BROWSER})
    assert r.status_code == 202, r.text
    crawler = {"visitorId": "metrics-crawler-01", "events": [{"type": "pageview", "path": "/"}]}
    r = requests.post(beacons, json=crawler, headers={"User-Agent": CRAWLER})
    assert r.status_code == 202, r.text

    created = requests.post(server.url(f"/sites/{site['id']}/webhooks"), headers=auth,
                            json={"url": receiver.base + "/herald", "eventTypes": ["activity.captured"]})
    assert created.status_code == 201, created.text
    r = requests.post(server.url(f"/sites/{site['id']}/activities"), json={"type": "purchase", "firstName": "Mia"},
                      headers={"Authorization": f"Bearer {site['secretKey']}"})
    assert r.status_code == 202, r.text
    assert wait_for(lambda: len(receiver.requests) >= 2, 30), receiver.requests
    return {"page_events": len(page["events"]), "crawler_events": len(crawler["events"])}


def content_type(response):
    """(media type, {parameter: value}) of a response's Content-Type."""
    parts = [p.strip() for p in response.headers.get("Content-Type", "").split(";")]
    params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    return parts[0].lower(), {k.strip().lower(): v.strip() for k, v in params.items()}


def check_observability(scrape_text, tmp_path):
    """Runs scripts/check-observability.py --metrics-file on a scrape; its output on failure."""
    path = tmp_path / "scrape.txt"
    path.write_text(scrape_text)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-observability.py"), "--metrics-file", str(path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    if result.returncode == 2 and not shutil.which("promtool"):
        if os.environ.get("HERALD_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail("promtool is required (Debian's prometheus package) but not installed")
        pytest.skip("promtool is not installed (Debian's prometheus package); scripts/test.sh installs it")
    return result


@pytest.fixture
def receiver():
    server = Receiver(script=[500])
    yield server
    server.close()


def test_metrics_behind_the_token(store, receiver, tmp_path):
    started = time.time()
    env = dict(BASE_ENV, HERALD_METRICS_TOKEN=TOKEN, HERALD_OUTBOUND_ALLOW_CIDRS="127.0.0.0/8",
               HERALD_WEBHOOK_RETRY_SCHEDULE="0,1,1,1")
    if store:
        env["HERALD_DATABASE_POOL_SIZE"] = "7"
    server = Herald(database_url=store, env=env).start()
    try:
        sent = traffic(server, receiver)

        # Without the token, or with another one: 401, a problem document, and no figures.
        for headers in ({}, {"Authorization": "Bearer " + "x" * 40}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
            r = requests.get(server.url("/metrics"), headers=headers)
            assert r.status_code == 401, (headers, r.status_code, r.text)
            assert content_type(r)[0] == "application/problem+json", r.headers
            assert r.json()["status"] == 401
            assert "herald_" not in r.text

        r = scrape(server)
        assert r.status_code == 200, r.text
        media, params = content_type(r)
        assert media == "text/plain" and params.get("version") == "0.0.4", r.headers["Content-Type"]

        # Counters move after the answers they count (beacons after their commit, webhooks after the attempt).
        def complete():
            samples = parse(scrape(server).text)
            ready = (values(samples, "herald_http_requests_total", route=FEED, status="200")
                     and sum(values(samples, "herald_beacon_events_total", outcome="accepted")) >= sent["page_events"]
                     and sum(values(samples, "herald_beacon_events_total", outcome="bot")) >= sent["crawler_events"]
                     and sum(values(samples, "herald_webhook_deliveries_total", outcome="delivered")) >= 1)
            return samples if ready else None

        samples = wait_for(complete, 20)
        last = scrape(server).text
        assert samples, "the scrape never showed the feed, the beacons and the delivered webhook:\n" + last

        feed = [(labels, value) for name, labels, value in samples
                if name == "herald_http_requests_total" and labels.get("route") == FEED and labels.get("status") == "200"]
        assert feed and all(l["service"] == "notifications" and l["method"] == "GET" for l, _ in feed), feed
        assert sum(v for _, v in feed) >= 2
        assert values(samples, "herald_http_requests_total", route=BEACONS, status="202", method="POST")
        assert values(samples, "herald_http_requests_total", route="/metrics", status="401", service="operational")
        # Routes are templates: no series carries a site's key.
        routes = {labels.get("route") for name, labels, _ in samples if name == "herald_http_requests_total"}
        assert not [r for r in routes if "pk_" in r], routes
        # The latency histogram of the feed has the bucket the latency SLO reads, spelled as the rules spell it.
        assert values(samples, "herald_http_request_duration_seconds_bucket", route=FEED, le="0.1")
        assert values(samples, "herald_http_request_duration_seconds_bucket", route=FEED, le="+Inf")
        assert values(samples, "herald_http_request_duration_seconds_count", route=FEED)[0] >= 2

        assert sum(values(samples, "herald_beacon_events_total", outcome="accepted")) == sent["page_events"]
        assert sum(values(samples, "herald_beacon_events_total", outcome="bot")) == sent["crawler_events"]
        # The receiver answered 500, then 200: one failed attempt and one delivered.
        assert sum(values(samples, "herald_webhook_deliveries_total", outcome="failed")) >= 1
        assert sum(values(samples, "herald_webhook_deliveries_total", outcome="delivered")) >= 1

        groups = {labels["group"] for name, labels, _ in samples if name == "herald_bus_lag_events"}
        assert {"notifications.activities", "analytics.beacons", "integrations.outbound"} <= groups, groups
        assert {labels["group"] for name, labels, _ in samples if name == "herald_bus_dead_letters"} == groups
        assert values(samples, "herald_db_pool_connections", state="capacity") == [7.0 if store else 1.0]
        in_use = values(samples, "herald_db_pool_connections", state="in_use")
        assert len(in_use) == 1 and 0 <= in_use[0] <= (7 if store else 1)
        build = [labels for name, labels, value in samples if name == "herald_build_info" and value == 1]
        assert len(build) == 1 and build[0].get("version"), build
        start = values(samples, "process_start_time_seconds")
        assert len(start) == 1 and started - 5 <= start[0] <= time.time(), (started, start)
        assert values(samples, "process_resident_memory_bytes")[0] > 1_000_000
        assert values(samples, "process_open_fds")[0] > 0
        assert values(samples, "process_cpu_seconds_total")[0] > 0

        # The rules and dashboards in deploy/ use only what this scrape has.
        result = check_observability(last, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.stop()


def test_metrics_on_a_port_of_their_own(tmp_path):
    port = free_port()
    server = Herald(env=dict(BASE_ENV, HERALD_METRICS_PORT=str(port))).start()
    try:
        metrics = f"http://127.0.0.1:{port}/metrics"
        r = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(requests.get(metrics, timeout=5)), 10)
        assert r, "the metrics listener never answered"
        media, params = content_type(r)
        assert media == "text/plain" and params.get("version") == "0.0.4", r.headers["Content-Type"]
        assert values(parse(r.text), "herald_build_info")
        # The API's listener serves no metrics, with or without a token; the metrics listener serves no API.
        assert requests.get(server.url("/metrics")).status_code == 404
        assert requests.get(server.url("/metrics"), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        assert requests.post(f"http://127.0.0.1:{port}/auth/signup",
                             json={"email": "x@example.com", "password": "a long passphrase", "name": "X"}).status_code == 404
        # Requests to the API show up in the metrics listener's scrape.
        assert requests.get(server.url("/healthz")).status_code == 200
        assert wait_for(lambda: values(parse(requests.get(metrics).text), "herald_http_requests_total", route="/healthz", status="200"), 5)
        result = check_observability(requests.get(metrics).text, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        server.stop()


def test_no_metrics_unless_configured():
    server = Herald(env=BASE_ENV).start()
    try:
        assert requests.get(server.url("/metrics")).status_code == 404
        assert requests.get(server.url("/metrics"), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    finally:
        server.stop()
