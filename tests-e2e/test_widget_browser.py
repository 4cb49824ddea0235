"""The widget in a real browser: headless Chromium driven by Selenium, on a page of another origin."""
import http.server
import json
import os
import socketserver
import subprocess
import threading
import time

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import ROOT, Herald, free_port, wait_for

VECTORS = os.path.join(ROOT, "Sources", "NotificationsService", "Resources", "targeting-vectors.json")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<style>
  /* A page whose own CSS is hostile to widgets. */
  * { font-size: 40px !important; color: red !important; box-sizing: content-box !important; }
  div, p, button, img { display: none; margin: 50px !important; }
  body { margin: 0; }
  #content { display: block; height: 2000px; }
</style>
{extra}
</head><body><div id="content">Products</div>
<script async src="{herald}/widget.js" data-site="{pk}"></script>
</body></html>"""


class PageServer:
    """Serves the test page from a different origin than Herald's."""

    def __init__(self, html):
        self.html = html.encode()
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page.html)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        # "localhost" is another origin than Herald's "127.0.0.1".
        self.url = f"http://localhost:{self.port}/products/blue-hoodie"

    def close(self):
        self.server.shutdown()


def make_driver():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    binary = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)
    if binary:
        options.binary_location = binary
    service = Service("/usr/bin/chromedriver") if os.path.exists("/usr/bin/chromedriver") else Service()
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def browser():
    driver = make_driver()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def world():
    """A Herald server with an owner, a site and a published recent-activity notification with short timings."""
    server = Herald(env={"HERALD_BCRYPT_COST": "10"}).start()
    owner = server.signup()
    auth = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Browser"}, headers=auth).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "Shop", "domain": "localhost"}, headers=auth).json()
    deadline = time.time() + 10
    while requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code != 200 and time.time() < deadline:
        time.sleep(0.1)
    notification = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=auth, json={
        "name": "Recent purchases", "type": "recent_activity",
        "settings": {"firstDelaySeconds": 0, "displaySeconds": 4, "gapSeconds": 0, "maxPerPage": 50, "maxPerSession": 200},
    }).json()
    assert requests.post(server.url(f"/sites/{site['id']}/notifications/{notification['id']}/publish"), headers=auth).status_code == 200
    world = {"server": server, "auth": auth, "site": site, "notification": notification}
    yield world
    server.stop()


def activity(world, **fields):
    body = {"type": "purchase", **fields}
    r = requests.post(world["server"].url(f"/sites/{world['site']['id']}/activities"), json=body,
                      headers={"Authorization": f"Bearer {world['site']['secretKey']}"})
    assert r.status_code == 202, r.text
    return r.json()


def popups(driver):
    return driver.execute_script("""
        const host = document.querySelector('herald-notifications');
        if (!host || !host.shadowRoot) return [];
        return Array.from(host.shadowRoot.querySelectorAll('[role=status]')).map(e => ({
            text: e.innerText, live: e.getAttribute('aria-live'), id: e.getAttribute('data-notification-id'),
            height: e.getBoundingClientRect().height, fontSize: getComputedStyle(e.querySelector('.m')).fontSize,
            images: e.querySelectorAll('img').length }));
    """)



def open_page(driver, world, extra=""):
    page = PageServer(PAGE.replace("{herald}", world["server"].base).replace("{pk}", world["site"]["publicKey"]).replace("{extra}", extra))
    driver.get(page.url)
    return page


def state(driver):
    return driver.execute_script("const h = document.querySelector('herald-notifications'); return h && h.getAttribute('data-state');")


