#!/usr/bin/env bash
# Report latency benchmark: loads EVENTS beacon events (default 10 million) through the beacon API into one site,
# spread over the last day by 200,000 visitors with two A/B variants, waits until the Analytics consumer applied
# them all, then times every report endpoint (summary by hour and by minute, funnels, cohorts, attribution, A/B
# tests) over the default 30-day window. The reference, timed the same way in the same run, is nginx serving each
# report's own bytes from a file; a report's ratio is its median latency over nginx's. "first ms" is the first
# request's time: funnels keep each day's answer, so the first request after new beacons pays for the days changed.
#
#   scripts/bench/reports.sh                        # release build, 10M events, both stores
#   STORES=sqlite EVENTS=1000000 scripts/bench/reports.sh
# The target is < 200 ms per report. Results are recorded in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
EVENTS=${EVENTS:-10000000}
STORES=${STORES:-"sqlite postgres"}
CONNECTIONS=${CONNECTIONS:-32}
SAMPLES=${SAMPLES:-30}
WORK=$(mktemp -d /tmp/herald-reports.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local status=$?
  # A failed run shows what Herald said before the files go.
  if [ "$status" != 0 ]; then for log in "$WORK"/herald-*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -40 "$log" >&2; }; done; fi
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
BIN=$ROOT/.build/release/herald
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the reference: nginx serving files ----------------------------------------------------------------------
NPORT=$(port)
mkdir -p "$WORK/nginx" "$WORK/files"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NPORT; root $WORK/files; default_type application/json; }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- load: 20 events per request, timestamps spread over the last 23 hours -------------------------------------
write_lua() { # $1 file, $2 notification, $3 variant A, $4 variant B
  python3 - "$@" <<'PY'
import json, sys, random, time
path, nid, va, vb = sys.argv[1:5]
now = int(time.time() * 1000)
random.seed(7)
mix = ["pageview", "impression", "impression", "impression", "impression", "impression", "impression", "hover", "hover",
       "click", "click", "close", "impression", "impression", "hover", "click", "impression", "impression", "pageview", "conversion"]
bodies = []
for v in range(2000):
    variant = va if v % 2 else vb
    start = now - random.randint(60_000, 23 * 3_600_000)
    events = []
    for i, kind in enumerate(mix):
        e = {"type": kind, "path": "/products/blue-hoodie", "at": start + i * 1000}
        if kind != "pageview":
            e.update(notificationId=nid, variantId=variant)
        if i == 1:
            e.update(exposure=True)  # the visit's first impression of its variant: an A/B exposure
        if kind == "conversion" and v % 5 == 0:
            e.update(goal="purchase", value=49.0, touches=[{"notificationId": nid, "variantId": variant, "type": "click", "at": start + 9000}], firstConversion=True)
        elif kind == "conversion":
            e = {"type": "impression", "path": "/", "at": start + i * 1000, "notificationId": nid, "variantId": variant}
        events.append(e)
    bodies.append(json.dumps({"sessionId": f"session-{v:06d}", "referrer": "https://www.google.com/", "utm": {"source": "newsletter"},
                              "events": events}))
# 200,000 visitors: each request names one, so visitors, sessions and conversions spread like real traffic.
lua = ["bodies = {"] + ["  [[" + b[1:] + "]]," for b in bodies] + ["}", "counter = 0", 'wrk.method = "POST"',
       'wrk.headers["Content-Type"] = "text/plain"',
       'wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"',
       "request = function()", "  counter = counter + 1",
       '  return wrk.format(nil, nil, nil, string.format(\'{"visitorId":"visitor-%06d",\', counter % 200000) .. bodies[(counter % #bodies) + 1])', "end",
       "done = function(summary, latency, requests)",
       '  io.write(string.format("ERRORS %d %d\\n", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))',
       "end"]
open(path, "w").write("\n".join(lua))
PY
}

