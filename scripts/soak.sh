#!/usr/bin/env bash
# The CI form of the soak (docs/PERFORMANCE.md, "Fixed rate and soak"): per engine, a
# `plinth serve` of its own and `plinth bench --url … --soak` against it, 60 s of the 90/10
# read/write mix at a fixed rate. The server runs in its own process so that the RSS sampled
# from its /metrics is the server's alone (with the embedded server it would include the load
# generator). Fails on errors (over 0.1 % of requests) and on the server's RSS growth after
# the warm-up (over 10 %), never on latency: the machine may be shared.
#
#   scripts/soak.sh                      # sqlite and postgres
#   scripts/soak.sh sqlite               # one engine
#   RATE=250 DURATION=60 WARMUP=20 scripts/soak.sh postgres   # the defaults
#   PLINTH_BIN=target/release/plinth RATE=1000 DURATION=600 WARMUP=60 scripts/soak.sh  # the full soak
#
# Every feature a write pays for is on: the server serves crates/bench/features.toml (a
# sealed pii field, filled by every create; metrics; every write audited and logged for the
# change feed) and the bench holds a live subscriber on the feed for the whole run.
# PostgreSQL: the server at PLINTH_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# the step makes a scratch database of its own and drops it. The debug binary is the one
# tested (PLINTH_BIN to use another). RSS samples go to target/soak/<engine>-rss.csv
# (`seconds,rss_bytes`), the latency distribution to target/soak/<engine>-latency.csv
# (`side,upto_ms,count`; scripts/plot-soak.py draws both), the server's log to
# target/soak/<engine>-serve.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RATE="${RATE:-250}"
DURATION="${DURATION:-60}"
WARMUP="${WARMUP:-20}"
PG="${PLINTH_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
export PGOPTIONS="--client-min-messages=warning"
PLINTH="${PLINTH_BIN:-$PWD/target/debug/plinth}"
[ -n "${PLINTH_BIN:-}" ] || cargo build -q -p plinth
OUT="$PWD/target/soak"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/plinth-soak.XXXXXX)"

engines=("$@")
[ "${#engines[@]}" -gt 0 ] || engines=(sqlite postgres)

DB=""
SERVER=""
cleanup() {
    [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
    SERVER=""
    [ -z "$DB" ] || psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
    DB=""
}
trap 'cleanup; rm -rf "$WORK"' EXIT

# The `data.NAME` of the JSON answer on stdin (python3, which .ci/run needs anyway: no jq).
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][sys.argv[1]])' "$1"
}

# soak ENGINE [DATABASE_URL]: serve on a free port, get an API key, soak, stop.
soak() {
    local engine="$1" database="${2:-}" port password base token key
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password="soak-$$-$RANDOM-password"
    base="http://127.0.0.1:$port"
    rm -rf "$WORK/data"
    env -u DATABASE_URL ${database:+DATABASE_URL="$database"} LOG_LEVEL=warn \
        PLINTH_JWT_SECRET="$("$PLINTH" keys generate)" \
        PLINTH_ADMIN_EMAIL=soak@example.com PLINTH_ADMIN_PASSWORD="$password" \
        "$PLINTH" --config crates/bench/features.toml serve --listen "127.0.0.1:$port" --data-dir "$WORK/data" \
        >"$OUT/$engine-serve.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 300); do
        curl -fsS "$base/readyz" >/dev/null 2>&1 && break
        kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/$engine-serve.log" >&2; return 1; }
        sleep 0.1
    done
    token=$(curl -fsS -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"soak@example.com\",\"password\":\"$password\"}" | json_field access_token)
    key=$(curl -fsS -X POST "$base/api/v1/auth/api-keys" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d '{"name":"soak"}' | json_field key)
    printf '\n--- soak on %s: %s req/s for %s s, warm-up %s s\n' "$engine" "$RATE" "$DURATION" "$WARMUP"
    PLINTH_BENCH_TOKEN="$key" "$PLINTH" bench --url "$base" --all-features --soak --rate "$RATE" \
        --duration "$DURATION" --warmup "$WARMUP" --seed 1000 --rss-csv "$OUT/$engine-rss.csv" \
        --latency-csv "$OUT/$engine-latency.csv"
    cleanup
}

for engine in "${engines[@]}"; do
    case "$engine" in
        sqlite)
            soak sqlite
            ;;
        postgres)
            DB="plinth_soak_$$"
            psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
            soak postgres "$PG/$DB"
            ;;
        *)
            echo "unknown engine $engine (sqlite or postgres)" >&2
            exit 2
            ;;
    esac
done
