#!/usr/bin/env bash
# readme.sh — runs the examples of README.md as a newcomer would, and fails if one does not work.
#
# Every ```sh block of the README's "## The API" section runs, in order, in one bash
# (`set -euo pipefail`, so a variable a block sets is there for the next), in a scratch folder
# holding `./promptd` (a link to the binary under test) and the server's `promptd.db`, exactly
# as after `make run` in a clone. One change is made to the text: the address 127.0.0.1:8080
# becomes the test server's (a free port). The server gets the mock provider of tests/mock as its
# OpenAI-compatible provider, so the example that needs a real model has one.
#
# What counts as failing: a command that exits non-zero; a curl whose HTTP status is 400 or
# more (curl is wrapped with --fail-with-body); a variable the examples capture (an id, a key)
# that came back empty or "null".
#
# Usage: tests/readme.sh [README]   with PROMPTD_BIN and PROMPTD_MOCK_BIN set (make does).
# Prints one line per block and a closing Criterion-style "Synthesis:" line for the summary.
set -uo pipefail

readme=$(realpath "${1:-README.md}")
: "${PROMPTD_BIN:?set PROMPTD_BIN to the promptd binary}" "${PROMPTD_MOCK_BIN:?set PROMPTD_MOCK_BIN to the mock}"
for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "readme: $tool is missing (make deps installs it)"; exit 1; }
done

work=$(mktemp -d)
mock_pid=
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# Wait until `file` has a line matching `pattern`; print the port that follows the last ':'.
wait_port() {
    local file=$1 pattern=$2 pid=$3 line
    for _ in $(seq 1 200); do
        line=$(grep -m1 -o "$pattern[0-9]*" "$file" 2>/dev/null) && { echo "${line##*[: ]}"; return 0; }
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

"$PROMPTD_MOCK_BIN" --port 0 --parent-pid $$ >"$work/mock.log" 2>&1 &
mock_pid=$!
mock_port=$(wait_port "$work/mock.log" "listening on " "$mock_pid") || {
    echo "readme: the mock provider did not start"; cat "$work/mock.log"; exit 1; }

ln -s "$(realpath "$PROMPTD_BIN")" "$work/promptd"
(cd "$work" && OPENAI_API_KEY=readme-test OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" \
    exec ./promptd serve --listen 127.0.0.1:0 --db ./promptd.db) >"$work/server.log" 2>&1 &
server_pid=$!
port=$(wait_port "$work/server.log" "listening on http://127.0.0.1:" "$server_pid") || {
    echo "readme: promptd did not start"; cat "$work/server.log"; exit 1; }

# The blocks, numbered, each preceded by a marker the run prints when it reaches the block.
awk -v port="$port" '
    /^## / { in_api = ($0 == "## The API") }
    in_api && /^```sh$/ { inblock = 1; n++; printf "echo; echo \"@@block %d\"\n", n; next }
    inblock && /^```$/ { inblock = 0; printf "check_vars %d\n", n; next }
    inblock { gsub(/127\.0\.0\.1:8080/, "127.0.0.1:" port); print }
' "$readme" >"$work/blocks.sh"
total=$(grep -c '@@block' "$work/blocks.sh")
if [ "$total" -eq 0 ]; then
    echo "readme: no sh examples found under '## The API' in $readme"
    echo "[====] Synthesis: Tested: 1 | Passing: 0 | Failing: 1 | Crashing: 0"
    exit 1
fi

cat >"$work/run.sh" <<'EOF'
set -euo pipefail
curl() { command curl --fail-with-body -sS "$@"; }
check_vars() {
    local v
    for v in BLOCKS_API_KEY BLOCKS_AUTH_TOKEN ID REQUEST_ID ENTITY CLUSTER CONV; do
        if [ -n "${!v+set}" ] && { [ -z "${!v}" ] || [ "${!v}" = null ]; }; then
            echo "readme: block $1 left \$$v empty or null" >&2
            exit 1
        fi
    done
    echo; echo "@@done $1"
}
EOF
cat "$work/blocks.sh" >>"$work/run.sh"

(cd "$work" && bash ./run.sh) >"$work/out.log" 2>&1
rc=$?
passed=$(grep -c '^@@done ' "$work/out.log")
failed=0
# Print each block's output under its own heading, so a failure shows where it broke.
awk '/^@@block / { printf "-- README example block %s\n", $2; next } /^@@done / { print "   ok"; next } { print "   " $0 }' \
    "$work/out.log"
if [ "$rc" -ne 0 ] || [ "$passed" -ne "$total" ]; then
    failed=1
    echo "readme: example block $((passed + 1)) of $total failed (exit $rc); server log:"
    tail -n 20 "$work/server.log"
fi
echo "[====] Synthesis: Tested: $((passed + failed)) | Passing: $passed | Failing: $failed | Crashing: 0"
exit "$failed"
