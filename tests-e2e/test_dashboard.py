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
from selenium.common.exceptions import StaleElementReferenceException
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
    serious = [v["id"] + ": " + v["help"] + " " + " | ".join(n["html"][:160] for n in v["nodes"][:3])
               for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], (name, serious)


def expected_errors(driver, path, status):
    """Chromium logs every refused request as an error: take out the ones the test caused on purpose, and only them."""
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe and all(path in m and f"status of {status}" in m for m in severe), severe


def fill(driver, label, value):
    field = driver.find_element(By.XPATH, f"//label[contains(., '{label}')]//*[self::input or self::select]")
    field.clear() if field.tag_name == "input" else None
    field.send_keys(value)


def click(driver, text):
    driver.find_element(By.XPATH, f"//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']").click()


def preview_text(driver):
    """The text the real widget draws in its shadow root inside the editor's preview frame."""
    frames = driver.find_elements(By.CSS_SELECTOR, "iframe.preview-frame")
    if not frames:
        return ""
    try:
        driver.switch_to.frame(frames[0])
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('*')).map(e => e.shadowRoot ? e.shadowRoot.textContent : '').join(' ')") or ""
    except Exception:
        return ""
    finally:
        driver.switch_to.default_content()


def set_field(driver, label, value):
    field = driver.find_element(By.XPATH, f"//label[contains(., '{label}')]//*[self::input or self::textarea]")
    field.clear()
    field.send_keys(value)


