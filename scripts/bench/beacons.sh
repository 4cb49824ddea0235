#!/usr/bin/env bash
# Beacon ingest benchmark: how many beacon events a second Herald accepts durably (a 202 means the events are
# committed), in batches of 20 as the widget sends them and one per request, on the embedded store and on
# PostgreSQL, and whether the Analytics consumer keeps up (its lag is sampled during and after each run).
# The reference, measured in the same run on the same cores, is nginx answering the same POST with a fixed 202.
#
#   scripts/bench/beacons.sh                 # release build, 10 s per run, both stores
#   STORES=sqlite DURATION=30s scripts/bench/beacons.sh
#   VARIANTS="all no-billing" scripts/bench/beacons.sh   # also without Billing: what usage metering costs
#   MODES="batch paced" BIN=/tmp/herald-old SKIP_BUILD=1 scripts/bench/beacons.sh   # some modes, another binary
# Besides flat-out runs (as many requests as Herald answers), a paced run sends batches of 20 at PACE events/s
# (default 50000, the ingest target; PACE=0 skips it): whether the consumers keep up at that rate, not only after.
# Results are recorded in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
STORES=${STORES:-"sqlite postgres"}
# `all` runs every service; `no-billing` leaves Billing (and its impression meter) out, to price metering.
VARIANTS=${VARIANTS:-all}
PACE=${PACE:-50000}
PACED_CONNECTIONS=${PACED_CONNECTIONS:-512}
WORK=$(mktemp -d /tmp/herald-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${PGDATA_DIR:-}" ]; then as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

for tool in wrk nginx; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null; }
done
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product herald >/dev/null
BIN=${BIN:-$ROOT/.build/release/herald}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the reference: nginx answering the same POST with a fixed 202 ---------------------------------------------
NPORT=$(port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NPORT; location / { default_type application/json; return 202 '{"accepted":20}'; } }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- wrk scripts: 1,000 visitors cycling, 20 events or 1 event per request ----------------------------------
write_lua() { # $1 file, $2 events per request, $3 notification, $4 variant A, $5 variant B[, $6 requests/s over both threads]
  python3 - "$@" <<'PY'
import json, sys, random, time
path, per, nid, va, vb = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0
now = int(time.time() * 1000)
mix = ["pageview"] + ["impression"] * 10 + ["hover"] * 4 + ["click"] * 3 + ["close", "conversion"]
bodies = []
for v in range(1000):
    variant = va if v % 2 else vb
    events = []
    for i in range(per):
        kind = "impression" if per == 1 else mix[i % len(mix)]
        e = {"type": kind, "path": "/products/blue-hoodie", "at": now}
        if kind != "pageview":
            e.update(notificationId=nid, variantId=variant)
        if kind == "conversion":
            e.update(goal="purchase", value=49.0, touches=[{"notificationId": nid, "variantId": variant, "type": "click", "at": now - 60000}])
        events.append(e)
    bodies.append(json.dumps({"visitorId": f"bench-visitor-{v:05d}", "sessionId": f"bench-session-{v:05d}",
                              "referrer": "https://www.google.com/search?q=hoodie", "utm": {"source": "newsletter"}, "events": events}))
lua = ["bodies = {"] + ["  [[" + b + "]]," for b in bodies] + ["}", "counter = 0", 'wrk.method = "POST"',
       'wrk.headers["Content-Type"] = "text/plain"',
       'wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"',
       "request = function()", "  counter = counter + 1", "  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])", "end",
       # Paced: each of wrk's two threads sends on a fixed schedule (a slot every 2000/rate ms, read from the
       # monotonic clock through LuaJIT's FFI); a connection ready early waits for the next free slot. Slots missed
       # because every connection was waiting for an answer are not made up later.
       *(["local ffi = require('ffi')",
          "ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } herald_timespec; int clock_gettime(int, herald_timespec *); ]]",
          "local ts = ffi.new('herald_timespec')",
          "local function now() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 end",
          f"local interval = {2000 / rate if rate > 0 else 0:.6f}",
          "local next_slot = 0",
          "delay = function()",
          "  local t = now()",
          "  if next_slot < t then next_slot = t end",
          "  next_slot = next_slot + interval",
          "  return next_slot - t",
          "end"] if rate > 0 else []),
       "done = function(summary, latency, requests)",
       '  io.write(string.format("ERRORS %d %d\\n", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))',
       "end"]
open(path, "w").write("\n".join(lua))
PY
}

