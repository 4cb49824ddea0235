"""Analytics against the real binary: a known set of beacons, every report checked exactly against an
independent computation (scipy for the A/B statistics), on SQLite, PostgreSQL and ClickHouse alike; bots,
validation, tenants, rate limits, and a kill -9 in the middle of a stream of beacons."""
import datetime
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
import requests
from scipy import stats

from conftest import Herald, postgres_url_or_skip, published_site, wait_for

TZ = "America/Chicago"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
QUIET_LIMITS = {"HERALD_BCRYPT_COST": "10", "HERALD_ANALYTICS_QUERIES_PER_MINUTE": "1000"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def clickhouse_url_or_skip():
    url = os.environ.get("HERALD_TEST_CLICKHOUSE_URL")
    if not url:
        if os.environ.get("HERALD_TEST_REQUIRE_CLICKHOUSE") == "1":
            pytest.fail("ClickHouse is required but not configured")
        pytest.skip("no ClickHouse configured")
    return url


def clickhouse_query(url, database, sql):
    """Rows of a query run directly in ClickHouse (JSONEachRow, 64-bit integers as numbers)."""
    r = requests.post(url, params={"database": database, "output_format_json_quote_64bit_integers": "0"},
                      data=sql + " FORMAT JSONEachRow", timeout=30)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line]


# "clickhouse" keeps its raw events in SQLite, "clickhouse-postgres" in PostgreSQL (read per organization under
# row-level security); both report from ClickHouse.
@pytest.fixture(params=["sqlite", "postgres", "clickhouse", "clickhouse-postgres"])
def herald(request):
    env = {"HERALD_BCRYPT_COST": "10", "HERALD_ANALYTICS_QUERIES_PER_MINUTE": "1000"}
    database_url = None
    clickhouse = request.param.startswith("clickhouse")
    if clickhouse:
        env["HERALD_CLICKHOUSE_URL"] = clickhouse_url_or_skip()
        env["HERALD_CLICKHOUSE_DATABASE"] = "herald_" + uuid.uuid4().hex[:10]
        env["HERALD_CLICKHOUSE_FLUSH_INTERVAL"] = "0.2"
    if request.param.endswith("postgres"):
        database_url = postgres_url_or_skip()
    server = Herald(database_url=database_url, env=env).start()
    server.store = "clickhouse" if clickhouse else request.param
    yield server
    server.stop()


def world(herald):
    user = herald.signup()
    h = herald.auth(user["token"])
    org = requests.post(herald.url("/organizations"), json={"name": "Acme"}, headers=h).json()["id"]
    site = requests.post(herald.url(f"/organizations/{org}/sites"), json={"name": "Shop", "domain": "shop.example.com", "timezone": TZ},
                         headers=h).json()
    ab = requests.post(herald.url(f"/sites/{site['id']}/notifications"), headers=h, json={
        "name": "Recent purchases", "type": "recent_activity",
        "variants": [{"name": "Control", "weight": 50}, {"name": "Urgent", "weight": 50}]}).json()
    plain = requests.post(herald.url(f"/sites/{site['id']}/notifications"), headers=h,
                          json={"name": "Visitors now", "type": "announcement"}).json()
    for n in (ab, plain):
        assert requests.post(herald.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=h).status_code == 200
    return {"h": h, "site": site, "ab": ab, "plain": plain, "control": ab["variants"][0]["id"], "urgent": ab["variants"][1]["id"]}


def post(herald, site, body, ua=BROWSER):
    r = requests.post(herald.url(f"/widget/v1/{site['publicKey']}/beacons"), json=body, headers={"User-Agent": ua})
    assert r.status_code == 202, r.text
    return r


