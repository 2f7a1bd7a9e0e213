#!/usr/bin/env bash
# Two versions of one crate cost a second compile and a second copy in the binary. This
# fails when the workspace's build (normal, build and dev dependencies, `Cargo.lock` as
# committed) holds a crate twice that is not listed below, and when a listed crate is held
# once again (take it off the list). Every listed pair is held apart by crates outside
# Plinth; the comment names which, so the list can shrink when they move.
#
#   scripts/duplicates.sh          # in .ci/run, after clippy
#   cargo tree -i digest@0.10.7    # who holds one version
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

known=(
    base64            # 0.22: postgres-protocol; 0.23: the rest
    crypto-common     # 0.1 with digest 0.10
    digest            # 0.10: crc-fast (object_store's checksums); 0.11: the RustCrypto hashes
    fallible-iterator # 0.2: postgres-protocol and postgres-types; 0.3: rusqlite
    getrandom         # 0.2: ring; 0.4: ours and uuid
    spin              # 0.9: multer; 0.10: crc-fast
    syn               # 2: tracing-attributes, zeroize_derive, curve25519-dalek-derive
)

found=$(cargo tree --workspace --locked --duplicates --depth 0 --prefix none \
    --edges normal,build,dev | awk 'NF { print $1 }' | sort -u)
expected=$(printf '%s\n' "${known[@]}" | sort -u)

new=$(comm -23 <(echo "$found") <(echo "$expected"))
gone=$(comm -13 <(echo "$found") <(echo "$expected"))
status=0
if [ -n "$new" ]; then
    echo "crates held at two versions (cargo tree -d names who holds each):" >&2
    echo "$new" | sed 's/^/  /' >&2
    status=1
fi
if [ -n "$gone" ]; then
    echo "crates listed in scripts/duplicates.sh but held once now (take them off):" >&2
    echo "$gone" | sed 's/^/  /' >&2
    status=1
fi
[ "$status" -eq 0 ] && echo "duplicate crate versions: $(echo "$found" | grep -c .), all listed"
exit "$status"
