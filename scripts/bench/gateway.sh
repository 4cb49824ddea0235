#!/usr/bin/env bash
# The split deployment's hot paths, each as a ratio of a reference measured in the same run:
#   - the widget feed through nginx running deploy/nginx/herald.conf, from its cache and past it, and Herald directly,
#     against nginx serving the same bytes from a file (goal for Herald directly: 0.6);
#   - beacon ingest with events on Redis Streams (HERALD_REDIS_URL) against redis-benchmark's pipelined XADD on the
#     same Redis (goal: 0.5 of its rate, in events). Beacon batches go straight to their stream (the outbox only
#     while Redis cannot take them); Redis runs as deployed, with `appendfsync always`, for both measurements.
# The gateway runs without TLS and without its per-address rate limits here (one client address would hit them).
#
#   scripts/bench/gateway.sh           # release build, 10 s per measurement
# Results are recorded in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WORK=$(mktemp -d /tmp/herald-gateway.XXXXXX)
chmod 755 "$WORK"
PIDS=()
# shellcheck source=../lib/redis.sh
source scripts/lib/redis.sh
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; stop_redis; rm -rf "$WORK"; }
trap cleanup EXIT

for tool in wrk nginx; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null; }
done
ensure_redis_installed
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product herald >/dev/null
BIN=$ROOT/.build/release/herald
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Redis as deployed: each write in its append-only file, synced, before the reply (a beacon's 202 waits for that).
# REDIS_PERSIST=0 runs it without persistence (the 202 then means "in Redis's memory").
REDIS_PERSIST=${REDIS_PERSIST:-1} start_redis "$WORK/redis"
HPORT=$(port)
MPORT=$(port)
HERALD_METRICS_PORT=$MPORT HERALD_BCRYPT_COST=10 HERALD_LOG_LEVEL=error HERALD_REDIS_URL="$REDIS_URL" HERALD_TRUSTED_PROXIES=127.0.0.1/32 \
  "$BIN" serve --port "$HPORT" --data-dir "$WORK/data" >"$WORK/herald.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$HPORT/readyz" >/dev/null && break; sleep 0.1; done

eval "$(python3 - "$HPORT" <<'PY'
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
time.sleep(1)
n = call("POST", f"/sites/{site['id']}/notifications", {"name": "Recent", "type": "recent_activity"}, t)["id"]
call("POST", f"/sites/{site['id']}/notifications/{n}/publish", None, t)
for i in range(20):
    call("POST", f"/sites/{site['id']}/activities", {"type": "purchase", "firstName": f"Buyer{i}", "city": "Austin",
         "productName": "Blue Hoodie", "productUrl": "https://shop.example.com/p/blue-hoodie"}, site["secretKey"])
time.sleep(2)
print(f"PK={site['publicKey']}; NID={n}")
PY
)"
mkdir -p "$WORK/static"
curl -sf "http://127.0.0.1:$HPORT/widget/v1/$PK/feed" -o "$WORK/static/feed.json"

# The gateway: deploy/nginx/herald.conf on a loopback port, every service upstream pointing at this one process.
GPORT=$(port)
mkdir -p "$WORK/nginx/cache"
chmod 777 "$WORK/nginx/cache"
python3 - "$ROOT/deploy/nginx/herald.conf" "$WORK" "$GPORT" "$HPORT" <<'PY'
import re, sys
conf, work, gport, hport = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4]
conf = re.sub(r"server 127\.0\.0\.1:80\d\d;", f"server 127.0.0.1:{hport};", conf)
conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{gport};")
conf = "\n".join(line for line in conf.split("\n") if not line.strip().startswith(("ssl_", "limit_req zone=")))
conf = conf.replace("/var/cache/nginx/herald", f"{work}/nginx/cache")
# A way past the cache for the uncached measurement, and the static reference on the same server.
conf = conf.replace("        proxy_cache herald_feed;\n",
                    "        proxy_cache herald_feed;\n        proxy_cache_bypass $http_x_bench_bypass;\n        proxy_no_cache $http_x_bench_bypass;\n")
