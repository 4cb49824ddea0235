"""The running server: lifecycle, persistence, logs and request metadata, on both stores."""
import json
import os
import threading
import time

import requests

from conftest import Herald


def test_restart_loses_nothing(store):
    server = Herald(database_url=store).start()
    user = server.signup()
    org = requests.post(server.url("/organizations"), json={"name": "Durable"}, headers=server.auth(user["token"])).json()
    site = requests.post(server.url(f"/organizations/{org['id']}/sites"), json={"name": "S", "domain": "s.example.com"},
                         headers=server.auth(user["token"])).json()
    assert server.stop() == 0

    again = Herald(data_dir=server.data_dir, database_url=store).start()
    try:
        # The same keys: the old access token is still valid, the secret key still resolves.
        me = requests.get(again.url("/users/me"), headers=again.auth(user["token"]))
        assert me.status_code == 200, me.text
        assert requests.get(again.url(f"/sites/{site['id']}"), headers=again.auth(user["token"])).json()["name"] == "S"
        login = requests.post(again.url("/auth/login"), json={"email": user["email"], "password": "a long passphrase"})
        assert login.status_code == 200
        refreshed = requests.post(again.url("/auth/refresh"), json={"refreshToken": user["refresh"]})
        assert refreshed.status_code == 200
    finally:
        again.stop()


def test_sigterm_drains_in_flight_requests(herald):
    user = herald.signup()
    results = {}

    def slow_login():
        # A login hashes with bcrypt off the event loop: long enough to be in flight when SIGTERM arrives.
        r = requests.post(herald.url("/auth/login"), json={"email": user["email"], "password": "a long passphrase"}, timeout=30)
        results["status"] = r.status_code

    thread = threading.Thread(target=slow_login)
    thread.start()
    time.sleep(0.02)
    assert herald.stop() == 0
    thread.join(timeout=30)
    assert results.get("status") == 200


def test_request_id_and_client_address_reach_the_audit_log(herald):
    user = herald.signup()
    r = requests.post(herald.url("/organizations"), json={"name": "Audited"}, headers={**herald.auth(user["token"]), "X-Request-Id": "e2e-req-1"})
    assert r.headers["X-Request-Id"] == "e2e-req-1"
    org = r.json()["id"]
    log = requests.get(herald.url(f"/organizations/{org}/audit-logs"), headers=herald.auth(user["token"])).json()["items"]
    created = next(item for item in log if item["action"] == "organization.created")
    assert created["requestId"] == "e2e-req-1"
    assert created["ip"] == "127.0.0.1"
    assert created["userAgent"].startswith("python-requests")
    signup = next(item for item in log if item["action"] == "auth.signup")
    assert signup["ip"] == "127.0.0.1"


def test_json_logs_one_line_per_request():
    server = Herald(env={"HERALD_LOG_FORMAT": "json"}).start()
    try:
        requests.get(server.url("/healthz"), headers={"X-Request-Id": "log-check-1"})
        time.sleep(0.3)
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is a JSON object
    request_lines = [r for r in records if r.get("msg") == "request" and r.get("request_id") == "log-check-1"]
    assert len(request_lines) == 1
    assert request_lines[0]["status"] == "200"
    assert request_lines[0]["path"] == "/healthz"


def test_no_plaintext_email_in_the_data_dir():
    server = Herald().start()
    email = "needle-in-haystack@example.net"
    try:
        user = server.signup(email=email, name="Needle Person")
        requests.post(server.url("/auth/login"), json={"email": email, "password": "wrong password"})
        requests.put(server.url("/users/me"), json={"name": "Still Needle"}, headers=server.auth(user["token"]))
    finally:
        server.stop()
    for root, _, files in os.walk(server.data_dir):
        for name in files:
            if name == "stdout.log":
                continue
            with open(os.path.join(root, name), "rb") as f:
                content = f.read()
            assert email.encode() not in content, name
            assert b"Needle Person" not in content, name