def scenario(w, now_ms):
    """The known set: (visitor, [events]) page batches, built so every report has something to say."""
    ab, plain, control, urgent = w["ab"]["id"], w["plain"]["id"], w["control"], w["urgent"]
    # "Minutes" are 5 s steps: the whole story fits in the last 8 minutes, so it stays within one local day.
    t = lambda minutes: now_ms - minutes * 5_000  # noqa: E731
    day = 86_400_000
    pages = []
    # A/B: 200 visitors per arm (deterministic), control converts 10%, urgent 25%.
    for i in range(400):
        arm = control if i % 2 == 0 else urgent
        vid = f"visitor-ab-{i:04d}"
        events = [{"type": "pageview", "path": "/", "at": t(90)},
                  {"type": "impression", "notificationId": ab, "variantId": arm, "exposure": True, "firstSeenAt": t(90), "at": t(90)}]
        converts = (i // 2) % 10 == 0 if arm == control else (i // 2) % 4 == 0
        if i % 5 == 0:
            events.append({"type": "hover", "notificationId": ab, "variantId": arm, "at": t(89)})
        if i % 10 == 0:
            events.append({"type": "click", "notificationId": ab, "variantId": arm, "at": t(88)})
        if converts:
            events.append({"type": "conversion", "notificationId": ab, "variantId": arm, "goal": "purchase", "value": 20.0,
                           "firstConversion": True, "firstSeenAt": t(90), "at": t(80),
                           "touches": [{"notificationId": ab, "variantId": arm, "type": "impression", "at": t(90)}]})
        pages.append((vid, events))
    # Multi-touch conversions: seen plain, then ab, converted; one repeat conversion within the window.
    for i in range(6):
        vid = f"visitor-mt-{i}"
        pages.append((vid, [
            {"type": "impression", "notificationId": plain, "at": t(70)},
            {"type": "impression", "notificationId": ab, "variantId": control, "at": t(60)},
            {"type": "click", "notificationId": ab, "variantId": control, "at": t(59)},
            {"type": "conversion", "notificationId": ab, "variantId": control, "goal": "signup", "value": 5.5, "at": t(50),
             "previousConversionAt": now_ms - 3 * day if i == 0 else None, "firstSeenAt": now_ms - 8 * day,
             "touches": [{"notificationId": plain, "type": "impression", "at": t(70)},
                         {"notificationId": ab, "variantId": control, "type": "click", "at": t(59)}]},
        ]))
    # A conversion with no notification seen, and one without touches naming a notification.
    pages.append(("visitor-lone-1", [{"type": "conversion", "goal": "purchase", "value": 10, "at": t(40)}]))
    pages.append(("visitor-lone-2", [{"type": "conversion", "notificationId": plain, "goal": "purchase", "at": t(40)}]))
    # The same visitor twice (two page views): counted once as a unique visitor.
    for _ in range(2):
        pages.append(("visitor-returning", [{"type": "pageview", "path": "/a", "at": t(30)},
                                            {"type": "impression", "notificationId": plain, "at": t(30)},
                                            {"type": "close", "notificationId": plain, "at": t(29)}]))
    for vid, events in pages:
        for e in events:
            for k in [k for k, v in e.items() if v is None]:
                del e[k]
    return pages


def expected(pages, w, now_ms, half_life_days=7):
    """What every report must say, computed here from the definitions in docs/ANALYTICS.md."""
    ab, plain = w["ab"]["id"], w["plain"]["id"]
    counts = defaultdict(lambda: defaultdict(int))
    uniques = defaultdict(set)
    steps = defaultdict(dict)  # visitor -> step -> first time
    conversions = []
    for vid, events in pages:
        uniques[""].add(vid)
        for e in events:
            key = (e.get("notificationId"), e.get("variantId"))
            counts[key][e["type"]] += 1
            if e["type"] == "conversion":
                counts[key]["value"] += e.get("value", 0)
                conversions.append(e)
            if e["type"] == "impression":
                uniques["n:" + e["notificationId"]].add(vid)
            name = {"impression": "i", "hover": "h", "click": "k", "conversion": "c"}.get(e["type"])
            if name:
                if e["type"] != "conversion" and e.get("notificationId") != ab:
                    continue
                steps[vid].setdefault(name, e["at"])
                steps[vid][name] = min(steps[vid][name], e["at"])
    total = defaultdict(int)
    for key, c in counts.items():
        for k, v in c.items():
            total[k] += v
    # Funnel for the A/B notification, window 1440 minutes.
    funnel = [0, 0, 0, 0]
    for vid, s in steps.items():
        t0 = s.get("i")
        if t0 is None:
            continue
        funnel[0] += 1
        prev = t0
        for index, name in enumerate(["h", "k", "c"], start=1):
            at = s.get(name)
            if at is None or at < prev or at > t0 + 1440 * 60_000:
                break
            funnel[index] += 1
            prev = at
    # Attribution, window 7 days, half-life 7 days.
    window = 7 * 86_400_000
    models = {m: defaultdict(float) for m in ["first_touch", "last_touch", "linear", "time_decay"]}
    attributed = unattributed = repeat = 0
    for c in conversions:
        if c.get("previousConversionAt") and c["at"] - c["previousConversionAt"] < window:
            repeat += 1
            continue
        touches = [(x["at"], x["notificationId"]) for x in c.get("touches", []) if c["at"] - x["at"] <= window]
        if not c.get("touches") and c.get("notificationId"):
            touches = [(c["at"], c["notificationId"])]
        touches.sort()
        if not touches:
            unattributed += 1
            continue
        attributed += 1
        models["first_touch"][touches[0][1]] += 1
        models["last_touch"][touches[-1][1]] += 1
        for _, n in touches:
            models["linear"][n] += 1 / len(touches)
        weights = [2 ** (-(c["at"] - at) / (half_life_days * 86_400_000)) for at, _ in touches]
        for (at, n), wgt in zip(touches, weights):
            models["time_decay"][n] += wgt / sum(weights)
    return {"counts": counts, "total": total, "uniques": {k: len(v) for k, v in uniques.items()}, "funnel": funnel,
            "models": models, "attributed": attributed, "unattributed": unattributed, "repeat": repeat, "conversions": len(conversions)}


def test_every_report_is_exact(herald):
    w = world(herald)
    site, h = w["site"], w["h"]
    now_ms = int(time.time() * 1000)
    pages = scenario(w, now_ms)
    session = requests.Session()
    for vid, events in pages:
        r = session.post(herald.url(f"/widget/v1/{site['publicKey']}/beacons"), headers={"User-Agent": BROWSER},
                         json={"visitorId": vid, "sessionId": "s-" + vid, "referrer": "https://www.google.com/?q=x",
                               "utm": {"source": "Newsletter"}, "events": events})
        assert r.status_code == 202, r.text
    # A crawler's beacons are counted apart.
    post(herald, site, {"visitorId": "googlebot-1", "events": [{"type": "impression", "notificationId": w["ab"]["id"]}]},
         ua="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    exp = expected(pages, w, now_ms)
    today = datetime.datetime.now(ZoneInfo(TZ)).date()
    window = f"from={today - datetime.timedelta(days=1)}&to={today}"

    def report(path):
        r = requests.get(herald.url(f"/sites/{site['id']}/analytics{path}"), headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    summary = wait_for(lambda: (lambda s: s if s["totals"]["impressions"] == exp["total"]["impression"] and s["bots"]["beacons"] == 1 else None)(
        report(f"?{window}")), timeout=30)
    assert summary, report(f"?{window}")
    assert summary["source"] == ("clickhouse" if herald.store == "clickhouse" else "rollups")
    totals = summary["totals"]
    for name, key in [("pageviews", "pageview"), ("impressions", "impression"), ("hovers", "hover"), ("clicks", "click"),
                      ("closes", "close"), ("conversions", "conversion")]:
        assert totals[name] == exp["total"][key], name
    assert totals["conversionValue"] == pytest.approx(exp["total"]["value"])
    assert totals["uniqueVisitors"] == exp["uniques"][""]
    assert totals["clickThroughRate"] == round(exp["total"]["click"] / exp["total"]["impression"], 4)
    assert totals["conversionRate"] == round(exp["total"]["conversion"] / exp["uniques"][""], 4)
    assert summary["unattributedConversions"] == exp["counts"][(None, None)]["conversion"]
    assert sum(p["impressions"] for p in summary["series"]) == exp["total"]["impression"]
    assert sum(p["uniqueVisitors"] for p in summary["series"]) == exp["uniques"][""]
    assert [p["start"][:10] for p in summary["series"]] == [str(today - datetime.timedelta(days=1)), str(today)]
    per = {n["notificationId"]: n for n in summary["notifications"]}
    ab = per[w["ab"]["id"]]
    assert ab["name"] == "Recent purchases"
    assert ab["metrics"]["uniqueVisitors"] == exp["uniques"]["n:" + w["ab"]["id"]]
    variants = {v["variantId"]: v for v in ab["variants"]}
    for arm in (w["control"], w["urgent"]):
        c = exp["counts"][(w["ab"]["id"], arm)]
        assert variants[arm]["metrics"]["impressions"] == c["impression"]
        assert variants[arm]["metrics"]["conversions"] == c["conversion"]
    assert per[w["plain"]["id"]]["metrics"]["closes"] == 2
    assert per[w["plain"]["id"]]["metrics"]["uniqueVisitors"] == exp["uniques"]["n:" + w["plain"]["id"]]

    hourly = report(f"?from={today}&to={today}&interval=hour")
    assert len(hourly["series"]) in (23, 24, 25)
    assert all(p["uniqueVisitors"] is None for p in hourly["series"])
    assert sum(p["clicks"] for p in hourly["series"]) == sum(p["clicks"] for p in summary["series"] if p["start"][:10] == str(today))

    funnel = report(f"/funnels?{window}&notificationId={w['ab']['id']}")
    assert [s["name"] for s in funnel["steps"]] == ["impression", "hover", "click", "conversion"]
    assert [s["visitors"] for s in funnel["steps"]] == exp["funnel"]
    assert funnel["steps"][1]["dropOff"] == exp["funnel"][0] - exp["funnel"][1]

    attribution = report(f"/attribution?{window}")
    assert attribution["conversions"]["total"] == exp["conversions"]
    assert attribution["conversions"]["attributed"] == exp["attributed"]
    assert attribution["conversions"]["unattributed"] == exp["unattributed"]
    assert attribution["conversions"]["repeatWithinWindow"] == exp["repeat"]
    for model in attribution["models"]:
        got = {n["notificationId"]: n["conversions"] for n in model["notifications"]}
        want = exp["models"][model["model"]]
        assert set(got) == set(want), model["model"]
        for n, value in want.items():
            assert got[n] == pytest.approx(value, abs=1e-4), (model["model"], n)

    # Another half-life is credited from the raw conversions, by the same rule.
    decay = report(f"/attribution?{window}&halfLifeDays=0.5&model=time_decay")
    assert [m["model"] for m in decay["models"]] == ["time_decay"]
    want = expected(pages, w, now_ms, half_life_days=0.5)["models"]["time_decay"]
    got = {n["notificationId"]: n["conversions"] for n in decay["models"][0]["notifications"]}
    assert set(got) == set(want)
    for n, value in want.items():
        assert got[n] == pytest.approx(value, abs=1e-4), n
    assert decay["conversions"] == attribution["conversions"]

    cohorts = report(f"/cohorts?{window}")
    this_week = str(today - datetime.timedelta(days=today.weekday()))
    week = next(c for c in cohorts["cohorts"] if c["week"] == this_week)
    assert week["newVisitors"] == 400  # the visitors whose first sight was today
    assert week["weeks"][0]["conversions"] == sum(1 for _, ev in pages[:400] for e in ev if e["type"] == "conversion")

    tests = report(f"/ab-tests?{window}")["tests"]
    test = next(t for t in tests if t["notificationId"] == w["ab"]["id"])
    arms = {v["variantId"]: v for v in test["variants"]}
    n1, x1 = arms[w["control"]]["exposures"], arms[w["control"]]["conversions"]
    n2, x2 = arms[w["urgent"]]["exposures"], arms[w["urgent"]]["conversions"]
    # The multi-touch visitors add a control exposure and conversion each (no flags: once per visitor and day).
    assert (n1, n2) == (206, 200)
    assert (x1, x2) == (26, 50)
    p1, p2, pooled = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert arms[w["urgent"]]["pValue"] == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-6)
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    low, high = arms[w["urgent"]]["differenceInterval"]
    assert low == pytest.approx(p2 - p1 - stats.norm.ppf(0.975) * se, abs=1e-5)
    assert high == pytest.approx(p2 - p1 + stats.norm.ppf(0.975) * se, abs=1e-5)
    assert arms[w["urgent"]]["lift"] == pytest.approx((p2 - p1) / p1, abs=1e-5)
    chi = stats.chisquare([n1, n2], [(n1 + n2) / 2] * 2)
    assert test["sampleRatioMismatch"]["pValue"] == pytest.approx(chi.pvalue, abs=1e-6)
    assert test["verdict"] == "winner" and test["winner"] == w["urgent"]

    # Funnels are kept per day: a visitor who goes through every step afterwards is counted at once.
    late = [{"type": "impression", "notificationId": w["ab"]["id"], "variantId": w["control"], "at": now_ms - 4_000},
            {"type": "hover", "notificationId": w["ab"]["id"], "variantId": w["control"], "at": now_ms - 3_000},
            {"type": "click", "notificationId": w["ab"]["id"], "variantId": w["control"], "at": now_ms - 2_000},
            {"type": "conversion", "notificationId": w["ab"]["id"], "variantId": w["control"], "goal": "purchase", "value": 1.5,
             "at": now_ms - 1_000}]
    post(herald, site, {"visitorId": "visitor-late", "events": late})
    more = [v + 1 for v in exp["funnel"]]
    assert wait_for(lambda: [s["visitors"] for s in report(f"/funnels?{window}&notificationId={w['ab']['id']}")["steps"]] == more,
                    timeout=30), report(f"/funnels?{window}&notificationId={w['ab']['id']}")
    attributed = report(f"/attribution?{window}")["conversions"]
    assert attributed["total"] == exp["conversions"] + 1 and attributed["attributed"] == exp["attributed"] + 1


def test_ab_verdicts_guard_small_samples_and_broken_splits(herald):
    if herald.store != "sqlite":
        pytest.skip("statistics do not depend on the store")
    w = world(herald)
    site = w["site"]
    now_ms = int(time.time() * 1000)
    # 30 vs 90 exposures with weights 50/50: too few to compare, and a broken split.
    for i in range(120):
        arm = w["control"] if i < 30 else w["urgent"]
        post(herald, site, {"visitorId": f"srm-visitor-{i:04d}", "events": [
            {"type": "impression", "notificationId": w["ab"]["id"], "variantId": arm, "at": now_ms}]})
    r = wait_for(lambda: (lambda t: t if t and sum(v["exposures"] for v in t[0]["variants"]) == 120 else None)(
        requests.get(herald.url(f"/sites/{site['id']}/analytics/ab-tests"), headers=w["h"]).json()["tests"]), timeout=20)
    assert r
    test = r[0]
    chi = stats.chisquare([30, 90])
    assert test["sampleRatioMismatch"]["pValue"] == pytest.approx(chi.pvalue, abs=1e-6)
    assert test["sampleRatioMismatch"]["flagged"] is True
    assert test["verdict"] == "sample_ratio_mismatch" and test["winner"] is None
    assert all(v.get("pValue") is None for v in test["variants"])


def test_bad_parameters_and_other_tenants(herald):
    if herald.store == "clickhouse":
        pytest.skip("validation does not depend on the store")
    w = world(herald)
    site, h = w["site"], w["h"]
    for path in ["?from=2026-02-30", "?from=2026-05-02&to=2026-05-01", "?interval=week", "?from=2020-01-01&to=2026-01-01",
                 "/funnels?steps=impression", "/funnels?steps=impression,teleport", "/funnels?window=0",
                 "/attribution?windowDays=90", "/attribution?model=magic", "?variantId=" + w["control"], "?notificationId=nope"]:
        r = requests.get(herald.url(f"/sites/{site['id']}/analytics{path}"), headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["errors"], path
    stranger = herald.signup()
    for path in ["", "/funnels", "/cohorts", "/attribution", "/ab-tests"]:
        r = requests.get(herald.url(f"/sites/{site['id']}/analytics{path}"), headers=herald.auth(stranger["token"]))
        assert r.status_code == 404, path
    r = requests.get(herald.url(f"/sites/{site['id']}/analytics"))
    assert r.status_code == 401
    bad = requests.post(herald.url(f"/widget/v1/{site['publicKey']}/beacons"), json={"visitorId": "visitor-1234", "events": [
        {"type": "conversion", "value": "a lot"}]})
    assert bad.status_code == 422
    bad = requests.post(herald.url(f"/widget/v1/{site['publicKey']}/beacons"), json={"visitorId": "visitor-1234", "events": [
        {"type": "conversion", "value": 1e300}, {"type": "conversion", "touches": [{"notificationId": w["ab"]["id"], "type": "stare", "at": 1}]}]})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"events.0.value", "events.1.touches.0.type"} <= fields


def test_report_queries_are_rate_limited_per_site():
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_ANALYTICS_QUERIES_PER_MINUTE": "3"}).start()
    try:
        w = world(server)
        codes = [requests.get(server.url(f"/sites/{w['site']['id']}/analytics/funnels"), headers=w["h"]) for _ in range(4)]
        assert [c.status_code for c in codes] == [200, 200, 200, 429]
        assert int(codes[-1].headers["Retry-After"]) >= 1
        assert codes[-1].json()["type"] == "/problems/rate-limited"
    finally:
        server.stop()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_kill_9_during_a_stream_of_beacons_loses_nothing_accepted(store):
    database_url = postgres_url_or_skip() if store == "postgres" else None
    server = Herald(database_url=database_url, env=QUIET_LIMITS).start()
    w = world(server)
    site = w["site"]
    accepted = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            body = {"visitorId": f"crash-{worker}-{i:06d}", "events": [
                {"type": "impression", "notificationId": w["ab"]["id"], "variantId": w["control"]} for _ in range(5)]}
            try:
                r = s.post(server.url(f"/widget/v1/{site['publicKey']}/beacons"), json=body, timeout=5)
            except requests.RequestException:
                continue
            if r.status_code == 202:
                with lock:
                    accepted.append(5)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    time.sleep(2.5)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    count = sum(accepted)
    assert count > 0
    restarted = Herald(data_dir=server.data_dir, database_url=database_url, env=QUIET_LIMITS).start()
    try:
        today = datetime.datetime.now(ZoneInfo(TZ)).date()
        def impressions():
            r = requests.get(restarted.url(f"/sites/{site['id']}/analytics?from={today - datetime.timedelta(days=1)}&to={today}"),
                             headers=w["h"])
            return r.json()["totals"]["impressions"] if r.status_code == 200 else None
        # Every accepted beacon is counted; a few more may be, whose 202 was lost with the process.
        assert wait_for(lambda: (impressions() or 0) >= count, timeout=60), (impressions(), count)
        time.sleep(1)
        assert count <= impressions() <= count + 6 * 5 * 2
    finally:
        restarted.stop()


class SwitchableProxy:
    """A TCP proxy in front of ClickHouse that can be taken down (connections refused, open ones cut) and back up
    on the same port."""

    def __init__(self, target_url):
        host, port = target_url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.target = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.sockets = set()
        self.listener = None
        self.up()

    def up(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self):
        listener, self.listener = self.listener, None
        if listener:
            listener.close()
        with self.lock:
            for s in list(self.sockets):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()

    def _accept(self, listener):
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self.lock:
                self.sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_clickhouse_down_while_beacons_arrive_loses_nothing(store):
    """ClickHouse goes away while beacons keep arriving (and Herald restarts meanwhile): once it is back, every raw
    event of both organizations is in it exactly once and the reports count each beacon once."""
    clickhouse = clickhouse_url_or_skip()
    database_url = postgres_url_or_skip() if store == "postgres" else None
    proxy = SwitchableProxy(clickhouse)
    database = "herald_" + uuid.uuid4().hex[:10]
    # Credentials in the URL go in X-ClickHouse-User/-Key headers (the test server's user has an empty password).
    url = proxy.url.replace("http://", "http://default:@")
    env = dict(QUIET_LIMITS, HERALD_CLICKHOUSE_URL=url, HERALD_CLICKHOUSE_DATABASE=database, HERALD_CLICKHOUSE_FLUSH_INTERVAL="0.2")
    server = Herald(database_url=database_url, env=env).start()
    try:
        worlds = [world(server), world(server)]  # two organizations: raw events are read per organization
        sent = [0, 0]
        today = datetime.datetime.now(ZoneInfo(TZ)).date()

        def send(round_, pages):
            session = requests.Session()
            for i in range(pages):
                for k, w in enumerate(worlds):
                    events = [{"type": "pageview", "path": "/"}] + [
                        {"type": "impression", "notificationId": w["ab"]["id"], "variantId": w["control"]} for _ in range(3)]
                    r = session.post(server.url(f"/widget/v1/{w['site']['publicKey']}/beacons"), headers={"User-Agent": BROWSER},
                                     json={"visitorId": f"outage-{round_}-{i:05d}", "events": events})
                    assert r.status_code == 202, r.text
                    sent[k] += 3

        def summary(w):
            r = requests.get(server.url(f"/sites/{w['site']['id']}/analytics?from={today - datetime.timedelta(days=1)}&to={today}"),
                             headers=w["h"])
            return r

        def all_counted():
            answers = [summary(w) for w in worlds]
            return all(r.status_code == 200 and r.json()["totals"]["impressions"] == n for r, n in zip(answers, sent))

        send(0, 15)
        assert wait_for(all_counted, timeout=30), [summary(w).text for w in worlds]

        proxy.down()
        send(1, 40)
        down = summary(worlds[0])
        assert down.status_code == 503, down.text
        assert down.headers["Content-Type"] == "application/problem+json"
        assert "ClickHouse" in down.json()["detail"]
        time.sleep(1.5)  # the shipper fails and backs off; the rows wait in the store
        # A restart while ClickHouse is still down: shipping resumes from what ClickHouse holds.
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server = Herald(data_dir=server.data_dir, database_url=database_url, env=env).start()
        send(2, 20)
        time.sleep(0.5)
        proxy.up()

        # (The restarted instance first waits out the dead one's 30 s lease on the beacons consumer.)
        assert wait_for(all_counted, timeout=90), ([summary(w).text for w in worlds], sent,
                                                   [line for line in server.output().splitlines() if "ClickHouse" in line][-10:])
        time.sleep(1)  # nothing more arrives later either
        assert all_counted()
        rows = clickhouse_query(clickhouse, database,
                                "SELECT count() AS n, uniqExact(seq) AS seqs, countIf(type = 'impression') AS i FROM events")
        total = sum(sent) // 3 * 4  # a pageview and three impressions per page
        assert rows == [{"n": total, "seqs": total, "i": sum(sent)}]
        assert "default:@" not in server.output()
    finally:
        server.stop()
        proxy.down()


def test_a_new_postgres_database_gets_its_daily_partitions_at_once():
    """On a brand-new database the maintenance job is scheduled once the migrations ran (it used to be tried once,
    before them, and never again), so today's partition exists before the first beacons and they land in it, not in
    the default partition that retention cannot drop."""
    url = postgres_url_or_skip()
    server = Herald(database_url=url, env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        def partitions():
            out = subprocess.run(
                ["psql", url.replace("?sslmode=disable", ""), "-qAtc",
                 "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                 "JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = 'analytics' AND p.relname = 'events'"],
                capture_output=True, text=True)
            return set(out.stdout.split()) if out.returncode == 0 else set()
        today = datetime.datetime.now(datetime.timezone.utc).date()
        expected = {f"events_p{(today + datetime.timedelta(days=d)).strftime('%Y%m%d')}" for d in range(-1, 8)}
        assert wait_for(lambda: expected <= partitions(), 30), partitions()
        w = published_site(server)
        r = requests.post(server.url(f"/widget/v1/{w['site']['publicKey']}/beacons"),
                          json={"visitorId": "partition-visitor-1", "events": [{"type": "impression", "notificationId": w["n"]["id"]}]})
        assert r.status_code == 202

        def today_rows():
            out = subprocess.run(["psql", url.replace("?sslmode=disable", ""), "-qAtc",
                                  f"SELECT (SELECT COUNT(*) FROM analytics.events_p{today.strftime('%Y%m%d')}), "
                                  "(SELECT COUNT(*) FROM analytics.events_default)"], capture_output=True, text=True)
            return out.stdout.split()
        assert wait_for(lambda: today_rows() == ["1|0"], 15), today_rows()
    finally:
        server.stop()
