# shellcheck shell=bash
# Helpers for a throwaway ClickHouse server (Debian bookworm's clickhouse-server 18.16.1) in tests.
# Source this file, then:
#   ensure_clickhouse_installed          # apt-get install only if missing
#   start_clickhouse "$WORK/clickhouse"  # exports CLICKHOUSE_URL, CLICKHOUSE_PID (also CLICKHOUSE_DIR,
#                                        # CLICKHOUSE_TCP_PORT for clickhouse-client --port)
#   ...
#   stop_clickhouse                      # or kill "$CLICKHOUSE_PID" from your own cleanup trap
# The server listens only on 127.0.0.1 (HTTP and native TCP on free ports), keeps its config, data and
# logs inside WORKDIR, runs in the server time zone UTC, and has a `default` user without password.
# It runs fine as root (18.16 does not refuse), so no runuser is needed. Start-up takes about 0.2-0.3 s.
# Safe under `set -euo pipefail`.

ensure_clickhouse_installed() {
  if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
    return 0
  fi
  echo "installing clickhouse-server and clickhouse-client from Debian's packages" >&2
  # The package enables a systemd unit; in containers policy-rc.d/no systemd keeps it from starting.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
  }
}

_clickhouse_free_ports() { # prints N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

_clickhouse_write_config() { # WORKDIR HTTP_PORT TCP_PORT INTERSERVER_PORT
  local dir=$1 http_port=$2 tcp_port=$3 inter_port=$4
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>20M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <!-- Always opened by 18.16; give it its own free port so parallel servers do not clash on 9009. -->
    <interserver_http_port>$inter_port</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>256</max_connections>
    <max_concurrent_queries>64</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <!-- Caches are allocated on demand; keep their ceilings small for a test machine. -->
    <mark_cache_size>134217728</mark_cache_size>
    <uncompressed_cache_size>134217728</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF
  cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>1000000000</max_memory_usage>
            <max_threads>2</max_threads>
            <!-- Merge/mutation threads (default 16); read from the default profile at start-up. -->
            <background_pool_size>4</background_pool_size>
            <use_uncompressed_cache>0</use_uncompressed_cache>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

_clickhouse_log_tail() { # WORKDIR
  local f
  for f in "$1/log/clickhouse-server.err.log" "$1/log/clickhouse-server.log" "$1/log/stdout.log"; do
    if [ -s "$f" ]; then
      echo "--- last lines of $f:" >&2
      tail -n 25 "$f" >&2
    fi
  done
}

# start_clickhouse WORKDIR [TIMEOUT_SECONDS=60]
start_clickhouse() {
  local dir=${1:?usage: start_clickhouse WORKDIR [TIMEOUT_SECONDS]} timeout=${2:-60}
  local bin attempt ports http_port tcp_port inter_port pid url deadline
  bin=$(command -v clickhouse-server || true)
  if [ -z "$bin" ]; then
    echo "start_clickhouse: clickhouse-server not found (run ensure_clickhouse_installed)" >&2
    return 1
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for attempt in 1 2 3; do
    rm -rf "$dir/data" "$dir/tmp" "$dir/log"
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
    ports=$(_clickhouse_free_ports 3)
    read -r http_port tcp_port inter_port <<<"$ports"
    _clickhouse_write_config "$dir" "$http_port" "$tcp_port" "$inter_port"
    (cd "$dir" && exec "$bin" --config-file="$dir/config.xml" </dev/null >"$dir/log/stdout.log" 2>&1) &
    pid=$!
    url="http://127.0.0.1:$http_port"
    deadline=$((SECONDS + timeout + 1))
    while :; do
      if [ "$(curl -s --max-time 2 "$url/ping" 2>/dev/null || true)" = "Ok." ]; then
        export CLICKHOUSE_URL=$url CLICKHOUSE_PID=$pid CLICKHOUSE_DIR=$dir CLICKHOUSE_TCP_PORT=$tcp_port
        return 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        # Lost a race for a port between picking it and binding it: try again with new ports.
        if grep -qs -e 'Address already in use' "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" &&
          [ "$attempt" -lt 3 ]; then
          continue 2
        fi
        echo "start_clickhouse: clickhouse-server (pid $pid) exited before answering $url/ping" >&2
        _clickhouse_log_tail "$dir"
        return 1
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "start_clickhouse: clickhouse-server (pid $pid) did not answer $url/ping within ${timeout}s" >&2
        _clickhouse_log_tail "$dir"
        kill "$pid" 2>/dev/null || true
        return 1
      fi
      sleep 0.1
    done
  done
  return 1
}

# stop_clickhouse: SIGTERM the server started by start_clickhouse, SIGKILL after 15 s (it normally takes ~1.5 s).
stop_clickhouse() {
  local pid=${CLICKHOUSE_PID:-} i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
  unset CLICKHOUSE_PID
  return 0
}
