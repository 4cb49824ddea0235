"""Exports, scheduled reports and archives against the real binary: CSV and PDF files checked with the csv module
and pdftotext, reports mailed through a real SMTP server (aiosmtpd, with STARTTLS and AUTH) and a local server
that speaks SendGrid's v3 API, raw events archived to a directory and to an S3 bucket (moto) and restored."""
import csv
import datetime
import gzip
import io
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

from conftest import HERALD_BIN, ROOT, Herald, free_port, postgres_url_or_skip, wait_for
from test_analytics import BROWSER, QUIET_LIMITS, world

SINK = os.path.join(ROOT, "scripts", "lib", "smtp_sink.py")
SENDGRID = os.path.join(ROOT, "scripts", "lib", "sendgrid_fake.py")


def send_beacons(herald, w, visitors, per_visitor=3):
    now = int(time.time() * 1000)
    for i in range(visitors):
        events = [{"type": "pageview", "path": "/", "at": now}]
        events += [{"type": "impression", "notificationId": w["ab"]["id"], "variantId": w["control"], "at": now} for _ in range(per_visitor - 2)]
        events.append({"type": "click", "notificationId": w["ab"]["id"], "variantId": w["control"], "at": now})
        r = requests.post(herald.url(f"/widget/v1/{w['site']['publicKey']}/beacons"), headers={"User-Agent": BROWSER},
                          json={"visitorId": f"report-visitor-{i:05d}", "events": events})
        assert r.status_code == 202, r.text


def impressions_visible(herald, w, count):
    def check():
        r = requests.get(herald.url(f"/sites/{w['site']['id']}/analytics"), headers=w["h"])
        return r.status_code == 200 and r.json()["totals"]["impressions"] >= count
    assert wait_for(check, timeout=30)


def finished_export(herald, w, body):
    r = requests.post(herald.url(f"/sites/{w['site']['id']}/analytics/export"), headers=w["h"], json=body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["links"]["download"] is None
    assert r.headers["Location"] == job["links"]["self"]
    seen = []

    def done():
        current = requests.get(herald.url(job["links"]["self"]), headers=w["h"]).json()
        seen.append(current["progress"])
        return current if current["status"] in ("succeeded", "failed") else None
    final = wait_for(done, timeout=60, interval=0.05)
    assert final and final["status"] == "succeeded", final
    assert final["progress"] == 1 and final["links"]["download"]
    return final, seen


def pdf_text(data):
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True, check=True)
        assert out.stderr == b"", out.stderr
        return out.stdout.decode()


@pytest.fixture(params=["sqlite", "postgres"])
def herald(request):
    database_url = postgres_url_or_skip() if request.param == "postgres" else None
    server = Herald(database_url=database_url, env=QUIET_LIMITS).start()
    server.store = request.param
    yield server
    server.stop()


