#!/usr/bin/env bash
# Plinth on PostgreSQL: the wrk workloads of ../shared/peer-bench against 1 or 2 instances
# sharing one scratch database, the load split evenly across the instances.
#
# Usage: scripts/pg-bench.sh [instances]     (default 2)
#   PG=postgres://postgres@127.0.0.1:5432  DB=plinth_bench_pg  DURATION=8s  CONNS=32
#   PG_SOCKET=/var/run/postgresql: the instances reach the server over its Unix socket in
#   that directory (a plain path; no TLS there), as PG's user and port, instead of PG's TCP
#   address (TLS when the server offers it)
#   FEATURES=all (default; crates/bench/features.toml, creates fill its sealed pii field, one
#   live subscriber per instance) or FEATURES=none (the seed's bare resource)
#   PLINTH_BIN=path (default: builds target/release/plinth)
#   WORKLOADS="get_one list create mixed" (the default: all four, in that order)
# The database DB is dropped and recreated. Needs wrk, jq, psql.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER_BENCH="${PEER_BENCH:-$ROOT/../shared/peer-bench}"
N="${1:-2}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
DB="${DB:-plinth_bench_pg}"
DURATION="${DURATION:-8s}"
CONNS="${CONNS:-32}"
FEATURES="${FEATURES:-all}"
case "$FEATURES" in
  all) CONFIG=(--config "$ROOT/crates/bench/features.toml"); BENCH_FLAGS=(--all-features)
       BODY='{"name":"bench-{n}","contact":"bench-{n}@example.com","rank":7}' ;;
  none) CONFIG=(); BENCH_FLAGS=(); BODY='{"name":"bench-{n}"}' ;;
  *) echo "FEATURES is all or none, not $FEATURES" >&2; exit 2 ;;
esac
WORK="$(mktemp -d /tmp/plinth-pgbench.XXXXXX)"

if [[ -z "${PLINTH_BIN:-}" ]]; then
  cargo build --release -p plinth --manifest-path "$ROOT/Cargo.toml" >&2
fi
PLINTH="${PLINTH_BIN:-$ROOT/target/release/plinth}"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

# The instances share one signing key and one set of encryption keys, as a deployment must.
if [[ -n "${PG_SOCKET:-}" ]]; then
  PG_USER="${PG#*://}"; PG_USER="${PG_USER%%@*}"
  PG_PORT="${PG##*:}"; [[ "$PG_PORT" =~ ^[0-9]+$ ]] || PG_PORT=5432
  DATABASE_URL="postgres://$PG_USER@/$DB?host=$PG_SOCKET&port=$PG_PORT"
else
  DATABASE_URL="$PG/$DB"
fi
PLINTH_JWT_SECRET="$("$PLINTH" keys generate)"
export DATABASE_URL PLINTH_JWT_SECRET LOG_LEVEL=warn
PLINTH_ENCRYPTION_KEYS="$("$PLINTH" keys encryption)"
export PLINTH_ENCRYPTION_KEYS
PASSWORD="bench-$$-$(date +%s)-password"
PIDS=()
SUBS=()
trap 'for p in "${SUBS[@]}" "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for i in $(seq 1 "$N"); do
  PLINTH_ADMIN_EMAIL=bench@example.com PLINTH_ADMIN_PASSWORD="$PASSWORD" \
    "$PLINTH" "${CONFIG[@]}" serve --listen "127.0.0.1:$((18400 + i))" --data-dir "$WORK/d$i" >"$WORK/s$i.log" 2>&1 &
  PIDS+=("$!")
done
for i in $(seq 1 "$N"); do
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$((18400 + i))/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
BASE1="http://127.0.0.1:18401"
TOKEN=$(curl -fsS -X POST "$BASE1/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\"}" | jq -r .data.access_token)
KEY=$(curl -fsS -X POST "$BASE1/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"pg-bench"}' | jq -r .data.key)
PLINTH_BENCH_TOKEN="$KEY" "$PLINTH" bench "${BENCH_FLAGS[@]}" --url "$BASE1" --requests 0 --seed 10000 \
  --ids-file "$WORK/ids.txt" >/dev/null
if [[ "$FEATURES" == all ]]; then
  # One live subscriber on each instance's change feed for the whole run.
  for i in $(seq 1 "$N"); do
    curl -sN -H "Authorization: Bearer $KEY" "http://127.0.0.1:$((18400 + i))/api/v1/resource/events" \
      >"$WORK/events$i.txt" 2>/dev/null &
    SUBS+=("$!")
  done
fi

export LUA_DIR="$PEER_BENCH" IDS_FILE="$WORK/ids.txt" GET_PATH_TEMPLATE='/api/v1/resource/{id}' \
  LIST_PATH='/api/v1/resource?status=active&sort=-created_at&limit=20' CREATE_PATH='/api/v1/resource' \
  CREATE_BODY_TEMPLATE="$BODY" EXTRA_HEADER_NAME=Authorization EXTRA_HEADER_VALUE="Bearer $KEY"
printf '%s instance(s) on PostgreSQL (FEATURES=%s, over %s), wrk %s connections in all, %s per workload\n' \
  "$N" "$FEATURES" "${PG_SOCKET:+the Unix socket in }${PG_SOCKET:-TCP}" "$CONNS" "$DURATION"
printf '%-8s %10s %s\n' workload req/s "per instance: req/s p99_ms non2xx"
for w in ${WORKLOADS:-get_one list create mixed}; do
  WRKS=()
  for i in $(seq 1 "$N"); do
    RESULT_FILE="$WORK/r${i}_$w" wrk -t1 -c"$((CONNS / N))" -d"$DURATION" --latency -s "$PEER_BENCH/$w.lua" \
      "http://127.0.0.1:$((18400 + i))" >"$WORK/w${i}_$w.txt" 2>&1 &
    WRKS+=("$!")
  done
  for p in "${WRKS[@]}"; do wait "$p"; done
  total=0; detail=""
  for i in $(seq 1 "$N"); do
    line=$(grep '^RESULT' "$WORK/r${i}_$w" | tail -1)
    rps=$(sed -n 's/.* rps=\([^ ]*\).*/\1/p' <<<"$line")
    p99=$(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$line")
    bad=$(sed -n 's/.* err_status=\([^ ]*\).*/\1/p' <<<"$line")
    total=$(awk -v a="$total" -v b="$rps" 'BEGIN { printf "%.1f", a + b }')
    detail="$detail  [$rps $p99 $bad]"
  done
  printf '%-8s %10s %s\n' "$w" "$total" "$detail"
done
for i in $(seq 1 "$N"); do
  [[ -f "$WORK/events$i.txt" ]] || continue
  echo "instance $i live subscriber: $(grep -c '^event: created' "$WORK/events$i.txt") created events received"
done
echo "work directory: $WORK"
