"""The dashboard at /app, in headless Chromium as a new site owner uses it, and its cookie session as a hostile page
would try it: sign-up → organization → site → snippet → notification → publish → an activity through the API → the
popup on a page embedding the snippet → the impression in the dashboard's analytics. Screenshots of each page go to
$HERALD_TEST_ARTIFACTS (default /tmp/herald-screenshots); the console must stay free of errors, the Content-Security-
Policy must never be violated, and axe-core must find no serious accessibility violation."""
import os
import time
import uuid

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Herald, wait_for
from test_widget_browser import PageServer, make_driver

SHOTS = os.environ.get("HERALD_TEST_ARTIFACTS", "/tmp/herald-screenshots")
VIOLATIONS = "window.__cspViolations = []; document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"


@pytest.fixture
def server(store):
    s = Herald(database_url=store, env={"HERALD_BCRYPT_COST": "10"}).start()
    yield s
    s.stop()


@pytest.fixture
def browser():
    options_driver = make_driver()
    options_driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": VIOLATIONS})
    yield options_driver
    options_driver.quit()


def shot(driver, name):
    os.makedirs(SHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SHOTS, f"dashboard-{name}.png"))


def check_page(driver, name):
    """Screenshot, no CSP violation, no console error, no serious accessibility violation."""
    shot(driver, name)
    assert driver.execute_script("return window.__cspViolations") == [], name
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], (name, errors)
    from axe_selenium_python import Axe
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    serious = [v["id"] + ": " + v["help"] for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], (name, serious)


def fill(driver, label, value):
    field = driver.find_element(By.XPATH, f"//label[contains(., '{label}')]//*[self::input or self::select]")
    field.clear() if field.tag_name == "input" else None
    field.send_keys(value)


def click(driver, text):
    driver.find_element(By.XPATH, f"//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']").click()


def heading(driver, text, timeout=10):
    WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))


def test_a_new_owner_goes_from_sign_up_to_a_live_popup(browser, server):
    if server.database_url:
        pytest.skip("the browser path runs once, on the embedded store; the cookie session is tested on both")
    d = browser
    d.get(server.url("/app"))
    heading(d, "Sign in")
    check_page(d, "sign-in")
    click(d, "Create an account")
    heading(d, "Create an account")
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    fill(d, "Your name", "Olive Owner")
    fill(d, "Email", email)
    fill(d, "Password", "a long passphrase")
    check_page(d, "sign-up")
    click(d, "Create account")
    heading(d, "Organizations")
    # The session is a cookie page scripts cannot read.
    assert "herald_session" not in d.execute_script("return document.cookie")
    assert any(c["name"] == "herald_session" and c["httpOnly"] for c in d.get_cookies())
    fill(d, "Name", "Olive's Shop")
    click(d, "Create organization")
    heading(d, "Olive's Shop")
    check_page(d, "organization")
    fill(d, "Name", "Main store")
    fill(d, "Domain", "localhost")
    click(d, "Create site")
    heading(d, "Main store")
    snippet = d.find_element(By.ID, "snippet").text
    assert "data-site=\"pk_" in snippet and "widget.js" in snippet
    secret = d.find_element(By.XPATH, "//div[@class='secret']/pre").text
    assert secret.startswith("sk_")
    check_page(d, "site")
    fill(d, "Name", "Recent purchases")
    click(d, "Create notification")
    WebDriverWait(d, 10).until(lambda drv: "draft" in drv.find_element(By.TAG_NAME, "tbody").text or "Recent purchases" in drv.page_source)
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.XPATH, "//button[normalize-space()='Publish']"))
    click(d, "Publish")
    WebDriverWait(d, 10).until(lambda drv: "published" in drv.page_source)

    # An activity through the API with the site's secret key, and the popup on a page embedding the snippet.
    r = requests.post(server.url(f"/sites/{d.current_url.split('/')[-1]}/activities"), headers={"Authorization": f"Bearer {secret}"},
                      json={"type": "purchase", "firstName": "Sarah", "city": "Austin", "productName": "Blue Hoodie"})
    assert r.status_code in (200, 201, 202), r.text
    page = PageServer("<!doctype html><html><head><title>Shop</title></head><body><main>Products</main>" + snippet + "</body></html>")
    shop = make_driver()
    try:
        shop.get(page.url)
        popup = wait_for(lambda: "Sarah" in (shop.execute_script(
            "return Array.from(document.querySelectorAll('*')).map(e => e.shadowRoot ? e.shadowRoot.textContent : '').join(' ')") or ""), timeout=20)
        shop.save_screenshot(os.path.join(SHOTS, "dashboard-popup-on-shop.png"))
        assert popup, "no popup on the page embedding the snippet"

        # The impression reaches the dashboard's analytics (the shop page stays open while the widget sends it).
        def impressions():
            d.refresh()
            WebDriverWait(d, 10).until(lambda drv: "Impressions" in drv.page_source)
            cells = d.find_elements(By.XPATH, "//h2[contains(., 'Analytics')]/following::table[1]//tbody//td")
            return bool(cells) and cells[0].text.isdigit() and int(cells[0].text) >= 1
        assert wait_for(impressions, timeout=30, interval=2), "the impression did not reach the dashboard"
    finally:
        shop.quit()
        page.close()
    check_page(d, "site-with-analytics")

    # A phone-width window still shows everything without horizontal scrolling of the page.
    d.set_window_size(390, 844)
    d.refresh()
    heading(d, "Main store")
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(d, "site-phone")

    click(d, "Sign out")
    heading(d, "Sign in")
    assert not any(c["name"] == "herald_session" for c in d.get_cookies())


