#!/usr/bin/env bash
# Run every framegate test: install what is missing, build all targets, run the
# Rust tests, then the Python SDK suite (tests/sdk) against the real server on
# the file, memory and S3 (moto) backends with SQLite and PostgreSQL job
# queues, then the browser tests (tests/browser: Playwright + Chromium). Prints
# a summary; exits non-zero if any stage fails.
#
#   scripts/test.sh              all stages
#   scripts/test.sh cargo sdk    only the named stages (setup build cargo sdk browser)
#
# Pass options to pytest with PYTEST_ADDOPTS, e.g.
#   PYTEST_ADDOPTS="-k boto3 --backends=file" scripts/test.sh sdk
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export FRAMEGATE_BIN="${FRAMEGATE_BIN:-$TARGET_DIR/debug/framegate}"
LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/framegate-test.XXXXXX")"

# ---------------------------------------------------------------------------
# The stages, in order: KEY|NAME|REQUIRED|COMMAND. A failing REQUIRED stage
# skips the rest (nothing to test without a build). Adding a stage is a line.
# ---------------------------------------------------------------------------
STAGES=(
    "setup|setup (system packages, .venv)|yes|scripts/setup.sh"
    "build|cargo build --all-targets|yes|cargo build --all-targets"
    "cargo|cargo test|no|cargo test --no-fail-fast"
    "sdk|pytest tests/sdk (cos-python-sdk-v5, boto3, VOD SDK; SQLite + PostgreSQL queues)|no|.venv/bin/python -m pytest tests/sdk -q -rfE -p no:cacheprovider"
    "browser|browser tests (Playwright + Chromium: demo page, CORS)|no|cd tests/browser && node --test --test-concurrency=1"
)

only=("$@")
selected() {
    [ "${#only[@]}" -eq 0 ] && return 0
    local k
    for k in "${only[@]}"; do [ "$k" = "$1" ] && return 0; done
    return 1
}
if [ "${#only[@]}" -gt 0 ]; then
    for k in "${only[@]}"; do
        found=0
        for s in "${STAGES[@]}"; do [ "${s%%|*}" = "$k" ] && found=1; done
        [ "$found" -eq 1 ] || { echo "test.sh: unknown stage '$k' (stages: setup build cargo sdk browser)" >&2; exit 2; }
    done
fi

summary=()
failed=0
skip_rest=0
total_passed=0
total_failed=0
total_skipped=0
total_xfailed=0

# Add up the test counts a stage's runner printed (cargo's "test result:"
# lines, pytest's closing line).
count_tests() {
    local log="$1" n
    n=$(grep -E '^test result: ' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
    local p=$n
    n=$(grep -E '^test result: ' "$log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
    local f=$n
    n=$(grep -E '^test result: ' "$log" | grep -oE '[0-9]+ ignored' | awk '{s+=$1} END {print s+0}')
    local s=$n
    # pytest -q closing line, e.g. "3 failed, 120 passed, 4 skipped in 81.2s"
    local last x=0
    last=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error|errors|deselected)' "$log" | tail -n 1 || true)
    if [ -n "$last" ]; then
        p=$((p + $(echo "$last" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')))
        f=$((f + $(echo "$last" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s+=$1} END {print s+0}')))
        s=$((s + $(echo "$last" | grep -oE '[0-9]+ skipped' | awk '{s+=$1} END {print s+0}')))
        x=$(echo "$last" | grep -oE '[0-9]+ xfailed' | awk '{s+=$1} END {print s+0}')
    fi
    # node --test closing lines: "# pass N", "# fail N", "# skipped N"
    p=$((p + $(grep -E '^# pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
    f=$((f + $(grep -E '^# fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
    s=$((s + $(grep -E '^# skipped [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')))
    echo "$p $f $s ${x:-0}"
}

start_all=$(date +%s)
for entry in "${STAGES[@]}"; do
    IFS='|' read -r key name required cmd <<<"$entry"
    selected "$key" || continue
    if [ "$skip_rest" -eq 1 ]; then
        summary+=("$(printf '%-5s %-50s %s' SKIP "$name" '(an earlier required stage failed)')")
        continue
    fi
    echo
    echo "==> $name"
    echo "    \$ $cmd"
    log="$LOG_DIR/$key.log"
    t0=$(date +%s)
    bash -c "$cmd" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    dt=$(( $(date +%s) - t0 ))
    read -r p f s x <<<"$(count_tests "$log")"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    total_skipped=$((total_skipped + s))
    total_xfailed=$((total_xfailed + x))
    counts=""
    if [ $((p + f + s + x)) -gt 0 ]; then
        counts="  [$p passed, $f failed, $s skipped"
        [ "$x" -gt 0 ] && counts="$counts, $x known gaps (xfail)"
        counts="$counts]"
    fi
    if [ "$rc" -eq 0 ]; then
        summary+=("$(printf '%-5s %-50s %5ss%s' PASS "$name" "$dt" "$counts")")
    else
        failed=1
        summary+=("$(printf '%-5s %-50s %5ss%s (exit %s)' FAIL "$name" "$dt" "$counts" "$rc")")
        [ "$required" = yes ] && skip_rest=1
    fi
done
elapsed=$(( $(date +%s) - start_all ))

echo
echo "==================== framegate test summary ===================="
printf '%s\n' "${summary[@]}"
echo "logs: $LOG_DIR   total time: ${elapsed}s"
if [ "$failed" -eq 0 ]; then
    echo "RESULT: all stages passed"
else
    echo "RESULT: FAILED"
fi
[ "$total_xfailed" -gt 0 ] && echo "known server gaps (strict xfail, see tests/sdk/conftest.py KNOWN_GAPS): $total_xfailed"
echo "tests: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$failed"