def scheduled_reports(driver):
    """The scheduled reports of the site whose analytics page is shown, read through the page's cookie session."""
    return driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                       "fetch('/sites/' + location.hash.split('/')[2] + '/analytics/scheduled-reports', {credentials: 'same-origin'})"
                                       ".then(r => r.json()).then(done)")


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
    site_url = d.current_url
    fill(d, "Name", "Recent purchases")
    click(d, "Create notification")

    # The editor: the real widget previews the notification with a sample activity (the site has none yet)...
    heading(d, "Recent purchases")
    assert wait_for(lambda: "Sarah from Austin" in preview_text(d), timeout=15), preview_text(d)
    check_page(d, "notification-editor")
    d.switch_to.frame(d.find_element(By.CSS_SELECTOR, "iframe.preview-frame"))
    assert d.execute_script("return window.__cspViolations") == []
    d.switch_to.default_content()
    # ...and follows the form's unsaved changes.
    set_field(d, "Message template", '{{firstName | fallback: "Someone"}} in {{city}} just bought {{productName}}')
    assert wait_for(lambda: "Sarah in Austin just bought Blue Hoodie" in preview_text(d), timeout=15), preview_text(d)
    # An invalid value is named next to its field, in words.
    set_field(d, "Each popup stays", "0")
    WebDriverWait(d, 10).until(lambda drv: "must be from 1" in drv.find_element(By.CSS_SELECTOR, "label .field-error").text)
    assert d.find_element(By.XPATH, "//label[contains(., 'Each popup stays')]//input").get_attribute("aria-invalid") == "true"
    set_field(d, "Each popup stays", "8")
    WebDriverWait(d, 10).until(lambda drv: not drv.find_elements(By.CSS_SELECTOR, ".field-error"))
    expected_errors(d, "/preview", 422)
    # A targeting condition and an A/B test with two variants, then save.
    click(d, "Add a condition")
    d.find_element(By.CSS_SELECTOR, "input.rule-value").send_keys("/")
    click(d, "Add a variant")
    click(d, "Add a variant")
    messages = d.find_elements(By.CSS_SELECTOR, "textarea.variant-message")
    messages[1].send_keys("{{firstName}} from {{city}} picked {{productName}}")
    WebDriverWait(d, 10).until(lambda drv: drv.find_element(By.ID, "preview-variant").is_displayed())
    # The message saved as a template of the site, then chosen (the written message still overrides it).
    set_field(d, "Name of a new template", "Bought it")
    click(d, "Save the message as a template")
    WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "flash"), "Template “Bought it” saved"))
    fill(d, "Saved template", "Bought it")
    click(d, "Save")
    WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "flash"), "Saved"))
    saved = requests.get(server.url(d.current_url.split("#")[1]), cookies={c["name"]: c["value"] for c in d.get_cookies()}).json()
    assert saved["message"].endswith("just bought {{productName}}") and saved["settings"]["displaySeconds"] == 8
    assert saved["rules"]["all"][0]["value"] == "/" and saved["rules"]["all"][0]["op"] == "contains" and len(saved["variants"]) == 2
    templates = requests.get(server.url(d.current_url.split("#")[1].split("/notifications")[0] + "/templates"), cookies={c["name"]: c["value"] for c in d.get_cookies()}).json()
    assert saved["templateId"] == next(t["id"] for t in templates["items"] if t["name"] == "Bought it")
    # The second variant's text in the preview, picked in the variant list.
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "preview-variant")).select_by_index(1)
    assert wait_for(lambda: "Sarah from Austin picked Blue Hoodie" in preview_text(d), timeout=15), preview_text(d)
    check_page(d, "notification-editor-saved")
    click(d, "Publish")
    WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "flash"), "Published"))
    click(d, "Back to Main store")
    heading(d, "Main store")
    WebDriverWait(d, 10).until(lambda drv: "published" in drv.find_element(By.TAG_NAME, "tbody").text)
    assert d.current_url == site_url

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

    # The analytics page: the summary per variant, the A/B test of the notification's two variants, the funnel.
    click(d, "All analytics: A/B tests, funnel, exports, any period")
    heading(d, "Analytics")
    WebDriverWait(d, 15).until(lambda drv: drv.find_elements(By.ID, "funnel-title"))
    ab = d.find_element(By.XPATH, "//h3[normalize-space()='Recent purchases']/following::table[1]")
    ab_rows = ab.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(ab_rows) == 2 and "(control)" in ab_rows[0].text, ab.text
    assert d.find_elements(By.CSS_SELECTOR, ".verdict"), "no verdict in words"
    funnel = d.find_element(By.XPATH, "//h2[@id='funnel-title']/following::table[1]")
    steps = [r.find_element(By.TAG_NAME, "td").text for r in funnel.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert steps[0] == "impression" and len(steps) == 4, steps
    assert int(funnel.find_elements(By.CSS_SELECTOR, "tbody tr td")[1].text) >= 1, funnel.text
    assert d.find_element(By.CSS_SELECTOR, "#funnel-title ~ figure svg title").get_attribute("textContent")
    # Cohorts: a row per week of the period, the one visitor in the last (this week), no conversion yet; attribution:
    # no conversion, said as 0.
    cohorts = d.find_element(By.XPATH, "//h2[@id='cohorts-title']/following::table[1]")
    cohort_rows = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in cohorts.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert [r[1] for r in cohort_rows] == ["0"] * (len(cohort_rows) - 1) + ["1"], cohorts.text
    assert cohort_rows[-1][2] == "0 (0.0 %)" and set(cohort_rows[-1][3:]) <= {"–"}, cohorts.text
    attribution = d.find_element(By.XPATH, "//h2[@id='attribution-title']/following::table[1]")
    assert attribution.find_elements(By.CSS_SELECTOR, "tbody td")[0].text == "0", attribution.text
    check_page(d, "analytics")

    # A period the API refuses (more than 366 days) is said in words, and the shown reports stay.
    d.execute_script("document.getElementById('f-from').value = '2000-01-01'; document.getElementById('f-to').value = '2026-01-01';")
    click(d, "Show")
    WebDriverWait(d, 10).until(lambda drv: "from" in drv.find_element(By.ID, "flash").text)
    assert d.find_elements(By.ID, "funnel-title")
    expected_errors(d, "/analytics", 422)
    d.execute_script("document.getElementById('f-from').value = ''; document.getElementById('f-to').value = '';")
    click(d, "Show")
    WebDriverWait(d, 10).until(lambda drv: drv.find_element(By.ID, "flash").text == "")

    # Funnel steps of one's own: a step that is not one is refused in the API's words; two steps within an hour are
    # drawn as asked, then the defaults come back with the fields emptied.
    funnel_steps = lambda drv: drv.execute_script(  # read in one go: the reports are redrawn under the test's feet
        "const t = document.querySelector('section[aria-labelledby=funnel-title] table');"
        "return t ? Array.from(t.querySelectorAll('tbody tr')).map(r => r.cells[0].textContent) : [];")
    set_field(d, "Funnel steps", "impression, bought")
    click(d, "Show")
    WebDriverWait(d, 10).until(lambda drv: "'bought' is not a step" in drv.find_element(By.ID, "flash").text)
    expected_errors(d, "/analytics/funnels", 422)
    set_field(d, "Funnel steps", "impression, click")
    set_field(d, "Funnel window", "60")
    click(d, "Show")
    WebDriverWait(d, 10).until(lambda drv: funnel_steps(drv) == ["impression", "click"])
    assert "within 60 minutes" in d.find_element(By.XPATH, "//h2[@id='funnel-title']/following::p[1]").text
    set_field(d, "Funnel steps", "")
    set_field(d, "Funnel window", "")
    click(d, "Show")
    WebDriverWait(d, 10).until(lambda drv: funnel_steps(drv) == ["impression", "hover", "click", "conversion"])

    # An export of the summary as CSV: its progress, then a link that downloads it with the cookie session.
    fill(d, "Report", "Summary")
    fill(d, "Format", "CSV")
    click(d, "Export")
    link = WebDriverWait(d, 60).until(lambda drv: (drv.find_elements(By.CSS_SELECTOR, ".job a.download") or [None])[0])
    href = link.get_attribute("href")
    got = d.execute_async_script("const done = arguments[arguments.length - 1];"
                                 "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text().then(t => done([r.status, r.headers.get('content-type'), t])))"
                                 ".catch(e => done([0, String(e), '']));", href)
    assert got[0] == 200 and got[1].startswith("text/csv") and "impressions" in got[2].lower(), got[:2]
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.XPATH, "//h3[.='Recent exports']/following::table[1]//a[contains(@class, 'download')]"))
    check_page(d, "analytics-export")

    # A scheduled report: an address that is not one is refused in words and nothing is scheduled; good ones are
    # listed with the schedule and the next sending; deleting it (after the confirmation) takes it off the list.
    set_field(d, "Title", "Weekly summary")
    set_field(d, "Recipients", "owner@example.com, not-an-address")
    click(d, "Schedule")
    WebDriverWait(d, 10).until(lambda drv: "recipients.1" in drv.find_element(By.ID, "flash").text)
    expected_errors(d, "/scheduled-reports", 422)
    assert not d.find_elements(By.XPATH, "//td[normalize-space()='Weekly summary']")
    set_field(d, "Recipients", "owner@example.com, team@example.com")
    click(d, "Schedule")
    scheduled = "//h3[.='Scheduled']/following::table[1]//tr[td[normalize-space()='Weekly summary']]"
    row = WebDriverWait(d, 10).until(lambda drv: (drv.find_elements(By.XPATH, scheduled) or [None])[0])
    assert "team@example.com" in row.text and "Weekly, Mondays at 08:00" in row.text and "not yet" in row.text, row.text
    listed = scheduled_reports(d)
    assert [(r["name"], r["recipients"]) for r in listed["items"]] == [("Weekly summary", ["owner@example.com", "team@example.com"])], listed
    check_page(d, "analytics-scheduled")
    # Paused, it says so and offers to resume; the API agrees.
    row.find_element(By.XPATH, ".//button[normalize-space()='Pause']").click()
    row = WebDriverWait(d, 10).until(lambda drv: (drv.find_elements(By.XPATH, scheduled + "[td[normalize-space()='paused']]") or [None])[0])
    assert row.find_elements(By.XPATH, ".//button[normalize-space()='Resume']"), row.text
    paused = scheduled_reports(d)
    assert [r["enabled"] for r in paused["items"]] == [False], paused
    # Send now, with no mail transport set up: the history, followed until the sending has an outcome, shows it fail
    # and says why; the list's "Last sent" then says so too. History reads it again.
    row.find_element(By.XPATH, ".//button[normalize-space()='Send now']").click()
    history_rows = lambda drv: drv.execute_script(
        "const t = document.querySelector('section[aria-labelledby=history-title] table');"
        "return t ? Array.from(t.querySelectorAll('tbody tr')).map(r => r.innerText) : [];")
    history = WebDriverWait(d, 20).until(lambda drv: (lambda rows: rows if rows and "failed" in rows[0] else None)(history_rows(drv)))
    assert len(history) == 1 and "Send now" in history[0] and "mail is not configured" in history[0], history
    row = WebDriverWait(d, 10, ignored_exceptions=(StaleElementReferenceException,)).until(  # the list is redrawn meanwhile
        lambda drv: (drv.find_elements(By.XPATH, scheduled + "[td[contains(., 'failed')]]") or [None])[0])
    d.execute_script("document.querySelector('section[aria-labelledby=history-title]').remove()")
    row.find_element(By.XPATH, ".//button[normalize-space()='History']").click()
    WebDriverWait(d, 10).until(lambda drv: history_rows(drv) == history)
    check_page(d, "analytics-scheduled-history")
    row.find_element(By.XPATH, ".//button[normalize-space()='Delete']").click()
    WebDriverWait(d, 5).until(EC.alert_is_present())
    d.switch_to.alert.accept()
    WebDriverWait(d, 10).until(lambda drv: not drv.find_elements(By.XPATH, scheduled))
    d.set_window_size(390, 844)
    wide = d.execute_script("return Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table')).map(e => e.tagName + '.' + e.className).slice(0, 5)")
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), wide
    shot(d, "analytics-phone")
    d.set_window_size(1280, 1000)
    click(d, "Back to Main store")
    heading(d, "Main store")

    # A phone-width window still shows everything without horizontal scrolling of the page.
    d.set_window_size(390, 844)
    d.refresh()
    heading(d, "Main store")
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(d, "site-phone")
    d.set_window_size(1280, 1000)

    # Integrations and outbound webhooks: a Zapier source, and an endpoint the API refuses, in words.
    click(d, "Integrations and webhooks")
    heading(d, "Integrations and webhooks")
    fill(d, "Source", "Zapier")
    click(d, "Connect")
    WebDriverWait(d, 10).until(lambda drv: "zapier" in drv.find_element(By.TAG_NAME, "tbody").text)
    fill(d, "Address", "http://127.0.0.1:9/hook")
    click(d, "Add endpoint")
    WebDriverWait(d, 10).until(lambda drv: "url" in drv.find_element(By.ID, "flash").text)
    expected_errors(d, "/webhooks", 422)
    check_page(d, "integrations")

    # The organization: invite someone, see the pending invitation, revoke another; billing and single sign-on.
    click(d, "Back to Main store")
    heading(d, "Main store")
    click(d, "Back to the organization")
    heading(d, "Olive's Shop")
    invitee = f"invitee-{uuid.uuid4().hex[:6]}@example.com"
    for address in ("someone-else@example.com", invitee):
        fill(d, "Email", address)
        fill(d, "Role", "Viewer")
        click(d, "Send invitation")
        WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.ID, "invite-link") and address in drv.page_source)
    link = d.find_element(By.ID, "invite-link").text
    assert "/app#/invitations/inv_" in link
    check_page(d, "organization-invitations")
    d.find_element(By.XPATH, "//button[@aria-label='Revoke the invitation of someone-else@example.com']").click()
    d.switch_to.alert.accept()
    WebDriverWait(d, 10).until(lambda drv: "someone-else@example.com" not in drv.find_element(By.XPATH, "//h2[contains(., 'Pending')]/following::table[1]").text)
    assert invitee in d.find_element(By.XPATH, "//h2[contains(., 'Pending')]/following::table[1]").text
    click(d, "Billing")
    heading(d, "Billing")
    WebDriverWait(d, 10).until(lambda drv: "Impressions this period" in drv.page_source)
    check_page(d, "billing")
    d.back()
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.XPATH, "//a[normalize-space()='Single sign-on']"))
    click(d, "Single sign-on")
    heading(d, "Single sign-on")
    expected_errors(d, "/sso", 404)  # not set up yet
    check_page(d, "single-sign-on")

    click(d, "Sign out")
    heading(d, "Sign in")
    assert not any(c["name"] == "herald_session" for c in d.get_cookies())

    # The invitee opens the link, creates an account with the invited address and joins.
    d.get(link)
    heading(d, "Sign in")
    assert "You have an invitation" in d.page_source
    click(d, "Create an account")
    heading(d, "Create an account")
    fill(d, "Your name", "Ivy Invitee")
    fill(d, "Email", invitee)
    fill(d, "Password", "a long passphrase")
    click(d, "Create account")
    heading(d, "Accept an invitation")
    check_page(d, "accept-invitation")
    click(d, "Accept invitation")
    heading(d, "Olive's Shop")
    assert "Main store" in d.page_source
    # A viewer is offered nothing it may not do: no invitations, no administration, a read-only editor whose
    # preview still works.
    assert "Invite someone" not in d.page_source and "Billing" not in d.page_source
    click(d, "Main store")
    heading(d, "Main store")
    click(d, "Recent purchases")
    heading(d, "Recent purchases")
    assert wait_for(lambda: "Sarah" in preview_text(d), timeout=15), preview_text(d)
    assert not d.find_elements(By.XPATH, "//button[normalize-space()='Save' or normalize-space()='Publish' or normalize-space()='Pause' or normalize-space()='Delete']")
    assert not d.find_element(By.XPATH, "//label[contains(., 'Message template')]//textarea").is_enabled()
    assert not d.find_element(By.XPATH, "//label[contains(., 'Saved template')]//select").is_enabled()
    assert not d.find_elements(By.XPATH, "//button[normalize-space()='Save the message as a template']")
    check_page(d, "notification-editor-viewer")
    # The editor at phone width: one column, no sideways scrolling.
    d.set_window_size(390, 844)
    assert wait_for(lambda: d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), timeout=5)
    shot(d, "notification-editor-phone")
    # The analytics page offers a viewer the list of scheduled reports, not the form or the buttons that change them.
    d.set_window_size(1280, 1000)
    click(d, "Back to Main store")
    heading(d, "Main store")
    click(d, "All analytics: A/B tests, funnel, exports, any period")
    heading(d, "Analytics")
    WebDriverWait(d, 15).until(lambda drv: drv.find_elements(By.XPATH, "//h3[.='Scheduled']/following::table[1]"))
    assert not d.find_elements(By.XPATH, "//button[normalize-space()='Schedule' or normalize-space()='Send now' or normalize-space()='Delete']")
    check_page(d, "analytics-viewer")


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


