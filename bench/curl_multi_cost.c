/*
 * curl_multi_cost.c — what one turn of promptd's engine loop costs in libcurl
 * when N upstream calls are waiting, and what each waiting call costs in
 * memory (bench/README.md, "Why").
 *
 * Two ways of driving libcurl, as the engine thread (src/engine/engine.c,
 * engine_main) did and does:
 *   perform  on every wake-up, curl_multi_perform() then curl_multi_poll():
 *            the engine until 2026-11-22; libcurl looks at every transfer;
 *   socket   one epoll set filled through CURLMOPT_SOCKETFUNCTION, and
 *            curl_multi_socket_action() for the ready sockets and, when
 *            CURLMOPT_TIMERFUNCTION's timer is due, for CURL_SOCKET_TIMEOUT:
 *            the engine now; libcurl looks only at what is due.
 * The program holds N transfers open against a slow upstream (the mock with a
 * long latency), set up as engine_http_start sets them up, and times one turn
 * of the loop for N = 100, 1000, 3000, 6000, 9000 (up to MAX).
 *
 *   curl_multi_cost URL MAX [MODE [BUFFERSIZE]]
 *       URL         e.g. http://127.0.0.1:PORT/v1/chat/completions (loopback only)
 *       MODE        perform, socket, or both (the default): perform with
 *                   libcurl's default receive buffer (the engine before),
 *                   then socket with a 4096-byte one (the engine now,
 *                   ENGINE_CURL_BUFFERSIZE), each in a child process so
 *                   that each memory figure is its own
 *       BUFFERSIZE  CURLOPT_BUFFERSIZE of every transfer; 0 = libcurl's
 *                   default (16 KiB)
 *   curl_multi_cost URL N idle [BUFFERSIZE]
 *       N quick calls ([mock:latency=0], 16 KiB answers) run to completion
 *       at once; then the heap one idle keep-alive connection takes in the
 *       multi handle's connection cache (CURLMOPT_MAXCONNECTS) and one idle
 *       easy handle after curl_easy_reset (the engine's pool,
 *       ENGINE_POOL_MAX); then N transfers are held waiting
 *       ([mock:latency=120000]) in the heap the quick calls left behind, as
 *       in a server that has been answering calls, and their resident
 *       memory per transfer is printed (waiting_kb_per_transfer): unlike a
 *       fresh heap, recycled memory is resident whether touched or not
 *
 * Output: one line per N. perform: perform_us and poll_us, the mean
 * microseconds of one curl_multi_perform() and one curl_multi_poll(timeout
 * 0). socket: epoll_us and timeout_us, one epoll_wait(timeout 0) and one
 * curl_multi_socket_action(CURL_SOCKET_TIMEOUT) (which a turn makes only when
 * curl's timer is due, so their sum is the dearest idle turn). Both: turn_us
 * (the sum), rss_kb (this process's resident memory), kb_per_transfer (its
 * growth since before the first transfer, per transfer), heap_kb (bytes
 * malloc'd and not freed), and start_us: what starting one more call costs
 * while N wait (20 new transfers added, then driven once as the engine does
 * for a batch of submissions — one curl_multi_perform(), resp. one
 * curl_multi_socket_action(CURL_SOCKET_TIMEOUT) for the timer of 0 ms that
 * adding them set — divided by 20; the median of 5 such batches). In the
 * socket mode that still grows with N, far more slowly: libcurl 7.88 looks
 * through the connections to the same host for one to reuse
 * (CURLOPT_FRESH_CONNECT, which skips that, cut it by half or more in a
 * test), and connect() on loopback also runs the server's side of the
 * handshake. Each connection is closed with a reset (no_linger).
 */
#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_PERFORM, MODE_SOCKET };

static const char body[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
static const char quick_body[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:latency=0] hello\"}]}";

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

/* bytes handed out by malloc and not freed (small blocks and mmap'ed ones) */
static long heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks + mi.hblkhd);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* ---- the socket interface, as src/engine/engine.c drives it ---- */