def test_live_activity_appears_within_two_seconds_and_is_counted(browser, world):
    page = open_page(browser, world)
    try:
        assert wait_for(lambda: state(browser) == "live", 10), f"state: {state(browser)}"
        before = browser.execute_script("return document.getElementById('content').getBoundingClientRect().top")
        browser.execute_script("""
            window.__shift = 0;
            new PerformanceObserver(list => { for (const e of list.getEntries()) window.__shift += e.value; })
              .observe({type: 'layout-shift', buffered: true});""")
        started = time.time()
        activity(world, firstName="Sarah", city="Austin", productName="Blue Hoodie")
        shown = wait_for(lambda: [p for p in popups(browser) if "Sarah" in p["text"]], 2.0, 0.05)
        elapsed = time.time() - started
        assert shown, f"no popup after {elapsed:.2f}s: {popups(browser)}"
        assert elapsed < 2.0
        popup = shown[0]
        assert "Sarah from Austin purchased Blue Hoodie" in popup["text"]
        assert popup["live"] == "polite"
        assert popup["id"] == world["notification"]["id"]
        # The page's hostile CSS does not reach into the widget, and the page does not move.
        assert popup["height"] > 20
        assert popup["fontSize"] == "14px"
        assert browser.execute_script("return document.getElementById('content').getBoundingClientRect().top") == before
        assert browser.execute_script("return window.__shift") == 0

        # The impression beacon reaches the analytics.
        site = world["site"]["id"]

        def counted():
            summary = requests.get(world["server"].url(f"/sites/{site}/analytics"), headers=world["auth"]).json()
            return summary["totals"]["impressions"] >= 1 and summary
        summary = wait_for(counted, 10, 0.25)
        assert summary, "the impression was not counted"
        assert summary["notifications"][0]["notificationId"] == world["notification"]["id"]
    finally:
        page.close()


def test_markup_in_activity_data_is_shown_as_text(browser, world):
    page = open_page(browser, world)
    try:
        assert wait_for(lambda: state(browser) == "live", 10)
        payload = '<img src=x onerror="window.__pwned=1;alert(1)">'
        activity(world, firstName=payload, productName="<script>window.__pwned=2</script>")
        # Popups already in the feed come first, one at a time; the new one follows within a display period.
        shown = wait_for(lambda: [p for p in popups(browser) if "<script>" in p["text"]], 10)
        assert shown, popups(browser)
        assert shown[0]["text"].startswith("<img")  # the first name is reduced to its first word, shown literally
        assert shown[0]["images"] == 0
        assert browser.execute_script("return window.__pwned === undefined")
        assert browser.execute_script(
            "return document.querySelector('herald-notifications').shadowRoot.querySelectorAll('script,img').length") == 0
    finally:
        page.close()


def test_keyboard_dismiss_and_consent_stop(browser, world):
    page = open_page(browser, world)
    try:
        assert wait_for(lambda: state(browser) == "live", 10)
        activity(world, firstName="Keyla", productName="Scarf")
        assert wait_for(lambda: [p for p in popups(browser) if "Keyla" in p["text"]], 10)
        browser.execute_script("document.querySelector('herald-notifications').shadowRoot.querySelector('button').focus()")
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)
        assert wait_for(lambda: not [p for p in popups(browser) if "Keyla" in p["text"]], 2, 0.05), "Escape did not dismiss the popup"

        browser.execute_script("window.Herald.stop()")
        assert state(browser) == "stopped"
        activity(world, firstName="Stopped", productName="Hat")
        time.sleep(2.0)
        assert not [p for p in popups(browser) if "Stopped" in p["text"]]
        browser.execute_script("window.Herald.resume()")
        assert wait_for(lambda: state(browser) == "live", 10)
    finally:
        page.close()


def test_paused_notification_stops_appearing(browser, world):
    site, nid = world["site"]["id"], world["notification"]["id"]
    server = world["server"]
    page = open_page(browser, world)
    try:
        assert wait_for(lambda: state(browser) == "live", 10)
        assert requests.post(server.url(f"/sites/{site}/notifications/{nid}/pause"), headers=world["auth"]).status_code == 200
        time.sleep(1.0)  # the open page is told to refetch its feed
        activity(world, firstName="Paused", productName="Gloves")
        time.sleep(2.5)
        assert not [p for p in popups(browser) if "Paused" in p["text"]]
        # A new page view does not show the paused notification either.
        browser.get(page.url)
        time.sleep(2.5)
        assert not popups(browser)
    finally:
        requests.post(server.url(f"/sites/{site}/notifications/{nid}/publish"), headers=world["auth"])
        page.close()


