"""The widget's web push opt-in in headless Chromium: a shop page on its own origin (http://127.0.0.1, a secure
context) with the snippet and a one-line service worker importing Herald's. Nothing is asked or subscribed on page
load, even with notifications already allowed; a click on the prompt subscribes, Herald stores the subscription and
pushes the next activity to it, and Herald's worker shows the push as a notification.

Chromium's own PushManager.subscribe registers with Google's push service (GCM/FCM) over the network, which the test
machine cannot reach: offline its promise never settles (tried for 60 s with the worker active). So the page's
PushManager.subscribe/getSubscription are replaced before the page loads (CDP Page.addScriptToEvaluateOnNewDocument)
by a stand-in returning a subscription with a real P-256 key and auth secret whose endpoint is a push service this
test runs; everything up to and after that call (permission, service worker registration, Herald's API, the
encrypted push, the worker's notification) is the real thing."""
import base64
import http.server
import json
import socketserver
import threading
import time
import uuid

import pytest
import requests

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from conftest import Herald, free_port, wait_for
from test_push_channel import Browser, PushService, vapid_key
from test_widget_browser import make_driver


class ShopServer:
    """The site: its page with the snippet, and its service worker importing Herald's."""

    def __init__(self, herald, pk, worker_path="/herald-sw.js", extra=""):
        self.herald, self.pk, self.worker_path = herald, pk, worker_path
        shop = self
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Kite Shop</title>
<style>* {{ font-size: 40px !important; color: red !important; }} div, p, button {{ display: none; }}</style></head>
<body><a href="#" id="before">A link on the page</a>
<script async src="{herald}/widget.js" data-site="{pk}" data-push-worker="{worker_path}" {extra}></script>
</body></html>""".encode()
        # Herald's worker, plus a listener that keeps each push it received (the test tells "the push never arrived"
        # from "it arrived and showed nothing").
        worker = (f'importScripts("{herald}/widget/v1/push-worker.js");\n'
                  'self.addEventListener("push", e => e.waitUntil(caches.open("test-pushes").then(c =>'
                  ' c.put("/push/" + Date.now() + Math.random(), new Response(e.data ? e.data.text() : "")))));\n').encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == shop.worker_path:
                    body, kind = worker, "application/javascript"
                elif self.path.startswith("/shop"):
                    body, kind = page, "text/html; charset=utf-8"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = self.origin + "/shop"

    def close(self):
        self.server.shutdown()


# Counts the page's permission requests and subscriptions, and stands in for Chromium's PushManager (which needs
# Google's push service) with a subscription whose keys the test holds.
STUB = """
(() => {
  const calls = window.__push = { permission: 0, subscribe: 0, options: null };
  const request = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = function () { calls.permission++; return request(); };
  const fake = %s;
  const subscription = { endpoint: fake.endpoint, expirationTime: null, toJSON: () => fake, unsubscribe: () => Promise.resolve(true) };
  PushManager.prototype.subscribe = function (options) {
    calls.subscribe++;
    const key = new Uint8Array(options.applicationServerKey);
    calls.options = { userVisibleOnly: options.userVisibleOnly, key: btoa(String.fromCharCode.apply(null, key)) };
    localStorage.setItem('test-subscribed', '1');
    return Promise.resolve(subscription);
  };
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(localStorage.getItem('test-subscribed') ? subscription : null);
  };
})();
"""


def b64(data):
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def setup():
    push = PushService()
    private, public = vapid_key()
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_VAPID_PRIVATE_KEY": private, "HERALD_VAPID_SUBJECT": "mailto:ops@herald.test",
                         "HERALD_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8"}).start()
    owner = server.signup()
    h = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Kites"}, headers=h).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "Kite Shop", "domain": "127.0.0.1"},
                         headers=h).json()
    assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200)
    n = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=h, json={
        "name": "Recent purchases", "type": "recent_activity", "settings": {"firstDelaySeconds": 600}}).json()
    assert requests.post(server.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=h).status_code == 200
    yield {"server": server, "h": h, "site": site, "n": n, "push": push, "public": public}
    server.stop()
    push.stop()


def open_shop(setup, browser_endpoint, extra=""):
    shop = ShopServer(setup["server"].base, setup["site"]["publicKey"], extra=extra)
    driver = make_driver()
    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": shop.origin, "permissions": ["notifications"]})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": STUB % json.dumps(browser_endpoint.subscription())})
    driver.get(shop.url)
    return shop, driver


def prompt(driver):
    return driver.execute_script("""
        const host = document.querySelector('herald-push');
        if (!host || !host.shadowRoot) return null;
        const region = host.shadowRoot.querySelector('[role=region]');
        return { label: region.getAttribute('aria-label'), text: region.querySelector('p').textContent,
                 live: region.querySelector('p').getAttribute('aria-live'),
                 buttons: Array.from(region.querySelectorAll('button')).map(b => ({ text: b.textContent, type: b.type })),
                 rect: region.getBoundingClientRect().toJSON(), fontSize: getComputedStyle(region).fontSize };""")


def shadow_button(driver, label):
    return driver.execute_script("""
        const host = document.querySelector('herald-push');
        return Array.from(host.shadowRoot.querySelectorAll('button')).find(b => b.textContent === arguments[0]);""", label)


def counts(setup):
    return requests.get(setup["server"].url(f"/sites/{setup['site']['id']}/push/subscriptions"), headers=setup["h"]).json()


def enable_push(setup, enabled=True):
    r = requests.put(setup["server"].url(f"/sites/{setup['site']['id']}/notifications/{setup['n']['id']}/push"), headers=setup["h"],
                     json={"enabled": enabled, "title": "{{siteName}}"})
    assert r.status_code == 200, r.text


def test_nothing_is_loaded_while_push_is_off(setup):
    enable_push(setup, False)
    shop, driver = open_shop(setup, Browser("http://127.0.0.1:9/push/unused"))
    try:
        assert wait_for(lambda: driver.execute_script("return !!(window.Herald && window.Herald.v)"), 10)
        assert wait_for(lambda: driver.execute_script(
            "return performance.getEntriesByType('resource').some(e => e.name.endsWith('/push'))"), 10)
        assert driver.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('push-optin')).length") == 0
        assert prompt(driver) is None
    finally:
        driver.quit()
        shop.close()


def test_a_click_subscribes_and_the_next_activity_is_pushed_and_shown(setup):
    enable_push(setup, True)
    push = setup["push"]
    browser = Browser(f"http://127.0.0.1:{push.port}/push/ok-{uuid.uuid4()}")
    before = counts(setup)["active"]
    shop, driver = open_shop(setup, browser)
    try:
        shown = wait_for(lambda: prompt(driver), 10)
        assert shown, driver.get_log("browser")
        assert shown["label"] == "Updates from this site" and shown["live"] == "polite"
        assert [b["text"] for b in shown["buttons"]] == ["Get updates", "No thanks"] and {b["type"] for b in shown["buttons"]} == {"button"}
        # The page's hostile CSS does not reach it; it sits in a corner, away from the page's flow.
        assert shown["fontSize"] == "14px" and shown["rect"]["width"] < 400
        # Nothing was asked, registered or subscribed on load, although notifications are already allowed.
        calls = driver.execute_script("return window.__push")
        assert calls["permission"] == 0 and calls["subscribe"] == 0
        assert driver.execute_script("return navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
        assert counts(setup)["active"] == before

        # Keyboard: the buttons are reachable with Tab after the page's own link; Enter on "Get updates" clicks it.
        driver.execute_script("document.getElementById('before').focus()")
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.execute_script(
            "const h = document.querySelector('herald-push'); return document.activeElement === h && h.shadowRoot.activeElement.textContent")
        assert focused == "Get updates"
        ActionChains(driver).send_keys(Keys.ENTER).perform()

        # The prompt says it worked, focus on its close button; read both at once as soon as it does (it hides itself
        # after 6 s, which a slow machine could spend on the checks below).
        done = wait_for(lambda: driver.execute_script("""
            const host = document.querySelector('herald-push');
            const p = host && host.shadowRoot && host.shadowRoot.querySelector('[role=region] p');
            if (!p || !p.textContent.startsWith('Done')) return null;
            const focused = host.shadowRoot.activeElement;
            return { text: p.textContent, focused: focused && focused.textContent };"""), 15)
        assert done, (driver.execute_script("return window.__push"), prompt(driver), driver.get_log("browser"))
        assert done["focused"] == "Close", done
        # The prompt says "Done" only after Herald answered the subscription, so the server holds it now.
        assert counts(setup)["active"] == before + 1
        calls = driver.execute_script("return window.__push")
        assert calls["permission"] == 1 and calls["subscribe"] == 1
        assert calls["options"]["userVisibleOnly"] is True
        assert base64.b64decode(calls["options"]["key"]) == base64.urlsafe_b64decode(setup["public"] + "=" * (-len(setup["public"]) % 4))
        # The site's service worker is registered and active.
        assert driver.execute_script(
            "return navigator.serviceWorker.getRegistration('/herald-sw.js').then(r => !!(r && r.active))") is True

        # The next activity reaches the subscription, encrypted for its key.
        sent = len(push.requests)
        r = requests.post(setup["server"].url(f"/sites/{setup['site']['id']}/activities"),
                          headers={"Authorization": f"Bearer {setup['site']['secretKey']}"},
                          json={"type": "purchase", "firstName": "Sarah", "productName": "Blue Kite",
                                "productUrl": "https://kites.example.com/blue"})
        assert r.status_code == 202
        assert wait_for(lambda: any(x["path"].endswith(browser.endpoint.rsplit("/", 1)[1]) for x in push.requests[sent:]), 30)
        delivered = next(x for x in push.requests[sent:] if x["path"].endswith(browser.endpoint.rsplit("/", 1)[1]))
        payload = browser.decrypt(delivered["body"])
        assert payload["title"] == "Kite Shop" and payload["body"].startswith("Sarah")

        # Herald's worker, imported by the site's, shows that payload as a notification: CDP delivers the push to
        # the real service worker (as the browser's push service would).
        shown = deliver_push(driver, shop.origin, json.dumps(payload))
        assert shown and shown[0]["title"] == "Kite Shop" and shown[0]["body"] == payload["body"], shown
        assert shown[0]["tag"] == setup["n"]["id"] and shown[0]["url"] == "https://kites.example.com/blue"

        # A reload shows no prompt: the browser is subscribed.
        driver.get(shop.url)
        assert wait_for(lambda: driver.execute_script("return !!(window.Herald && window.HeraldPush)"), 10)
        time.sleep(1)
        assert prompt(driver) is None
        assert driver.execute_script("return window.__push.permission") == 0
    finally:
        driver.quit()
        shop.close()


def deliver_push(driver, origin, data):
    """Delivers a push message to the page's service worker over CDP (as the browser's push service would) and returns
    the notifications it shows. CDP names the registration by an id Selenium cannot read from its events: try the first
    few, and deliver again when the worker did not receive it (Chromium drops a push now and then while it starts it)."""
    driver.execute_cdp_cmd("ServiceWorker.enable", {})
    received = """return caches.open('test-pushes').then(c => c.keys()).then(k => k.length);"""
    for attempt in range(3):
        for registration in range(0, 4):
            before = driver.execute_script(received)
            try:
                driver.execute_cdp_cmd("ServiceWorker.deliverPushMessage",
                                       {"origin": origin, "registrationId": str(registration), "data": data})
            except Exception:
                continue
            if not wait_for(lambda: driver.execute_script(received) > before, 3):
                continue
            # The worker received it: Herald's listener must have shown it.
            return wait_for(lambda: driver.execute_script("""
                return navigator.serviceWorker.getRegistration('/herald-sw.js').then(r => r.getNotifications()).then(list =>
                    list.map(n => ({ title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url })));"""), 5)
    return None


def test_no_thanks_is_remembered_and_escape_dismisses(setup):
    enable_push(setup, True)
    before = counts(setup)["active"]
    shop, driver = open_shop(setup, Browser("http://127.0.0.1:9/push/never"),
                             extra='data-push-text="Hear about new kites?" data-push-position="top-left"')
    try:
        shown = wait_for(lambda: prompt(driver), 10)
        assert shown["text"] == "Hear about new kites?" and shown["rect"]["top"] == 16 and shown["rect"]["left"] == 16
        shadow_button(driver, "No thanks").click()
        assert wait_for(lambda: prompt(driver) is None, 5)
        driver.get(shop.url)
        assert wait_for(lambda: driver.execute_script("return !!(window.Herald && window.Herald.v)"), 10)
        time.sleep(1.5)
        assert prompt(driver) is None, "a dismissed prompt stays dismissed"
        # Escape dismisses too (a fresh visitor).
        driver.execute_script("localStorage.clear()")
        driver.get(shop.url)
        assert wait_for(lambda: prompt(driver), 10)
        driver.execute_script("""
            const box = document.querySelector('herald-push').shadowRoot.querySelector('[role=region]');
            box.querySelector('button').focus();
            box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));""")
        assert wait_for(lambda: prompt(driver) is None, 5)
        assert driver.execute_script("return window.__push")["permission"] == 0
        assert counts(setup)["active"] == before
    finally:
        driver.quit()
        shop.close()


def test_the_workers_click_opens_the_pushed_link():
    """Herald's push-worker.js run against a stand-in ServiceWorkerGlobalScope: a push shows its title, body and tag,
    a bad payload still shows something, and a click closes the notification and opens its link."""
    server = Herald(env={"HERALD_BCRYPT_COST": "10"}).start()
    driver = make_driver()
    try:
        source = requests.get(server.url("/widget/v1/push-worker.js")).text
        result = driver.execute_async_script("""
            const source = arguments[0], done = arguments[arguments.length - 1];
            const handlers = {}, shown = [], opened = [], waits = [];
            const self = { addEventListener: (type, f) => { handlers[type] = f; },
                           registration: { showNotification: (title, options) => { shown.push({ title, options }); return Promise.resolve(); } },
                           clients: { openWindow: url => { opened.push(url); return Promise.resolve(); } } };
            new Function('self', source)(self);
            const event = extra => Object.assign({ waitUntil: p => waits.push(p) }, extra);
            handlers.push(event({ data: { json: () => ({ title: 'Kite Shop', body: 'Sarah bought', url: 'https://k.example/blue', tag: 'n1' }) } }));
            handlers.push(event({ data: { json: () => { throw new Error('not json'); }, text: () => 'plain words' } }));
            let closed = 0;
            handlers.notificationclick(event({ notification: { close: () => { closed++; }, data: { url: 'https://k.example/blue' } } }));
            Promise.all(waits).then(() => done({ shown, opened, closed }));""", source)
        assert result["shown"][0] == {"title": "Kite Shop", "options": {"body": "Sarah bought", "tag": "n1", "data": {"url": "https://k.example/blue"}}}
        assert result["shown"][1]["options"]["body"] == "plain words"
        assert result["opened"] == ["https://k.example/blue"] and result["closed"] == 1
        r = requests.get(server.url("/widget/v1/push-optin.js"))
        assert r.status_code == 200 and "javascript" in r.headers["content-type"] and r.headers["access-control-allow-origin"] == "*"
        assert requests.get(server.url("/widget/v1/push-optin.js"), headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    finally:
        driver.quit()
        server.stop()
