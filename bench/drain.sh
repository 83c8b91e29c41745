#!/usr/bin/env bash
# bench/drain.sh — how fast the durable queue drains a 100,000-entry batch
# (issue 4, item 9). See bench/README.md.
#
# Starts the mock LLM (latency 0) and promptd on free loopback ports with a
# throw-away database, submits DRAIN_TOTAL prompts as batches of 1,000
# (POST /api/v1/prompts/batch), and waits until every entry has ended. Two
# runs, each on a fresh promptd and database:
#   echo   the built-in model: no upstream at all — the queue's own ceiling
#          (claim with a lease, run, group-commit the outcome), the baseline;
#   mock   an OpenAI-compatible upstream over HTTP (the fast mock).
# Prints submit time, drain time and entries/s for both, and the ratio.
# Bounded: every wait loop has a deadline; everything started is stopped.
#
# Environment: DRAIN_TOTAL=100000, DRAIN_TIMEOUT_S=600, PROMPTD_QUEUE_CONCURRENCY (default 1024).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
TOTAL=${DRAIN_TOTAL:-100000}
TIMEOUT_S=${DRAIN_TIMEOUT_S:-600}
KEY=bench_admin_key_0123456789abcdef
BATCH=1000
TMP=$(mktemp -d /tmp/promptd-drain.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT

make --no-print-directory build/promptd build/tests/mock/mock_llm >/dev/null || exit 2

now_ms() { date +%s%3N; }

wait_port() { # log-file pattern -> port
    for _ in $(seq 1 100); do
        p=$(grep -o "$2[0-9]*" "$1" 2>/dev/null | head -1 | grep -o '[0-9]*$')
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    return 1
}

build/tests/mock/mock_llm --port 0 --threads 2 > "$TMP/mock.log" 2>&1 &
PIDS+=($!)
MOCK_PORT=$(wait_port "$TMP/mock.log" "listening on ") || { echo "mock did not start"; exit 2; }
cat > "$TMP/config.json" <<JSON
{"providers": [{"name": "mock", "type": "openai", "base_url": "http://127.0.0.1:$MOCK_PORT/v1", "max_concurrency": 256}],
 "retry": {"max_attempts": 1}}
JSON

# one batch body of $BATCH entries (model filled in per run)
body() {
    python3 - "$1" "$BATCH" <<'PY'
import json, sys
print(json.dumps({"model": sys.argv[1], "prompts": ["drain job %d" % i for i in range(int(sys.argv[2]))]}))
PY
}

run() { # model label
    local model=$1 label=$2 db="$TMP/$2.db" log="$TMP/$2.log"
    PROMPTD_ADMIN_KEY=$KEY PROMPTD_RATE_LIMIT_PER_MINUTE=0 PROMPTD_RATE_LIMIT_PER_DAY=0 \
        build/promptd serve --listen 127.0.0.1:0 --db "$db" --config "$TMP/config.json" > "$log" 2>&1 &
    local pid=$!
    PIDS+=($pid)
    local port
    port=$(wait_port "$log" "listening on http://127.0.0.1:") || { echo "promptd did not start"; return 1; }
    local url="http://127.0.0.1:$port"
    body "$model" > "$TMP/body.json"
    local batches=$((TOTAL / BATCH)) ids=() t0 t1 t2
    t0=$(now_ms)
    for i in $(seq 1 "$batches"); do
        id=$(curl -s -X POST "$url/api/v1/prompts/batch" -H "Authorization: Bearer $KEY" \
                 -H "Content-Type: application/json" --data-binary @"$TMP/body.json" |
             python3 -c 'import json,sys; print(json.load(sys.stdin)["batch_id"])') || { echo "submit failed"; return 1; }
        ids+=("$id")
    done
    t1=$(now_ms)
    local ended_at_t1
    ended_at_t1=$(for id in "${ids[@]}"; do curl -s "$url/api/v1/batches/$id" -H "Authorization: Bearer $KEY"; echo; done |
        python3 -c 'import json,sys; print(sum((lambda d: d["completed"]+d["failed"]+d["cancelled"])(json.loads(l)["data"]) for l in sys.stdin if l.strip()))')
    local deadline=$(( $(date +%s) + TIMEOUT_S )) done=0
    while [ "$(date +%s)" -lt "$deadline" ]; do
        done=0
        for id in "${ids[@]}"; do
            n=$(curl -s "$url/api/v1/batches/$id" -H "Authorization: Bearer $KEY" |
                python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d["completed"]+d["failed"]+d["cancelled"])')
            done=$((done + n))
        done
        [ "$done" -ge "$TOTAL" ] && break
        sleep 0.5
    done
    t2=$(now_ms)
    local failed
    failed=$(for id in "${ids[@]}"; do curl -s "$url/api/v1/batches/$id" -H "Authorization: Bearer $KEY"; echo; done |
             python3 -c 'import json,sys; print(sum(json.loads(l)["data"]["failed"] for l in sys.stdin if l.strip()))')
    local rss
    rss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status" 2>/dev/null)
    kill "$pid"; wait "$pid" 2>/dev/null
    local submit_s drain_s rate backlog_rate submit_rate
    submit_s=$(awk "BEGIN {printf \"%.1f\", ($t1 - $t0) / 1000}")
    drain_s=$(awk "BEGIN {printf \"%.1f\", ($t2 - $t0) / 1000}")
    rate=$(awk "BEGIN {printf \"%.0f\", $TOTAL / (($t2 - $t0) / 1000)}")
    submit_rate=$(awk "BEGIN {printf \"%.0f\", $TOTAL / (($t1 - $t0) / 1000)}")
    # the queue's own pace: what was still waiting when submission ended, over the time it took
    backlog_rate=$(awk "BEGIN {d = ($t2 - $t1) / 1000; printf \"%.0f\", d > 0 ? ($TOTAL - $ended_at_t1) / d : 0}")
    printf '%-5s %7d entries | submitted in %5s s (%5s/s) | all ended after %5s s (%5s/s overall) | backlog of %6d drained at %5s/s | failed %d | peak RSS %s MB\n' \
        "$label" "$done" "$submit_s" "$submit_rate" "$drain_s" "$rate" "$((TOTAL - ended_at_t1))" "$backlog_rate" "$failed" "${rss:-?}"
    echo "$backlog_rate" > "$TMP/$label.rate"
}

echo "drain of $TOTAL entries in batches of $BATCH ($(nproc) cores, $(date -u +%F))"
run echo echo || exit 1
run mock/m mock || exit 1
awk -v a="$(cat "$TMP/echo.rate")" -v b="$(cat "$TMP/mock.rate")" \
    'BEGIN {printf "backlog drain through the mock upstream: %.2f x the echo baseline\n", b / a}'