def test_exports_as_csv_and_pdf(herald):
    w = world(herald)
    send_beacons(herald, w, 40)
    impressions_visible(herald, w, 40)
    today = datetime.date.today()
    params = {"from": str(today - datetime.timedelta(days=6)), "to": str(today + datetime.timedelta(days=1))}

    job, _ = finished_export(herald, w, {"report": "summary", "format": "csv", "parameters": params})
    r = requests.get(herald.url(job["links"]["download"]), headers=w["h"])
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"] and job["fileName"] in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Notification performance" and rows[0][1] == "Shop"
    totals_header = rows.index(["Totals"]) + 1
    totals = dict(zip(rows[totals_header], rows[totals_header + 1]))
    assert totals["Impressions"] == "40" and totals["Clicks"] == "40" and totals["Pageviews"] == "40"
    assert totals["Unique visitors"] == "40"

    job, _ = finished_export(herald, w, {"report": "summary", "format": "pdf", "parameters": params})
    r = requests.get(herald.url(job["links"]["download"]), headers=w["h"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF-1.")
    text = pdf_text(r.content)
    for expected in ["Notification performance", "Shop", params["from"], "Totals", "Impressions", "Per notification and variant",
                     "Recent purchases", "Page 1 of"]:
        assert expected in text, expected

    for report in ["funnels", "cohorts", "attribution", "ab-tests"]:
        job, _ = finished_export(herald, w, {"report": report, "format": "pdf", "parameters": {"notificationId": w["ab"]["id"]}
                                             if report == "funnels" else {}})
        assert pdf_text(requests.get(herald.url(job["links"]["download"]), headers=w["h"]).content).strip()

    listed = requests.get(herald.url(f"/sites/{w['site']['id']}/analytics/exports?limit=3"), headers=w["h"]).json()
    assert len(listed["items"]) == 3 and listed["nextCursor"]
    rest = requests.get(herald.url(f"/sites/{w['site']['id']}/analytics/exports?cursor={listed['nextCursor']}"), headers=w["h"]).json()
    assert len(listed["items"]) + len(rest["items"]) == 6


def test_raw_events_export_streams_in_chunks_with_progress(herald):
    w = world(herald)
    # 2,000 visitors x 20 events: about 40,000 rows, several chunks of the file.
    now = int(time.time() * 1000)
    session = requests.Session()
    for i in range(2000):
        events = [{"type": "impression", "notificationId": w["ab"]["id"], "variantId": w["urgent"], "path": "/p/" + "x" * 40, "at": now}
                  for _ in range(20)]
        r = session.post(herald.url(f"/widget/v1/{w['site']['publicKey']}/beacons"), json={"visitorId": f"stream-{i:06d}", "events": events})
        assert r.status_code == 202
    impressions_visible(herald, w, 40_000)
    today = datetime.date.today()
    job, seen = finished_export(herald, w, {"report": "events", "parameters": {"from": str(today - datetime.timedelta(days=1)),
                                                                                "to": str(today + datetime.timedelta(days=1))}})
    assert job["rows"] == 40_000 and job["bytes"] > 1024 * 1024
    r = session.get(herald.url(job["links"]["download"]), headers=w["h"], stream=True)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == job["bytes"]
    body = b"".join(r.iter_content(65536))
    assert len(body) == job["bytes"]
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 40_000
    assert {row["type"] for row in rows} == {"impression"} and {row["variant_id"] for row in rows} == {w["urgent"]}
    assert all(len(row["visitor"]) == 32 and "stream-" not in row["visitor"] for row in rows[:100])  # pseudonyms only


def test_export_requests_are_checked_and_private(herald):
    if herald.store != "sqlite":
        pytest.skip("validation does not depend on the store")
    w = world(herald)
    url = herald.url(f"/sites/{w['site']['id']}/analytics/export")
    for body, field in [({"format": "csv"}, "report"), ({"report": "everything"}, "report"), ({"report": "summary", "format": "xls"}, "format"),
                        ({"report": "events", "format": "pdf"}, "format"), ({"report": "summary", "parameters": {"color": "red"}}, "parameters.color"),
                        ({"report": "summary", "parameters": {"from": "2026-02-30"}}, "parameters.from"),
                        ({"report": "events", "parameters": {"from": "2026-01-01", "to": "2026-03-01"}}, "parameters.from")]:
        r = requests.post(url, headers=w["h"], json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (body, r.json())
    assert requests.post(url, headers={**w["h"], "Content-Type": "application/json"}, data="{").status_code == 400
    job, _ = finished_export(herald, w, {"report": "summary"})
    stranger = herald.auth(herald.signup()["token"])
    assert requests.get(herald.url(job["links"]["self"]), headers=stranger).status_code == 404
    assert requests.get(herald.url(job["links"]["download"]), headers=stranger).status_code == 404
    assert requests.get(herald.url(job["links"]["download"])).status_code == 401
    assert requests.post(url, headers=stranger, json={"report": "summary"}).status_code == 404
    missing = herald.url(f"/sites/{w['site']['id']}/analytics/exports/{uuid.uuid4()}")
    assert requests.get(missing, headers=w["h"]).status_code == 404


# --- scheduled reports -------------------------------------------------------------------------------------------

def start_process(args, ready_file, timeout=15):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = wait_for(lambda: open(ready_file).read().strip() if os.path.exists(ready_file) else None, timeout=timeout)
    if not port:
        proc.kill()
        raise RuntimeError("did not start: " + proc.stderr.read().decode())
    return proc, int(port)


@pytest.fixture
def smtp_server():
    """aiosmtpd requiring STARTTLS and AUTH, with a throwaway certificate Herald is told to trust."""
    work = tempfile.mkdtemp(prefix="herald-smtp-")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    mail = os.path.join(work, "mail")
    proc, port = start_process(["python3", SINK, "--dir", mail, "--ready-file", os.path.join(work, "port"), "--cert", cert, "--key", key,
                                "--user", "herald", "--password", "s3cret pass"], os.path.join(work, "port"))
    yield {"url": f"smtp://herald:s3cret%20pass@127.0.0.1:{port}?tls=required", "ca": cert, "dir": mail}
    proc.terminate()
    proc.wait()


def received(directory, count):
    def messages():
        if not os.path.isdir(directory):
            return None
        found = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
        return [json.load(open(os.path.join(directory, f))) for f in found] if len(found) >= count else None
    return wait_for(messages, timeout=30)


def scheduled(herald, w, **fields):
    body = {"name": "Weekly numbers", "report": "summary", "format": "pdf", "frequency": "weekly", "weekday": 1, "hour": 8,
            "recipients": ["Owner@Example.com", "team@example.com"]}
    body.update(fields)
    return requests.post(herald.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports"), headers=w["h"], json=body)


def test_scheduled_report_is_mailed_over_smtp_with_starttls(smtp_server):
    server = Herald(env={**QUIET_LIMITS, "HERALD_MAIL_URL": smtp_server["url"], "HERALD_MAIL_CA_FILE": smtp_server["ca"],
                         "HERALD_MAIL_FROM": "Herald Reports <reports@herald.test>"}).start()
    try:
        w = world(server)
        r = scheduled(server, w)
        assert r.status_code == 201, r.text
        report = r.json()
        assert report["recipients"] == ["owner@example.com", "team@example.com"]
        assert report["timezone"] == "America/Chicago" and report["lastStatus"] is None
        next_run = datetime.datetime.fromisoformat(report["nextRunAt"].replace("Z", "+00:00")).astimezone(
            __import__("zoneinfo").ZoneInfo("America/Chicago"))
        assert next_run.weekday() == 0 and next_run.hour == 8 and next_run.minute == 0
        assert next_run > datetime.datetime.now(datetime.timezone.utc)

        sent = requests.post(server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports/{report['id']}/send"), headers=w["h"])
        assert sent.status_code == 202, sent.text
        messages = received(smtp_server["dir"], 1)
        assert messages, server.output()[-2000:]
        message = messages[0]
        assert message["tls"] is True and message["authenticated_as"] == "herald"
        assert sorted(message["rcpt_tos"]) == ["owner@example.com", "team@example.com"]
        parsed = message["parsed"]
        assert "Weekly numbers" in parsed["subject"] and "Shop" in parsed["subject"]
        assert "Notification performance for Shop" in parsed["text"]
        [attachment] = parsed["attachments"]
        assert attachment["content_type"] == "application/pdf" and attachment["filename"].endswith(".pdf")
        text = pdf_text(open(attachment["path"], "rb").read())
        assert "Notification performance" in text and "Totals" in text

        deliveries = wait_for(lambda: (lambda d: d if d and d[0]["status"] == "sent" else None)(requests.get(
            server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports/{report['id']}/deliveries"), headers=w["h"]).json()["items"]))
        assert deliveries, "the delivery was not recorded as sent"
        assert deliveries[0]["trigger"] == "manual" and deliveries[0]["recipients"] == 2 and deliveries[0]["attempts"] == 1
        period_to = datetime.date.fromisoformat(deliveries[0]["periodTo"])
        assert (period_to - datetime.date.fromisoformat(deliveries[0]["periodFrom"])).days == 6
        again = requests.get(server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports/{report['id']}"), headers=w["h"]).json()
        assert again["lastStatus"] == "sent"
    finally:
        server.stop()


@pytest.fixture
def sendgrid():
    servers = []

    def start(mode="ok"):
        work = tempfile.mkdtemp(prefix="herald-sendgrid-")
        proc, port = start_process(["python3", SENDGRID, "--key", "SG.test-key", "--dir", work, "--ready-file", os.path.join(work, "port"),
                                    "--mode", mode, "--retry-after", "1"], os.path.join(work, "port"))
        servers.append(proc)
        return {"url": f"http://127.0.0.1:{port}", "dir": work}
    yield start
    for proc in servers:
        proc.terminate()
        proc.wait()


def sendgrid_env(fake):
    return {**QUIET_LIMITS, "HERALD_MAIL_URL": "sendgrid://", "HERALD_SENDGRID_API_KEY": "SG.test-key", "HERALD_SENDGRID_URL": fake["url"],
            "HERALD_MAIL_FROM": "reports@herald.test", "HERALD_MAIL_RETRY_SCHEDULE": "1,1"}


def test_scheduled_report_goes_through_sendgrid_and_failures_are_retried_and_visible(sendgrid):
    good = sendgrid("ok")
    server = Herald(env=sendgrid_env(good)).start()
    try:
        w = world(server)
        report = scheduled(server, w, format="csv", frequency="daily", hour=6).json()
        requests.post(server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports/{report['id']}/send"), headers=w["h"])
        records = wait_for(lambda: [f for f in os.listdir(good["dir"]) if f.startswith("request-")] or None, timeout=30)
        assert records
        record = json.load(open(os.path.join(good["dir"], records[0])))
        assert record["status"] == 202 and record["key_ok"] is True
        body = record["body"]
        assert {t["email"] for t in body["personalizations"][0]["to"]} == {"owner@example.com", "team@example.com"}
        assert body["attachments"][0]["filename"].endswith(".csv")
    finally:
        server.stop()

    failing = sendgrid("server-error")
    server = Herald(env=sendgrid_env(failing)).start()
    try:
        w = world(server)
        report = scheduled(server, w).json()
        requests.post(server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports/{report['id']}/send"), headers=w["h"])
        url = server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports/{report['id']}/deliveries")
        failed = wait_for(lambda: (lambda d: d if d and d[0]["status"] == "failed" else None)(requests.get(url, headers=w["h"]).json()["items"]),
                          timeout=30)
        assert failed, requests.get(url, headers=w["h"]).json()
        assert failed[0]["attempts"] == 3 and "500" in failed[0]["error"]
        assert len([f for f in os.listdir(failing["dir"]) if f.startswith("request-")]) == 3
    finally:
        server.stop()


def test_scheduled_reports_are_validated_and_private():
    server = Herald(env=QUIET_LIMITS).start()
    try:
        w = world(server)
        base = server.url(f"/sites/{w['site']['id']}/analytics/scheduled-reports")
        for fields, field in [({"frequency": "hourly"}, "frequency"), ({"hour": 24}, "hour"), ({"weekday": 0}, "weekday"),
                              ({"monthDay": 31}, "monthDay"), ({"recipients": []}, "recipients"), ({"recipients": ["not-an-email"]}, "recipients.0"),
                              ({"report": "events"}, "report"), ({"parameters": {"from": "2026-01-01"}}, "parameters.from"),
                              ({"parameters": {"interval": "week"}}, "parameters.interval"), ({"name": ""}, "name")]:
            r = scheduled(server, w, **fields)
            assert r.status_code == 422, (fields, r.text)
            assert field in {e["field"] for e in r.json()["errors"]}, (fields, r.json())
        report = scheduled(server, w, frequency="monthly", monthDay=1).json()
        item = f"{base}/{report['id']}"
        assert requests.get(base, headers=w["h"]).json()["items"][0]["id"] == report["id"]
        changed = requests.put(item, headers=w["h"], json={"enabled": False, "hour": 23})
        assert changed.status_code == 200 and changed.json()["enabled"] is False and changed.json()["hour"] == 23
        stranger = server.auth(server.signup()["token"])
        assert requests.get(item, headers=stranger).status_code == 404
        assert requests.delete(item, headers=stranger).status_code == 404
        assert requests.post(base, headers=stranger, json={}).status_code == 404
        assert requests.delete(item, headers=w["h"]).status_code == 204
        assert requests.get(item, headers=w["h"]).status_code == 404
    finally:
        server.stop()


# --- archives ---------------------------------------------------------------------------------------------------

def age_raw_events(herald, days):
    """Moves every raw event `days` into the past, as if it had been recorded then."""
    shift = days * 86_400_000
    if herald.database_url:
        subprocess.run(["psql", os.environ["HERALD_TEST_POSTGRES_ADMIN_URL"].replace("/postgres?", "/" + herald.database_url.split("/")[-1].split("?")[0] + "?"),
                        "-qc", f"UPDATE analytics.events SET at_ms = at_ms - {shift}"], check=True)
    else:
        db = sqlite3.connect(os.path.join(herald.data_dir, "herald.sqlite"), timeout=10)
        db.execute("UPDATE analytics_events SET at_ms = at_ms - ?", (shift,))
        db.commit()
        db.close()


def raw_count(herald):
    if herald.database_url:
        admin = os.environ["HERALD_TEST_POSTGRES_ADMIN_URL"].replace("/postgres?", "/" + herald.database_url.split("/")[-1].split("?")[0] + "?")
        out = subprocess.run(["psql", admin, "-qAtc", "SELECT COUNT(*), COALESCE(SUM(restored), 0) FROM analytics.events"], check=True,
                             capture_output=True, text=True).stdout.strip()
        total, restored = out.split("|")
        return int(total), int(restored)
    db = sqlite3.connect(f"file:{os.path.join(herald.data_dir, 'herald.sqlite')}?mode=ro", uri=True, timeout=10)
    total, restored = db.execute("SELECT COUNT(*), COALESCE(SUM(restored), 0) FROM analytics_events").fetchone()
    db.close()
    return total, restored


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_old_raw_events_are_archived_to_a_directory_and_restored(store):
    database_url = postgres_url_or_skip() if store == "postgres" else None
    env = {**QUIET_LIMITS, "HERALD_ANALYTICS_MAINTENANCE_INTERVAL": "1"}
    server = Herald(database_url=database_url, env=env).start()
    w = world(server)
    other = world(server)  # a second organization: its rows must land in its own files only
    send_beacons(server, w, 30, per_visitor=4)
    send_beacons(server, other, 7, per_visitor=4)
    impressions_visible(server, w, 60)
    impressions_visible(server, other, 14)
    before = requests.get(server.url(f"/sites/{w['site']['id']}/analytics"), headers=w["h"]).json()["totals"]
    server.stop()
    age_raw_events(server, 100)
    old_day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=100)).date()
    server = Herald(data_dir=server.data_dir, database_url=database_url, env=env).start()
    try:
        archive = os.path.join(server.data_dir, "archive", "events", f"day={old_day}")
        def parts():
            found = [os.path.join(d, f) for d, _, names in os.walk(archive) for f in names if f.endswith(".ndjson.gz")]
            return found if len(found) >= 2 else None
        files = wait_for(parts, timeout=30)
        assert files, server.output()[-3000:]
        assert wait_for(lambda: raw_count(server)[0] == 0, timeout=30)
        by_file = {f: [json.loads(line) for line in gzip.open(f).read().splitlines()] for f in files}
        assert len(by_file) == 2, files
        for name, lines in by_file.items():
            # events/day=<day>/org=<organization>/part-<first seq>.ndjson.gz holds that organization's rows only.
            assert {l["organization_id"] for l in lines} == {name.split("org=")[1].split("/")[0]}
        lines = [l for group in by_file.values() for l in group]
        assert sorted(len(group) for group in by_file.values()) == [28, 120]
        assert {l["type"] for l in lines} == {"pageview", "impression", "click"}
        assert all("report-visitor" not in l["visitor"] for l in lines)
        # Day rollups are kept for ever: the numbers of that day do not change when its raw events go.
        after = requests.get(server.url(f"/sites/{w['site']['id']}/analytics?from={old_day - datetime.timedelta(days=1)}"
                                        f"&to={old_day + datetime.timedelta(days=1)}"), headers=w["h"])
        assert after.status_code == 200
    finally:
        server.stop()
    args = [HERALD_BIN, "analytics", "restore", "--from", str(old_day), "--data-dir", server.data_dir]
    if database_url:
        args += ["--database-url", database_url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"{old_day}" in out.stdout and "restored 120 rows" in out.stdout and "restored 28 rows" in out.stdout, out.stdout
    assert raw_count(server) == (148, 148)
    again = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert "already restored" in again.stdout
    assert before["impressions"] == 60


def test_archives_go_to_an_s3_bucket_in_glacier_and_come_back():
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    moto = subprocess.Popen(["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: requests.get(endpoint, timeout=1).status_code < 500 if _up(endpoint) else None, timeout=20)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="herald-archive")
        env = {**QUIET_LIMITS, "HERALD_ANALYTICS_MAINTENANCE_INTERVAL": "1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "HERALD_ANALYTICS_ARCHIVE_URL": f"s3://herald-archive/prod?endpoint={endpoint}&region=us-east-1&storageClass=GLACIER"}
        server = Herald(env=env).start()
        w = world(server)
        send_beacons(server, w, 10)
        impressions_visible(server, w, 10)
        server.stop()
        age_raw_events(server, 95)
        server = Herald(data_dir=server.data_dir, env=env).start()
        try:
            objects = wait_for(lambda: s3.list_objects_v2(Bucket="herald-archive", Prefix="prod/events/").get("Contents"), timeout=30)
            assert objects, server.output()[-3000:]
            head = s3.head_object(Bucket="herald-archive", Key=objects[0]["Key"])
            assert head.get("StorageClass") == "GLACIER"
            assert wait_for(lambda: raw_count(server)[0] == 0, timeout=30)
        finally:
            server.stop()
        day = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=95)).date()
        args = [HERALD_BIN, "analytics", "restore", "--from", str(day - datetime.timedelta(days=1)), "--to", str(day + datetime.timedelta(days=1)),
                "--data-dir", server.data_dir]
        first = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
        assert first.returncode == 0, first.stderr
        if "restore requested" in first.stdout:
            first = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
        assert "restored 30 rows" in first.stdout, first.stdout
        assert raw_count(server) == (30, 30)
    finally:
        moto.terminate()
        moto.wait()


def _up(endpoint):
    try:
        requests.get(endpoint, timeout=1)
        return True
    except requests.RequestException:
        return False
