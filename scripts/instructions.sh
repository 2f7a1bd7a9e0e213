#!/usr/bin/env bash
# Instructions the server spends per request (valgrind's callgrind), for get by id, the
# filtered list and create: a count that repeats on a busy, noisy machine where req/s do
# not. Compare two builds with it: scripts/instructions.sh old/plinth; scripts/instructions.sh new/plinth
#
# Usage: scripts/instructions.sh [/path/to/plinth]   N=2000 (requests per workload)  PORT=18300
# Needs valgrind, hey, curl and jq (apt-get install -y valgrind hey curl jq).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-}"
if [[ -z "$BIN" ]]; then
  cargo build --release -p plinth --manifest-path "$ROOT/Cargo.toml" >&2
  BIN="$ROOT/target/release/plinth"
fi
N="${N:-2000}"
PORT="${PORT:-18300}"
for tool in valgrind callgrind_control hey curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool not installed" >&2; exit 2; }
done
WORK="$(mktemp -d /tmp/plinth-instr.XXXXXX)"
PASSWORD="bench-$(date +%s)-$$-password"
LOG_LEVEL=warn PLINTH_ADMIN_EMAIL=bench@example.com PLINTH_ADMIN_PASSWORD="$PASSWORD" \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
  "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
BASE="http://127.0.0.1:$PORT"
TOKEN=$(curl -fsS -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\"}" | jq -r .data.access_token)
KEY=$(curl -fsS -X POST "$BASE/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"instructions"}' | jq -r .data.key)
for i in $(seq 1 300); do
  curl -fsS -X POST "$BASE/api/v1/resource" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "{\"name\":\"seed-$i\"}" >/dev/null
done
ID=$(curl -fsS "$BASE/api/v1/resource?limit=1" -H "Authorization: Bearer $KEY" | jq -r '.data[0].id')

# Zero the counters, send N requests, dump: the dump holds only those requests' work.
per_request() {
  callgrind_control -z "$PID" >/dev/null 2>&1
  hey -n "$N" -c 4 -H "Authorization: Bearer $KEY" "$@" >/dev/null
  callgrind_control -d "$PID" >/dev/null 2>&1
  sleep 1
  local dump total
  dump=$(ls -t "$WORK"/cg.out.* | head -1)
  total=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
  echo $((total / N))
}
get=$(per_request "$BASE/api/v1/resource/$ID")
list=$(per_request "$BASE/api/v1/resource?status=active&sort=-created_at&limit=20")
create=$(per_request -m POST -T application/json -d '{"name":"bench"}' "$BASE/api/v1/resource")
echo "instructions per request (server side): get_one $get  list $list  create $create"
