#!/usr/bin/env bash
# demo.sh — the main job in one command: install the build dependencies
# (scripts/deps.sh --build-only), build silica (Release, build/), then show
# `silica doctor` (this machine as silica sees it) and `silica inspect` on the
# tiny sample checkpoint in models/sample/ (made by models/sample/make_sample.py
# with the real safetensors library), then a completion by the demo model
# (models/demo, part5/demo-model.md).  Without MODEL, `silica run` samples with
# the demo's defaults (--temp 0.7 --top-k 40 --top-p 0.95 --min-p 0.05
# --repeat-penalty 1.1 --repeat-last-n 64 --seed 0; `silica run --help`): a
# few lines of plausible Python, the same on every run of the same build, where
# greedy decoding of this small model would repeat one line (`def f(x):
# return 1`) to the end.  Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
./scripts/deps.sh --build-only

step "build (Release, build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built)' || true
cmake --build build -j "$JOBS" >/dev/null

step "silica doctor"
./build/silica doctor

step "silica inspect models/sample"
./build/silica inspect models/sample

step "silica run \"def fibonacci(n):\" --stats   (the demo model in models/demo, sampled with its defaults)"
./build/silica run "def fibonacci(n):" --max-tokens 64 --stats
