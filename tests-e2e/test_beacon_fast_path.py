"""Beacons answered on the event loop (BeaconsFastRoute through HeraldHTTP/FastPath.swift) must be indistinguishable
from the router's answer, durable before their 202 like the router's, answered in order on a pipelining connection,
counted and logged; everything the router would refuse stays the router's (same problem documents)."""
import datetime
import re
import uuid

import pytest
import requests

from conftest import Herald, published_site, wait_for
from test_feed_fast_path import raw, requests_counted, responses

TOKEN = "metrics-" + uuid.uuid4().hex
VARYING = {"x-request-id", "date"}


@pytest.fixture(scope="module")
def world(request):
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_METRICS_TOKEN": TOKEN}).start()
    w = published_site(server)
    w["server"] = server
    w["path"] = f"/widget/v1/{w['site']['publicKey']}/beacons"
    yield w
    server.stop()


def beacon(world, visitor="fast-visitor-0001", kind="impression"):
    return {"visitorId": visitor, "sessionId": "fast-session-0001", "referrer": "https://www.google.com/search?q=kites",
            "utm": {"source": "Newsletter"}, "events": [{"type": kind, "notificationId": world["n"]["id"], "path": "/kites"}]}


def impressions(world):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    r = requests.get(world["server"].url(f"/sites/{world['site']['id']}/analytics?from={today - datetime.timedelta(days=1)}"
                                         f"&to={today + datetime.timedelta(days=1)}"), headers=world["h"])
    return r.json()["totals"]["impressions"] if r.status_code == 200 else None


def access_lines(server, ids):
    return [line for line in server.output().splitlines() if any(f"request_id={i} " in line for i in ids)]


def test_the_fast_answer_equals_the_routers_and_is_durable(world):
    server = world["server"]
    # The first beacon of a site goes through the router (which learns the site and the day's salt).
    first = requests.post(server.url(world["path"]), json=beacon(world), headers={"X-Request-Id": "beacon-first"})
    assert first.status_code == 202 and first.json() == {"accepted": 1}
    fast = requests.post(server.url(world["path"]), json=beacon(world), headers={"X-Request-Id": "beacon-fast"})
    # `Connection: close` is always the router's.
    routed = requests.post(server.url(world["path"]), json=beacon(world), headers={"Connection": "close", "X-Request-Id": "beacon-routed"})
    assert fast.status_code == routed.status_code == 202
    assert fast.content == routed.content == b'{"accepted":1}'
    strip = lambda r: {k.lower(): v for k, v in r.headers.items() if k.lower() not in VARYING | {"connection"}}
    assert strip(fast) == strip(routed), (strip(fast), strip(routed))
    assert fast.headers["Access-Control-Allow-Origin"] == "*" and fast.headers["Cache-Control"] == "no-store"
    assert fast.headers["X-Request-Id"] == "beacon-fast"
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", fast.headers["Date"])
    # The second was answered on the event loop: no router request context (hb.request.id) in its log line.
    assert wait_for(lambda: len(access_lines(server, ["beacon-fast", "beacon-routed"])) == 2, 5)
    fast_line, = access_lines(server, ["beacon-fast"])
    routed_line, = access_lines(server, ["beacon-routed"])
    assert "hb.request.id" not in fast_line and "hb.request.id" in routed_line
    assert "POST" in fast_line and "202" in fast_line
    # All three are stored and counted once each.
    assert wait_for(lambda: impressions(world) == 3, 15), impressions(world)


def test_what_the_router_refuses_it_still_refuses(world):
    server = world["server"]
    requests.post(server.url(world["path"]), json=beacon(world))  # the site is known to the fast path
    cases = [
        (b"not json", 400, "malformed-json"),
        (b"   ", 400, "malformed-json"),
        (b'{"visitorId":"short","events":[{"type":"impression","notificationId":"' + world["n"]["id"].encode() + b'"}]}', 422, None),
        (b'{"visitorId":"fast-visitor-0002","events":[{"type":"teleport"}]}', 422, None),
        (b'{"visitorId":"fast-visitor-0002","events":[]}', 422, None),
    ]
    for body, status, slug in cases:
        fast = requests.post(server.url(world["path"]), data=body, headers={"Content-Type": "text/plain"})
        routed = requests.post(server.url(world["path"]), data=body, headers={"Content-Type": "text/plain", "Connection": "close"})
        assert fast.status_code == routed.status_code == status, (body, fast.text)
        assert fast.headers["Content-Type"].startswith("application/problem+json")
        assert fast.headers["Access-Control-Allow-Origin"] == "*"
        strip = lambda r: {k: v for k, v in r.json().items() if k not in {"requestId"}}
        assert strip(fast) == strip(routed)
        if slug:
            assert fast.json()["type"].endswith(slug)
    unknown = requests.post(server.url("/widget/v1/pk_unknownunknownunknown/beacons"), json=beacon(world))
    assert unknown.status_code == 404 and unknown.headers["Access-Control-Allow-Origin"] == "*"
    too_big = requests.post(server.url(world["path"]), data=b"{" + b" " * 20000 + b"}", headers={"Content-Type": "text/plain"})
    assert too_big.status_code == 413


def test_pipelined_beacons_are_answered_in_order(world):
    server = world["server"]
    requests.post(server.url(world["path"]), json=beacon(world))
    assert requests.get(server.url(world["path"].replace("/beacons", "/feed"))).status_code == 200
    body = (b'{"visitorId":"pipeline-visitor-02","events":[{"type":"impression","notificationId":"'
            + world["n"]["id"].encode() + b'","path":"/"}]}')
    post = (b"POST " + world["path"].encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)
    bad = b"POST " + world["path"].encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbad"
    feed = b"GET " + world["path"].replace("/beacons", "/feed").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    data, closed = raw(server, post + feed + post + bad + health + post + post + feed, expect=8)
    got = responses(data)
    assert [status for status, _, _ in got] == [202, 200, 202, 400, 200, 202, 202, 200], [(s, h) for s, h, _ in got]
    assert all(b == b'{"accepted":1}' for s, _, b in got if s == 202)
    assert not closed


def test_fast_beacons_are_counted_in_metrics(world):
    server = world["server"]
    count = lambda: requests_counted(server, TOKEN, "/widget/v1/{publicKey}/beacons", "POST", 202)
    requests.post(server.url(world["path"]), json=beacon(world))
    before = count()
    for i in range(5):
        assert requests.post(server.url(world["path"]), json=beacon(world, visitor=f"counted-visitor-{i:04d}")).status_code == 202
    assert count() == before + 5
