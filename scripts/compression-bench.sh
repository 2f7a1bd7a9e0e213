#!/usr/bin/env bash
# What negotiated compression costs and saves on a long list: the server (release, the
# bench's all-features configuration) answers `GET /api/v1/resource?limit=N` with hey,
# once asking for gzip and once not; prints req/s, latency and bytes per answer for each.
#
# Usage: scripts/compression-bench.sh [/path/to/plinth]   LIMIT=200  N=20000  C=16  PORT=18320
# Needs hey, curl and jq (apt-get install -y hey curl jq).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-}"
if [[ -z "$BIN" ]]; then
  cargo build --release -p plinth --manifest-path "$ROOT/Cargo.toml" >&2
  BIN="$ROOT/target/release/plinth"
fi
LIMIT="${LIMIT:-200}" N="${N:-20000}" C="${C:-16}" PORT="${PORT:-18320}"
WORK="$(mktemp -d /tmp/plinth-gzip.XXXXXX)"
PASSWORD="bench-$(date +%s)-$$-password"
LOG_LEVEL=warn PLINTH_ADMIN_EMAIL=bench@example.com PLINTH_ADMIN_PASSWORD="$PASSWORD" \
  "$BIN" --config "$ROOT/crates/bench/features.toml" serve --listen "127.0.0.1:$PORT" \
  --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill -INT $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
TOKEN=$(curl -fsS -X POST "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$PASSWORD\"}" | jq -r .data.access_token)
KEY=$(curl -fsS -X POST "$BASE/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name":"gzip-bench"}' | jq -r .data.key)
OPS=$(jq -nc --argjson n "$LIMIT" '[range($n) | {op: "create", data: {name: "record \(.)",
  contact: "person\(.)@example.com", rank: .}}]')
curl -fsS -X POST "$BASE/api/v1/resource/batch" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d "{\"items\":$OPS}" >/dev/null
URL="$BASE/api/v1/resource?limit=$LIMIT"
printf '%-9s %10s %8s %8s %12s\n' answer req/s p50_ms p99_ms bytes
for mode in plain gzip; do
  HDR=(-H "Authorization: Bearer $KEY")
  [[ $mode == gzip ]] && HDR+=(-H "Accept-Encoding: gzip")
  bytes=$(curl -fsS -o /dev/null -w '%{size_download}' "${HDR[@]}" "$URL")
  out=$(hey -n "$N" -c "$C" "${HDR[@]}" "$URL")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '/ 50% in/ {print $3*1000}' <<<"$out")
  p99=$(awk '/ 99% in/ {print $3*1000}' <<<"$out")
  printf '%-9s %10.0f %8.2f %8.2f %12s\n' "$mode" "$rps" "$p50" "$p99" "$bytes"
done