lag() { # $1 store, $2 sqlite path or postgres url
  if [ "$1" = sqlite ]; then
    python3 - "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
row = db.execute("SELECT position_seq FROM bus_subscriptions WHERE group_name='analytics.beacons'").fetchone()
print(db.execute("SELECT COUNT(*) FROM bus_events WHERE type='widget.beacons_recorded' AND seq > ?", (row[0] if row else 0,)).fetchone()[0])
PY
  else
    psql "$2" -qAt -c "SELECT COUNT(*) FROM bus.events e, bus.subscriptions s WHERE s.group_name='analytics.beacons' AND e.type='widget.beacons_recorded' AND (e.tx_id, e.seq) > (s.position_tx, s.position_seq)"
  fi
}

rawcount() { # $1 store, $2 sqlite path or postgres url, $3 organization
  if [ "$1" = sqlite ]; then python3 -c "import sqlite3; print(sqlite3.connect('file:$2?mode=ro', uri=True).execute('SELECT COUNT(*) FROM analytics_events').fetchone()[0])"
  else psql "$2" -qAt -c "SET herald.org_id = '$3'; SELECT COUNT(*) FROM analytics.events" | tail -1; fi
}

# Times each report SAMPLES times over one keep-alive connection (after 3 warm-up requests), and nginx serving the
# same bytes the same way; prints one line per report.
time_reports() { # $1 herald port, $2 site, $3 token, $4 label
  python3 - "$1" "$2" "$3" "$4" "$NPORT" "$WORK/files" "$SAMPLES" <<'PY'
import http.client, json, statistics, sys, time
hport, site, token, label, nport, files, samples = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
reports = [("summary by hour", f"/sites/{site}/analytics?interval=hour"),
           ("summary by minute, 2 days", f"/sites/{site}/analytics?interval=minute&from={time.strftime('%Y-%m-%d', time.gmtime(time.time() - 86400))}"),
           ("funnels", f"/sites/{site}/analytics/funnels"), ("cohorts", f"/sites/{site}/analytics/cohorts"),
           ("attribution", f"/sites/{site}/analytics/attribution"), ("ab-tests", f"/sites/{site}/analytics/ab-tests"),
           # Parameters no rollup is kept for: the funnel's days are computed on the first request (and kept), and
           # attribution with another half-life credits every conversion of the range from its raw row each time.
           ("funnels, 12 h window", f"/sites/{site}/analytics/funnels?window=720"),
           ("attribution, 3-day half-life", f"/sites/{site}/analytics/attribution?halfLifeDays=3")]
def timed(conn, path, headers):
    out, first = [], None
    for i in range(samples + 3):
        t = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse(); body = r.read()
        if r.status != 200:
            raise SystemExit(f"{path}: {r.status} {body[:300]!r}")
        if i == 0: first = (time.perf_counter() - t) * 1000
        if i >= 3: out.append((time.perf_counter() - t) * 1000)
    return out, body, first
h = http.client.HTTPConnection("127.0.0.1", int(hport)); n = http.client.HTTPConnection("127.0.0.1", int(nport))
for name, path in reports:
    times, body, first = timed(h, path, {"Authorization": f"Bearer {token}"})
    fname = name.replace(" ", "_").replace(",", "") + ".json"
    open(f"{files}/{fname}", "wb").write(body)
    ref, _, _ = timed(n, "/" + fname, {})
    med, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    rmed = statistics.median(ref)
    verdict = "ok" if p95 < 200 else "OVER 200 ms"
    print(f"{label:9} {name:29} {first:9.1f} {med:9.1f} {p95:9.1f} {max(times):9.1f} {rmed:9.2f} {med / rmed:9.0f}x  {len(body):>8}  {verdict}")
PY
}

