#!/usr/bin/env bash
# deps.sh — install what silica's build and tests need, and only what is
# missing; safe to run again (idempotent, no-op when everything is there).
#
#   scripts/deps.sh               everything: build tools, clang + libFuzzer
#                                 runtime, arm64 cross toolchain + qemu +
#                                 arm64 multiarch libs, Python venv at ./.venv
#   scripts/deps.sh --build-only  just what `cmake --build` needs (no venv,
#                                 no clang, no cross toolchain)
#
# Debian/Ubuntu: apt-get (one `apt-get update`, only if something is
# missing; root or sudo).  macOS: Homebrew.  The venv is rebuilt only when
# tests/requirements.txt changed (hash stamp in .venv/.requirements.sha256).
# Environment: PYTHON (interpreter for the venv, default python3),
# SILICA_NO_CROSS=1 (skip the arm64 cross toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

build_only=0
for a in "$@"; do
    case "$a" in
    --build-only) build_only=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deps.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
    esac
done

log() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

apt_updated=0
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        $SUDO apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
}
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install_missing() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    apt_update
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
}

deps_apt() {
    local base=(cmake gcc make pkg-config libc6-dev libcjson-dev libcmocka-dev zlib1g-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev libonig-dev libutf8proc-dev libmicrohttpd-dev
        glslc libvulkan-dev) # the GPU engine: SPIR-V compiler, Vulkan headers + loader
    if [ "$build_only" -eq 1 ]; then
        apt_install_missing "${base[@]}"
        return
    fi
    local full=("${base[@]}" clang clang-tidy python3 python3-venv python3-pip nginx-light git-lfs git shellcheck)
    # the GPU engine's tests run on Mesa's lavapipe (a CPU Vulkan driver); vulkaninfo for diagnosis
    full+=(mesa-vulkan-drivers vulkan-tools)
    # the web chat of `silica serve` in a real browser (tests/py/test_serve_web.py, Selenium)
    full+=(chromium chromium-driver curl)
    # the install check (tests/py/test_install.py): the shells whose completions it runs,
    # the man page tools, and what `pkg-config --static --libs libcurl` names on Debian
    full+=(make bash bash-completion zsh fish man-db groff-base mandoc
        libnghttp2-dev libidn2-dev librtmp-dev libssh2-1-dev libpsl-dev libkrb5-dev libldap-dev libzstd-dev libbrotli-dev
        libunistring-dev) # ... and `pkg-config --static --libs libmicrohttpd` (gnutls)
    local cross=0
    if [ "${SILICA_NO_CROSS:-0}" != 1 ] && [ "$(dpkg --print-architecture)" = amd64 ]; then
        cross=1
        full+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
            log "dpkg --add-architecture arm64"
            $SUDO dpkg --add-architecture arm64
            apt_updated=0 # the arm64 package lists must be fetched
        fi
        full+=(libcjson-dev:arm64 libcmocka-dev:arm64 zlib1g-dev:arm64 libcurl4-openssl-dev:arm64 libsqlite3-dev:arm64 libssl-dev:arm64 libutf8proc-dev:arm64 libmicrohttpd-dev:arm64)
    fi
    apt_install_missing "${full[@]}"
    # libFuzzer + sanitizer runtimes for the installed clang's major version
    local cv
    cv=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    [ -n "$cv" ] || die "clang is not runnable after install"
    local rt="libclang-rt-$cv-dev"
    if ! pkg_installed "$rt"; then
        apt_update
        apt-cache show "$rt" >/dev/null 2>&1 || rt="libclang-common-$cv-dev" # older Ubuntu/Debian layout
        apt_install_missing "$rt"
    fi
    [ "$cross" -eq 0 ] || command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 missing after install"
    [ "$cross" -eq 0 ] || arm64_sysroot
}

# Oniguruma's -dev package cannot be installed for arm64 beside the amd64 one
# (it is not Multi-Arch: same), so the cross build gets it from a private
# sysroot: the arm64 .debs are downloaded and unpacked (never installed) into
# build-deps/arm64-sysroot, and its .pc file is pointed at that tree.
# cmake/aarch64-linux-gnu.cmake and the qemu runs look there.
arm64_sysroot() {
    local root="$ROOT/build-deps/arm64-sysroot" dl="$ROOT/build-deps/arm64-debs" pc
    pc="$root/usr/lib/aarch64-linux-gnu/pkgconfig/oniguruma.pc"
    [ -f "$pc" ] && return 0
    log "unpacking arm64 oniguruma into $root"
    mkdir -p "$dl" "$root"
    apt_update
    (cd "$dl" && apt-get download -qq libonig5:arm64 libonig-dev:arm64) || die "apt-get download libonig5:arm64 libonig-dev:arm64 failed"
    local deb
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$root" || die "cannot unpack $deb"; done
    [ -f "$pc" ] || die "arm64 oniguruma.pc missing after unpacking"
    sed -i "s|=/usr|=$root/usr|" "$pc"
}

deps_brew() {
    command -v brew >/dev/null || die "Homebrew is required on macOS (https://brew.sh)"
    local want=(cmake cjson cmocka pkg-config curl sqlite openssl@3 nginx git-lfs shellcheck oniguruma utf8proc libmicrohttpd
        bash bash-completion@2 zsh fish groff mandoc
        shaderc vulkan-headers vulkan-loader molten-vk) missing=() p   # the GPU engine: glslc, Vulkan, MoltenVK
    for p in "${want[@]}"; do brew list --formula "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "brew install ${missing[*]}"
        brew install "${missing[@]}"
    fi
}

case "$(uname -s)" in
Linux)
    command -v apt-get >/dev/null || die "no apt-get: install cmake, a C11 compiler, pkg-config, cJSON, cmocka, zlib yourself"
    deps_apt ;;
Darwin) deps_brew ;;
*) die "unsupported OS $(uname -s)" ;;
esac

[ "$build_only" -eq 1 ] && { log "build dependencies present"; exit 0; }

# ---- Python venv with the test peers ----
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "$PY not found"
req=tests/requirements.txt
want_sha=$( (cat "$req"; "$PY" -c 'import sys; print(sys.version)') | sha256sum 2>/dev/null | cut -d' ' -f1 ||
    (cat "$req"; "$PY" -c 'import sys; print(sys.version)') | shasum -a 256 | cut -d' ' -f1)
stamp=.venv/.requirements.sha256
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_sha" ]; then
    log "venv .venv up to date"
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    log "creating venv .venv with $("$PY" --version 2>&1)"
    "$PY" -m venv .venv || die "python venv creation failed (python3-venv missing?)"
fi
log "pip install -r $req"
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$req" || die "pip install -r $req failed"
.venv/bin/python -c 'import numpy, safetensors, gguf, ml_dtypes, mlx.core, pytest' || die "venv is missing a test peer"
echo "$want_sha" >"$stamp"
log "venv .venv ready"
