#!/usr/bin/env bash
# Measures the widget's hot paths with wrk and prints them as ratios of nginx serving the same bytes as a
# static file, measured in the same run on the same machine (docs/PERFORMANCE.md records results).
#
#   scripts/bench/feed.sh            # release build, 10 s per measurement
#   DURATION=30s scripts/bench/feed.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WORK=$(mktemp -d /tmp/herald-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

for tool in wrk nginx; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null; }
done
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product herald >/dev/null
BIN=.build/release/herald
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

HPORT=$(port)
HERALD_BCRYPT_COST=10 HERALD_LOG_LEVEL=error $BIN serve --port "$HPORT" --data-dir "$WORK/data" >"$WORK/herald.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HPORT/readyz" >/dev/null && break; sleep 0.1; done

# A site with a published notification and 20 activities: a realistic feed.
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
n = call("POST", f"/sites/{site['id']}/notifications", {"name": "Recent", "type": "recent_activity"}, t)["id"]
call("POST", f"/sites/{site['id']}/notifications/{n}/publish", None, t)
for i in range(20):
    call("POST", f"/sites/{site['id']}/activities", {"type": "purchase", "firstName": f"Buyer{i}", "city": "Austin",
         "productName": "Blue Hoodie", "productUrl": "https://shop.example.com/p/blue-hoodie"}, site["secretKey"])
time.sleep(1.5)
print(f"PK={site['publicKey']}; NID={n}")
PY
)"
FEED="http://127.0.0.1:$HPORT/widget/v1/$PK/feed"
curl -sf "$FEED" -o "$WORK/feed.json"
ETAG=$(curl -sfI "$FEED" | awk -F': ' 'tolower($1)=="etag"{print $2}' | tr -d '\r')

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
  server { listen 127.0.0.1:$NPORT; location / { root $WORK; default_type application/json; } }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
sleep 0.5

rps() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$@" | awk '/Requests\/sec/{print $2}'; }
cat >"$WORK/beacon.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
wrk.body = '{"visitorId":"bench-visitor-0001","events":[{"type":"impression","notificationId":"$NID","path":"/"}]}'
LUA

echo "feed: $(wc -c <"$WORK/feed.json") bytes; $CONNECTIONS connections, $DURATION per run, 2 wrk threads, 2 cores shared"
NGINX_RPS=$(rps "http://127.0.0.1:$NPORT/feed.json")
FEED_RPS=$(rps "$FEED")
NOTMOD_RPS=$(rps -H "If-None-Match: $ETAG" "$FEED")
BEACON_RPS=$(rps -s "$WORK/beacon.lua" "http://127.0.0.1:$HPORT/widget/v1/$PK/beacons")
python3 - "$NGINX_RPS" "$FEED_RPS" "$NOTMOD_RPS" "$BEACON_RPS" <<'PY'
import sys
nginx, feed, notmod, beacon = map(float, sys.argv[1:])
print(f"{'path':44} {'req/s':>10} {'vs nginx':>9}")
print(f"{'nginx, the feed as a static file':44} {nginx:10.0f} {1:9.2f}")
print(f"{'GET feed (200, pre-encoded bytes)':44} {feed:10.0f} {feed/nginx:9.2f}")
print(f"{'GET feed with If-None-Match (304)':44} {notmod:10.0f} {notmod/nginx:9.2f}")
print(f"{'POST beacons (durable, group commit, SQLite)':44} {beacon:10.0f} {beacon/nginx:9.2f}")
PY
