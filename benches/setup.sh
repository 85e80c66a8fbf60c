#!/usr/bin/env bash
# benches/setup.sh — install what benches/compare.py needs beyond scripts/setup.sh (which
# brings ffmpeg, the build toolchain and the Python venv): wrk, the HTTP load generator, and
# nginx, the static-file server the gateway's plain GETs are compared with. Both are Debian
# packages; whatever is installed already is skipped. compare.py runs this when one is missing.
#
# Needs root for apt-get; otherwise it prints the command to run and fails. compare.py starts
# its own nginx (own config, pid file and port in a temp dir) and stops it at the end; where an
# init system runs, installing the package may also start Debian's nginx service, which the
# benchmark neither uses nor stops.
set -euo pipefail

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "benches/setup.sh: missing ${need[*]}; install as root: apt-get install -y ${need[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "benches/setup.sh: installing ${need[*]}" >&2
apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
