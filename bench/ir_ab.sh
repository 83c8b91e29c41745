#!/usr/bin/env bash
# bench/ir_ab.sh — a noise-free A/B of promptd builds: instructions per request.
#
#   bench/ir_ab.sh BASELINE_BIN CANDIDATE_BIN [MORE_BINS...]
#
# Timings on a shared VM move by ±15% from run to run (bench/README.md), and
# this VM has no hardware counters (perf stat: <not supported>), so a small
# change cannot be told from the noise by its req/s. This counts instructions
# instead: each build serves the same requests under valgrind's callgrind
# (BENCH_IR_ROUNDS bursts of BENCH_IR_BURST gateway requests to the mock, every
# answer checked), and the script prints the instructions promptd executed
# per request, start-up and shutdown included, and each build's ratio to the
# first. Deterministic to well under 1% between runs of one build; it does not
# see waiting (locks, scheduling, I/O), which is what the timed benchmarks are
# for. About 1 minute per build. BENCH_IR_KEEP=DIR keeps each build's
# callgrind profile there (DIR/<n>.callgrind, n = the build's position) for
# callgrind_annotate --inclusive=yes.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 BASELINE_BIN CANDIDATE_BIN [MORE_BINS...]" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_IR_ROUNDS:-4}
BURST=${BENCH_IR_BURST:-500}
MOCK_BIN=${MOCK_BIN:-build/tests/mock/mock_llm}
command -v valgrind >/dev/null || { echo "needs valgrind (make valgrind installs it)" >&2; exit 2; }
command -v callgrind_annotate >/dev/null || { echo "needs callgrind_annotate (package valgrind)" >&2; exit 2; }
[ -x "$MOCK_BIN" ] || make --no-print-directory "$MOCK_BIN" >/dev/null

T=$(mktemp -d /tmp/promptd-ir.XXXXXX)
MP=""
PP=""
cleanup() {
    [ -n "$PP" ] && kill "$PP" 2>/dev/null || true
    [ -n "$MP" ] && kill "$MP" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
cc -std=c17 -O2 -D_GNU_SOURCE -o "$T/gen" bench/bench_exec.c
ulimit -n "$(ulimit -Hn)"

"$MOCK_BIN" --port 0 --latency-ms 0 --parent-pid $$ >"$T/mock.out" 2>"$T/mock.err" &
MP=$!
for _ in $(seq 50); do
    MPORT=$(grep -o 'listening on [0-9]*' "$T/mock.out" | grep -o '[0-9]*$' || true)
    [ -n "$MPORT" ] && break
    sleep 0.1
done
[ -n "$MPORT" ] || { echo "the mock did not start" >&2; exit 1; }

KEY=bench_admin_key_0123456789abcdef
BODY='{"model":"openai/mock","messages":[{"role":"user","content":"hello"}]}'
first=""
printf '%-48s %14s %10s %8s\n' "build" "instructions" "per req" "ratio"
for bin in "$@"; do
    rm -f "$T"/db*
    PROMPTD_ADMIN_KEY=$KEY OPENAI_BASE_URL=http://127.0.0.1:$MPORT/v1 OPENAI_API_KEY=x \
        PROMPTD_RATE_LIMIT_PER_MINUTE=1000000 PROMPTD_RATE_LIMIT_PER_DAY=1000000 \
        valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$bin" serve --listen 127.0.0.1:0 \
        --db "$T/db" >"$T/pd.out" 2>"$T/pd.err" &
    PP=$!
    PPORT=""
    for _ in $(seq 100); do
        PPORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$T/pd.err" | grep -o '[0-9]*$' || true)
        [ -n "$PPORT" ] && break
        sleep 0.2
    done
    [ -n "$PPORT" ] || { echo "$bin did not start under valgrind" >&2; cat "$T/pd.err" >&2; exit 1; }
    ok=0
    for _ in $(seq "$ROUNDS"); do
        n=$("$T/gen" --url "http://127.0.0.1:$PPORT/v1/chat/completions" -H "Authorization: Bearer $KEY" \
            --body "$BODY" --expect '"content":"mock reply: hello"' --label ir --mode burst --count "$BURST" \
            --timeout 120 | tail -1 | grep -o ' ok=[0-9]*' | grep -o '[0-9]*' || echo 0)
        ok=$((ok + n))
    done
    kill -TERM "$PP"
    wait "$PP" || true
    PP=""
    if [ "$ok" -ne $((ROUNDS * BURST)) ]; then
        echo "$bin: only $ok of $((ROUNDS * BURST)) answers were right" >&2
        exit 1
    fi
    idx=$((${idx:-0} + 1))
    if [ -n "${BENCH_IR_KEEP:-}" ]; then
        mkdir -p "$BENCH_IR_KEEP"
        cp "$T/cg.out" "$BENCH_IR_KEEP/$idx.callgrind"
    fi
    callgrind_annotate "$T/cg.out" >"$T/cg.txt" 2>/dev/null
    ir=$(awk '/PROGRAM TOTALS/ && !seen { gsub(",", "", $1); print $1; seen = 1 }' "$T/cg.txt")
    [ -z "$first" ] && first=$ir
    awk -v b="$bin" -v ir="$ir" -v n="$ok" -v f="$first" \
        'BEGIN { printf "%-48s %14d %10.0f %8.3f\n", b, ir, ir / n, ir / f }'
done
