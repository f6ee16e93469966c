#!/usr/bin/env bash
# Run the whole platform locally without Docker: redis-server and MariaDB in user space
# (temp dir, loopback ports), the producer (waitress), the consumer and the frontend dev
# server that forwards /api/ to the producer. Ctrl-C stops everything.
#
#   bash scripts/run-local.sh            # web on http://127.0.0.1:8080/
#   WEB_PORT=9000 bash scripts/run-local.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY="pipenv run python"; fi
fi
WEB_PORT="${WEB_PORT:-8080}"
API_PORT="${API_PORT:-5080}"
CONSUMER_PORT="${CONSUMER_PORT:-8081}"
WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/platform-local.XXXXXX")"
PIDS=()

STOP_WAIT_S=30  # above the services' own bounds (the consumer's STOP_TIMEOUT_S is 20 s)

cleanup() {
  # Ctrl-C again while stopping does not cut the wait short: returning now would leave the
  # services (and Redis and MariaDB, which the servers helper stops) running behind us.
  trap '' INT TERM
  trap - EXIT
  echo
  echo "stopping..."
  local i pid deadline
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  deadline=$((SECONDS + STOP_WAIT_S))
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do
      sleep 0.2
    done
  done
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "pid $pid did not stop within ${STOP_WAIT_S}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORKDIR"
  echo "stopped"
}
trap cleanup INT TERM EXIT

# Redis + MariaDB (python helper: handles mariadb-install-db and --user=root when root).
$PY -m apps.devtools.servers "$WORKDIR" >"$WORKDIR/servers.env" 2>"$WORKDIR/servers.log" &
PIDS+=($!)
for _ in $(seq 1 600); do
  grep -q '^READY' "$WORKDIR/servers.env" 2>/dev/null && break
  if ! kill -0 "${PIDS[0]}" 2>/dev/null; then
    echo "local servers failed to start:"; cat "$WORKDIR/servers.log"; exit 1
  fi
  sleep 0.1
done
grep -q '^READY' "$WORKDIR/servers.env" || { echo "local servers did not start"; exit 1; }
# shellcheck disable=SC1091
source <(grep '^export ' "$WORKDIR/servers.env")
export ENVIRONMENT="${ENVIRONMENT:-local}" METRICS_INTERVAL="${METRICS_INTERVAL:-60}"

CONSUMER_URL="http://127.0.0.1:$CONSUMER_PORT" PORT="$API_PORT" BIND_HOST=127.0.0.1 \
  $PY -m apps.producer &
PIDS+=($!)
PORT="$CONSUMER_PORT" BIND_HOST=127.0.0.1 $PY -m apps.consumer &
PIDS+=($!)
$PY -m apps.frontend.devserver --port "$WEB_PORT" --api "http://127.0.0.1:$API_PORT" &
PIDS+=($!)

echo
echo "  frontend:  http://127.0.0.1:$WEB_PORT/"
echo "  producer:  http://127.0.0.1:$API_PORT/count   (status: /status)"
echo "  consumer:  http://127.0.0.1:$CONSUMER_PORT/health  /metrics"
echo "  try: curl -X POST -H \"Content-Type: application/json\" -d \"{\\\"count\\\": \$EPOCHSECONDS}\" localhost:$API_PORT/count"
echo "  Ctrl-C stops everything."
echo

# Exit (and clean up) as soon as any process dies.
wait -n "${PIDS[@]}"
echo "a process exited; shutting down"
