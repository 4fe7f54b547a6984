#!/bin/sh
# serve_demo.sh — start `silica serve` on the demo model, ask it through the
# OpenAI and Ollama routes with curl, show a few metrics, stop it with SIGTERM
# (which lets requests in flight finish).
#   part8/scripts/serve_demo.sh          (silica on PATH or $SILICA)
# POSIX sh; needs curl.  The server listens on a free loopback port.
set -eu
S=${SILICA:-silica}
out=$(mktemp)
"$S" serve --port 0 --json --parallel 2 --log-format none >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
i=0
while [ ! -s "$out" ]; do
    i=$((i + 1))
    if [ "$i" -gt 60 ]; then echo "serve_demo: the server did not start" >&2; exit 1; fi
    sleep 1
done
url=$(sed 's/.*"url":"\([^"]*\)".*/\1/' "$out")
echo "listening on $url"
echo "--- GET /v1/models"
curl -sS "$url/v1/models"; echo
echo "--- POST /v1/completions (OpenAI)"
curl -sS "$url/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0.7, "seed": 1}'; echo
echo "--- POST /api/generate (Ollama)"
curl -sS "$url/api/generate" \
    -d '{"prompt": "The little robot", "stream": false, "options": {"num_predict": 16, "seed": 1}}'; echo
echo "--- GET /metrics (some of them)"
curl -sS "$url/metrics" | grep -E '^silica_(requests_total|generated_tokens_total|kv_cache_bytes) '
kill -TERM "$pid"
wait "$pid"
echo "stopped"
