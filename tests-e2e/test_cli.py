"""Bad options end with one line on standard error and a non-zero status, never a stack trace."""
import os
import socket
import stat
import subprocess
import tempfile

import pytest

from conftest import HERALD_BIN, Herald, free_port


def run(args, env=None, timeout=60):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([HERALD_BIN, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def assert_one_line_failure(result, *fragments):
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    assert lines[0].startswith("herald: ") or lines[0].startswith("Error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    for marker in ("Fatal error", "Stack dump", "backtrace", ".swift:"):
        assert marker not in result.stderr + result.stdout


def test_unparseable_database_url():
    result = run(["serve", "--port", str(free_port()), "--data-dir", tempfile.mkdtemp(), "--database-url", "mysql://x"])
    assert_one_line_failure(result, "postgres://")


def test_unreachable_database():
    port = free_port()  # nothing listens there
    result = run(["serve", "--port", str(free_port()), "--data-dir", tempfile.mkdtemp(),
                  "--database-url", f"postgres://herald:x@127.0.0.1:{port}/herald?sslmode=disable"])
    assert_one_line_failure(result, "cannot connect to PostgreSQL")


def test_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run(["serve", "--port", str(port), "--data-dir", tempfile.mkdtemp()])
    assert_one_line_failure(result, "already in use")


def test_invalid_port():
    assert_one_line_failure(run(["serve", "--port", "99999", "--data-dir", tempfile.mkdtemp()]), "port")


def test_unwritable_data_dir():
    base = tempfile.mkdtemp()
    path = os.path.join(base, "a-file")
    open(path, "w").close()
    assert_one_line_failure(run(["serve", "--port", str(free_port()), "--data-dir", path]), "data directory")
    if os.geteuid() != 0:  # root can write anywhere
        locked = os.path.join(base, "locked")
        os.mkdir(locked, 0o500)
        assert_one_line_failure(run(["serve", "--port", str(free_port()), "--data-dir", locked]), "data directory")


def test_malformed_key_variable():
    result = run(["serve", "--port", str(free_port()), "--data-dir", tempfile.mkdtemp()],
                 env={"HERALD_JWT_KEYS": "k1:short", "HERALD_DATA_KEYS": "1:AAAA", "HERALD_BLIND_INDEX_KEY": "AAAA"})
    assert_one_line_failure(result, "HERALD_")


def test_unknown_service():
    assert_one_line_failure(run(["serve", "--services", "users,payments", "--data-dir", tempfile.mkdtemp()]), "payments")


def test_migrate_then_serve_without_migrating():
    data = tempfile.mkdtemp()
    first = run(["migrate", "--data-dir", data])
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    again = run(["migrate", "--data-dir", data])
    assert "up to date" in again.stdout
    server = Herald(data_dir=data, args=["--no-migrate"]).start()
    try:
        server.signup()
    finally:
        assert server.stop() == 0


def test_generated_keys_are_private_and_reused():
    data = tempfile.mkdtemp()
    server = Herald(data_dir=data).start()
    server.stop()
    keys = os.path.join(data, "keys.json")
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(data, "herald.sqlite")).st_mode) == 0o600
    before = open(keys).read()
    Herald(data_dir=data).start().stop()
    assert open(keys).read() == before


def test_keys_generate_prints_a_shareable_set():
    result = run(["keys", "generate"])
    assert result.returncode == 0
    env = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert set(env) == {"HERALD_JWT_KEYS", "HERALD_DATA_KEYS", "HERALD_BLIND_INDEX_KEY"}
    # Two instances with the same keys accept each other's tokens.
    database = tempfile.mkdtemp()
    a = Herald(data_dir=database, env=env).start()
    try:
        user = a.signup()
    finally:
        a.stop()
    b = Herald(data_dir=database, env=env).start()
    try:
        import requests
        assert requests.get(b.url("/users/me"), headers=b.auth(user["token"])).status_code == 200
        assert not os.path.exists(os.path.join(database, "keys.json"))
    finally:
        b.stop()
