#!/usr/bin/env bash
# Start framegate on its embedded defaults: install what is missing, build the
# release binary, and serve a local-filesystem bucket under ./framegate-data
# (or $FRAMEGATE_DATA_DIR) with the demo video uploaded. The gateway prints
# its credentials and a ready-to-paste curl line. Extra arguments go to
# `framegate serve` (e.g. `scripts/run.sh --listen 0.0.0.0:8080`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh --no-venv

echo "run: building framegate (release)..." >&2
cargo build --release --bin framegate

target_dir="${CARGO_TARGET_DIR:-target}"
args=(serve --data-dir "${FRAMEGATE_DATA_DIR:-./framegate-data}")
if [ -f fixtures/demo.mp4 ]; then
    args+=(--demo fixtures/demo.mp4)
fi
exec "$target_dir/release/framegate" "${args[@]}" "$@"
