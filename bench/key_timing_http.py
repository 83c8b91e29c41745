#!/usr/bin/env python3
"""Over HTTP: does a 401 for a known key prefix take longer than one for an unknown prefix?

Usage: bench/key_timing_http.py PORT ADMIN_KEY [ROUNDS]

Against a running promptd (started with PROMPTD_RATE_LIMIT_PER_ADDRESS=0, or the address brake
answers 429 after 60 guesses), on one keep-alive connection, it sends GET /api/v1/users/me with
X-API-Key set to ADMIN_KEY's 16-character prefix plus a random secret (a known prefix) or to a
fresh random key (an unknown prefix), alternating which goes first each round, and prints the
median time to the 401 of each kind. The first 500 rounds are a warm-up and not counted.
Complements bench_keys.c (in-process); see bench/README.md.
"""
import http.client
import random
import statistics
import string
import sys
import time

WARMUP = 500


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    port, key = int(sys.argv[1]), sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    alphabet = string.ascii_letters + string.digits

    def rand(n):
        return "".join(random.choice(alphabet) for _ in range(n))

    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = {"known": [], "unknown": []}
    for i in range(rounds + WARMUP):
        for kind in (("known", "unknown") if i % 2 else ("unknown", "known")):
            probe = key[:16] + rand(32) if kind == "known" else "pk_live_" + rand(40)
            t0 = time.perf_counter_ns()
            conn.request("GET", "/api/v1/users/me", headers={"X-API-Key": probe})
            resp = conn.getresponse()
            resp.read()
            dt = time.perf_counter_ns() - t0
            if resp.status != 401:
                sys.exit(f"{kind} prefix: HTTP {resp.status}, expected 401 (is the address brake off?)")
            if i >= WARMUP:
                times[kind].append(dt)
    known = statistics.median(times["known"]) / 1000
    unknown = statistics.median(times["unknown"]) / 1000
    print(f"{rounds} rounds: known prefix median {known:.1f} us, unknown prefix median {unknown:.1f} us, "
          f"difference {unknown - known:+.1f} us, ratio {unknown / known:.3f}")


if __name__ == "__main__":
    main()
