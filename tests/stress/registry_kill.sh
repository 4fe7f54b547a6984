#!/usr/bin/env bash
# registry_kill.sh — kill -9 at random points during `silica pull`, `convert`
# (of a store name, which registers a derived model, acme/big-torch) and `gc`, TRIALS times
# (default 60).  After every kill: `silica verify` passes, every listed
# version's files are all present (nothing partial is listed), and a pull
# re-run finishes and resumes (fetches less than the whole file).
#   SILICA_BIN=build/silica tests/stress/registry_kill.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SILICA=${SILICA_BIN:-build/silica}
PY=${PYTHON:-python3}
TRIALS=${1:-60}
work=$(mktemp -d)
export SILICA_HOME=$work/store HF_HOME=$work/hf SILICA_RETRY_BASE_MS=5
coproc HUB { "$PY" tests/stress/hub_serve.py "$work/hub" 24 8m; }
read -r URL COMMIT <&"${HUB[0]}"
cleanup() { exec {HUB[1]}>&- 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

check_store() {
    "$SILICA" verify >/dev/null || { echo "trial $1: verify failed"; "$SILICA" verify; exit 1; }
    "$SILICA" list --json | "$PY" -c '
import json, os, sys
for v in json.load(sys.stdin):
    if v["source"] != "store": continue
    for root, _, files in os.walk(v["path"]):
        for f in files:
            p = os.path.join(root, f)
            assert os.path.exists(p), "listed version has a missing file: " + p
' || { echo "trial $1: a listed version is incomplete"; exit 1; }
}

pulls=0 resumed=0 converts=0 gcs=0
"$SILICA" pull acme/big --endpoint "$URL" >/dev/null   # a source for convert
for ((t = 1; t <= TRIALS; t++)); do
    op=$((t % 3))
    delay=$(awk -v s="$RANDOM" 'BEGIN{srand(s); printf "%.3f", rand()*1.2}')
    case $op in
    0)  # pull from scratch, killed mid-way
        "$SILICA" rm acme/big >/dev/null 2>&1 || true
        "$SILICA" pull acme/big --endpoint "$URL" >/dev/null 2>&1 &
        pulls=$((pulls + 1)) ;;
    1)  "$SILICA" convert acme/big@"$COMMIT" "$work/out$t" --to torch >/dev/null 2>&1 &
        converts=$((converts + 1)) ;;
    2)  "$SILICA" convert acme/big@"$COMMIT" "$work/g$t" --to torch >/dev/null 2>&1 || true
        rm -rf "$work/g$t"
        "$SILICA" rm acme/big >/dev/null 2>&1 || true   # the derived acme/big-torch stays; acme/big's own blobs go
        "$SILICA" gc >/dev/null 2>&1 &
        gcs=$((gcs + 1)) ;;
    esac
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    check_store "$t"
    if [ $op -eq 0 ] || [ $op -eq 2 ]; then
        out=$("$SILICA" pull acme/big --endpoint "$URL" --json)
        echo "$out" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if r["already"] or r["bytes_fetched"] < r["bytes_total"] else 3)' \
            && resumed=$((resumed + 1)) || true
        check_store "$t"
    fi
    rm -rf "$work"/out* 2>/dev/null || true
done
"$SILICA" gc >/dev/null
check_store end
echo "registry_kill: $TRIALS trials ok (pull $pulls, convert $converts, gc $gcs; $resumed re-pulls resumed or found the blob)"
