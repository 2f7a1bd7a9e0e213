#!/usr/bin/env bash
# The CI form of the soak (docs/performance.md, "Fixed rate and soak"): `plinth bench --soak`
# with its embedded server, 60 s of the 90/10 read/write mix at a fixed rate, per engine.
# It fails on errors (over 0.1 % of requests) and on RSS growth after the 20 s warm-up (over
# 10 %), never on latency: the machine may be shared. The debug binary is the one tested.
#
#   scripts/soak.sh                      # sqlite and postgres
#   scripts/soak.sh sqlite               # one engine
#   RATE=250 DURATION=60 WARMUP=20 scripts/soak.sh postgres
#
# PostgreSQL: the server at PLINTH_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# the step makes a scratch database of its own and drops it. RSS samples go to
# target/soak/<engine>-rss.csv (`seconds,rss_bytes`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RATE="${RATE:-250}"
DURATION="${DURATION:-60}"
WARMUP="${WARMUP:-20}"
PG="${PLINTH_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
PLINTH="${PLINTH_BIN:-$PWD/target/debug/plinth}"
[ -n "${PLINTH_BIN:-}" ] || cargo build -q -p plinth
mkdir -p target/soak

engines=("$@")
[ "${#engines[@]}" -gt 0 ] || engines=(sqlite postgres)

DB=""
drop_db() {
    [ -z "$DB" ] || psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
}
trap drop_db EXIT

soak() {
    local engine="$1"
    shift
    printf '\n--- soak on %s: %s req/s for %s s, warm-up %s s\n' "$engine" "$RATE" "$DURATION" "$WARMUP"
    "$@" "$PLINTH" bench --soak --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
        --seed 1000 --rss-csv "target/soak/$engine-rss.csv"
}

for engine in "${engines[@]}"; do
    case "$engine" in
        sqlite)
            soak sqlite env -u DATABASE_URL
            ;;
        postgres)
            DB="plinth_soak_$$"
            psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
            soak postgres env DATABASE_URL="$PG/$DB"
            drop_db
            DB=""
            ;;
        *)
            echo "unknown engine $engine (sqlite or postgres)" >&2
            exit 2
            ;;
    esac
done