typedef struct drv {
    CURLM *multi;
    int ep;       /* epoll set of curl's sockets */
    int timer_on; /* curl's one-shot timer */
    double due;   /* now_s() clock */
    int running;  /* as the last curl_multi_socket_action() said */
} drv;

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
    drv *d = ud;
    struct epoll_event ev;
    int rc;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (epoll_ctl(d->ep, EPOLL_CTL_DEL, s, NULL) != 0 && errno != ENOENT && errno != EBADF)
            perror("epoll_ctl(DEL)");
        return 0;
    }
    memset(&ev, 0, sizeof ev);
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = s;
    if (!sockp) {
        rc = epoll_ctl(d->ep, EPOLL_CTL_ADD, s, &ev);
        if (rc != 0 && errno == EEXIST)
            rc = epoll_ctl(d->ep, EPOLL_CTL_MOD, s, &ev);
        if (rc == 0)
            curl_multi_assign(d->multi, s, d);
    } else {
        rc = epoll_ctl(d->ep, EPOLL_CTL_MOD, s, &ev);
        if (rc != 0 && errno == ENOENT)
            rc = epoll_ctl(d->ep, EPOLL_CTL_ADD, s, &ev);
    }
    if (rc != 0)
        perror("epoll_ctl"); /* that transfer hangs until its timeout */
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
    drv *d = ud;

    (void)multi;
    d->timer_on = timeout_ms >= 0;
    if (timeout_ms >= 0)
        d->due = now_s() + (double)timeout_ms / 1e3;
    return 0;
}

static void sock_act(drv *d, curl_socket_t s, int bits)
{
    if (s == CURL_SOCKET_TIMEOUT)
        d->timer_on = 0; /* fired; curl re-arms it from inside the call */
    if (curl_multi_socket_action(d->multi, s, bits, &d->running) != CURLM_OK)
        fprintf(stderr, "curl_multi_socket_action failed\n");
}

/* One turn of the engine's loop: wait up to ms (less if curl's timer is due
 * sooner), act on the ready sockets, then on the timer if due. */
static void sock_turn(drv *d, int ms)
{
    struct epoll_event ev[256];
    int n;

    if (d->timer_on) {
        double left = d->due - now_s();
        int t = left <= 0 ? 0 : (int)(left * 1e3) + 1;
        if (t < ms)
            ms = t;
    }
    n = epoll_wait(d->ep, ev, 256, ms);
    for (int i = 0; i < n; i++) {
        int bits = 0;
        if (ev[i].events & EPOLLIN)
            bits |= CURL_CSELECT_IN;
        if (ev[i].events & EPOLLOUT)
            bits |= CURL_CSELECT_OUT;
        if (ev[i].events & (EPOLLERR | EPOLLHUP))
            bits |= CURL_CSELECT_ERR | CURL_CSELECT_IN;
        sock_act(d, ev[i].data.fd, bits);
    }
    if (d->timer_on && d->due <= now_s())
        sock_act(d, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- both ---- */

static void drive(enum mode mode, drv *d, double seconds)
{
    int running = 0;

    for (double t0 = now_s(); now_s() - t0 < seconds;) {
        if (mode == MODE_PERFORM) {
            curl_multi_perform(d->multi, &running);
            curl_multi_poll(d->multi, NULL, 0, 10, NULL);
        } else {
            sock_turn(d, 10);
        }
    }
}

/* Close with a reset rather than leave TIME_WAIT behind: 9,000 of them
 * towards the mock's port would make every connect() of the next probe (the
 * other mode, against the same mock) search around them for a free port. */
static int no_linger(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};

    (void)ud;
    (void)purpose;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
        perror("setsockopt(SO_LINGER)"); /* the figures only get noisier */
    return CURL_SOCKOPT_OK;
}

/* An easy handle set up as engine_http_start sets one up. */
static int add_one(CURLM *multi, CURL **easy, int *added, const char *url, const char *data,
                   struct curl_slist *headers, long bufsize)
{
    CURLcode cc = CURLE_OK;
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    cc |= curl_easy_setopt(e, CURLOPT_URL, url);
    cc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    cc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
    cc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    cc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    cc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 600000L);
    cc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "promptd");
    cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    cc |= curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, no_linger);
    if (bufsize > 0)
        cc |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, bufsize);
    if (cc != CURLE_OK || curl_multi_add_handle(multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return -1;
    }
    easy[(*added)++] = e;
    return 0;
}