def test_the_preview_renders_one_notification_for_its_organization_only(server):
    """GET/POST …/preview: the widget's feed for one notification, saved or not, draft or not, with a sample activity
    where the site has none; nothing is saved, a bad change is a 422 per field, another organization gets 404."""
    owner = server.signup()
    h = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), headers=h, json={"name": "Previewers"}).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), headers=h, json={"name": "Shop", "domain": "shop.example.com"}).json()
    n = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=h, json={"name": "Buys", "type": "recent_activity"}).json()
    base = server.url(f"/sites/{site['id']}/notifications/{n['id']}/preview")
    r = requests.get(base, headers=h)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["v"] == 1 and [x["id"] for x in doc["notifications"]] == [n["id"]]
    text = "".join(run.get("text", "") for run in doc["notifications"][0]["items"][0]["runs"])
    assert "Sarah" in text and "Austin" in text and "Blue Hoodie" in text
    assert r.headers["Cache-Control"] == "no-store"
    # Unsaved changes are rendered but not saved.
    r = requests.post(base, headers=h, json={"message": "{{firstName}} loves {{productName}}", "variants": [{"message": "A {{city}}"}, {"message": "B"}]})
    assert r.status_code == 200, r.text
    entry = r.json()["notifications"][0]
    assert "".join(x.get("text", "") for x in entry["items"][0]["runs"]) == "Sarah loves Blue Hoodie"
    assert len(entry["variants"]) == 2 and len(entry["items"][0]["variantRuns"]) == 2
    assert "message" not in requests.get(server.url(f"/sites/{site['id']}/notifications/{n['id']}"), headers=h).json()
    # A bad change is refused per field, like PATCH.
    r = requests.post(base, headers=h, json={"settings": {"displaySeconds": 0}, "message": "{{nope}}"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"settings.displaySeconds", "message"}
    # A counter with no activity yet shows a sample count above its minimum.
    c = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=h, json={"name": "Count", "type": "counter"}).json()
    counter = requests.get(server.url(f"/sites/{site['id']}/notifications/{c['id']}/preview"), headers=h).json()["notifications"][0]
    assert counter["count"] >= counter["minimum"]
    # Another organization's member sees nothing of it.
    stranger = server.signup()
    for method in ("GET", "POST"):
        r = requests.request(method, base, headers=server.auth(stranger["token"]), json={} if method == "POST" else None)
        assert r.status_code == 404, r.text
    # Nothing was published: the site's widget feed stays empty.
    feed = requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).json()
    assert feed["notifications"] == []


