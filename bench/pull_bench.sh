#!/usr/bin/env bash
# pull_bench.sh — `silica pull` throughput from the loopback nginx hub
# (sha256 of every byte included), side by side with `curl` to /dev/null plus
# `sha256sum` of the same file, and with the `curl | sha256sum` pipeline; then
# `silica list` / `show` latency with 1,000 versions in the index.
#   SILICA_BIN=build/silica bench/pull_bench.sh [SIZE_MB]   (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."
SILICA=${SILICA_BIN:-build/silica}
PY=${PYTHON:-python3}
MB=${1:-512}
work=$(mktemp -d)
export SILICA_HOME=$work/store HF_HOME=$work/hf
coproc HUB { "$PY" tests/stress/hub_serve.py "$work/hub" "$MB" -; }
read -r URL COMMIT <&"${HUB[0]}"
trap 'exec {HUB[1]}>&- 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
blob_url="$URL/acme/big/resolve/$COMMIT/model.safetensors"
blob=$(ls "$work"/hub/blobs/* | xargs ls -S | head -1)
bytes=$(stat -c %s "$blob")
now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v t="$1" 'BEGIN{printf "%.0f", b/t/1e6}'; }

curl -sL -o /dev/null "$blob_url"; sha256sum "$blob" >/dev/null   # warm the page cache
best_s=1e9 best_c=1e9 best_p=1e9
for i in 1 2 3; do
    rm -rf "$SILICA_HOME"
    t0=$(now); "$SILICA" pull acme/big --endpoint "$URL" >/dev/null; t1=$(now)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
    t0=$(now); curl -sL -o /dev/null "$blob_url"; t1=$(now); sha256sum "$blob" >/dev/null; t2=$(now)
    c=$(awk -v a="$t0" -v b="$t2" 'BEGIN{print b-a}')
    t0=$(now); curl -sL "$blob_url" | sha256sum >/dev/null; t1=$(now)
    p=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
    best_s=$(awk -v a="$best_s" -v b="$s" 'BEGIN{print (b<a)?b:a}')
    best_c=$(awk -v a="$best_c" -v b="$c" 'BEGIN{print (b<a)?b:a}')
    best_p=$(awk -v a="$best_p" -v b="$p" 'BEGIN{print (b<a)?b:a}')
done
echo "pull of $((bytes / 1000000)) MB from loopback nginx (best of 3):"
echo "  silica pull (download + sha256 + store):  $(rate "$best_s") MB/s"
echo "  curl -o /dev/null, then sha256sum:        $(rate "$best_c") MB/s"
echo "  curl | sha256sum (pipelined):             $(rate "$best_p") MB/s"
echo "  silica / (curl + sha256sum):              $(awk -v a="$best_c" -v b="$best_s" 'BEGIN{printf "%.0f%%", 100*a/b}')"

# list / show with 1,000 versions
"$SILICA" list --json >/dev/null
"$PY" - "$SILICA_HOME/index.db" <<'PYEOF'
import hashlib, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
(vid,) = db.execute("SELECT id FROM versions").fetchone()
files = db.execute("SELECT path,size,sha256 FROM files WHERE version_id=?", (vid,)).fetchall()
with db:
    for i in range(999):
        name = f"org{i % 50}/model{i % 20}"
        db.execute("INSERT OR IGNORE INTO models(name) VALUES(?)", (name,))
        (mid,) = db.execute("SELECT id FROM models WHERE name=?", (name,)).fetchone()
        cur = db.execute("INSERT INTO versions(model_id,revision,format,quant,params,size,created) VALUES(?,?,?,?,?,?,?)",
                         (mid, hashlib.sha1(str(i).encode()).hexdigest(), "hf", "bf16", 1, 1, time.time() - i))
        for f in files:
            db.execute("INSERT INTO files VALUES(?,?,?,?)", (cur.lastrowid, *f))
PYEOF
for cmd in "list" "list --json" "show org7/model7 --json"; do
    best=1e9
    for i in 1 2 3 4 5 6 7 8 9 10; do
        t0=$(now); $SILICA $cmd >/dev/null; t1=$(now)
        best=$(awk -v a="$best" -v b="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" 'BEGIN{print (b<a)?b:a}')
    done
    printf '  %-26s %6.1f ms (1,000 versions, whole process)\n' "silica $cmd" "$(awk -v t="$best" 'BEGIN{print t*1000}')"
done
