#!/usr/bin/env bash
# demo.sh — the main job in one command: install the build dependencies
# (scripts/deps.sh --build-only), build silica (Release, build/), then show
# `silica doctor` (this machine as silica sees it) and `silica inspect` on the
# tiny sample checkpoint in models/sample/ (made by models/sample/make_sample.py
# with the real safetensors library).  Exits non-zero if any step fails.
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

step "silica run \"def fibonacci(n):\" --stats   (the demo model in models/demo)"
./build/silica run "def fibonacci(n):" --max-tokens 64 --stats