def test_polling_fallback_without_server_sent_events(browser, world):
    page = open_page(browser, world, extra="<script>delete window.EventSource; window.EventSource = undefined;</script>")
    try:
        assert wait_for(lambda: state(browser) == "polling", 10), state(browser)
        activity(world, firstName="Polly", productName="Socks")
        assert wait_for(lambda: [p for p in popups(browser) if "Polly" in p["text"]], 45), "polling did not pick up the activity"
    finally:
        page.close()


def test_widget_rules_pass_the_shared_vectors(browser, world):
    page = open_page(browser, world)
    try:
        assert wait_for(lambda: browser.execute_script("return !!(window.Herald && window.Herald._evaluate)"), 10)
        with open(VECTORS) as f:
            vectors = json.load(f)
        failures = browser.execute_script("""
            const v = arguments[0], failed = [];
            for (const c of v.evaluate) {
                if (window.Herald._evaluate(c.rules, c.context) !== c.expected) failed.push(c.name);
            }
            for (const c of v.variants) {
                if (window.Herald._pick(c.variants, c.notificationId, c.visitorId) !== c.expected) failed.push('variant ' + c.visitorId);
            }
            return failed;""", vectors)
        assert failures == []
    finally:
        page.close()


def test_widget_is_within_its_size_budget():
    result = subprocess.run(["python3", os.path.join(ROOT, "scripts", "build-widget.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_site_over_its_quota_shows_nothing_and_the_page_is_unharmed(browser, tmp_path):
    """At the hard limit of the impressions quota the feed says `paused` and the widget shows nothing, without an error
    on the visitor's page."""
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({"currency": "usd", "trialPlan": "tiny", "trialDays": 14, "fallbackPlan": "tiny", "plans": [
        {"id": "tiny", "name": "Tiny", "monthlyPrice": 0, "yearlyPrice": 0,
         "quotas": {"impressionsPerMonth": 5, "activeCampaigns": 2, "sites": 1, "storageBytes": None}}]}))
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_BILLING_PLANS_FILE": str(plans)}).start()
    try:
        owner = server.signup()
        auth = server.auth(owner["token"])
        org = requests.post(server.url("/organizations"), json={"name": "Quota"}, headers=auth).json()
        site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "Shop", "domain": "localhost"}, headers=auth).json()
        assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200, 10)
        n = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=auth, json={
            "name": "Recent purchases", "type": "recent_activity", "settings": {"firstDelaySeconds": 0, "displaySeconds": 4, "gapSeconds": 0}}).json()
        assert requests.post(server.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=auth).status_code == 200
        r = requests.post(server.url(f"/sites/{site['id']}/activities"), json={"type": "purchase", "firstName": "Quinn", "productName": "Mug"},
                          headers={"Authorization": f"Bearer {site['secretKey']}"})
        assert r.status_code == 202, r.text
        world = {"server": server, "site": site}
        script = "<script>window.__errors = []; addEventListener('error', e => __errors.push(String(e.message))); " \
                 "addEventListener('unhandledrejection', e => __errors.push(String(e.reason)));</script>"

        # Under the quota the popup shows.
        page = open_page(browser, world, extra=script)
        try:
            assert wait_for(lambda: any("Quinn" in p["text"] for p in popups(browser)), 10)
        finally:
            page.close()

        # 7 of 5 impressions: past the hard limit (120 %), delivery pauses for the organization.
        beacons = {"visitorId": "quota-visitor-01", "events": [{"type": "impression", "notificationId": n["id"], "path": "/"}] * 6}
        assert requests.post(server.url(f"/widget/v1/{site['publicKey']}/beacons"), json=beacons).status_code == 202
        assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).json().get("paused") == "quota", 15)

        page = open_page(browser, world, extra=script)
        try:
            time.sleep(3)
            assert not popups(browser)
            assert browser.execute_script("return window.__errors") == []
            assert browser.execute_script("return document.getElementById('content').textContent") == "Products"
        finally:
            page.close()
    finally:
        server.stop()
