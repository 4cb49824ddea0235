"""Backup and restore drill, on both stores: write data, back up while Herald runs, destroy everything, restore,
and check every row and the audit chain; then the ways a restore must refuse (a damaged backup, a store that
already holds data, Herald's own row-level-security-bound role on PostgreSQL).
"""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
import requests

from conftest import HERALD_BIN, Herald, postgres_url_or_skip, wait_for


def herald_cli(*args, env=None):
    return subprocess.run([HERALD_BIN, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def admin_url_for(url):
    """The same database reached as the cluster's superuser, which backups need (Herald's role is bound by RLS)."""
    admin = os.environ["HERALD_TEST_POSTGRES_ADMIN_URL"]
    database = url.split("?")[0].rsplit("/", 1)[1]
    return admin.split("?")[0].rsplit("/", 1)[0] + "/" + database + "?sslmode=disable"


def psql_admin(sql):
    subprocess.run(["psql", os.environ["HERALD_TEST_POSTGRES_ADMIN_URL"], "-qc", sql], check=True, capture_output=True)


def write_world(server):
    """A user, an organization, a site, a published notification, an activity and beacons: rows in every service."""
    user = server.signup(email=f"drill-{uuid.uuid4().hex[:8]}@example.com")
    auth = server.auth(user["token"])
    org = requests.post(server.url("/organizations"), json={"name": "Drill"}, headers=auth).json()["id"]
    site = requests.post(server.url(f"/organizations/{org}/sites"), json={"name": "Shop", "domain": "shop.example.com"},
                         headers=auth).json()
    assert wait_for(lambda: requests.get(server.url(f"/widget/v1/{site['publicKey']}/feed")).status_code == 200)
    notification = requests.post(server.url(f"/sites/{site['id']}/notifications"),
                                 json={"name": "Recent sales", "type": "recent_activity"}, headers=auth)
    assert notification.status_code == 201, notification.text
    nid = notification.json()["id"]
    assert requests.post(server.url(f"/sites/{site['id']}/notifications/{nid}/publish"), headers=auth).status_code == 200
    r = requests.post(server.url(f"/sites/{site['id']}/activities"), json={"type": "purchase", "firstName": "Ada", "city": "Lyon"},
                      headers={"Authorization": f"Bearer {site['secretKey']}"})
    assert r.status_code == 202, r.text
    beacons = {"visitorId": "visitor-drill-1", "events": [{"type": "impression", "notificationId": nid, "path": "/"}] * 3}
    assert requests.post(server.url(f"/widget/v1/{site['publicKey']}/beacons"), json=beacons).status_code == 202

    def settled():
        summary = requests.get(server.url(f"/sites/{site['id']}/analytics"), headers=auth).json()
        return summary.get("totals", {}).get("impressions") == 3
    assert wait_for(settled, timeout=20)
    return {"user": user, "org": org, "site": site, "notification": nid}


def snapshot(server, world):
    """What a site owner sees, to compare before and after the disaster."""
    token = requests.post(server.url("/auth/login"), json={"email": world["user"]["email"], "password": "a long passphrase"})
    assert token.status_code == 200, token.text
    auth = server.auth(token.json()["accessToken"])
    site = world["site"]["id"]
    audit = requests.get(server.url(f"/organizations/{world['org']}/audit-logs?limit=200"), headers=auth).json()["items"]
    verify = requests.get(server.url(f"/organizations/{world['org']}/audit-logs/verify"), headers=auth).json()
    return {
        "me": requests.get(server.url("/users/me"), headers=auth).json()["email"],
        "sites": sorted(s["id"] for s in requests.get(server.url(f"/organizations/{world['org']}/sites"), headers=auth).json()["items"]),
        "notifications": sorted(n["id"] for n in requests.get(server.url(f"/sites/{site}/notifications"), headers=auth).json()["items"]),
        "activities": [a["id"] for a in requests.get(server.url(f"/sites/{site}/activities"), headers=auth).json()["items"]],
        "impressions": requests.get(server.url(f"/sites/{site}/analytics"), headers=auth).json()["totals"]["impressions"],
        "audit": [(a["id"], a["action"]) for a in audit],
        "audit_valid": verify["valid"],
        "feed": [(n["id"], [item.get("id") or item.get("text") for item in n["items"]])
                 for n in requests.get(server.url(f"/widget/v1/{world['site']['publicKey']}/feed")).json()["notifications"]],
    }


def assert_same(before, after):
    """Everything matches, but the audit log has one more record: the sign-in that read it after the restore."""
    assert after["audit"][0][1] == "auth.login.succeeded"
    assert after["audit"][1:] == before["audit"]
    assert {k: v for k, v in after.items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
    assert after["audit_valid"] is True


def test_backup_destroy_restore_drill_on_sqlite():
    data = tempfile.mkdtemp(prefix="herald-drill-")
    backup = os.path.join(tempfile.mkdtemp(prefix="herald-backup-"), "b1")
    server = Herald(data_dir=data, env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        world = write_world(server)
        before = snapshot(server, world)
        # Online: the backup is taken while Herald runs and keeps writing.
        result = herald_cli("backup", "--to", backup, "--data-dir", data)
        assert result.returncode == 0, result.stderr + result.stdout
        assert "the backup holds the key file" in result.stdout
        requests.post(server.url(f"/widget/v1/{world['site']['publicKey']}/beacons"),
                      json={"visitorId": "visitor-after-backup", "events": [{"type": "pageview", "path": "/late"}]})
    finally:
        server.stop()
    assert oct(os.stat(os.path.join(backup, "keys.json")).st_mode & 0o777) == "0o600"
    manifest = json.load(open(os.path.join(backup, "manifest.json")))
    assert manifest["store"] == "sqlite" and manifest["tables"]["users_audit_logs"] > 0

    # The disaster: the whole data directory, keys included, is gone.
    shutil.rmtree(data)
    result = herald_cli("restore", "--from", backup, "--data-dir", data)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "verified" in result.stdout and "audit chains of 1 organization" in result.stdout, result.stdout

    server = Herald(data_dir=data, env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        after = snapshot(server, world)
        assert_same(before, after)
    finally:
        server.stop()

    # A second restore over live data needs --force; a damaged backup is refused before anything is touched.
    refused = herald_cli("restore", "--from", backup, "--data-dir", data)
    assert refused.returncode != 0 and "--force" in refused.stderr
    with open(os.path.join(backup, "herald.sqlite"), "r+b") as f:
        f.seek(4096)
        f.write(b"\x00garbage\x00")
    damaged = herald_cli("restore", "--from", backup, "--data-dir", data, "--force")
    assert damaged.returncode != 0 and "damaged" in damaged.stderr
    assert herald_cli("restore", "--from", data, "--data-dir", data).returncode != 0  # not a backup at all


def test_backup_destroy_restore_drill_on_postgres():
    url = postgres_url_or_skip()
    admin = admin_url_for(url)
    database = url.split("?")[0].rsplit("/", 1)[1]
    data = tempfile.mkdtemp(prefix="herald-drill-")
    backup = os.path.join(tempfile.mkdtemp(prefix="herald-backup-"), "b1")
    server = Herald(data_dir=data, database_url=url, env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        world = write_world(server)
        before = snapshot(server, world)
        # Herald's own role cannot see every tenant's rows: it is refused with the reason.
        refused = herald_cli("backup", "--to", backup + "-as-herald", "--data-dir", data, "--database-url", url)
        assert refused.returncode != 0 and "row-level security" in refused.stderr, refused.stderr
        result = herald_cli("backup", "--to", backup, "--data-dir", data, "--database-url", admin)
        assert result.returncode == 0, result.stderr + result.stdout
    finally:
        server.stop()
    manifest = json.load(open(os.path.join(backup, "manifest.json")))
    assert manifest["store"] == "postgres" and manifest["tables"]["users.audit_logs"] > 0

    # The disaster: the database and the key file are gone; the operator recreates an empty database.
    psql_admin(f"DROP DATABASE {database} WITH (FORCE)")
    psql_admin(f"CREATE DATABASE {database} OWNER herald")
    os.remove(os.path.join(data, "keys.json"))
    result = herald_cli("restore", "--from", backup, "--data-dir", data, "--database-url", admin)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "audit chains of 1 organization" in result.stdout, result.stdout

    # Herald, on its own role again, serves exactly what it served before.
    server = Herald(data_dir=data, database_url=url, env={"HERALD_BCRYPT_COST": "10"}).start()
    try:
        assert_same(before, snapshot(server, world))
    finally:
        server.stop()
    again = herald_cli("restore", "--from", backup, "--data-dir", data, "--database-url", admin)
    assert again.returncode != 0 and "--force" in again.stderr
    # A SQLite backup cannot be restored into PostgreSQL, nor the other way round.
    wrong = herald_cli("restore", "--from", backup, "--data-dir", tempfile.mkdtemp())
    assert wrong.returncode != 0 and "--database-url" in wrong.stderr
