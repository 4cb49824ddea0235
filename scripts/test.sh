#!/usr/bin/env bash
# Runs Herald's whole test suite on a fresh Debian machine: installs what the tests need (PostgreSQL from
# Debian's packages, Python tools from PyPI), starts a throwaway PostgreSQL cluster on a free port, runs the
# Swift tests against both stores, then the black-box checks against a live server (CLI behaviour,
# OpenAPI validation, schemathesis). Everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/herald-test.XXXXXX)
chmod 755 "$WORK"
PIDS=()

log() { printf '\n==> %s\n' "$*"; }

cleanup() {
  set +e
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done
  if [ -n "${PGDATA_DIR:-}" ] && [ -d "$PGDATA_DIR" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1
  fi
  declare -F stop_clickhouse >/dev/null && stop_clickhouse
  declare -F stop_redis >/dev/null && stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- static checks (seconds; before anything is installed or built) ---------------------------------
log "checking that SQL lives only in stores, migrations and the storage and events libraries"
python3 scripts/check-sql-placement.py --self-test
python3 scripts/check-sql-placement.py
log "checking that every module imports only what Package.swift declares"
python3 scripts/check-module-dependencies.py
if command -v swift-format >/dev/null 2>&1; then
  log "checking the code's format against .swift-format"
  swift-format lint --strict --configuration .swift-format --recursive Sources Tests
fi

# --- dependencies -------------------------------------------------------------------------------
need_apt=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# promtool checks the alert rules (scripts/check-observability.py); the package's server is not needed.
if ! command -v promtool >/dev/null 2>&1; then
  log "installing promtool (Debian's prometheus package)"
  export DEBIAN_FRONTEND=noninteractive
  [ ${#need_apt[@]} -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")

PY=python3
if ! $PY -c 'import schemathesis, openapi_spec_validator, selenium, rjsmin, standardwebhooks, scipy, aiosmtpd, boto3, moto.server, opentelemetry.proto, cryptography, axe_selenium_python, scim2_tester, httpx2' 2>/dev/null; then
  log "installing Python test tools from PyPI"
  $PY -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi

log "checking the Prometheus rules, their unit tests and the Grafana dashboards against Herald's metrics"
$PY scripts/check-observability.py --self-test
$PY scripts/check-observability.py

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# --- PostgreSQL -------------------------------------------------------------------------------
log "starting a throwaway PostgreSQL cluster"
PGPORT=$(free_port)
PGDATA_DIR="$WORK/pg"
mkdir -p "$PGDATA_DIR" && { [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR" || true; }
as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
  -o "-p $PGPORT -h 127.0.0.1 -k $PGDATA_DIR -c fsync=off -c max_connections=500" start >/dev/null
psql_admin() { psql -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
# Herald's role owns its database but is not a superuser, so row-level security binds it.
psql_admin -c "CREATE ROLE herald LOGIN PASSWORD 'herald' NOSUPERUSER NOBYPASSRLS CREATEDB"
psql_admin -c "CREATE DATABASE herald OWNER herald"
export HERALD_TEST_POSTGRES_ADMIN_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
export HERALD_TEST_POSTGRES_URL="postgres://herald:herald@127.0.0.1:$PGPORT/herald?sslmode=disable"
export HERALD_TEST_REQUIRE_POSTGRES=1
# Tests that need a server or tool this script provides fail rather than skip when it is missing.
export HERALD_TEST_REQUIRE_SERVERS=1

# --- ClickHouse -------------------------------------------------------------------------------
# Debian's clickhouse-server (18.16), for the analytics reports run from ClickHouse (HERALD_CLICKHOUSE_URL).
# shellcheck source=lib/clickhouse.sh
source scripts/lib/clickhouse.sh
log "starting a throwaway ClickHouse server"
ensure_clickhouse_installed
start_clickhouse "$WORK/clickhouse"
export HERALD_TEST_CLICKHOUSE_URL="$CLICKHOUSE_URL"
export HERALD_TEST_REQUIRE_CLICKHOUSE=1

# --- Redis ------------------------------------------------------------------------------------
# Debian's redis-server (7.0): one server with a password, one on TLS only that requires a client certificate, and one
# that a test pauses.
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
log "starting throwaway Redis servers (plain, mutual TLS, and one to pause)"
ensure_redis_installed
start_redis "$WORK/redis"
start_redis_tls "$WORK/redis-tls"
start_redis_pausable "$WORK/redis-pausable"
export HERALD_TEST_REDIS_URL="$REDIS_URL"
# CLIENT PAUSE … WRITE makes it a Redis that stops answering, without stalling the other tests' servers.
export HERALD_TEST_REDIS_PAUSABLE_URL="$REDIS_PAUSABLE_URL"
export HERALD_TEST_REDIS_TLS_URL="$REDIS_TLS_URL"
export HERALD_TEST_REDIS_TLS_DIR="$REDIS_TLS_DIR"

# --- Swift tests ------------------------------------------------------------------------------
log "building and running the Swift tests (SQLite and PostgreSQL)"
swift build --build-tests
swift test --skip-build --parallel --num-workers 2

# --- black-box checks against the real binary ---------------------------------------------------
log "building the herald binary"
swift build --product herald
export HERALD_BIN="$ROOT/.build/debug/herald"
export HERALD_TEST_WORK="$WORK"
log "checking the Dockerfile, compose, Kubernetes and CI files offline, and their herald flags against the binary"
scripts/check-deploy.sh
log "running the black-box tests (CLI, live server, widget in Chromium, OpenAPI, schemathesis)"
$PY -m pytest -q -p no:cacheprovider tests-e2e "$@"

log "all tests passed"
