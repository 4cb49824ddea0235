"""Black-box tests of the real `herald` binary: processes, sockets, signals, files.

The test script builds the binary and exports HERALD_BIN; PostgreSQL URLs come from the same script.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HERALD_BIN = os.environ.get("HERALD_BIN", os.path.join(os.path.dirname(__file__), "..", ".build", "debug", "herald"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_postgres_url():
    """A new, empty database owned by Herald's non-superuser role, or None without PostgreSQL."""
    admin = os.environ.get("HERALD_TEST_POSTGRES_ADMIN_URL")
    base = os.environ.get("HERALD_TEST_POSTGRES_URL")
    if not admin or not base:
        return None
    name = "herald_e2e_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name} OWNER herald"], check=True)
    return base.replace("/herald?", f"/{name}?")


class Herald:
    """A running `herald serve` process on its own port and data directory."""

    def __init__(self, data_dir=None, database_url=None, env=None, args=()):
        self.port = free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="herald-e2e-")
        self.database_url = database_url
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None
        # With HERALD_TLS_CERT_FILE the server speaks TLS; the test's own CA and client certificate come from
        # HERALD_TEST_TLS_CA and HERALD_TEST_TLS_CLIENT (a "cert.pem,key.pem" pair) in env.
        self.tls = bool(self.env.get("HERALD_TLS_CERT_FILE"))
        self.verify = self.env.get("HERALD_TEST_TLS_CA", True)
        client = self.env.get("HERALD_TEST_TLS_CLIENT")
        self.cert = tuple(client.split(",")) if client else None
        self.base = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        cmd = [HERALD_BIN, "serve", "--port", str(self.port), "--data-dir", self.data_dir, *self.args]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        self.log = open(os.path.join(self.data_dir, "stdout.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"herald exited with {self.proc.returncode}: {self.output()}")
            try:
                if requests.get(self.base + "/readyz", timeout=1, verify=self.verify, cert=self.cert).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("herald did not become ready: " + self.output())

    def output(self):
        try:
            with open(os.path.join(self.data_dir, "stdout.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode if self.proc else None

    # Convenience API calls -----------------------------------------------------------------
    def url(self, path):
        return self.base + path

    def signup(self, email=None, password="a long passphrase", name="E2E User"):
        email = email or f"e2e-{uuid.uuid4().hex[:8]}@example.com"
        r = requests.post(self.url("/auth/signup"), json={"email": email, "password": password, "name": name})
        assert r.status_code == 201, r.text
        body = r.json()
        return {"token": body["accessToken"], "refresh": body["refreshToken"], "id": body["user"]["id"], "email": email}

    def auth(self, token):
        return {"Authorization": f"Bearer {token}"}


def postgres_url_or_skip():
    """A fresh database; skips the test without PostgreSQL, or fails it when the test script requires one."""
    url = fresh_postgres_url()
    if url is None:
        if os.environ.get("HERALD_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required but not configured")
        pytest.skip("no PostgreSQL configured")
    return url


def wait_for(predicate, timeout=10, interval=0.1):
    """The first truthy value of predicate() within timeout seconds, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def published_site(server, content=None):
    """A new owner's organization with one site and a published recent_activity notification (with `content`, when
    given), once the site reached the Notifications service: {"h": owner's auth headers, "org": the organization,
    "site": the site with its keys, "n": the notification}."""
    owner = server.signup()
    h = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Shops"}, headers=h).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "Kite Shop", "domain": "kites.example.com"},
                         headers=h).json()
    assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200)
    n = requests.post(server.url(f"/sites/{site['id']}/notifications"), headers=h,
                      json={"name": "Recent purchases", "type": "recent_activity", **({"content": content} if content else {})}).json()
    assert requests.post(server.url(f"/sites/{site['id']}/notifications/{n['id']}/publish"), headers=h).status_code == 200
    return {"h": h, "org": org, "site": site, "n": n}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request):
    return postgres_url_or_skip() if request.param == "postgres" else None


@pytest.fixture
def herald(store):
    server = Herald(database_url=store, env={"HERALD_BCRYPT_COST": "10"}).start()
    yield server
    server.stop()
