"""The widget feed answered from memory on the event loop (HeraldHTTP/FastPath.swift) must be indistinguishable from
the router's answer: the same status, headers and bytes, the same 304s, request ids, metrics and access log; and it
must never answer out of turn on a connection that pipelines requests, nor keep a connection the client closes."""
import re
import socket
import time
import uuid

import pytest
import requests

from conftest import Herald, wait_for

TOKEN = "metrics-" + uuid.uuid4().hex
VARYING = {"x-request-id", "date"}


@pytest.fixture(scope="module")
def world():
    server = Herald(env={"HERALD_BCRYPT_COST": "10", "HERALD_METRICS_TOKEN": TOKEN}).start()
    user = server.signup()
    auth = server.auth(user["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Fast"}, headers=auth).json()["id"]
    site = requests.post(server.url(f"/organizations/{org}/sites"), json={"name": "Shop", "domain": "shop.example.com"},
                         headers=auth).json()
    n = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=auth,
                      json={"name": "Recent", "type": "recent_activity"}).json()
    assert requests.post(server.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=auth).status_code == 200
    r = requests.post(server.url(f"/sites/{site['id']}/activities"), headers={"Authorization": f"Bearer {site['secretKey']}"},
                      json={"type": "purchase", "firstName": "Sarah", "city": "Austin", "productName": "Blue Hoodie"})
    assert r.status_code == 202
    yield {"server": server, "site": site, "n": n, "auth": auth}
    server.stop()


def feed_path(world):
    return f"/widget/v1/{world['site']['publicKey']}/feed"


def raw(server, payload, expect):
    """Sends bytes on one connection, reads until `expect` complete responses arrived (at most 20 s: a loaded machine
    can be slow to commit a beacon), then whether the server closes the connection within a second."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.sendall(payload)
    data = b""
    deadline = time.time() + 20
    try:
        while len(responses(data, complete_only=True)) < expect and time.time() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
        sock.settimeout(1)
        try:
            return data, sock.recv(65536) == b""
        except socket.timeout:
            return data, False
    finally:
        sock.close()


def responses(data, complete_only=False):
    """(status, headers, body) of each HTTP/1.1 response in a byte stream (Content-Length bodies only); with
    complete_only, a response still arriving is left out."""
    out = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            break
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        if complete_only and len(rest) < length:
            break
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def test_the_memory_answer_equals_the_routers(world):
    server = world["server"]
    # The first request after a change builds the feed through the router (the activity's events may change it
    # more than once: wait until two requests in a row see the same one).
    first = wait_for(lambda: (lambda r: r.status_code == 200 and "Sarah" in r.text and r)(requests.get(server.url(feed_path(world)))))
    assert first
    for _ in range(50):
        second = requests.get(server.url(feed_path(world)))
        if second.headers["ETag"] == first.headers["ETag"]:
            break
        first = second
        time.sleep(0.1)
    assert second.status_code == 200 and second.content == first.content
    strip = lambda r: {k.lower(): v for k, v in r.headers.items() if k.lower() not in VARYING}
    assert strip(second) == strip(first)
    assert second.headers["Access-Control-Allow-Origin"] == "*" and second.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert second.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert re.fullmatch(r"[0-9a-f]{32}", second.headers["X-Request-Id"]) and second.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", second.headers["Date"])

    # With a query string (the widget's cache buster) too.
    assert requests.get(server.url(feed_path(world) + "?t=1")).content == first.content

    # 304 for the current ETag (in a list, or weak); 200 for another.
    etag = first.headers["ETag"]
    for header in [etag, f'"other", {etag}', f"W/{etag}", "*"]:
        r = requests.get(server.url(feed_path(world)), headers={"If-None-Match": header})
        assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag, header
        assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert requests.get(server.url(feed_path(world)), headers={"If-None-Match": '"other"'}).status_code == 200

    # A well-formed request id is kept; anything else is replaced.
    assert requests.get(server.url(feed_path(world)), headers={"X-Request-Id": "trace-me.1"}).headers["X-Request-Id"] == "trace-me.1"
    replaced = requests.get(server.url(feed_path(world)), headers={"X-Request-Id": "bad id!"}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)

    # What the fast path never takes keeps its router answers: an unknown key, a path beyond the feed, HEAD.
    r = requests.get(server.url("/widget/v1/pk_unknownunknownunknown/feed"))
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert requests.get(server.url(feed_path(world) + "/more")).status_code == 404
    head = requests.head(server.url(feed_path(world)))
    assert head.status_code == 200 and head.headers["ETag"] == etag


def test_a_change_is_seen_at_once(world):
    """The memory answer is the feed cache's: an activity drops it and the next request shows the new item."""
    server, site = world["server"], world["site"]
    before = requests.get(server.url(feed_path(world))).headers["ETag"]
    r = requests.post(server.url(f"/sites/{site['id']}/activities"), headers={"Authorization": f"Bearer {site['secretKey']}"},
                      json={"type": "purchase", "firstName": "Maria", "city": "Lyon", "productName": "Red Scarf"})
    assert r.status_code == 202
    after = wait_for(lambda: (lambda r: "Maria" in r.text and r)(requests.get(server.url(feed_path(world)))), 10)
    assert after and after.headers["ETag"] != before


