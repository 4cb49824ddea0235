# shellcheck shell=bash
# Helpers for throwaway Redis servers (Debian bookworm's redis-server 7.0) in tests and benchmarks.
# Source this file, then:
#   ensure_redis_installed             # apt-get install only if missing
#   start_redis "$WORK/redis"          # exports REDIS_URL (redis://:PASSWORD@127.0.0.1:PORT/0), REDIS_PORT,
#                                      # REDIS_PASSWORD, REDIS_PID, REDIS_DIR
#   start_redis_tls "$WORK/redis-tls"  # a second server on TLS only, with mutual TLS: makes a CA, a server
#                                      # certificate and a client certificate with openssl; exports REDIS_TLS_URL
#                                      # (rediss://…?ca=…&cert=…&key=…), REDIS_TLS_PORT, REDIS_TLS_PID, REDIS_TLS_DIR
#   restart_redis                      # SIGKILL and start the first server again on the same port (no data kept
#                                      # unless it was started with REDIS_PERSIST=1)
#   stop_redis
# Servers listen only on 127.0.0.1, keep nothing on disk (no RDB, no AOF; REDIS_PERSIST=1 for an append-only file
# synced on every write, as deployed) and require a password.

ensure_redis_installed() {
  command -v redis-server >/dev/null 2>&1 && return 0
  echo "installing redis-server from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  }
}

_redis_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

_redis_wait() { # port, extra redis-cli args…
  local port=$1; shift
  for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$port" "$@" --no-auth-warning PING 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "redis on port $port did not start" >&2
  return 1
}

_redis_launch() {
  local persistence=(--appendonly no)
  # REDIS_PERSIST=1 (when the server was first started): as deployed (docs/DEPLOYMENT.md), every write in the
  # append-only file before its reply; restart_redis keeps the choice, and the file.
  [ "${REDIS_PERSISTS:-}" = 1 ] && persistence=(--appendonly yes --appendfsync always)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' "${persistence[@]}" --dir "$REDIS_DIR" \
    --requirepass "$REDIS_PASSWORD" --logfile "$REDIS_DIR/redis.log" --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  export REDIS_PID
  _redis_wait "$REDIS_PORT" -a "$REDIS_PASSWORD"
}

start_redis() { # workdir
  REDIS_DIR=$1
  mkdir -p "$REDIS_DIR"
  REDIS_PORT=$(_redis_free_port)
  REDIS_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  REDIS_PERSISTS=${REDIS_PERSIST:-}
  export REDIS_DIR REDIS_PORT REDIS_PASSWORD REDIS_PERSISTS
  _redis_launch
  export REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0"
}

restart_redis() {
  kill -9 "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  _redis_launch
}

start_redis_tls() { # workdir
  REDIS_TLS_DIR=$1
  mkdir -p "$REDIS_TLS_DIR"
  local d=$REDIS_TLS_DIR
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Herald test CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 -extfile "$d/server.ext" \
    -out "$d/server.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=herald-client" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 -out "$d/client.pem" 2>/dev/null
  REDIS_TLS_PORT=$(_redis_free_port)
  redis-server --bind 127.0.0.1 --port 0 --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$d/server.pem" --tls-key-file "$d/server.key" \
    --tls-ca-cert-file "$d/ca.pem" --tls-auth-clients yes --save '' --appendonly no --dir "$d" --requirepass "$REDIS_PASSWORD" \
    --logfile "$d/redis.log" --daemonize no >/dev/null 2>&1 &
  REDIS_TLS_PID=$!
  export REDIS_TLS_DIR REDIS_TLS_PORT REDIS_TLS_PID
  _redis_wait "$REDIS_TLS_PORT" --tls --cacert "$d/ca.pem" --cert "$d/client.pem" --key "$d/client.key" -a "$REDIS_PASSWORD"
  export REDIS_TLS_URL="rediss://:$REDIS_PASSWORD@127.0.0.1:$REDIS_TLS_PORT/0?ca=$d/ca.pem&cert=$d/client.pem&key=$d/client.key"
}

start_redis_pausable() { # workdir: a plain server without persistence or password, for a test that pauses it
  local d=$1
  mkdir -p "$d"
  REDIS_PAUSABLE_PORT=$(_redis_free_port)
  redis-server --bind 127.0.0.1 --port "$REDIS_PAUSABLE_PORT" --save '' --appendonly no --dir "$d" --logfile "$d/redis.log" \
    --daemonize no >/dev/null 2>&1 &
  REDIS_PAUSABLE_PID=$!
  export REDIS_PAUSABLE_PID
  _redis_wait "$REDIS_PAUSABLE_PORT"
  export REDIS_PAUSABLE_URL="redis://127.0.0.1:$REDIS_PAUSABLE_PORT/0"
}

stop_redis() {
  [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null || true
  [ -n "${REDIS_TLS_PID:-}" ] && kill "$REDIS_TLS_PID" 2>/dev/null || true
  [ -n "${REDIS_PAUSABLE_PID:-}" ] && kill "$REDIS_PAUSABLE_PID" 2>/dev/null || true
}
