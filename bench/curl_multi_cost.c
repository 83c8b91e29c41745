/*
 * curl_multi_cost.c — what one turn of promptd's engine loop costs in libcurl
 * when N upstream calls are waiting (bench/README.md, "Why").
 *
 * The engine thread (src/engine/engine.c, engine_main) runs, on every
 * wake-up, curl_multi_perform() and then curl_multi_poll(). This program
 * holds N transfers open against a slow upstream (the mock with a long
 * latency), then times those two calls as the engine makes them, for
 * N = 100, 1000, 3000, 6000, 9000 (up to --max).
 *
 *   curl_multi_cost URL MAX     e.g. http://127.0.0.1:PORT/v1/chat/completions 9000
 *
 * Output: one line per N: in_flight, the mean microseconds of one
 * curl_multi_perform(), of one curl_multi_poll(timeout 0), their sum,
 * this process's resident memory (what N waiting transfers cost in libcurl),
 * and start_us: what starting one more call costs while N wait (100 new
 * transfers added, then one curl_multi_perform() that connects and sends
 * them, as the engine does for a batch of submissions; divided by 100).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static int add_one(CURLM *multi, CURL **easy, int *added, const char *url, const char *body)
{
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_multi_add_handle(multi, e);
    easy[(*added)++] = e;
    return 0;
}

int main(int argc, char **argv)
{
    static const int steps[] = {100, 1000, 3000, 6000, 9000};
    static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
    if (argc != 3 || strncmp(argv[1], "http://127.", 11) != 0) {
        fprintf(stderr, "usage: curl_multi_cost http://127.0.0.1:PORT/PATH MAX\n");
        return 2;
    }
    int max = atoi(argv[2]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < (long)max + 64)
            max = (int)rl.rlim_cur - 64;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    CURLM *multi = curl_multi_init();
    CURL **easy = calloc((size_t)(max > 0 ? max : 1), sizeof *easy);
    if (!multi || !easy)
        return 1;
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 4096L); /* as the engine sets it */
    int added = 0;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0] && steps[s] <= max; s++) {
        while (added < steps[s] - 100)
            if (add_one(multi, easy, &added, argv[1], body) != 0)
                return 1;
        int running = 0;
        /* connect and send every request (bounded: 3 s) */
        for (double t0 = now_s(); now_s() - t0 < 3.0;) {
            curl_multi_perform(multi, &running);
            curl_multi_poll(multi, NULL, 0, 10, NULL);
        }
        double ts = now_s();
        while (added < steps[s])
            if (add_one(multi, easy, &added, argv[1], body) != 0)
                return 1;
        curl_multi_perform(multi, &running);
        double start_us = (now_s() - ts) / 100 * 1e6;
        for (double t0 = now_s(); now_s() - t0 < 1.0;) { /* let those 100 be sent too */
            curl_multi_perform(multi, &running);
            curl_multi_poll(multi, NULL, 0, 10, NULL);
        }
        const int iters = 100;
        double perform = 0, poll = 0;
        for (int i = 0; i < iters; i++) {
            double t1 = now_s();
            curl_multi_perform(multi, &running);
            double t2 = now_s();
            curl_multi_poll(multi, NULL, 0, 0, NULL);
            double t3 = now_s();
            perform += t2 - t1;
            poll += t3 - t2;
        }
        printf("in_flight=%d running=%d perform_us=%.1f poll_us=%.1f turn_us=%.1f rss_kb=%ld start_us=%.1f\n", added,
               running, perform / iters * 1e6, poll / iters * 1e6, (perform + poll) / iters * 1e6, rss_kb(), start_us);
        fflush(stdout);
    }
    for (int i = 0; i < added; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    free(easy);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
