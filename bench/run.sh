#!/usr/bin/env bash
# bench/run.sh — promptd's engine benchmark (issue 3, item 8). See bench/README.md.
#
# Builds promptd, the mock LLM and the load generator, starts them on free
# loopback ports with a throw-away database, runs
#   (a) a fast upstream (mock latency 0):
#       open loop at BENCH_RATE req/s for BENCH_OPEN_SECONDS, directly against
#       the mock (baseline), through the gateway and through /prompts/:id/execute;
#       closed loop with BENCH_CLOSED_CONNS keep-alive connections, same three;
#   (b) a slow upstream (mock latency BENCH_SLOW_MS): BENCH_BURST requests sent
#       at once and kept open, directly against the mock (baseline), through
#       the gateway and through /prompts/:id/execute, each promptd fresh so
#       its peak RSS (VmHWM) belongs to that run alone,
# prints a table, and stops everything it started. Bounded: every wait loop
# has a count, every generator run a timeout, and a run that could take the
# script past BENCH_BUDGET (290 s) is skipped; 1.5-2 minutes in all.
#
# Environment (all optional):
#   PROMPTD_BIN, MOCK_BIN        use these binaries instead of building build/...
#   BENCH_RATE=1000  BENCH_OPEN_SECONDS=10  BENCH_WARMUP_SECONDS=1
#   BENCH_CLOSED_CONNS=64  BENCH_CLOSED_SECONDS=5
#   BENCH_BURST=10000  BENCH_SLOW_MS=1500
#   BENCH_SCENARIOS="a b"        which to run; "c" (not by default) is the libcurl probe:
#                                the cost of one engine-loop turn with N calls waiting
#   BENCH_RAW=FILE               also append the generator's raw result lines to FILE
#   BENCH_DB_DIR=DIR             where promptd's throw-away databases go (default: the temporary
#                                directory under /tmp; /dev/shm takes the disk out of the figures)
#   BENCH_KEEP=1                 keep the temporary directory (logs, databases)
#   BENCH_NICE=-10               run servers and generator at this niceness (negative needs root):
#                                on a shared machine it keeps some other work from skewing the figures
#   BENCH_BUDGET=290             the whole script's time limit in seconds
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

RATE=${BENCH_RATE:-1000}
OPEN_S=${BENCH_OPEN_SECONDS:-10}
WARM_S=${BENCH_WARMUP_SECONDS:-1}
CLOSED_CONNS=${BENCH_CLOSED_CONNS:-64}
CLOSED_S=${BENCH_CLOSED_SECONDS:-5}
BURST=${BENCH_BURST:-10000}
SLOW_MS=${BENCH_SLOW_MS:-1500}
SCENARIOS=${BENCH_SCENARIOS:-a b}
KEY=bench_admin_key_0123456789abcdef
CHAT_BODY='{"model":"openai/mock","messages":[{"role":"user","content":"hello"}]}'
CHAT_EXPECT='"content":"mock reply: hello"'
EXEC_BODY='{"variables":{"x":"hi"},"model":"openai/mock"}'
EXEC_EXPECT='"content":"mock reply: Say hi"'

die() { echo "bench: $*" >&2; exit 2; }
NICE=()
[[ -n ${BENCH_NICE:-} ]] && NICE=(nice -n "$BENCH_NICE")

# ------------------------------------------------------------------ build
if [[ -z ${PROMPTD_BIN:-} || -z ${MOCK_BIN:-} ]]; then
    make --no-print-directory -s build/promptd build/tests/mock/mock_llm >&2 || die "build failed"
fi
PROMPTD_BIN=$(realpath "${PROMPTD_BIN:-build/promptd}")
MOCK_BIN=$(realpath "${MOCK_BIN:-build/tests/mock/mock_llm}")
[[ -x $PROMPTD_BIN && -x $MOCK_BIN ]] || die "missing $PROMPTD_BIN or $MOCK_BIN"

