"""The split deployment: PostgreSQL, Redis, nginx from deploy/nginx/herald.conf on TLS 1.3, and each service as its own
process (two of Notifications) on mutual TLS (nginx presents a client certificate), events on Redis Streams. The core flows run through nginx; then the Analytics process
is killed with SIGKILL and Redis is killed and restarted while beacons stream in, and every beacon that got a 202
is counted exactly once, by Analytics and by Billing."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import requests

from conftest import HERALD_BIN, ROOT, Herald, free_port, postgres_url_or_skip, wait_for

SHOP = "split.myshopify.com"
SERVICES = ["users", "notifications", "analytics", "integrations", "billing"]


def need(tool):
    if shutil.which(tool) is None:
        if os.environ.get("HERALD_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(f"{tool} is required (scripts/test.sh installs it)")
        pytest.skip(f"{tool} is not installed")


class Redis:
    """A Redis of the test's own, durable (append-only file, fsync on every write), so it can be killed and restarted."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.password = uuid.uuid4().hex
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir, "--requirepass", self.password,
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "-a", self.password, "--no-auth-warning", "PING"],
                                               capture_output=True, text=True).stdout.strip() == "PONG", 10)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def make_certificates(directory):
    """A CA of the test's own, a server certificate for 127.0.0.1 and localhost (nginx and every service), and client
    certificates for nginx and for the test itself, all signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Herald split test CA",
        "-keyout", f"{directory}/ca.key", "-out", f"{directory}/ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f"{directory}/server.key", "-out", f"{directory}/server.csr")
    with open(f"{directory}/server.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", f"{directory}/server.csr", "-CA", f"{directory}/ca.pem", "-CAkey", f"{directory}/ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{directory}/server.ext", "-out", f"{directory}/server.pem")
    for client in ("gateway", "tester"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={client}", "-keyout", f"{directory}/{client}.key", "-out", f"{directory}/{client}.csr")
        run("x509", "-req", "-in", f"{directory}/{client}.csr", "-CA", f"{directory}/ca.pem", "-CAkey", f"{directory}/ca.key", "-CAcreateserial",
            "-days", "2", "-out", f"{directory}/{client}.pem")


class Gateway:
    """nginx running deploy/nginx/herald.conf with this test's upstreams, port, certificate and cache directory."""

    def __init__(self, workdir, upstreams, pki):
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(os.path.join(self.dir, "cache"))
        # nginx's workers run as an unprivileged user when the master is root: they must reach the cache.
        os.chmod(workdir, 0o755)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "cache"), 0o777)
        self.ca = os.path.join(pki, "ca.pem")
        self.port = free_port()
        with open(os.path.join(ROOT, "deploy", "nginx", "herald.conf")) as f:
            conf = f.read()
        for service in SERVICES:
            servers = " ".join(f"server 127.0.0.1:{port};" for port in upstreams[service])
            start = conf.index(f"upstream herald_{service} ")
            end = conf.index("}", start)
            conf = conf[:start] + f"upstream herald_{service} {{ {servers} keepalive 16; " + conf[end:]
        conf = (conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} ssl http2;")
                .replace("/etc/herald/tls/server.pem", f"{pki}/server.pem")
                .replace("/etc/herald/tls/server.key", f"{pki}/server.key")
                # The services speak mutual TLS: nginx connects with https and its own client certificate.
                .replace("proxy_pass http://", "proxy_pass https://")
                .replace("    proxy_http_version 1.1;\n", f"""    proxy_http_version 1.1;
    proxy_ssl_certificate {pki}/gateway.pem;
    proxy_ssl_certificate_key {pki}/gateway.key;
    proxy_ssl_trusted_certificate {pki}/ca.pem;
    proxy_ssl_verify on;
    proxy_ssl_name localhost;
    proxy_ssl_protocols TLSv1.3;
""")
                .replace("/var/cache/nginx/herald", f"{self.dir}/cache"))
        with open(os.path.join(self.dir, "herald.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log {self.dir}/access.log;
  client_body_temp_path {self.dir}; proxy_temp_path {self.dir}; fastcgi_temp_path {self.dir};
  uwsgi_temp_path {self.dir}; scgi_temp_path {self.dir};
  include {self.dir}/herald.conf;
}}
""")
        check = subprocess.run(["nginx", "-t", "-c", f"{self.dir}/nginx.conf"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(["nginx", "-c", f"{self.dir}/nginx.conf", "-g", "daemon off;"])
        self.base = f"https://127.0.0.1:{self.port}"
        assert wait_for(lambda: self._up(), 10), open(f"{self.dir}/error.log").read()

    def _up(self):
        try:
            return requests.get(self.base + "/healthz", verify=self.ca, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def url(self, path):
        return self.base + path

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


@pytest.fixture
def deployment():
    for tool in ["redis-server", "redis-cli", "nginx", "openssl"]:
        need(tool)
    database = postgres_url_or_skip()
    workdir = tempfile.mkdtemp(prefix="herald-split-")
    redis = Redis(workdir)
    redis.start()
    pki = os.path.join(workdir, "pki")
    os.makedirs(pki)
    make_certificates(pki)
    env = {"HERALD_BCRYPT_COST": "10", "HERALD_REDIS_URL": redis.url, "HERALD_TRUSTED_PROXIES": "127.0.0.1/32",
           "HERALD_TLS_CERT_FILE": f"{pki}/server.pem", "HERALD_TLS_KEY_FILE": f"{pki}/server.key", "HERALD_TLS_CLIENT_CA_FILE": f"{pki}/ca.pem",
           "HERALD_TEST_TLS_CA": f"{pki}/ca.pem", "HERALD_TEST_TLS_CLIENT": f"{pki}/tester.pem,{pki}/tester.key",
           "HERALD_SHOPIFY_API_KEY": "split-app", "HERALD_SHOPIFY_API_SECRET": "shpss_" + "s" * 32,
           "HERALD_INTERNAL_TOKEN": "split-internal-token-" + "i" * 32}
    # Herald's role migrates; then each service gets a role of its own that owns its schema and nothing else
    # (deploy/postgres/service-roles.sql), and runs as it without migrating: a service reaching into another's
    # tables would fail here.
    migrated = subprocess.run([HERALD_BIN, "migrate", "--database-url", database, "--data-dir", os.path.join(workdir, "migrate")],
                              capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    admin = os.environ["HERALD_TEST_POSTGRES_ADMIN_URL"].split("?")[0].rsplit("/", 1)[0] + "/" + database.split("?")[0].rsplit("/", 1)[1]
    roles = subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-q", "-f", os.path.join(ROOT, "deploy", "postgres", "service-roles.sql")],
                           capture_output=True, text=True, timeout=60)
    assert roles.returncode == 0, roles.stderr

    def role_url(service):
        return database.replace("://herald:herald@", f"://herald_{service}:herald_{service}@")

    for service, foreign in [("notifications", "users.organizations"), ("users", "billing.accounts"), ("billing", "analytics.events")]:
        denied = subprocess.run(["psql", role_url(service), "-qAtc", f"SELECT count(*) FROM {foreign}"], capture_output=True, text=True)
        assert denied.returncode != 0 and "permission denied" in denied.stderr, (service, foreign, denied.stdout, denied.stderr)

    processes = {}
    users = Herald(database_url=role_url("users"), env=env, args=["--services", "users", "--no-migrate"]).start()
    processes["users"] = [users]

    def another(service):
        # Every process shares the first one's keys, as docs/DEPLOYMENT.md tells operators to do.
        data_dir = tempfile.mkdtemp(prefix=f"herald-split-{service}-")
        for name in os.listdir(users.data_dir):
            path = os.path.join(users.data_dir, name)
            if name != "stdout.log":
                (shutil.copytree if os.path.isdir(path) else shutil.copy2)(path, os.path.join(data_dir, name))
        # Access checks go to the Users process over mutual TLS, not to the Users tables.
        return Herald(data_dir=data_dir, database_url=role_url(service), env={**env, "HERALD_USERS_URL": f"https://127.0.0.1:{users.port}"},
                      args=["--services", service, "--no-migrate"])

    for service in SERVICES[1:]:
        processes[service] = [another(service).start()]
    processes["notifications"].append(another("notifications").start())
    for service in SERVICES[1:]:
        assert "access checks: the Users service" in processes[service][0].output(), processes[service][0].output()[-2000:]
    gateway = Gateway(workdir, {name: [p.port for p in procs] for name, procs in processes.items()}, pki)
    world = {"redis": redis, "gateway": gateway, "processes": processes, "another": another, "pki": pki}
    yield world
    gateway.stop()
    for procs in world["processes"].values():
        for p in procs:
            if p.proc and p.proc.poll() is None:
                p.stop()
    redis.kill()


def api(gw, method, path, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, gw.url(path), headers=headers, verify=gw.ca, timeout=15, **kwargs)


def shopify_order(order_id):
    created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
    return {"id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}", "created_at": created,
            "customer": {"id": 42, "first_name": "Sarah", "last_name": "Connor"},
            "billing_address": {"first_name": "Sarah", "city": "Austin", "province_code": "TX", "country_code": "US"},
            "line_items": [{"id": 1, "title": "Blue Hoodie", "quantity": 1, "price": "49.00", "product_id": 7}]}


class SSE:
    """Reads a Server-Sent Events stream in the background and keeps the events it saw."""

    def __init__(self, url, **tls):
        self.events = []
        self.response = requests.get(url, stream=True, timeout=(5, 60), headers={"Accept": "text/event-stream"}, **tls)
        assert self.response.status_code == 200, self.response.text
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    self.events.append((event, line[5:].strip()))
        except Exception:
            pass

    def close(self):
        self.response.close()


def test_the_core_flows_through_nginx_and_nothing_acknowledged_is_lost(deployment):
    gw = deployment["gateway"]
    processes = deployment["processes"]

    # TLS 1.3 only, and the gateway refuses what it should before Herald sees it.
    assert requests.get(gw.url("/healthz"), verify=gw.ca).status_code == 200
    assert api(gw, "POST", "/auth/signup", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}).status_code == 413
    assert api(gw, "TRACE", "/auth/login").status_code == 405
    # The internal API is not reachable through the gateway, token or not.
    assert api(gw, "GET", f"/internal/v1/sites/{uuid.uuid4()}", headers={"Authorization": "Bearer split-internal-token-" + "i" * 32}).status_code == 404

    # Sign-up → organization → site, on the Users service.
    signup = api(gw, "POST", "/auth/signup", json={"email": f"split-{uuid.uuid4().hex[:6]}@example.com", "password": "a long passphrase",
                                                   "name": "Split"})
    assert signup.status_code == 201, signup.text
    token = signup.json()["accessToken"]
    org = api(gw, "POST", "/organizations", token, json={"name": "Split"}).json()
    site = api(gw, "POST", f"/organizations/{org['id']}/sites", token, json={"name": "Shop", "domain": "split.example.com"}).json()
    sid, pk = site["id"], site["publicKey"]

    # A notification on the Notifications service, which learns of the site from Users' event through Redis.
    def create_notification():
        r = api(gw, "POST", f"/sites/{sid}/notifications", token, json={"name": "Recent purchases", "type": "recent_activity"})
        return r if r.status_code == 201 else None
    created = wait_for(create_notification, 20)
    assert created, "the Notifications service never learned of the site"
    nid = created.json()["id"]
    assert api(gw, "POST", f"/sites/{sid}/notifications/{nid}/publish", token).status_code == 200
    # The Notifications process checked the caller's session and membership with the Users process, on mutual TLS.
    assert "/internal/v1/users/" in processes["users"][0].output() and "/internal/v1/organizations/" in processes["users"][0].output()

    # Services refuse a client without a certificate from the deployment's CA, even on a public path.
    second = processes["notifications"][1]
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(second.url(f"/widget/v1/{pk}/feed"), verify=second.verify, timeout=5)
    # A visitor connected to the second Notifications instance directly.
    stream = SSE(second.url(f"/widget/v1/{pk}/stream"), verify=second.verify, cert=second.cert)

    # A signed Shopify webhook through nginx, on the Integrations service.
    secret = "split-shopify-secret"
    integration = api(gw, "POST", f"/sites/{sid}/integrations", token,
                      json={"type": "shopify", "name": "Split store", "config": {"shopDomain": SHOP, "webhookSecret": secret}})
    assert integration.status_code == 201, integration.text
    hook = integration.json()["webhookUrl"]
    raw = json.dumps(shopify_order(5001)).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    path = "/hooks/" + hook.rsplit("/hooks/", 1)[1]
    sent = api(gw, "POST", path, data=raw, headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                                                   "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                                                   "X-Shopify-Hmac-Sha256": digest})
    assert sent.status_code in (200, 202), sent.text

    # The popup: in the feed through nginx, and pushed on the other instance's live stream.
    def in_feed():
        r = api(gw, "GET", f"/widget/v1/{pk}/feed")
        return r.status_code == 200 and "Sarah" in r.text
    assert wait_for(in_feed, 30), "the activity never reached the feed: " + api(gw, "GET", f"/widget/v1/{pk}/feed").text
    assert wait_for(lambda: any(event == "activity" and "Sarah" in data for event, data in stream.events), 15), stream.events
    stream.close()
    cached = api(gw, "GET", f"/widget/v1/{pk}/feed")
    assert cached.headers.get("X-Cache-Status") in ("HIT", "MISS", "EXPIRED", "UPDATING", "REVALIDATED", "STALE")

    # Beacons through nginx while the Analytics process is killed mid-stream and Redis is killed and restarted.
    accepted = 0
    lock = threading.Lock()
    stop = threading.Event()

    def send_beacons(worker):
        nonlocal accepted
        n = 0
        while not stop.is_set():
            n += 1
            body = {"visitorId": f"visitor-{worker:02d}-{n:06d}", "events": [{"type": "impression", "notificationId": nid, "path": "/"}] * 5}
            try:
                r = api(gw, "POST", f"/widget/v1/{pk}/beacons", json=body)
            except requests.RequestException:
                continue
            if r.status_code == 202:
                with lock:
                    accepted += 5
            time.sleep(0.01)

    senders = [threading.Thread(target=send_beacons, args=(i,)) for i in range(4)]
    for t in senders:
        t.start()
    time.sleep(2)
    analytics = processes["analytics"][0]
    analytics.proc.send_signal(signal.SIGKILL)
    analytics.proc.wait()
    time.sleep(2)
    deployment["redis"].kill()
    time.sleep(1)
    deployment["redis"].start()
    time.sleep(1)
    restarted = Herald(data_dir=analytics.data_dir, database_url=analytics.database_url, env=analytics.env,
                       args=analytics.args)
    restarted.port = analytics.port
    restarted.base = analytics.base
    restarted.start()
    processes["analytics"] = [restarted]
    time.sleep(3)
    stop.set()
    for t in senders:
        t.join()
    assert accepted > 0

    def impressions():
        summary = api(gw, "GET", f"/sites/{sid}/analytics", token).json()
        return summary.get("totals", {}).get("impressions")

    def metered():
        usage = api(gw, "GET", f"/sites/{sid}/usage", token).json()
        return next((m["usage"] for m in usage.get("metrics", []) if m["metric"] == "impressions"), None)

    assert wait_for(lambda: impressions() == accepted, 90, 1), f"Analytics counted {impressions()} of {accepted} accepted impressions"
    assert wait_for(lambda: metered() == accepted, 60, 1), f"Billing metered {metered()} of {accepted} accepted impressions"
    # Nothing arrives late to be counted twice.
    time.sleep(3)
    assert impressions() == accepted and metered() == accepted