static int setup(drv *d, enum mode mode)
{
    memset(d, 0, sizeof *d);
    d->ep = -1;
    d->multi = curl_multi_init();
    if (!d->multi)
        return -1;
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, 4096L); /* as the engine sets it */
    if (mode == MODE_SOCKET) {
        d->ep = epoll_create1(EPOLL_CLOEXEC);
        if (d->ep < 0 ||
            curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) != CURLM_OK ||
            curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d) != CURLM_OK ||
            curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d) != CURLM_OK)
            return -1;
    }
    return 0;
}

static struct curl_slist *engine_headers(void)
{
    static const char *const h[] = {"Content-Type: application/json",
                                    "Authorization: Bearer sk-bench-0123456789abcdef", "Expect:"};
    struct curl_slist *list = NULL;

    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        struct curl_slist *n = curl_slist_append(list, h[i]);
        if (!n) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = n;
    }
    return list;
}

static int probe(const char *url, int max, enum mode mode, long bufsize)
{
    static const int steps[] = {100, 1000, 3000, 6000, 9000};
    const char *name = mode == MODE_PERFORM ? "perform" : "socket";
    struct curl_slist *headers = engine_headers();
    CURL **easy = calloc((size_t)(max > 0 ? max : 1), sizeof *easy);
    drv d;
    int added = 0, running = 0;

    if (!headers || !easy || setup(&d, mode) != 0)
        return 1;
    long rss0 = rss_kb();
    for (size_t s = 0; s < sizeof steps / sizeof steps[0] && steps[s] <= max; s++) {
        while (added < steps[s] - 100)
            if (add_one(d.multi, easy, &added, url, body, headers, bufsize) != 0)
                return 1;
        drive(mode, &d, 3.0); /* connect and send every request (bounded: 3 s) */
        /* the last 100 in 5 batches of 20, each driven once; the median
         * batch, as one alone swings with the machine's other work */
        double batch_us[5];
        for (int b = 0; b < 5; b++) {
            double ts = now_s();
            for (int i = 0; i < 20; i++)
                if (add_one(d.multi, easy, &added, url, body, headers, bufsize) != 0)
                    return 1;
            if (mode == MODE_PERFORM)
                curl_multi_perform(d.multi, &running);
            else
                sock_act(&d, CURL_SOCKET_TIMEOUT, 0);
            batch_us[b] = (now_s() - ts) / 20 * 1e6;
            drive(mode, &d, 0.2); /* let them be sent */
        }
        qsort(batch_us, 5, sizeof batch_us[0], cmp_double);
        double start_us = batch_us[2];
        drive(mode, &d, 0.5);

        const int iters = 100;
        double a = 0, b = 0;
        for (int i = 0; i < iters; i++) {
            struct epoll_event ev[256];
            double t1 = now_s();
            if (mode == MODE_PERFORM)
                curl_multi_perform(d.multi, &running);
            else if (epoll_wait(d.ep, ev, 256, 0) < 0)
                perror("epoll_wait");
            double t2 = now_s();
            if (mode == MODE_PERFORM)
                curl_multi_poll(d.multi, NULL, 0, 0, NULL);
            else
                sock_act(&d, CURL_SOCKET_TIMEOUT, 0);
            double t3 = now_s();
            a += t2 - t1;
            b += t3 - t2;
        }
        if (mode == MODE_SOCKET)
            running = d.running;
        long rss = rss_kb();
        printf("mode=%s bufsize=%ld in_flight=%d running=%d %s=%.1f %s=%.1f turn_us=%.1f rss_kb=%ld "
               "kb_per_transfer=%.2f heap_kb=%ld start_us=%.1f\n",
               name, bufsize > 0 ? bufsize : (long)CURL_MAX_WRITE_SIZE, added, running,
               mode == MODE_PERFORM ? "perform_us" : "epoll_us", a / iters * 1e6,
               mode == MODE_PERFORM ? "poll_us" : "timeout_us", b / iters * 1e6,
               (a + b) / iters * 1e6, rss, (double)(rss - rss0) / added, heap_bytes() / 1024,
               start_us);
        fflush(stdout);
    }
    for (int i = 0; i < added; i++) {
        curl_multi_remove_handle(d.multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    free(easy);
    curl_multi_cleanup(d.multi);
    if (d.ep >= 0)
        close(d.ep);
    curl_slist_free_all(headers);
    return 0;
}

/* N quick calls to completion, then what stays behind once they are done;
 * then N waiting transfers in the heap those calls left behind. */
static int idle(const char *url, int n, long bufsize)
{
    static const char slow_body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:latency=120000] hello\"}]}";
    struct curl_slist *headers = engine_headers();
    CURL **easy = calloc((size_t)(n > 0 ? n : 1), sizeof *easy);
    char *quick = malloc(sizeof quick_body + 16384);
    drv d;
    int added = 0, done = 0, left;
    CURLMsg *m;

    if (!headers || !easy || !quick || setup(&d, MODE_SOCKET) != 0)
        return 1;
    /* a 16 KiB question, so the answer (the mock repeats it) fills the buffers */
    snprintf(quick, sizeof quick_body + 16384,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:latency=0] %0*d\"}]}",
             16384, 0);
    long rss0 = rss_kb();
    while (added < n)
        if (add_one(d.multi, easy, &added, url, quick, headers, bufsize) != 0)
            return 1;
    for (double t0 = now_s(); done < n && now_s() - t0 < 20.0;) {
        sock_turn(&d, 10);
        while ((m = curl_multi_info_read(d.multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE) {
                if (m->data.result != CURLE_OK)
                    fprintf(stderr, "transfer failed: %s\n", curl_easy_strerror(m->data.result));
                done++;
            }
    }
    /* as engine_http_done and engine_easy_put do it */
    for (int i = 0; i < added; i++) {
        curl_multi_remove_handle(d.multi, easy[i]);
        curl_easy_reset(easy[i]);
    }
    long heap_pool = heap_bytes();
    for (int i = 0; i < added; i++)
        curl_easy_cleanup(easy[i]);
    long heap_conns = heap_bytes();
    curl_multi_cleanup(d.multi);
    close(d.ep);
    long heap_end = heap_bytes();

    /* the heap is now what a server that has answered calls has: recycled */
    if (setup(&d, MODE_SOCKET) != 0)
        return 1;
    added = 0;
    while (added < n)
        if (add_one(d.multi, easy, &added, url, slow_body, headers, bufsize) != 0)
            return 1;
    drive(MODE_SOCKET, &d, 3.0);
    long rss = rss_kb();
    int cached = n < 4096 ? n : 4096; /* CURLMOPT_MAXCONNECTS */
    printf("mode=idle bufsize=%ld calls=%d done=%d idle_easy_bytes=%ld cached_connections=%d "
           "idle_connection_bytes=%ld waiting=%d waiting_kb_per_transfer=%.2f\n",
           bufsize > 0 ? bufsize : (long)CURL_MAX_WRITE_SIZE, n, done,
           (heap_pool - heap_conns) / (n ? n : 1), cached,
           (heap_conns - heap_end) / (cached ? cached : 1), d.running,
           (double)(rss - rss0) / (n ? n : 1));
    for (int i = 0; i < added; i++) {
        curl_multi_remove_handle(d.multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(d.multi);
    close(d.ep);
    free(quick);
    free(easy);
    curl_slist_free_all(headers);
    return done == n ? 0 : 1;
}

/* Run one probe in a child process, so that its memory figures are its own. */
static int in_child(const char *url, int max, enum mode mode, long bufsize)
{
    int status;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(probe(url, max, mode, bufsize));
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 3 ? argv[3] : "both";
    long bufsize = argc > 4 ? atol(argv[4]) : 0;
    int rc;

    if (argc < 3 || argc > 5 || strncmp(argv[1], "http://127.", 11) != 0 || bufsize < 0) {
        fprintf(stderr, "usage: curl_multi_cost http://127.0.0.1:PORT/PATH MAX "
                        "[perform|socket|both|idle [BUFFERSIZE]]\n");
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
    if (strcmp(mode, "perform") == 0)
        rc = probe(argv[1], max, MODE_PERFORM, bufsize);
    else if (strcmp(mode, "socket") == 0)
        rc = probe(argv[1], max, MODE_SOCKET, bufsize);
    else if (strcmp(mode, "idle") == 0)
        rc = idle(argv[1], max, bufsize);
    else if (strcmp(mode, "both") == 0) {
        rc = in_child(argv[1], max, MODE_PERFORM, 0);
        rc |= in_child(argv[1], max, MODE_SOCKET, argc > 4 ? bufsize : 4096);
    } else {
        fprintf(stderr, "curl_multi_cost: unknown mode %s\n", mode);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