# ------------------------------------------------------------------ processes
TMP=$(mktemp -d /tmp/promptd-bench.XXXXXX) || die "mktemp failed"
DBDIR=
PIDS=()
stop_pid() { # TERM, wait up to 10 s, then KILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    PIDS=()
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "bench: kept $TMP $DBDIR" >&2
    else
        [[ -n $DBDIR ]] && rm -rf "$DBDIR"
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DBDIR=$(mktemp -d "${BENCH_DB_DIR:-$TMP}/promptd-bench-db.XXXXXX") || die "cannot create a database directory"
GEN=$TMP/bench_exec
${CC:-cc} -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$GEN" bench/bench_exec.c || die "cannot build bench_exec"

# Both servers need a descriptor per connection (promptd two: client + upstream).
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)

# wait_for FILE REGEX: up to 10 s for a line; prints the first match
wait_for() {
    local i m
    for ((i = 0; i < 100; i++)); do
        m=$(grep -o -m1 -E "$2" "$1" 2>/dev/null) && { echo "$m"; return 0; }
        sleep 0.1
    done
    return 1
}

start_mock() { # LATENCY_MS -> sets MOCK_PID MOCK_PORT
    local out=$TMP/mock.$1.$RANDOM
    "${NICE[@]}" "$MOCK_BIN" --port 0 --latency-ms "$1" --parent-pid $$ >"$out.out" 2>"$out.err" &
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    MOCK_PORT=$(wait_for "$out.out" 'listening on [0-9]+' | grep -o '[0-9]*$') || die "mock did not start: $(cat "$out.err")"
}