conf = conf.replace("    # --- the widget:", f"    location = /static/feed.json {{ root {work}; default_type application/json; }}\n\n    # --- the widget:")
open(f"{work}/nginx/herald.conf", "w").write(conf)
open(f"{work}/nginx/nginx.conf", "w").write(f"""worker_processes 2;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx; proxy_temp_path {work}/nginx; fastcgi_temp_path {work}/nginx;
  uwsgi_temp_path {work}/nginx; scgi_temp_path {work}/nginx;
  include {work}/nginx/herald.conf;
}}
""")
PY
nginx -t -c "$WORK/nginx/nginx.conf" >/dev/null 2>&1 || { nginx -t -c "$WORK/nginx/nginx.conf"; exit 1; }
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
sleep 0.5

rps() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$@" | awk '/Requests\/sec/{print $2}'; }
GW="http://127.0.0.1:$GPORT"
echo "feed: $(wc -c <"$WORK/static/feed.json") bytes; $CONNECTIONS connections, $DURATION per run, 2 wrk threads, 2 cores shared"
STATIC=$(rps "$GW/static/feed.json")
CACHED=$(rps "$GW/widget/v1/$PK/feed")
UNCACHED=$(rps -H "X-Bench-Bypass: 1" "$GW/widget/v1/$PK/feed")
DIRECT=$(rps "http://127.0.0.1:$HPORT/widget/v1/$PK/feed")

# Beacons: 20 impressions per request, events on Redis Streams; the reference is pipelined XADD on the same Redis.
python3 - "$NID" "$WORK/beacons.lua" <<'PY'
import json, sys
nid, path = sys.argv[1], sys.argv[2]
body = json.dumps({"visitorId": "bench-visitor-0001", "events": [{"type": "impression", "notificationId": nid, "path": "/"}] * 20})
open(path, "w").write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/plain"\nwrk.body = [[{body}]]\n')
PY
BEACONS=$(rps -s "$WORK/beacons.lua" "http://127.0.0.1:$HPORT/widget/v1/$PK/beacons")
# The consumers (Analytics, Billing) run in the same process and read the stream behind the ingest: how long they
# take to apply what is left once the load stops.
# Entries not yet read and entries read but not yet acknowledged (herald_bus_retrying_events counts those on Redis).
backlog() { curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '/^herald_bus_(lag|retrying)_events\{group="(analytics.beacons|billing.impressions)"\}/ {s += $2} END {print s + 0}'; }
LEFT=$(backlog)
DRAIN_START=$(date +%s.%N)
for _ in $(seq 1200); do [ "$(backlog)" = 0 ] && break; sleep 0.5; done
DRAIN=$(python3 -c "import time; print(f'{time.time() - $DRAIN_START:.1f}')")
XADD=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -a "$REDIS_PASSWORD" -n 1000000 -P 32 -c 16 -q \
  XADD bench:stream MAXLEN '~' 100000 '*' data "$(head -c 200 /dev/zero | tr '\0' x)" 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | awk '{print $1}')

python3 - "$STATIC" "$CACHED" "$UNCACHED" "$DIRECT" "$BEACONS" "$XADD" "$LEFT" "$DRAIN" <<'PY'
import sys
static, cached, uncached, direct, beacons, xadd, left, drain = map(float, sys.argv[1:])
print(f"{'path':58} {'req/s':>10} {'vs reference':>13}")
print(f"{'nginx, the feed as a static file (reference)':58} {static:10.0f} {1:13.2f}")
print(f"{'feed through the gateway, from its cache':58} {cached:10.0f} {cached/static:13.2f}")
print(f"{'feed through the gateway, past its cache':58} {uncached:10.0f} {uncached/static:13.2f}")
print(f"{'feed from Herald directly (goal 0.6)':58} {direct:10.0f} {direct/static:13.2f}")
print(f"{'redis-benchmark XADD, pipelined (reference, entries/s)':58} {xadd:10.0f} {1:13.2f}")
print(f"{'beacons on Redis Streams, 20 per request (events/s; goal 0.5)':58} {beacons*20:10.0f} {beacons*20/xadd:13.2f}")
print(f"consumers' backlog when the load stopped: {left:.0f} stream entries (beacon batches), applied within {drain:.1f} s")
PY