RESULTS="$WORK/results"
: >"$RESULTS"
run_store() { # $1 store
  local store=$1 url="" dbref
  local data="$WORK/data-$store"
  if [ "$store" = postgres ]; then
    PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    PGDATA_DIR="$WORK/pg"; PGPORT=$(port)
    mkdir -p "$PGDATA_DIR"; [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
    as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
      -o "-p $PGPORT -h 127.0.0.1 -k $PGDATA_DIR -c max_connections=200 -c shared_buffers=1GB -c work_mem=64MB" start >/dev/null
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qAt -c "CREATE ROLE herald LOGIN PASSWORD 'herald' NOSUPERUSER NOBYPASSRLS" -c "CREATE DATABASE herald OWNER herald"
    url="postgres://herald:herald@127.0.0.1:$PGPORT/herald?sslmode=disable"
    dbref=$url
  else
    dbref="$data/herald.sqlite"
  fi
  local hport; hport=$(port)
  HERALD_BCRYPT_COST=10 HERALD_LOG_LEVEL=error HERALD_DATABASE_URL="$url" HERALD_ANALYTICS_QUERIES_PER_MINUTE=1000 \
    "$BIN" serve --port "$hport" --data-dir "$data" --services users,notifications,analytics >"$WORK/herald-$store.log" 2>&1 &
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
print(f"PK={site['publicKey']}; SITE={site['id']}; TOKEN={t}; NID={n['id']}; VA={n['variants'][0]['id']}; VB={n['variants'][1]['id']}; ORG={org}")
PY
)"
  write_lua "$WORK/load.lua" "$NID" "$VA" "$VB"
  local started=$SECONDS loaded=0
  while [ "$loaded" -lt "$EVENTS" ]; do
    local left=$(( (EVENTS - loaded) / 20 ))
    # Bounded runs (wrk cannot stop at a request count): about 25,000 events/s, so ask for what is left or 60 s.
    local seconds=$(( left / 1200 + 2 )); [ $seconds -gt 60 ] && seconds=60
    local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"${seconds}s" -s "$WORK/load.lua" "http://127.0.0.1:$hport/widget/v1/$PK/beacons")
    if ! grep -q '^ERRORS 0 0' <<<"$out"; then
      echo "$store: the load failed: $(grep -E '^ERRORS|Non-2xx' <<<"$out")" >&2
      curl -s -XPOST -H 'Content-Type: text/plain' --data "$(python3 -c "import re;s=open('$WORK/load.lua').read();print('{\"visitorId\":\"visitor-000001\",'+re.search(r'\[\[(.*?)\]\]',s,re.S).group(1))")" \
        "http://127.0.0.1:$hport/widget/v1/$PK/beacons" >&2 || true
      exit 1
    fi
    for _ in $(seq 1200); do [ "$(lag $store "$dbref")" = 0 ] && break; sleep 0.5; done
    loaded=$(rawcount $store "$dbref" "$ORG")
    echo "$store: $loaded events loaded ($((SECONDS - started)) s)" >&2
  done
  # Hour rollups and caches settle; then a fresh token (the first one may be near its expiry on a long load).
  TOKEN=$(python3 -c "import json,urllib.request; print(json.loads(urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$hport/auth/login', data=json.dumps({'email':'bench@example.com','password':'benchmark pass'}).encode(), headers={'Content-Type':'application/json'})).read())['accessToken'])")
  time_reports "$hport" "$SITE" "$TOKEN" "$store" >>"$RESULTS"
  echo "$store $loaded $((SECONDS - started))" >>"$WORK/loaded"
  kill $hpid; wait $hpid 2>/dev/null || true
  if [ "$store" = postgres ]; then as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast stop >/dev/null; PGDATA_DIR=""; fi
}

for store in $STORES; do run_store "$store"; done

echo
echo "reports over one site's events (median and p95 of $SAMPLES sequential requests on one connection; nginx serves each report's bytes from a file)"
while read -r store count seconds; do echo "  $store: $count raw events, loaded and applied in $seconds s"; done <"$WORK/loaded"
printf '%-9s %-29s %9s %9s %9s %9s %9s %10s  %8s\n' store report "first ms" "median ms" "p95 ms" "max ms" "nginx ms" "vs nginx" bytes
cat "$RESULTS"