def test_cookie_session_needs_its_csrf_token(server):
    owner = server.signup()
    s = requests.Session()
    assert s.get(server.url("/auth/browser-session")).status_code == 204
    r = s.post(server.url("/auth/browser-session"), json={"email": owner["email"], "password": "a long passphrase"})
    assert r.status_code == 201, r.text
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    csrf = r.json()["csrfToken"]
    assert r.json()["user"]["email"] == owner["email"]
    # Reads work with the cookie alone.
    assert s.get(server.url("/organizations")).status_code == 200
    # A change without the CSRF token (a forged form post) acts as nobody.
    r = s.post(server.url("/organizations"), json={"name": "Forged"})
    assert r.status_code == 403 and r.json()["type"].endswith("/csrf-token-missing")
    r = s.post(server.url("/organizations"), json={"name": "Forged"}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = s.post(server.url("/organizations"), json={"name": "Real"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    # A reloaded page gets the same CSRF token back.
    again = s.get(server.url("/auth/browser-session"))
    assert again.status_code == 200 and again.json()["csrfToken"] == csrf
    # An Authorization header wins over the cookie.
    other = server.signup()
    assert s.get(server.url("/users/me"), headers=server.auth(other["token"])).json()["id"] == other["id"]
    # A refresh token becomes a cookie session once (it is spent).
    t = requests.Session()
    assert t.post(server.url("/auth/browser-session"), json={"refreshToken": other["refresh"]}).status_code == 201
    assert requests.post(server.url("/auth/refresh"), json={"refreshToken": other["refresh"]}).status_code == 401
    # Wrong password: the same answer as /auth/login.
    assert requests.post(server.url("/auth/browser-session"), json={"email": owner["email"], "password": "wrong one!!"}).status_code == 401
    # Signing out needs the token too, then the cookie is dead.
    assert s.delete(server.url("/auth/browser-session")).status_code == 403
    assert s.delete(server.url("/auth/browser-session"), headers={"X-CSRF-Token": csrf}).status_code == 204
    assert s.get(server.url("/organizations")).status_code == 401


def test_dashboard_files_are_served_with_a_strict_policy(server):
    for path, kind in (("/app", "text/html"), ("/app/assets/app.js", "text/javascript"), ("/app/assets/app.css", "text/css")):
        r = requests.get(server.url(path))
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
        assert requests.get(server.url(path), headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    html = requests.get(server.url("/app")).text
    assert "<script>" not in html and "style=" not in html and " on" not in html.replace("<noscript>", "")
    # The whole app's script stays small (the budget is 100 KB per page).
    assert len(requests.get(server.url("/app/assets/app.js")).content) < 100_000
