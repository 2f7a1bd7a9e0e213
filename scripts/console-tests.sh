#!/usr/bin/env bash
# The admin console's browser tests (e2e/): Playwright, pinned by e2e/package-lock.json,
# driving Debian's chromium headless against a real `plinth serve` per worker, on SQLite
# and then on PostgreSQL (PLINTH_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432).
# Installs chromium (apt) and the npm packages when missing; needs Node.js 20 or newer and
# npm. A failing test leaves its screenshot and trace under target/e2e/results/.
#
#   scripts/console-tests.sh                  # both engines
#   ENGINES=sqlite scripts/console-tests.sh   # one
#   scripts/console-tests.sh tests/records.spec.js   # arguments go to `playwright test`
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x /usr/bin/chromium ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "the console tests need $tool (Node.js 20 or newer)" >&2; exit 1; }
done

# The browser is Debian's: Playwright must never download one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if ! (cd e2e && npm ls --silent >/dev/null 2>&1); then
    (cd e2e && npm ci --no-audit --no-fund)
fi

cargo build -p plinth
export PLINTH_BIN="$PWD/target/debug/plinth"

for engine in ${ENGINES:-sqlite postgres}; do
    printf '\n==> console tests on %s\n' "$engine"
    (cd e2e && PLINTH_TEST_ENGINE="$engine" npx playwright test "$@")
done