def test_pipelined_requests_are_answered_in_order(world):
    server = world["server"]
    path = feed_path(world).encode()
    assert requests.get(server.url(feed_path(world))).status_code == 200  # built, so the fast path can take it
    beacon = (b'{"visitorId":"pipeline-visitor-01","events":[{"type":"impression","notificationId":"'
              + world["n"]["id"].encode() + b'","path":"/"}]}')
    pk = world["site"]["publicKey"].encode()
    payload = (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"POST /widget/v1/" + pk + b"/beacons HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(beacon)).encode() + b"\r\n\r\n" + beacon
        + b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n"
    )
    data, closed = raw(server, payload, expect=5)
    got = responses(data)
    assert [status for status, _, _ in got] == [200, 202, 200, 200, 304], [(s, h) for s, h, _ in got]
    assert got[0][2] == got[2][2] and got[0][2].startswith(b"{")
    assert not closed, "a keep-alive connection stays open"


def test_connection_close_is_honoured(world):
    server = world["server"]
    data, closed = raw(server, b"GET " + feed_path(world).encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", expect=1)
    assert responses(data)[0][0] == 200
    assert closed, "the server closes the connection the client asked to close"


def requests_counted(server, token, route, method, status):
    """herald_http_requests_total of the Notifications service for one route, method and status, from /metrics."""
    text = requests.get(server.url("/metrics"), headers={"Authorization": f"Bearer {token}"}).text
    found = [line for line in text.splitlines() if line.startswith("herald_http_requests_total{")
             and f'route="{route}"' in line and f'status="{status}"' in line and f'method="{method}"' in line
             and 'service="notifications"' in line]
    return sum(float(line.rsplit(" ", 1)[1]) for line in found)


def test_memory_answers_are_counted_and_logged(world):
    server = world["server"]
    count = lambda: requests_counted(server, TOKEN, "/widget/v1/{publicKey}/feed", "GET", 200)
    before = count()
    ids = [requests.get(server.url(feed_path(world)), headers={"X-Request-Id": f"counted-{i}"}).headers["X-Request-Id"]
           for i in range(5)]
    assert count() == before + 5
    assert wait_for(lambda: all(f"request_id={i}" in server.output() for i in ids), 5), "each request has its access log line"
    # They were answered from memory: the router's request context (hb.request.id) never existed for them.
    lines = [line for line in server.output().splitlines() if any(f"request_id={i} " in line for i in ids)]
    assert len(lines) == 5 and not any("hb.request.id" in line for line in lines), lines