start_promptd() { # NAME [CONFIG_FILE] -> sets PD_PID PD_PORT
    local log=$TMP/promptd.$1.log
    local -a cfg=()
    [[ -n ${2:-} ]] && cfg=(--config "$2")
    # rate limits at their maximum: the limiter still runs, but never says no
    PROMPTD_ADMIN_KEY=$KEY OPENAI_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1 OPENAI_API_KEY=x \
        PROMPTD_RATE_LIMIT_PER_MINUTE=1000000 PROMPTD_RATE_LIMIT_PER_DAY=1000000 \
        "${NICE[@]}" "$PROMPTD_BIN" serve --listen 127.0.0.1:0 --db "$DBDIR/$1.db" "${cfg[@]}" >"$log.out" 2>"$log" &
    PD_PID=$!
    PIDS+=("$PD_PID")
    PD_PORT=$(wait_for "$log" 'listening on http://127\.0\.0\.1:[0-9]+') || die "promptd did not start: $(tail -3 "$log")"
    PD_PORT=${PD_PORT##*:}
}

stop_last() { # stop the most recently started process
    local pid=${PIDS[-1]}
    stop_pid "$pid"
    unset 'PIDS[-1]'
}

create_prompt() { # -> sets PROMPT_ID
    local r
    r=$(curl -s -m 10 -X POST "http://127.0.0.1:$PD_PORT/prompts" -H "AppId: $KEY" -H 'Content-Type: application/json' \
        -d '{"prompt":{"name":"bench","content":"Say {{x}}"}}') || die "cannot create the prompt"
    PROMPT_ID=$(grep -o -m1 '"id":"[^"]*"' <<<"$r" | head -1 | cut -d'"' -f4)
    [[ -n $PROMPT_ID ]] || die "cannot create the prompt: $r"
}

mock_stats() { curl -s -m 5 "http://127.0.0.1:$MOCK_PORT/_mock/stats"; }
mock_reset() { curl -s -m 5 -X POST "http://127.0.0.1:$MOCK_PORT/_mock/reset" >/dev/null; }

# gen LIMIT_S ARGS... : run the generator under a hard time limit, print its result line.
# The whole script stays within BENCH_BUDGET seconds (default 290): a run that could
# overrun it is skipped, and says so.
BUDGET=${BENCH_BUDGET:-290}
gen() {
    local limit=$1 line
    shift
    if ((SECONDS + limit > BUDGET)); then
        echo "bench: skipped a run: it could overrun BENCH_BUDGET=$BUDGET s" >>"$TMP/gen.err"
        echo "label=skipped mode=? sent=0 ok=0 errors=0"
        return
    fi
    line=$(timeout -k 2 "$limit" "${NICE[@]}" "$GEN" "$@" 2>>"$TMP/gen.err" | tail -1)
    [[ -n $line ]] || line="label=failed mode=? sent=0 ok=0 errors=1"
    [[ -n ${BENCH_RAW:-} ]] && echo "$line" >>"$BENCH_RAW"
    echo "$line"
}

# f FIELD LINE: a field of a result line
f() { local k=$1 v; v=$(grep -o -E "(^| )$k=[^ ]*" <<<"$2" | head -1); v=${v#*=}; echo "${v:-?}"; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "?" || b == "?") print "?"; else printf "%+.3f", a - b }'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "?" || b == "?" || b == 0) print "?"; else printf "%.2f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { if (k == "?") print "?"; else printf "%.1f", k / 1024 }'; }

row_lat() { # NAME LINE
    printf '  %-30s %8s %7s %7s %7s %8s %12s %6s %8s %7s\n' "$1" "$(f rps "$2")" "$(f p50_ms "$2")" "$(f p90_ms "$2")" \
        "$(f p99_ms "$2")" "$(f max_ms "$2")" "$(f ok "$2")/$(f sent "$2")" "$(f errors "$2")" "$(f lag_p99_ms "$2")" \
        "$(f other_cpu "$2")"
}
hdr_lat() {
    printf '  %-30s %8s %7s %7s %7s %8s %12s %6s %8s %7s\n' "target" "req/s" "p50 ms" "p90 ms" "p99 ms" "max ms" "ok/sent" \
        "errors" "lag99 ms" "other"
}

# machine state: the numbers mean little on a busy machine
busy_pct() {
    local a b
    read -r -a a < <(head -1 /proc/stat)
    sleep 1
    read -r -a b < <(head -1 /proc/stat)
    awk -v u="$((b[1] + b[2] + b[3] + b[6] + b[7] - a[1] - a[2] - a[3] - a[6] - a[7]))" \
        -v t="$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[4] - a[5] - a[6] - a[7] - a[8]))" \
        'BEGIN { printf "%.0f", t ? 100 * u / t : 0 }'
}

echo "promptd benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), kernel $(uname -r)," \
     "RLIMIT_NOFILE $NOFILE, CPU busy before start: $(busy_pct)% (load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  promptd: $PROMPTD_BIN (PROMPTD_THREADS=${PROMPTD_THREADS:-2}); upstream: mock_llm; db: $DBDIR ($(df --output=fstype "$DBDIR" | tail -1), throw-away);" \
     "niceness ${BENCH_NICE:-0}"
echo

# ------------------------------------------------------------------ (a) fast upstream
if [[ " $SCENARIOS " == *" a "* ]]; then
    start_mock 0
    start_promptd fast
    create_prompt
    MOCK_URL=http://127.0.0.1:$MOCK_PORT/v1/chat/completions
    GW_URL=http://127.0.0.1:$PD_PORT/v1/chat/completions
    EX_URL=http://127.0.0.1:$PD_PORT/prompts/$PROMPT_ID/execute
    OPEN_ARGS=(--mode open --rate "$RATE" --duration "$((OPEN_S + WARM_S))" --warmup "$WARM_S" --timeout 10)
    LIM_OPEN=$((OPEN_S + WARM_S + 14))

    echo "(a) fast upstream (mock latency 0 ms), open loop: $RATE req/s for $OPEN_S s (+${WARM_S} s warm-up), latency from send, generator lag reported separately"
    A_DIRECT=$(gen "$LIM_OPEN" --url "$MOCK_URL" --body "$CHAT_BODY" --expect "$CHAT_EXPECT" --label open_direct \
        --watch-pid "$MOCK_PID" "${OPEN_ARGS[@]}")
    A_GW=$(gen "$LIM_OPEN" --url "$GW_URL" -H "Authorization: Bearer $KEY" --body "$CHAT_BODY" --expect "$CHAT_EXPECT" \
        --label open_gateway --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" "${OPEN_ARGS[@]}")
    A_EX=$(gen "$LIM_OPEN" --url "$EX_URL" -H "AppId: $KEY" --body "$EXEC_BODY" --expect "$EXEC_EXPECT" \
        --label open_execute --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" "${OPEN_ARGS[@]}")
    hdr_lat
    row_lat "mock directly (baseline)" "$A_DIRECT"
    row_lat "promptd /v1/chat/completions" "$A_GW"
    row_lat "promptd /prompts/:id/execute" "$A_EX"
    for pair in "gateway|$A_GW" "execute|$A_EX"; do
        name=${pair%%|*}
        line=${pair#*|}
        add50=$(fsub "$(f p50_ms "$line")" "$(f p50_ms "$A_DIRECT")")
        add99=$(fsub "$(f p99_ms "$line")" "$(f p99_ms "$A_DIRECT")")
        verdict=$(awk -v a="$add99" 'BEGIN { print (a != "?" && a < 1.0) ? "MET" : "NOT MET" }')
        # a baseline whose own sends ran late measured the machine, not the mock: its p99 says little
        base_lag=$(f lag_p99_ms "$A_DIRECT")
        if awk -v l="$base_lag" 'BEGIN { exit !(l != "?" && l > 2.0) }'; then
            verdict="$verdict, but not conclusive: the baseline's own send lag p99 was $base_lag ms"
        fi
        echo "  added by promptd ($name): p50 $add50 ms, p99 $add99 ms   [target: added p99 < 1 ms at $RATE req/s: $verdict]"
        echo "    promptd's own account (Server-Timing total - upstream): p50 $(f own_p50_ms "$line") ms, p99 $(f own_p99_ms "$line") ms"
    done
    echo "  lag99: p99 of how late the generator sent after the due time; other: cores the rest of the machine used"
    echo

    CLOSED_ARGS=(--mode closed --conns "$CLOSED_CONNS" --duration "$((CLOSED_S + WARM_S))" --warmup "$WARM_S" --timeout 10)
    LIM_CLOSED=$((CLOSED_S + WARM_S + 14))
    echo "(a) fast upstream, closed loop: $CLOSED_CONNS keep-alive connections for $CLOSED_S s (+${WARM_S} s warm-up): max throughput"
    C_DIRECT=$(gen "$LIM_CLOSED" --url "$MOCK_URL" --body "$CHAT_BODY" --expect "$CHAT_EXPECT" --label closed_direct \
        --watch-pid "$MOCK_PID" "${CLOSED_ARGS[@]}")
    C_GW=$(gen "$LIM_CLOSED" --url "$GW_URL" -H "Authorization: Bearer $KEY" --body "$CHAT_BODY" --expect "$CHAT_EXPECT" \
        --label closed_gateway --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" "${CLOSED_ARGS[@]}")
    C_EX=$(gen "$LIM_CLOSED" --url "$EX_URL" -H "AppId: $KEY" --body "$EXEC_BODY" --expect "$EXEC_EXPECT" \
        --label closed_execute --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" "${CLOSED_ARGS[@]}")
    printf '  %-30s %9s %8s %8s %8s %12s %6s %8s %7s %9s %9s\n' target req/s "p50 ms" "p99 ms" "max ms" ok/sent errors \
        "gen CPU" other "CPU us/r" "vs direct"
    for pair in "mock directly (baseline)|$C_DIRECT" "promptd /v1/chat/completions|$C_GW" "promptd /prompts/:id/execute|$C_EX"; do
        name=${pair%%|*}
        line=${pair#*|}
        printf '  %-30s %9s %8s %8s %8s %12s %6s %8s %7s %9s %9s\n' "$name" "$(f rps "$line")" "$(f p50_ms "$line")" \
            "$(f p99_ms "$line")" "$(f max_ms "$line")" "$(f ok "$line")/$(f sent "$line")" "$(f errors "$line")" \
            "$(f gen_cpu "$line")" "$(f other_cpu "$line")" "$(f srv_us_per_req "$line")" \
            "$(fdiv "$(f rps "$line")" "$(f rps "$C_DIRECT")")"
    done
    echo "  CPU us/r: CPU microseconds per request of the server (mock directly / promptd alone); gen CPU and other:"
    echo "  cores used by the generator and by everything else on the machine during the run"
    echo "  promptd after (a): peak RSS $(mb "$(f peak_rss_kb "$C_EX")") MB, threads $(f peak_threads "$C_EX")"
    echo
    stop_last # promptd
    stop_last # mock
fi

# ------------------------------------------------------------------ (b) slow upstream
if [[ " $SCENARIOS " == *" b "* ]]; then
    start_mock "$SLOW_MS"
    # every call in flight upstream at once needs the provider's cap raised
    # (default 256) and, in promptd, two descriptors per call
    CAP=$BURST
    if ((NOFILE < 2 * BURST + 200)); then
        CAP=$((NOFILE - BURST - 200))
        CAP_NOTE="(capped: RLIMIT_NOFILE $NOFILE < 2 x $BURST; the rest wait in promptd's FIFO for a slot)"
    else
        CAP_NOTE=""
    fi
    CONF=$TMP/slow.json
    printf '{"providers":[{"name":"openai","type":"openai","base_url":"http://127.0.0.1:%s/v1","max_concurrency":%s}]}\n' \
        "$MOCK_PORT" "$CAP" >"$CONF"
    BURST_ARGS=(--mode burst --count "$BURST" --timeout 40)
    LIM_BURST=45

    echo "(b) slow upstream (mock latency $SLOW_MS ms): $BURST requests sent at once, connections kept open;" \
         "promptd provider max_concurrency $CAP $CAP_NOTE"
    mock_reset
    B_DIRECT=$(gen "$LIM_BURST" --url "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" --body "$CHAT_BODY" \
        --expect "$CHAT_EXPECT" --label burst_direct --watch-pid "$MOCK_PID" "${BURST_ARGS[@]}")
    B_DIRECT_UP=$(mock_stats)
    sleep 1

    start_promptd slow_gw "$CONF"
    mock_reset
    B_GW=$(gen "$LIM_BURST" --url "http://127.0.0.1:$PD_PORT/v1/chat/completions" -H "Authorization: Bearer $KEY" \
        --body "$CHAT_BODY" --expect "$CHAT_EXPECT" --label burst_gateway --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" "${BURST_ARGS[@]}")
    B_GW_UP=$(mock_stats)
    stop_last
    sleep 1

    start_promptd slow_ex "$CONF"
    create_prompt
    mock_reset
    B_EX=$(gen "$LIM_BURST" --url "http://127.0.0.1:$PD_PORT/prompts/$PROMPT_ID/execute" -H "AppId: $KEY" \
        --body "$EXEC_BODY" --expect "$EXEC_EXPECT" --label burst_execute --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" "${BURST_ARGS[@]}")
    B_EX_UP=$(mock_stats)
    stop_last
    sleep 1

    # the same burst with the provider's default cap (256 calls upstream at
    # once): 10,000 requests in flight in promptd, most waiting in its FIFO
    CONF256=$TMP/slow256.json
    printf '{"providers":[{"name":"openai","type":"openai","base_url":"http://127.0.0.1:%s/v1","max_concurrency":256}]}\n' \
        "$MOCK_PORT" >"$CONF256"
    start_promptd slow_gw256 "$CONF256"
    mock_reset
    B_GW256=$(gen $((LIM_BURST + BURST * SLOW_MS / 256 / 1000 + 20)) --url "http://127.0.0.1:$PD_PORT/v1/chat/completions" \
        -H "Authorization: Bearer $KEY" --body "$CHAT_BODY" --expect "$CHAT_EXPECT" --label burst_gateway_cap256 \
        --watch-pid "$PD_PID" --watch-pid "$MOCK_PID" --mode burst --count "$BURST" \
        --timeout $((40 + BURST * SLOW_MS / 256 / 1000 + 15)))
    B_GW256_UP=$(mock_stats)
    stop_last

    printf '  %-30s %7s %7s %8s %8s %8s %12s %6s %9s %7s %8s %7s %6s\n' target "wall s" "open s" "p50 ms" "p99 ms" \
        "max ms" ok/sent errors "peak RSS" threads upstream drops other
    for pair in "mock directly (baseline)|$B_DIRECT|$B_DIRECT_UP" "promptd /v1/chat/completions|$B_GW|$B_GW_UP" \
        "promptd /prompts/:id/execute|$B_EX|$B_EX_UP" "gateway, default cap 256|$B_GW256|$B_GW256_UP"; do
        name=${pair%%|*}
        rest=${pair#*|}
        line=${rest%%|*}
        up=$(grep -o '"max_in_flight":[0-9]*' <<<"${rest#*|}" | cut -d: -f2)
        printf '  %-30s %7s %7s %8s %8s %8s %12s %6s %9s %7s %8s %7s %6s\n' "$name" "$(f wall_s "$line")" \
            "$(f open_s "$line")" "$(f p50_ms "$line")" "$(f p99_ms "$line")" "$(f max_ms "$line")" "$(f ok "$line")/$(f sent "$line")" \
            "$(f errors "$line")" "$(mb "$(f peak_rss_kb "$line")")MB" "$(f peak_threads "$line")" "${up:-?}" \
            "$(f listen_drops "$line")" "$(f other_cpu "$line")"
    done
    echo "  open s = how long the generator took to issue the $BURST connects; peak RSS = VmHWM of the server process;"
    echo "  upstream = the mock's max_in_flight (calls it held at once);"
    echo "  drops = kernel ListenOverflows during the run (SYNs dropped on a full accept queue, each a 1 s client retry)"
    for pair in "gateway|$B_GW" "execute|$B_EX" "gateway, default cap 256|$B_GW256"; do
        name=${pair%%|*}
        line=${pair#*|}
        ok=$(f ok "$line")
        rss=$(f peak_rss_kb "$line")
        v1=$([[ $ok == "$BURST" ]] && echo MET || echo "NOT MET")
        v2=$(awk -v k="$rss" 'BEGIN { print (k != "?" && k < 150 * 1024) ? "MET" : "NOT MET" }')
        echo "  promptd ($name): all $BURST answered 200 with the expected content: $v1; peak RSS $(mb "$rss") MB < 150 MB: $v2"
    done
    echo
    stop_last # mock
fi
# ------------------------------------------------------------------ (c) libcurl probe
if [[ " $SCENARIOS " == *" c "* ]]; then
    PROBE=$TMP/curl_multi_cost
    read -r -a CURL_CFLAGS <<<"$(pkg-config --cflags libcurl)"
    read -r -a CURL_LIBS <<<"$(pkg-config --libs libcurl)"
    ${CC:-cc} -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror "${CURL_CFLAGS[@]}" -o "$PROBE" \
        bench/curl_multi_cost.c "${CURL_LIBS[@]}" || die "cannot build curl_multi_cost"
    start_mock 120000
    echo "(c) libcurl $(pkg-config --modversion libcurl): the engine loop with N calls waiting: curl_multi_perform + curl_multi_poll (the old loop) against curl_multi_socket_action + epoll (the engine since 2026-11-22)"
    timeout -k 2 150 "${NICE[@]}" "$PROBE" "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$((NOFILE - 200 < 9000 ? NOFILE - 200 : 9000))" |
        sed 's/^/  /'
    echo
    stop_last
fi
if [[ -s $TMP/gen.err ]]; then
    echo "generator messages:"
    sort "$TMP/gen.err" | uniq -c | head -20
fi
