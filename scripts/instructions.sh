#!/usr/bin/env bash
# Instructions the server spends per request (valgrind's callgrind), for get by id, the
# filtered list (also gzip-compressed: `list_gzip`) and create, and for the ceiling probe's
# get by id: a count that repeats on a busy, noisy machine where req/s do not. Compare two builds with it:
# scripts/instructions.sh old/plinth; scripts/instructions.sh new/plinth
# The server runs the bench's all-features configuration (crates/bench/features.toml: a
# sealed pii field, filled by every create). KEEP=dir keeps the callgrind files there, for
# callgrind_annotate.
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
for tool in valgrind callgrind_control callgrind_annotate hey curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool not installed" >&2; exit 2; }
done
WORK="$(mktemp -d /tmp/plinth-instr.XXXXXX)"
PASSWORD="bench-$(date +%s)-$$-password"
LOG_LEVEL=warn PLINTH_ADMIN_EMAIL=bench@example.com PLINTH_ADMIN_PASSWORD="$PASSWORD" \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
  "$BIN" --config "$ROOT/crates/bench/features.toml" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
finish() {
  kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true
  if [[ -n "${KEEP:-}" ]]; then mkdir -p "$KEEP" && cp "$WORK"/cg.out.* "$WORK"/cgc.out.* "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap finish EXIT
for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
BASE="http://127.0.0.1:$PORT"
TOKEN=$(curl -fsS -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\"}" | jq -r .data.access_token)
KEY=$(curl -fsS -X POST "$BASE/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"instructions"}' | jq -r .data.key)
for i in $(seq 1 300); do
  curl -fsS -X POST "$BASE/api/v1/resource" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "{\"name\":\"seed-$i\",\"contact\":\"seed-$i@example.com\",\"rank\":$i}" >/dev/null
done
ID=$(curl -fsS "$BASE/api/v1/resource?limit=1" -H "Authorization: Bearer $KEY" | jq -r '.data[0].id')

# Zero the counters, send N requests, dump: the dump holds only those requests' work.
per_request() {
  local file="$1"; shift
  callgrind_control -z "$PID" >/dev/null 2>&1
  hey -n "$N" -c 4 -disable-compression "$@" >/dev/null
  callgrind_control -d "$PID" >/dev/null 2>&1
  sleep 1
  local dump total
  dump=$(ls -t "$WORK"/"$file".* | head -1)
  total=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
  echo $((total / N))
}
AUTH=(-H "Authorization: Bearer $KEY")
get=$(per_request cg.out "${AUTH[@]}" "$BASE/api/v1/resource/$ID")
list=$(per_request cg.out "${AUTH[@]}" "$BASE/api/v1/resource?status=active&sort=-created_at&limit=20")
list_gzip=$(per_request cg.out "${AUTH[@]}" -H "Accept-Encoding: gzip" "$BASE/api/v1/resource?status=active&sort=-created_at&limit=20")
create=$(per_request cg.out "${AUTH[@]}" -m POST -T application/json \
  -d '{"name":"bench","contact":"bench@example.com","rank":7}' "$BASE/api/v1/resource")
# Of a create, what the SQLite writer's jobs run (inclusive of `sql::ready`, the SQL of
# each job): the serial path every write waits on.
writer=$(callgrind_annotate --inclusive=yes "$(ls -t "$WORK"/cg.out.* | head -1)" 2>/dev/null |
  awk -v n="$N" '!done && /plinth_store::sql::ready \[/ { gsub(",", "", $1); print int($1 / n); done = 1 }')
kill -INT "$PID"; wait "$PID" 2>/dev/null || true

# The ceiling probe, under the same valgrind, with the same client.
valgrind --tool=callgrind --callgrind-out-file="$WORK/cgc.out" \
  "$BIN" bench --serve-ceiling "127.0.0.1:$PORT" --seed 300 --ids-file "$WORK/ceiling-ids" \
  >"$WORK/ceiling.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do grep -q '^ceiling probe' "$WORK/ceiling.log" 2>/dev/null && break; sleep 0.2; done
ceiling=$(per_request cgc.out "$BASE/api/v1/resource/$(head -1 "$WORK/ceiling-ids")")
echo "instructions per request (server side): get_one $get  list $list  list_gzip $list_gzip  create $create  ceiling get_one $ceiling"
echo "get_one costs $((get * 100 / ceiling)) % of the ceiling probe's instructions"
echo "of a create, the SQLite writer's jobs run ${writer:-?} instructions"
