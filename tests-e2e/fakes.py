"""Local servers that speak the documented protocols of services the tests cannot reach:
Shopify (OAuth token exchange, GraphQL Admin API with its cost-based throttle), WooCommerce (REST API),
and a webhook receiver that verifies Standard Webhooks signatures with the `standardwebhooks` package."""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import free_port


class Server:
    def __init__(self, handler_factory):
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler_factory(self))
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.httpd.shutdown()


def reply(handler, status, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else b""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


class FakeShopify(Server):
    """OAuth token exchange and the GraphQL Admin API's `orders` query, with a leaky-bucket cost throttle:
    a query that costs more than is available is answered with a THROTTLED error, as Shopify does."""

    def __init__(self, api_key, api_secret, orders, maximum=40.0, restore_rate=20.0, cost=30.0, page_size=2):
        self.api_key, self.api_secret, self.orders = api_key, api_secret, orders
        self.maximum, self.restore_rate, self.cost, self.page_size = maximum, restore_rate, cost, page_size
        self.available, self.last = maximum, time.time()
        self.throttled = 0
        self.queries = 0
        self.token = "shpat_" + "t" * 24
        self.lock = threading.Lock()
        super().__init__(lambda server: type("H", (Handler,), {"server_ref": server}))

    def take(self):
        with self.lock:
            now = time.time()
            self.available = min(self.maximum, self.available + (now - self.last) * self.restore_rate)
            self.last = now
            if self.available < self.cost:
                self.throttled += 1
                return False
            self.available -= self.cost
            return True

    def handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        if h.path == "/admin/oauth/access_token":
            if body.get("client_id") != self.api_key or body.get("client_secret") != self.api_secret or body.get("code") != "good-code":
                return reply(h, 400, {"error": "invalid_request"})
            return reply(h, 200, {"access_token": self.token, "scope": "read_orders,read_customers"})
        if h.path.startswith("/admin/api/") and h.path.endswith("/graphql.json"):
            if h.headers.get("X-Shopify-Access-Token") != self.token:
                return reply(h, 401, {"errors": "[API] Invalid API key or access token"})
            self.queries += 1
            throttle = lambda: {"maximumAvailable": self.maximum, "currentlyAvailable": self.available, "restoreRate": self.restore_rate}
            if not self.take():
                return reply(h, 200, {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                                      "extensions": {"cost": {"requestedQueryCost": self.cost, "throttleStatus": throttle()}}})
            start = int(body.get("variables", {}).get("after") or 0)
            first = min(int(body["variables"]["first"]), self.page_size)
            page = self.orders[start:start + first]
            return reply(h, 200, {
                "data": {"orders": {"edges": [{"cursor": str(start + i + 1), "node": o} for i, o in enumerate(page)],
                                    "pageInfo": {"hasNextPage": start + first < len(self.orders), "endCursor": str(start + first)}}},
                "extensions": {"cost": {"requestedQueryCost": self.cost, "actualQueryCost": self.cost, "throttleStatus": throttle()}},
            })
        reply(h, 404, {"errors": "Not Found"})


class FakeWooCommerce(Server):
    """GET /wp-json/wc/v3/orders with HTTP Basic consumer key and secret."""

    def __init__(self, key, secret, orders):
        self.expected = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        self.orders = orders
        super().__init__(lambda server: type("H", (Handler,), {"server_ref": server}))

    def handle(self, h):
        if not h.path.startswith("/wp-json/wc/v3/orders"):
            return reply(h, 404, {"code": "rest_no_route"})
        if h.headers.get("Authorization") != self.expected:
            return reply(h, 401, {"code": "woocommerce_rest_cannot_view"})
        reply(h, 200, self.orders)


class Receiver(Server):
    """Records every delivery; answers with the next status of `script` (then 200), verifying signatures."""

    def __init__(self, secret=None, script=(), headers=None):
        self.secret, self.script, self.extra = secret, list(script), headers or {}
        self.requests = []
        super().__init__(lambda server: type("H", (Handler,), {"server_ref": server}))

    def handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length)
        self.requests.append({"at": time.time(), "headers": {k.lower(): v for k, v in h.headers.items()}, "body": body})
        status = self.script.pop(0) if self.script else 200
        reply(h, status, {"ok": status < 300}, self.extra if status >= 300 else None)


class Handler(BaseHTTPRequestHandler):
    server_ref = None

    def do_GET(self):
        self.server_ref.handle(self)

    def do_POST(self):
        self.server_ref.handle(self)

    def log_message(self, *args):
        pass