# Lag of the beacon consumers (Analytics' ingest and, when Billing runs, its impression meter): the most events
# published but not yet applied by either group (reads the store directly).
lag() { # $1 store, $2 sqlite path or postgres url
  if [ "$1" = sqlite ]; then
    python3 - "$2" <<'PY'
import sqlite3, sys, time
# A read-only open fails now and then ('unable to open database file') while Herald writes: try again rather than lose the
# sample.
for attempt in range(5):
    try:
        db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
        worst = 0
        for group in ("analytics.beacons", "billing.impressions"):
            row = db.execute("SELECT position_seq FROM bus_subscriptions WHERE group_name=?", (group,)).fetchone()
            if row is None:
                continue
            n = db.execute("SELECT COUNT(*) FROM bus_events WHERE type='widget.beacons_recorded' AND seq > ?", (row[0],)).fetchone()[0]
            worst = max(worst, n)
        print(worst)
        break
    except sqlite3.OperationalError:
        time.sleep(0.2)
PY
  else
    psql "$2" -qAt -c "SELECT COALESCE(MAX(n), 0) FROM (SELECT (SELECT COUNT(*) FROM bus.events e WHERE e.type='widget.beacons_recorded' AND (e.tx_id, e.seq) > (s.position_tx, s.position_seq)) AS n FROM bus.subscriptions s WHERE s.group_name IN ('analytics.beacons', 'billing.impressions')) lags"
  fi
}

rawcount() {
  if [ "$1" = sqlite ]; then python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$2?mode=ro', uri=True).execute('SELECT COUNT(*) FROM analytics_events').fetchone()[0])"
  else psql "$2" -qAt -c "SET herald.org_id = '$3'; SELECT COUNT(*) FROM analytics.events"; fi
}

