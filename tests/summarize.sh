#!/usr/bin/env bash
# Sum Criterion's "Synthesis:" lines (and node's test runner's "# pass N" /
# "# fail N", the Jarvis SDK test) of a test log into one closing line.
log="$1"
awk '/^# pass [0-9]+$/ { p += $3 }
     /^# fail [0-9]+$/ { f += $3 }
     /Synthesis: Tested:/ {
       for (i = 1; i <= NF; i++) {
         if ($i == "Tested:") t += $(i+1); if ($i == "Passing:") p += $(i+1);
         if ($i == "Failing:") f += $(i+1); if ($i == "Crashing:") c += $(i+1);
       } }
     END { printf "\nall test binaries: %d passed, %d failed\n", p, f + c + 0 }' "$log"