def test_the_preview_page_is_framable_by_herald_only(server):
    for path in ("/app/preview", "/app/assets/preview.js"):
        r = requests.get(server.url(path))
        assert r.status_code == 200
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-src 'self'" in requests.get(server.url("/app")).headers["Content-Security-Policy"]


def test_the_preview_draws_every_type(browser, server):
    """The editor's preview draws a counter (with a sample count), live visitors (with a sample presence) and an
    announcement with its button, through the real widget."""
    if server.database_url:
        pytest.skip("the browser runs once, on the embedded store; the preview endpoint is tested on both")
    owner = server.signup()
    h = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), headers=h, json={"name": "Types"}).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), headers=h, json={"name": "Shop", "domain": "shop.example.com"}).json()
    made = {}
    for kind, extra in (("counter", {}), ("live_visitors", {}),
                        ("announcement", {"message": "Free shipping this week", "content": {"cta": {"text": "Shop now", "url": "https://shop.example.com/sale"}}})):
        r = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=h, json={"name": kind, "type": kind, **extra})
        assert r.status_code == 201, r.text
        made[kind] = r.json()["id"]
    d = browser
    d.get(server.url("/app"))
    heading(d, "Sign in")
    fill(d, "Email", owner["email"])
    fill(d, "Password", "a long passphrase")
    click(d, "Sign in")
    heading(d, "Organizations")
    for kind, text in (("counter", "27 people purchased"), ("live_visitors", "14 people are viewing this page"),
                       ("announcement", "Free shipping this weekShop now")):
        d.get(server.url(f"/app#/sites/{site['id']}/notifications/{made[kind]}"))
        heading(d, kind)
        assert wait_for(lambda: text in preview_text(d), timeout=15), (kind, preview_text(d))
        check_page(d, f"notification-editor-{kind}")
