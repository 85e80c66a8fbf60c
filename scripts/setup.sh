#!/usr/bin/env bash
# Install what framegate needs to build, run and test — and only what is missing.
#
#   scripts/setup.sh            system packages + the Python test virtualenv (.venv/)
#   scripts/setup.sh --no-venv  system packages only (what `scripts/run.sh` needs)
#
# Idempotent and quiet: when everything is present it checks and returns in well
# under a second. It prints only what it installs, and the installer's log when
# something fails. Works as root (as on CI) or through sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

want_venv=1
for arg in "$@"; do
    case "$arg" in
        --no-venv) want_venv=0 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

# Debian packages. Build: a C toolchain (rustc links with cc; -sys crates
# compile C), pkg-config, clang/libclang (bindgen for ffmpeg-sys), cmake +
# nasm (the libjpeg-turbo that turbojpeg builds), FFmpeg's -dev libraries.
# Runtime/tests: ffmpeg (fixtures), python3-venv (test virtualenv), curl (the
# example line `run.sh` prints), postgresql (PostgreSQL 15 server binaries for
# the throwaway server tests/sdk/pg_server.py starts; also creates the
# `postgres` user it runs as under root), prometheus (the real Prometheus server
# tests/sdk/prometheus_server.py starts on a loopback port to scrape the admin
# listener; the packaged service is not wanted and is stopped if it started),
# nginx (the load balancer in front of three gateways in the multi-node tests,
# tests/sdk/nginx_server.py; the package's own service is not needed: tests run
# nginx in the foreground).
DEB_PACKAGES=(
    gcc g++ make libc6-dev
    pkg-config clang libclang-dev cmake nasm
    ffmpeg libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
    libswresample-dev libavfilter-dev libavdevice-dev
    python3-venv curl ca-certificates
    chromium
    postgresql
    prometheus
    nginx
)

VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/tests/requirements.txt"
STAMP="$VENV/.framegate-requirements.sha256"

log_dir="$(mktemp -d "${TMPDIR:-/tmp}/framegate-setup.XXXXXX")"
trap 'rm -rf "$log_dir"' EXIT

say() { echo "setup: $*" >&2; }

# Run a command with its output in a log; show the log only if it fails.
quietly() {
    local name="$1"; shift
    if ! "$@" >"$log_dir/$name.log" 2>&1; then
        say "FAILED: $*"
        tail -n 60 "$log_dir/$name.log" >&2
        exit 1
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root to run: $* (and sudo is not installed)"
        exit 1
    fi
}

# --- Rust toolchain: cannot be installed from here, only checked -------------
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: install a Rust toolchain (rustup) first"
    exit 1
fi

# --- Debian packages ------------------------------------------------------------
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
    case "$status" in
        ii*) ;;
        *) missing+=("$pkg") ;;
    esac
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-update as_root apt-get update -q
    quietly apt-install as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    # Debian starts the packaged Prometheus (port 9090) where systemd runs;
    # the tests start their own.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# --- npm packages: the demo page's player (web/), the browser tests' driver
# (tests/browser/). Installed from the lock files, again only when one changes.
if ! command -v npm >/dev/null 2>&1; then
    say "installing Debian packages: nodejs npm"
    quietly apt-update as_root apt-get update -q
    quietly apt-install-node as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends nodejs npm
fi
npm_dirs=("$ROOT/web")
[ "$want_venv" -eq 1 ] && npm_dirs+=("$ROOT/tests/browser")
for dir in "${npm_dirs[@]}"; do
    stamp="$dir/node_modules/.framegate-lock.sha256"
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        say "installing npm packages in ${dir#"$ROOT"/} (package-lock.json changed or new)"
        (cd "$dir" && quietly "npm-$(basename "$dir")" npm ci --no-audit --no-fund)
        echo "$want" >"$stamp"
    fi
done

[ "$want_venv" -eq 1 ] || exit 0

# --- Python virtualenv for the SDK tests ---------------------------------------
if [ ! -f "$REQUIREMENTS" ]; then
    say "missing $REQUIREMENTS"
    exit 1
fi

pick_python() {
    # The machine's python3 first (it may be a pyenv build with venv built in),
    # then Debian's, which python3-venv above made able to create venvs.
    local py
    for py in "${FRAMEGATE_PYTHON:-}" python3 /usr/bin/python3; do
        [ -n "$py" ] || continue
        command -v "$py" >/dev/null 2>&1 || continue
        if "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' \
            >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

# The stamp covers the requirements and the interpreter the venv was made with.
want_hash() {
    { cat "$REQUIREMENTS"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } \
        | sha256sum | cut -d' ' -f1
}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(want_hash)" ]; then
        exit 0
    fi
else
    py="$(pick_python)" || { say "no python3 (>= 3.9) with venv + ensurepip found"; exit 1; }
    say "creating virtualenv .venv with $("$py" --version 2>&1)"
    rm -rf "$VENV"
    quietly venv "$py" -m venv "$VENV"
fi

say "installing Python test requirements into .venv (tests/requirements.txt changed or new)"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
quietly pip-install "$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
want_hash >"$STAMP"