RESULTS=()
run_store() { # $1 store, $2 variant
  local store=$1 variant=$2 url="" dbref
  local data="$WORK/data-$store-$variant"
  local services=users,notifications,integrations,analytics,billing
  [ "$variant" = no-billing ] && services=users,notifications,integrations,analytics
  if [ "$store" = postgres ]; then
    PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    PGDATA_DIR="$WORK/pg-$variant"; PGPORT=$(port)
    mkdir -p "$PGDATA_DIR"; [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
    as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    # Durable settings (fsync and synchronous_commit on, the defaults): a 202 must survive a crash here too. The WAL
    # settings are docs/DEPLOYMENT.md's for beacon ingest (PG_WAL_DEFAULTS=1 runs PostgreSQL's defaults instead).
    local wal="-c max_wal_size=8GB -c checkpoint_timeout=15min -c wal_compression=lz4"
    [ -n "${PG_WAL_DEFAULTS:-}" ] && wal=""
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
      -o "-p $PGPORT -h 127.0.0.1 -k $PGDATA_DIR -c max_connections=200 -c shared_buffers=512MB $wal" start >/dev/null
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -c "CREATE ROLE herald LOGIN PASSWORD 'herald' NOSUPERUSER NOBYPASSRLS" -c "CREATE DATABASE herald OWNER herald"
    url="postgres://herald:herald@127.0.0.1:$PGPORT/herald?sslmode=disable"
    dbref=$url
  else
    dbref="$data/herald.sqlite"
  fi
  local hport; hport=$(port)
  HERALD_BCRYPT_COST=10 HERALD_LOG_LEVEL=error HERALD_DATABASE_URL="$url" "$BIN" serve --port "$hport" --data-dir "$data" --services "$services" >"$WORK/herald-$store.log" 2>&1 &
  local hpid=$!
  PIDS+=($hpid)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null && break; sleep 0.1; done
  eval "$(python3 - "$hport" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")
t = call("POST", "/auth/signup", {"email": "bench@example.com", "password": "benchmark pass", "name": "Bench"})["accessToken"]
org = call("POST", "/organizations", {"name": "Bench"}, t)["id"]
site = call("POST", f"/organizations/{org}/sites", {"name": "Shop", "domain": "shop.example.com"}, t)
n = call("POST", f"/sites/{site['id']}/notifications", {"name": "Recent", "type": "recent_activity",
         "variants": [{"name": "A", "weight": 50}, {"name": "B", "weight": 50}]}, t)
call("POST", f"/sites/{site['id']}/notifications/{n['id']}/publish", None, t)
time.sleep(1)
print(f"PK={site['publicKey']}; NID={n['id']}; VA={n['variants'][0]['id']}; VB={n['variants'][1]['id']}; ORG={org}")
PY
)"
  write_lua "$WORK/batch.lua" 20 "$NID" "$VA" "$VB"
  write_lua "$WORK/single.lua" 1 "$NID" "$VA" "$VB"
  # Single beacons first, on the fresh store: coming last, right after the batched runs had added a million rows
  # (whose vacuum, analyze and checkpoints PostgreSQL was still working through), they measured a fifth lower.
  local modes="single batch"
  if [ "$PACE" != 0 ]; then
    write_lua "$WORK/paced.lua" 20 "$NID" "$VA" "$VB" "$(python3 -c "print($PACE / 20)")"
    modes="single batch paced"
  fi
  [ -n "${MODES:-}" ] && modes=$MODES
  local url_beacons="http://127.0.0.1:$hport/widget/v1/$PK/beacons"
  for mode in $modes; do
    local per=20; [ $mode = single ] && per=1
    local before; before=$(rawcount $store "$dbref" "$ORG")
    : >"$WORK/lag-$store-$mode"
    ( while sleep 2; do lag $store "$dbref" >>"$WORK/lag-$store-$mode" 2>/dev/null || true; done ) &
    local sampler=$!
    local connections=$CONNECTIONS; [ $mode = paced ] && connections=$PACED_CONNECTIONS
    local out; out=$(wrk -t2 -c"$connections" -d"$DURATION" -s "$WORK/$mode.lua" "$url_beacons")
    kill $sampler 2>/dev/null || true
    local rps; rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    local errors; errors=$(awk '/^ERRORS/{print $2 + $3}' <<<"$out")
    local non2xx; non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out"); non2xx=${non2xx:-0}
    local drained_at=$SECONDS
    for _ in $(seq 600); do [ "$(lag $store "$dbref")" = 0 ] && break; sleep 0.5; done
    local drain=$((SECONDS - drained_at))
    local after; after=$(rawcount $store "$dbref" "$ORG")
    RESULTS+=("$store/$variant $mode $per $rps $errors $non2xx $drain $((after - before)) $(tr '\n' ',' <"$WORK/lag-$store-$mode")")
  done
  kill $hpid; wait $hpid 2>/dev/null || true
  if [ "$store" = postgres ]; then as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast stop >/dev/null; PGDATA_DIR=""; fi
}

for store in $STORES; do for variant in $VARIANTS; do run_store "$store" "$variant"; done; done
write_lua "$WORK/ref.lua" 20 00000000-0000-0000-0000-000000000000 00000000-0000-0000-0000-000000000000 00000000-0000-0000-0000-000000000000
REF=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/ref.lua" "http://127.0.0.1:$NPORT/" | awk '/Requests\/sec/{print $2}')

echo
echo "beacons: $CONNECTIONS connections, $DURATION per run, 2 wrk threads, 2 cores shared by wrk, Herald and the store"
python3 - "$REF" "${RESULTS[@]}" <<'PY'
import sys
ref = float(sys.argv[1])
print(f"{'store':20} {'mode':6} {'events/request':>14} {'req/s':>9} {'events/s':>10} {'vs nginx req/s':>15} {'errors':>7} {'non-2xx':>8} {'drain s':>8} {'raw rows':>9}  lag samples (events)")
print(f"{'nginx 202':20} {'':6} {20:>14} {ref:>9.0f} {'-':>10} {1:>15.2f}")
for line in sys.argv[2:]:
    store, mode, per, rps, errors, non2xx, drain, rows, lags = line.split(" ", 8)
    rps = float(rps); per = int(per)
    print(f"{store:20} {mode:6} {per:>14} {rps:>9.0f} {rps*per:>10.0f} {rps/ref:>15.2f} {errors:>7} {non2xx:>8} {drain:>8} {rows:>9}  {lags.rstrip(',')}")
PY
