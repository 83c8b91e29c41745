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
command -v sqlite3 >/dev/null || { echo "bench/drain.sh needs the sqlite3 command (make deps installs it)"; exit 2; }

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
    local batches=$((TOTAL / BATCH)) t0 t2
    t0=$(now_ms)
    for i in $(seq 1 "$batches"); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/api/v1/prompts/batch" \
                   -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" --data-binary @"$TMP/body.json")
        [ "$code" = 202 ] || { echo "submit failed: HTTP $code"; return 1; }
    done
    # wait, reading the store directly (WAL lets a second reader in) so polling costs the server nothing
    local deadline=$(( $(date +%s) + TIMEOUT_S )) ended=0
    while [ "$(date +%s)" -lt "$deadline" ]; do
        ended=$(sqlite3 "$db" "SELECT count(*) FROM executions WHERE status IN ('completed', 'failed', 'cancelled')")
        [ "$ended" -ge "$TOTAL" ] && break
        sleep 0.2
    done
    t2=$(now_ms)
    local rss
    rss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status" 2>/dev/null)
    kill "$pid"; wait "$pid" 2>/dev/null
    # every figure from the records' own timestamps (ms): submission window, drain window, backlog
    read -r submit_ms drain_ms backlog failed <<<"$(sqlite3 -separator ' ' "$db" "
        WITH b AS (SELECT min(created_at) AS first, max(created_at) AS last FROM batches)
        SELECT (SELECT last - first FROM b),
               max(finished_at) - (SELECT first FROM b),
               sum(finished_at > (SELECT last FROM b)),
               sum(status = 'failed')
        FROM executions")"
    local rate backlog_rate submit_rate
    submit_rate=$(awk "BEGIN {printf \"%.0f\", $TOTAL / ($submit_ms / 1000 + 0.001)}")
    rate=$(awk "BEGIN {printf \"%.0f\", $TOTAL / ($drain_ms / 1000)}")
    # the queue's own pace once everything was queued: the backlog left at the last submit, over the time it took
    backlog_rate=$(awk "BEGIN {d = ($drain_ms - $submit_ms) / 1000; printf \"%.0f\", (d > 0 ? $backlog / d : 0)}")
    printf '%-5s %7d ended | submitted in %5.1f s (%5s/s) | all ended %5.1f s after the first submit (%5s/s) | backlog %6d drained at %5s/s | failed %d | peak RSS %s MB\n' \
        "$label" "$ended" "$(awk "BEGIN {print $submit_ms / 1000}")" "$submit_rate" "$(awk "BEGIN {print $drain_ms / 1000}")" \
        "$rate" "$backlog" "$backlog_rate" "$failed" "${rss:-?}"
    echo "$rate" > "$TMP/$label.rate"
}

echo "drain of $TOTAL entries in batches of $BATCH ($(nproc) cores, $(date -u +%F))"
run echo echo || exit 1
run mock/m mock || exit 1
awk -v a="$(cat "$TMP/echo.rate")" -v b="$(cat "$TMP/mock.rate")" \
    'BEGIN {printf "end-to-end rate through the mock upstream: %.2f x the echo baseline\n", b / a}'
