/*
 * bench_exec.c — the HTTP/1.1 load generator behind bench/run.sh.
 *
 * One thread, one epoll set, non-blocking loopback sockets, keep-alive, no
 * libraries beyond libc, so that the generator costs little next to the
 * server it measures and can hold 10,000 connections at once.
 *
 *   bench_exec --url http://127.0.0.1:PORT/PATH [-H 'Name: value']... --body JSON
 *              [--expect TEXT] [--label NAME] [--watch-pid PID] MODE
 *   MODE:
 *     --mode open   --rate R --duration S [--warmup S] [--conns C] [--max-conns M]
 *         open loop: request i is due at t0 + i/R whatever happened before.
 *         C keep-alive connections are opened beforehand; when all are busy
 *         a due request opens one more (up to M), so a slow answer never
 *         holds back the next request (no coordinated omission). Latency
 *         counts from the moment the request is written; how late that was
 *         after its due time (timer wake-up, waiting for a new connection)
 *         is reported separately as lag_*.
 *     --mode closed --conns C --duration S [--warmup S]
 *         closed loop: C keep-alive connections, each sends its next request
 *         as soon as the previous answer is in: maximum throughput.
 *     --mode burst  --count N [--timeout S] [--ramp-ms MS]
 *         N connections opened at once (or evenly over MS milliseconds),
 *         one request on each, all kept open until every answer is in (or
 *         the timeout); latency from the connect() of each request.
 *
 * A request succeeds when the answer is HTTP 200 and its body contains TEXT
 * (--expect). Requests sent during the warm-up are not counted.
 *
 * Output: one line of key=value pairs on stdout (run.sh parses it):
 *   label mode sent ok errors bad_status bad_body conn_err timeouts wall_s rps
 *   p50_ms p90_ms p99_ms max_ms conns peak_inflight lag_p99_ms lag_max_ms
 *   gen_cpu srv_cpu other_cpu listen_drops srv_us_per_req [open_s] [peak_rss_kb peak_threads]
 *   [own_p50_ms own_p99_ms]
 * own_*: when answers carry promptd's "Server-Timing: upstream;dur=U,
 * total;dur=T", percentiles of T - U, the time the server says it added.
 * open_s (burst): how long the generator took to issue every connect().
 * lag_* is how late the generator sent open-loop requests after their due
 * time and gen_cpu the generator's own CPU use (1.0 = one core busy): they
 * say whether the generator, rather than the server, was the limit.
 * --watch-pid (up to 4 times): srv_cpu is the CPU those processes used,
 * srv_us_per_req the first one's CPU microseconds per request answered,
 * other_cpu what the rest of the machine used meanwhile (from /proc/stat;
 * a busy machine makes the figures meaningless), peak_rss_kb / peak_threads
 * the first one's VmHWM and largest thread count, sampled every 50 ms.
 * BENCH_SAMPLES=FILE (environment) also writes one line per counted answer
 * to FILE: "DUE_S LATENCY_MS OWN_MS" (when it was due, in seconds after the
 * start; its latency; the server's own time, -1 without Server-Timing), to
 * see whether slow answers come alone or together; a last line "# t0 T"
 * gives the start on CLOCK_MONOTONIC.
 * listen_drops: the kernel's TcpExt ListenOverflows during the run (system
 * wide): connection attempts dropped because an accept queue was full, each
 * costing the client a SYN retransmit (1 s, then 2 s, ...).
 *
 * Loopback only: any other address is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 8
#define MAX_CONNS 60000
#define RBUF_INIT 2048
#define RBUF_MAX (4 << 20)
#define SAMPLE_NS 50000000ull /* /proc sampling period: 50 ms */
#define TAG_TIMER ((uint64_t)-1)
#define TAG_SAMPLER ((uint64_t)-2)

enum mode { MODE_OPEN, MODE_CLOSED, MODE_BURST };
enum cstate { C_FREE, C_CONNECTING, C_IDLE, C_BUSY };

typedef struct conn {
    int fd;
    enum cstate state;
    int want_out;       /* EPOLLOUT registered */
    int has_req;        /* a request is assigned (being written or awaited) */
    size_t woff;        /* bytes of the request already written */
    uint64_t t_start;   /* latency origin (due time / connect time / send time) */
    int counted;        /* outside the warm-up: goes into the figures */
    char *rbuf;
    size_t rlen, rcap;
    size_t hdr_end;     /* offset of the body, 0 while headers are incomplete */
    int status;
    long long clen;     /* -1: none */
    int chunked;
    int close_after;    /* Connection: close */
    int on_idle;        /* on the idle stack */
    long long own_ns;   /* Server-Timing total - upstream: the server's own time; -1: no such header */
} conn;

static struct {
    /* options */
    struct sockaddr_in addr;
    char host[64];
    char *request;
    size_t request_len;
    const char *expect;
    const char *label;
    FILE *samples; /* BENCH_SAMPLES: one line per counted answer */
    enum mode mode;
    double rate, duration, warmup, timeout;
    int conns, max_conns;
    long count;
    int watch_pid[4];
    int nwatch;
    double ramp_ms;

    /* state */
    int ep, tfd, sfd;
    conn *c;
    int nc;                 /* connections ever opened (slots used) */
    int open_conns;
    int *idle;              /* stack of idle connection slots */
    int nidle;
    uint64_t *queue;        /* open loop: due times waiting for a connection */
    size_t qhead, qlen, qcap;
    uint64_t t0, t_meas, t_end, deadline;
    long next_i, total;     /* open loop: next request index, how many */
    long sent, done;
    long inflight, peak_inflight;
    int stopping;

    /* results */
    uint64_t *lat;
    size_t nlat, latcap;
    uint64_t *lag;
    size_t nlag, lagcap;
    uint64_t *own; /* the server's own time per answer, from Server-Timing */
    size_t nown, owncap;
    long ok, bad_status, bad_body, conn_err, timeouts, errors_other;
    uint64_t t_first_done, t_last_done;
    long meas_done;          /* answers completed inside the measured window */
    long peak_rss_kb, peak_threads;
    int reported_bad;
} G;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_exec: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void push_u64(uint64_t **arr, size_t *n, size_t *cap, uint64_t v)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16384;
        uint64_t *a = realloc(*arr, nc * sizeof *a);
        if (!a)
            die("out of memory");
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
}

/* ------------------------------------------------------------ /proc watch */

static void sample_pid(void)
{
    char path[64], line[256];
    if (!G.nwatch)
        return;
    snprintf(path, sizeof path, "/proc/%d/status", G.watch_pid[0]);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        long v;
        if (sscanf(line, "VmHWM: %ld", &v) == 1 && v > G.peak_rss_kb)
            G.peak_rss_kb = v;
        else if (sscanf(line, "Threads: %ld", &v) == 1 && v > G.peak_threads)
            G.peak_threads = v;
    }
    fclose(f);
}

/* CPU seconds used so far by the watched processes (utime + stime); the
 * first one's alone in *first. */
static double watched_cpu(double *first)
{
    double total = 0;
    long tck = sysconf(_SC_CLK_TCK);
    *first = 0;
    for (int i = 0; i < G.nwatch; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", G.watch_pid[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long ut, st;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
            total += (double)(ut + st) / (double)tck;
            if (i == 0)
                *first = (double)(ut + st) / (double)tck;
        }
    }
    return total;
}

/* CPU seconds the whole machine has been busy (all CPUs, /proc/stat). */
static double machine_busy(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n != 8)
        return 0;
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* TcpExt ListenOverflows from /proc/net/netstat (system wide). */
static long listen_overflows(void)
{
    char names[4096], vals[4096];
    long result = -1;
    FILE *f = fopen("/proc/net/netstat", "r");
    if (!f)
        return -1;
    while (fgets(names, sizeof names, f) && fgets(vals, sizeof vals, f)) {
        if (strncmp(names, "TcpExt:", 7) != 0)
            continue;
        char *sn, *sv;
        char *n = strtok_r(names, " \n", &sn), *v = strtok_r(vals, " \n", &sv);
        while (n && v) {
            if (strcmp(n, "ListenOverflows") == 0) {
                result = atol(v);
                break;
            }
            n = strtok_r(NULL, " \n", &sn);
            v = strtok_r(NULL, " \n", &sv);
        }
        break;
    }
    fclose(f);
    return result;
}

/* ------------------------------------------------------------ epoll glue */

static void ep_set(conn *k, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0u),
                             .data.u64 = (uint64_t)(k - G.c)};
    if (epoll_ctl(G.ep, EPOLL_CTL_MOD, k->fd, &ev) != 0)
        die("epoll_ctl MOD: %s", strerror(errno));
    k->want_out = want_out;
}

static void arm_timer(uint64_t at_ns)
{
    struct itimerspec its = {0};
    if (at_ns == 0)
        at_ns = 1; /* 0 would disarm: fire at once */
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000ull);
    if (timerfd_settime(G.tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        die("timerfd_settime: %s", strerror(errno));
}

/* ------------------------------------------------------------ connections */

static int conn_open(void)
{
    if (G.nc >= G.max_conns)
        return -1;
    int slot = G.nc++;
    conn *k = &G.c[slot];
    memset(k, 0, sizeof *k);
    k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        G.nc--;
        return -2;
    }
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->rcap = RBUF_INIT;
    k->rbuf = malloc(k->rcap);
    if (!k->rbuf)
        die("out of memory");
    k->clen = -1;
    k->own_ns = -1;
    if (connect(k->fd, (struct sockaddr *)&G.addr, sizeof G.addr) != 0 && errno != EINPROGRESS) {
        close(k->fd);
        free(k->rbuf);
        G.nc--;
        return -2;
    }
    k->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u64 = (uint64_t)slot};
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, k->fd, &ev) != 0)
        die("epoll_ctl ADD: %s", strerror(errno));
    k->want_out = 1;
    G.open_conns++;
    return slot;
}

static void conn_close(conn *k)
{
    if (k->fd >= 0) {
        epoll_ctl(G.ep, EPOLL_CTL_DEL, k->fd, NULL);
        close(k->fd);
        G.open_conns--;
    }
    k->fd = -1;
    k->state = C_FREE;
    k->has_req = 0;
    free(k->rbuf);
    k->rbuf = NULL;
}

static void reset_parse(conn *k)
{
    k->rlen = 0;
    k->hdr_end = 0;
    k->status = 0;
    k->clen = -1;
    k->chunked = 0;
    k->close_after = 0;
    k->own_ns = -1;
}

/* Write what is left of the request. 0 ok (maybe partial), -1 error. */
static int conn_write(conn *k)
{
    while (k->woff < G.request_len) {
        ssize_t n = send(k->fd, G.request + k->woff, G.request_len - k->woff, MSG_NOSIGNAL);
        if (n > 0) {
            k->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!k->want_out)
                ep_set(k, 1);
            return 0;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
    if (k->want_out)
        ep_set(k, 0);
    return 0;
}

static void record_failure(conn *k, long *counter)
{
    if (k->has_req) {
        if (k->counted)
            (*counter)++;
        G.inflight--;
        G.done++;
    }
    k->has_req = 0;
}

static void start_request(conn *k, uint64_t t_start, int counted)
{
    k->has_req = 1;
    k->woff = 0;
    k->t_start = t_start;
    k->counted = counted;
    reset_parse(k);
    k->state = C_BUSY;
    G.sent++;
    G.inflight++;
    if (G.inflight > G.peak_inflight)
        G.peak_inflight = G.inflight;
    if (conn_write(k) != 0) {
        record_failure(k, &G.conn_err);
        conn_close(k);
    }
}

/* ------------------------------------------------------------ response parsing */

static int ieq_prefix(const char *s, const char *end, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(end - s) >= n && strncasecmp(s, name, n) == 0;
}

/* Parse the status line and headers once "\r\n\r\n" is in. 0 ok, -1 bad. */
static int parse_head(conn *k)
{
    char *p = memmem(k->rbuf, k->rlen, "\r\n\r\n", 4);
    if (!p)
        return 0;
    k->hdr_end = (size_t)(p - k->rbuf) + 4;
    if (k->rlen < 12 || memcmp(k->rbuf, "HTTP/1.", 7) != 0)
        return -1;
    k->status = atoi(k->rbuf + 9);
    int http10 = k->rbuf[7] == '0';
    k->close_after = http10;
    const char *line = memchr(k->rbuf, '\n', k->hdr_end);
    const char *stop = k->rbuf + k->hdr_end;
    while (line && line + 1 < stop) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(stop - line));
        if (!eol)
            break;
        if (ieq_prefix(line, eol, "content-length:"))
            k->clen = strtoll(line + 15, NULL, 10);
        else if (ieq_prefix(line, eol, "server-timing:")) {
            /* promptd's "upstream;dur=<ms>, total;dur=<ms>": what it added is the difference */
            double up, total;
            if (sscanf(line + 14, " upstream;dur=%lf, total;dur=%lf", &up, &total) == 2 && total >= up)
                k->own_ns = (long long)((total - up) * 1e6);
        } else if (ieq_prefix(line, eol, "transfer-encoding:")) {
            if (memmem(line, (size_t)(eol - line), "chunked", 7))
                k->chunked = 1;
        } else if (ieq_prefix(line, eol, "connection:")) {
            if (memmem(line, (size_t)(eol - line), "close", 5))
                k->close_after = 1;
            else if (memmem(line, (size_t)(eol - line), "keep-alive", 10))
                k->close_after = 0;
        }
        line = eol;
    }
    return 0;
}

/* Chunked body complete? When it is, the body is decoded in place and
 * *body_len set. 1 complete, 0 need more, -1 malformed. */
static int chunked_done(conn *k, size_t *body_len)
{
    size_t pos = k->hdr_end;
    for (;;) { /* first pass: is the last chunk in? */
        char *eol = memmem(k->rbuf + pos, k->rlen - pos, "\r\n", 2);
        if (!eol)
            return 0;
        char *end;
        unsigned long long sz = strtoull(k->rbuf + pos, &end, 16);
        if (end == k->rbuf + pos || sz > RBUF_MAX)
            return -1;
        size_t data = (size_t)(eol - k->rbuf) + 2;
        if (sz == 0) { /* optional trailers, then an empty line */
            if (k->rlen - data >= 2 && memcmp(k->rbuf + data, "\r\n", 2) == 0)
                break;
            if (!memmem(k->rbuf + data, k->rlen - data, "\r\n\r\n", 4))
                return 0;
            break;
        }
        if (k->rlen < data + sz + 2)
            return 0;
        pos = data + sz + 2;
    }
    size_t out = k->hdr_end;
    pos = k->hdr_end;
    for (;;) { /* second pass: decode; out never passes pos */
        char *eol = memmem(k->rbuf + pos, k->rlen - pos, "\r\n", 2);
        unsigned long long sz = strtoull(k->rbuf + pos, NULL, 16);
        size_t data = (size_t)(eol - k->rbuf) + 2;
        if (sz == 0)
            break;
        memmove(k->rbuf + out, k->rbuf + data, sz);
        out += sz;
        pos = data + sz + 2;
    }
    *body_len = out - k->hdr_end;
    return 1;
}

static void finish_response(conn *k, size_t body_len)
{
    uint64_t t = now_ns();
    int status_ok = k->status == 200;
    int good = status_ok && (!G.expect || memmem(k->rbuf + k->hdr_end, body_len, G.expect, strlen(G.expect)));
    if (!good && !G.reported_bad) { /* say once what a failure looked like */
        G.reported_bad = 1;
        fprintf(stderr, "bench_exec %s: first failed answer: HTTP %d: %.*s\n", G.label, k->status,
                (int)(body_len < 300 ? body_len : 300), k->rbuf + k->hdr_end);
    }
    if (!good && k->counted) {
        if (status_ok)
            G.bad_body++;
        else
            G.bad_status++;
    }
    if (k->counted) {
        push_u64(&G.lat, &G.nlat, &G.latcap, t - k->t_start);
        if (G.samples) /* when it was due (s after the start), its latency and the server's own time (ms) */
            fprintf(G.samples, "%.6f %.3f %.3f\n", (double)(k->t_start - G.t0) / 1e9, (double)(t - k->t_start) / 1e6,
                    k->own_ns >= 0 ? (double)k->own_ns / 1e6 : -1.0);
        if (k->own_ns >= 0)
            push_u64(&G.own, &G.nown, &G.owncap, (uint64_t)k->own_ns);
        if (good)
            G.ok++;
        if (!G.t_first_done)
            G.t_first_done = t;
        G.t_last_done = t;
        if (t >= G.t_meas && t <= G.t_end)
            G.meas_done++;
    }
    k->has_req = 0;
    G.inflight--;
    G.done++;
    if (k->close_after) {
        conn_close(k);
        return;
    }
    reset_parse(k);
    k->state = C_IDLE;
}

/* Read what is there; complete the response when it is whole. */
static void conn_read(conn *k)
{
    for (;;) {
        if (k->rlen + 1024 > k->rcap) {
            if (k->rcap >= RBUF_MAX) {
                record_failure(k, &G.errors_other);
                conn_close(k);
                return;
            }
            char *nb = realloc(k->rbuf, k->rcap * 2);
            if (!nb)
                die("out of memory");
            k->rbuf = nb;
            k->rcap *= 2;
        }
        ssize_t n = recv(k->fd, k->rbuf + k->rlen, k->rcap - k->rlen - 1, 0);
        if (n > 0) {
            k->rlen += (size_t)n;
            if (!k->has_req) { /* bytes nobody asked for */
                record_failure(k, &G.errors_other);
                conn_close(k);
                return;
            }
            if (!k->hdr_end && parse_head(k) != 0) {
                record_failure(k, &G.errors_other);
                conn_close(k);
                return;
            }
            if (k->hdr_end) {
                if (k->chunked) {
                    size_t bl;
                    int r = chunked_done(k, &bl);
                    if (r < 0) {
                        record_failure(k, &G.errors_other);
                        conn_close(k);
                        return;
                    }
                    if (r > 0) {
                        finish_response(k, bl);
                        return;
                    }
                } else if (k->clen >= 0 && k->rlen - k->hdr_end >= (size_t)k->clen) {
                    finish_response(k, (size_t)k->clen);
                    return;
                }
            }
            continue;
        }
        if (n == 0) { /* peer closed */
            if (k->has_req && k->hdr_end && !k->chunked && k->clen < 0) {
                k->close_after = 1; /* body delimited by the close */
                finish_response(k, k->rlen - k->hdr_end);
                return;
            }
            record_failure(k, &G.conn_err);
            conn_close(k);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR)
            continue;
        record_failure(k, &G.conn_err);
        conn_close(k);
        return;
    }
}

/* ------------------------------------------------------------ scheduling */

static int counted_at(uint64_t t) { return t >= G.t_meas && t < G.t_end; }

/* Give the next due request (open loop) or a new one (closed loop) to an
 * idle connection k. Returns 1 when k got work. */
static int feed(conn *k)
{
    if (G.mode == MODE_OPEN) {
        if (G.qlen == 0)
            return 0;
        uint64_t due = G.queue[G.qhead];
        G.qhead = (G.qhead + 1) % G.qcap;
        G.qlen--;
        uint64_t t = now_ns();
        push_u64(&G.lag, &G.nlag, &G.lagcap, t - due);
        start_request(k, t, counted_at(due));
        return 1;
    }
    if (G.mode == MODE_CLOSED) {
        uint64_t t = now_ns();
        if (G.stopping || t >= G.t_end)
            return 0;
        start_request(k, t, t >= G.t_meas);
        return 1;
    }
    return 0; /* burst: one request per connection, given at connect */
}

static void become_idle(conn *k)
{
    if (k->state != C_IDLE)
        return;
    if (!feed(k) && !k->on_idle) {
        k->on_idle = 1;
        G.idle[G.nidle++] = (int)(k - G.c);
    }
}

static void queue_push(uint64_t due)
{
    if (G.qlen == G.qcap) {
        size_t nc = G.qcap ? G.qcap * 2 : 4096;
        uint64_t *q = malloc(nc * sizeof *q);
        if (!q)
            die("out of memory");
        for (size_t i = 0; i < G.qlen; i++)
            q[i] = G.queue[(G.qhead + i) % G.qcap];
        free(G.queue);
        G.queue = q;
        G.qhead = 0;
        G.qcap = nc;
    }
    G.queue[(G.qhead + G.qlen) % G.qcap] = due;
    G.qlen++;
}

/* Open loop: hand out every request that is due by now. */
static void open_tick(void)
{
    uint64_t t = now_ns();
    double period = 1e9 / G.rate;
    while (G.next_i < G.total) {
        uint64_t due = G.t0 + (uint64_t)((double)G.next_i * period);
        if (due > t) {
            arm_timer(due);
            return;
        }
        G.next_i++;
        queue_push(due);
        /* an idle connection takes it, else open one more if allowed */
        while (G.qlen && G.nidle) {
            conn *k = &G.c[G.idle[--G.nidle]];
            k->on_idle = 0;
            if (k->state == C_IDLE)
                feed(k);
        }
        if (G.qlen && G.nc < G.max_conns) {
            int r = conn_open();
            if (r == -2) { /* cannot even open a socket: count it, move on */
                G.qhead = (G.qhead + 1) % G.qcap;
                G.qlen--;
                if (counted_at(due))
                    G.conn_err++;
                G.done++;
                G.sent++;
            }
        }
    }
}

/* A connection finished connecting. */
static void on_connected(conn *k)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        record_failure(k, &G.conn_err);
        conn_close(k);
        return;
    }
    if (G.mode == MODE_BURST && k->has_req) {
        k->state = C_BUSY;
        if (conn_write(k) != 0) {
            record_failure(k, &G.conn_err);
            conn_close(k);
        }
        return;
    }
    ep_set(k, 0);
    k->state = C_IDLE;
    become_idle(k);
}

static void on_event(uint64_t tag, uint32_t events)
{
    if (tag == TAG_TIMER) {
        uint64_t exp;
        if (read(G.tfd, &exp, sizeof exp) < 0 && errno != EAGAIN)
            die("timerfd read: %s", strerror(errno));
        if (G.mode == MODE_OPEN)
            open_tick();
        return;
    }
    if (tag == TAG_SAMPLER) {
        uint64_t exp;
        if (read(G.sfd, &exp, sizeof exp) < 0 && errno != EAGAIN)
            die("timerfd read: %s", strerror(errno));
        sample_pid();
        return;
    }
    conn *k = &G.c[tag];
    if (k->fd < 0)
        return;
    if (k->state == C_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(k);
        if (k->fd < 0 || k->state == C_CONNECTING)
            return;
        if (!(events & EPOLLIN))
            return;
    }
    if ((events & EPOLLOUT) && k->has_req && k->woff < G.request_len) {
        if (conn_write(k) != 0) {
            record_failure(k, &G.conn_err);
            conn_close(k);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        conn_read(k);
        if (k->fd >= 0 && k->state == C_IDLE)
            become_idle(k);
        else if (k->fd < 0 && G.mode == MODE_CLOSED && !G.stopping && now_ns() < G.t_end) {
            /* closed loop keeps its concurrency: replace a closed connection */
            conn_open();
        }
    }
}

/* ------------------------------------------------------------ setup */

static void raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max, strerror(errno));
    }
    if ((long)rl.rlim_cur < need)
        die("RLIMIT_NOFILE hard limit %llu is below the %ld descriptors this run needs",
            (unsigned long long)rl.rlim_max, need);
}

static void parse_url(const char *url, char **path_out)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0)
        die("--url must start with http://");
    p += 7;
    const char *slash = strchr(p, '/');
    const char *colon = strchr(p, ':');
    if (!colon || (slash && colon > slash))
        die("--url needs an explicit port");
    size_t hl = (size_t)(colon - p);
    if (hl == 0 || hl >= sizeof G.host)
        die("bad host in --url");
    memcpy(G.host, p, hl);
    G.host[hl] = '\0';
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535)
        die("bad port in --url");
    *path_out = strdup(slash ? slash : "/");
    const char *h = strcmp(G.host, "localhost") == 0 ? "127.0.0.1" : G.host;
    G.addr.sin_family = AF_INET;
    G.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, h, &G.addr.sin_addr) != 1)
        die("--url host must be a numeric IPv4 loopback address or localhost");
    if ((ntohl(G.addr.sin_addr.s_addr) >> 24) != 127)
        die("refusing a non-loopback address (%s): this benchmark only runs on 127.0.0.0/8", G.host);
}

static void build_request(const char *path, const char **hdrs, int nh, const char *body)
{
    size_t blen = strlen(body);
    size_t cap = strlen(path) + blen + 256;
    for (int i = 0; i < nh; i++)
        cap += strlen(hdrs[i]) + 2;
    G.request = malloc(cap);
    if (!G.request)
        die("out of memory");
    int n = snprintf(G.request, cap, "POST %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/json\r\n", path,
                     G.host, (unsigned)ntohs(G.addr.sin_port));
    for (int i = 0; i < nh; i++)
        n += snprintf(G.request + n, cap - (size_t)n, "%s\r\n", hdrs[i]);
    n += snprintf(G.request + n, cap - (size_t)n, "Content-Length: %zu\r\n\r\n", blen);
    memcpy(G.request + n, body, blen);
    G.request_len = (size_t)n + blen;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_exec --url http://127.0.0.1:PORT/PATH [-H 'Name: value']... --body JSON\n"
            "                  [--expect TEXT] [--label NAME] [--watch-pid PID]\n"
            "                  --mode open --rate R --duration S [--warmup S] [--conns C] [--max-conns M]\n"
            "                  --mode closed --conns C --duration S [--warmup S]\n"
            "                  --mode burst --count N [--timeout S] [--ramp-ms MS]\n");
    exit(2);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in ms of a sorted array. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return (double)v[r - 1] / 1e6;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *body = NULL, *mode = NULL;
    const char *hdrs[MAX_HEADERS];
    int nh = 0;
    G.label = "run";
    if (getenv("BENCH_SAMPLES") && !(G.samples = fopen(getenv("BENCH_SAMPLES"), "w")))
        die("cannot write BENCH_SAMPLES %s", getenv("BENCH_SAMPLES"));
    G.duration = 10;
    G.warmup = 0;
    G.timeout = 60;
    G.conns = 0;
    G.max_conns = 0;

    enum { O_URL = 1, O_BODY, O_EXPECT, O_LABEL, O_MODE, O_RATE, O_DURATION, O_WARMUP, O_CONNS, O_MAXCONNS, O_COUNT,
           O_TIMEOUT, O_WATCH, O_RAMP };
    static const struct option lo[] = {
        {"url", required_argument, NULL, O_URL},           {"body", required_argument, NULL, O_BODY},
        {"expect", required_argument, NULL, O_EXPECT},     {"label", required_argument, NULL, O_LABEL},
        {"mode", required_argument, NULL, O_MODE},         {"rate", required_argument, NULL, O_RATE},
        {"duration", required_argument, NULL, O_DURATION}, {"warmup", required_argument, NULL, O_WARMUP},
        {"conns", required_argument, NULL, O_CONNS},       {"max-conns", required_argument, NULL, O_MAXCONNS},
        {"count", required_argument, NULL, O_COUNT},       {"timeout", required_argument, NULL, O_TIMEOUT},
        {"watch-pid", required_argument, NULL, O_WATCH},   {"header", required_argument, NULL, 'H'},
        {"ramp-ms", required_argument, NULL, O_RAMP},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "H:", lo, NULL)) != -1) {
        switch (o) {
        case 'H':
            if (nh == MAX_HEADERS)
                die("at most %d headers", MAX_HEADERS);
            hdrs[nh++] = optarg;
            break;
        case O_URL: url = optarg; break;
        case O_BODY: body = optarg; break;
        case O_EXPECT: G.expect = optarg; break;
        case O_LABEL: G.label = optarg; break;
        case O_MODE: mode = optarg; break;
        case O_RATE: G.rate = atof(optarg); break;
        case O_DURATION: G.duration = atof(optarg); break;
        case O_WARMUP: G.warmup = atof(optarg); break;
        case O_CONNS: G.conns = atoi(optarg); break;
        case O_MAXCONNS: G.max_conns = atoi(optarg); break;
        case O_COUNT: G.count = atol(optarg); break;
        case O_TIMEOUT: G.timeout = atof(optarg); break;
        case O_WATCH:
            if (G.nwatch == 4)
                die("at most 4 --watch-pid");
            G.watch_pid[G.nwatch++] = atoi(optarg);
            break;
        case O_RAMP: G.ramp_ms = atof(optarg); break;
        default: usage();
        }
    }
    if (!url || !body || !mode || optind != argc)
        usage();
    if (!strcmp(mode, "open"))
        G.mode = MODE_OPEN;
    else if (!strcmp(mode, "closed"))
        G.mode = MODE_CLOSED;
    else if (!strcmp(mode, "burst"))
        G.mode = MODE_BURST;
    else
        usage();
    if (G.duration <= 0 || G.duration > 600 || G.warmup < 0 || G.warmup >= G.duration || G.timeout <= 0 ||
        G.timeout > 600)
        die("durations must be in (0, 600] s and the warm-up shorter than the duration");
    if (G.mode == MODE_OPEN && (G.rate <= 0 || G.rate > 1e6))
        die("--rate must be in (0, 1e6]");
    if (G.mode == MODE_OPEN) {
        if (G.conns <= 0)
            G.conns = 16;
        if (G.max_conns <= 0)
            G.max_conns = 4096;
    } else if (G.mode == MODE_CLOSED) {
        if (G.conns <= 0)
            G.conns = 64;
        G.max_conns = G.conns * 4; /* room to replace closed connections */
    } else {
        if (G.count <= 0 || G.count > MAX_CONNS)
            die("--count must be in 1..%d", MAX_CONNS);
        G.max_conns = (int)G.count;
    }
    if (G.conns > G.max_conns || G.max_conns > MAX_CONNS)
        die("too many connections");

    char *path;
    parse_url(url, &path);
    build_request(path, hdrs, nh, body);
    free(path);
    raise_nofile((long)G.max_conns + 32);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* open-loop send times to the microsecond */

    G.c = calloc((size_t)G.max_conns, sizeof *G.c);
    G.idle = calloc((size_t)G.max_conns, sizeof *G.idle);
    if (!G.c || !G.idle)
        die("out of memory");
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    G.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    G.sfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (G.ep < 0 || G.tfd < 0 || G.sfd < 0)
        die("epoll/timerfd: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_TIMER};
    epoll_ctl(G.ep, EPOLL_CTL_ADD, G.tfd, &ev);
    ev.data.u64 = TAG_SAMPLER;
    epoll_ctl(G.ep, EPOLL_CTL_ADD, G.sfd, &ev);
    if (G.nwatch) {
        struct itimerspec its = {.it_interval = {0, (long)SAMPLE_NS}, .it_value = {0, (long)SAMPLE_NS}};
        timerfd_settime(G.sfd, 0, &its, NULL);
        sample_pid();
    }

    struct epoll_event evs[1024];
    double cpu0, watched0 = 0, busy0 = 0, first0 = 0, first1 = 0;
    long drops0 = listen_overflows();
    uint64_t t_begin, t_opened = 0;

    if (G.mode == MODE_BURST) {
        G.t0 = G.t_meas = t_begin = now_ns();
        G.t_end = UINT64_MAX;
        G.deadline = G.t0 + (uint64_t)((G.timeout + G.ramp_ms / 1000.0) * 1e9);
        cpu0 = cpu_seconds();
        watched0 = watched_cpu(&first0);
        busy0 = machine_busy();
        for (long i = 0; i < G.count; i++) {
            if (G.ramp_ms > 0) { /* connection i is due at t0 + i * ramp / count */
                uint64_t due = G.t0 + (uint64_t)(G.ramp_ms * 1e6 * (double)i / (double)G.count);
                for (uint64_t t = now_ns(); t < due; t = now_ns()) {
                    int n = epoll_wait(G.ep, evs, 1024, due - t > 2000000 ? 1 : 0);
                    for (int j = 0; j < n; j++)
                        on_event(evs[j].data.u64, evs[j].events);
                }
            }
            uint64_t t = now_ns();
            int slot = conn_open();
            if (slot < 0) {
                G.sent++;
                G.done++;
                G.conn_err++;
                continue;
            }
            conn *k = &G.c[slot];
            k->has_req = 1;
            k->woff = 0;
            k->t_start = t;
            k->counted = 1;
            G.sent++;
            G.inflight++;
            if (G.inflight > G.peak_inflight)
                G.peak_inflight = G.inflight;
            /* service what is already ready so the listen queues keep draining */
            if ((i & 255) == 255) {
                int n = epoll_wait(G.ep, evs, 1024, 0);
                for (int j = 0; j < n; j++)
                    on_event(evs[j].data.u64, evs[j].events);
            }
        }
        t_opened = now_ns();
    } else {
        /* warm connections first: they are not part of the measurement */
        for (int i = 0; i < G.conns; i++)
            if (conn_open() < 0)
                die("cannot open connection %d: %s", i, strerror(errno));
        uint64_t cdead = now_ns() + 5000000000ull;
        while (G.nidle < G.conns && now_ns() < cdead) {
            int n = epoll_wait(G.ep, evs, 1024, 100);
            for (int j = 0; j < n; j++) {
                uint64_t tag = evs[j].data.u64;
                if (tag == TAG_SAMPLER || tag == TAG_TIMER) {
                    on_event(tag, evs[j].events);
                    continue;
                }
                conn *k = &G.c[tag];
                if (k->state == C_CONNECTING)
                    on_connected(k); /* closed mode: feed() declines while t_end is 0 */
            }
        }
        if (G.nidle < G.conns)
            die("only %d of %d connections came up", G.nidle, G.conns);
        G.t0 = t_begin = now_ns() + 1000000ull;
        G.t_meas = G.t0 + (uint64_t)(G.warmup * 1e9);
        G.t_end = G.t0 + (uint64_t)(G.duration * 1e9);
        G.deadline = G.t_end + (uint64_t)(G.timeout * 1e9);
        cpu0 = cpu_seconds();
        watched0 = watched_cpu(&first0);
        busy0 = machine_busy();
        if (G.mode == MODE_OPEN) {
            G.total = (long)(G.rate * G.duration);
            arm_timer(G.t0);
        } else {
            while (G.nidle) {
                conn *k = &G.c[G.idle[--G.nidle]];
                k->on_idle = 0;
                while (now_ns() < G.t0)
                    ;
                feed(k);
            }
        }
    }

    /* main loop: bounded by the deadline */
    for (;;) {
        uint64_t t = now_ns();
        int all_sent = G.mode == MODE_BURST || (G.mode == MODE_OPEN ? G.next_i >= G.total : t >= G.t_end);
        if (all_sent && G.inflight == 0 && G.qlen == 0)
            break;
        if (t >= G.deadline)
            break;
        if (G.mode == MODE_CLOSED && t >= G.t_end)
            G.stopping = 1;
        int n = epoll_wait(G.ep, evs, 1024, 20);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int j = 0; j < n; j++)
            on_event(evs[j].data.u64, evs[j].events);
    }
    uint64_t t_stop = now_ns();
    double cpu = cpu_seconds() - cpu0;
    double watched = watched_cpu(&first1) - watched0, busy = machine_busy() - busy0;
    double span = (double)(t_stop - t_begin) / 1e9;
    double other = busy - watched - cpu;
    long drops1 = listen_overflows();
    sample_pid();

    /* what never answered by the deadline */
    for (int i = 0; i < G.nc; i++) {
        conn *k = &G.c[i];
        if (k->fd >= 0 && k->has_req && k->counted)
            G.timeouts++;
    }
    for (size_t i = 0; i < G.qlen; i++)
        if (counted_at(G.queue[(G.qhead + i) % G.qcap]))
            G.timeouts++;

    if (G.nlat)
        qsort(G.lat, G.nlat, sizeof *G.lat, cmp_u64);
    if (G.nlag)
        qsort(G.lag, G.nlag, sizeof *G.lag, cmp_u64);
    if (G.nown)
        qsort(G.own, G.nown, sizeof *G.own, cmp_u64);
    long counted_sent;
    double window, wall;
    if (G.mode == MODE_BURST) {
        counted_sent = G.sent;
        wall = (double)((G.t_last_done ? G.t_last_done : t_stop) - t_begin) / 1e9;
        window = wall;
    } else {
        counted_sent = (long)G.nlat + G.timeouts + G.conn_err + G.errors_other;
        window = G.duration - G.warmup;
        wall = (double)(t_stop - t_begin) / 1e9;
    }
    long errors = counted_sent - G.ok;
    double rps = G.mode == MODE_BURST ? (wall > 0 ? (double)G.ok / wall : 0) : (double)G.meas_done / window;

    printf("label=%s mode=%s sent=%ld ok=%ld errors=%ld bad_status=%ld bad_body=%ld conn_err=%ld timeouts=%ld "
           "wall_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f conns=%d peak_inflight=%ld "
           "lag_p99_ms=%.3f lag_max_ms=%.3f gen_cpu=%.2f srv_cpu=%.2f other_cpu=%.2f listen_drops=%ld "
           "srv_us_per_req=%.0f",
           G.label, mode, counted_sent, G.ok, errors, G.bad_status, G.bad_body, G.conn_err, G.timeouts, wall, rps,
           pct_ms(G.lat, G.nlat, 50), pct_ms(G.lat, G.nlat, 90), pct_ms(G.lat, G.nlat, 99),
           G.nlat ? (double)G.lat[G.nlat - 1] / 1e6 : 0.0, G.nc, G.peak_inflight, pct_ms(G.lag, G.nlag, 99),
           G.nlag ? (double)G.lag[G.nlag - 1] / 1e6 : 0.0, span > 0 ? cpu / span : 0.0,
           span > 0 ? watched / span : 0.0, span > 0 && other > 0 ? other / span : 0.0,
           drops0 >= 0 && drops1 >= drops0 ? drops1 - drops0 : -1L, G.done ? (first1 - first0) / (double)G.done * 1e6 : 0.0);
    if (G.mode == MODE_BURST)
        printf(" open_s=%.3f", (double)(t_opened - t_begin) / 1e9);
    if (G.nwatch)
        printf(" peak_rss_kb=%ld peak_threads=%ld", G.peak_rss_kb, G.peak_threads);
    if (G.nown)
        printf(" own_p50_ms=%.3f own_p99_ms=%.3f", pct_ms(G.own, G.nown, 50), pct_ms(G.own, G.nown, 99));
    printf("\n");
    fflush(stdout);

    for (int i = 0; i < G.nc; i++)
        if (G.c[i].fd >= 0)
            conn_close(&G.c[i]);
    close(G.ep);
    close(G.tfd);
    close(G.sfd);
    free(G.c);
    free(G.idle);
    free(G.queue);
    free(G.lat);
    free(G.lag);
    free(G.request);
    if (G.samples) /* to line the samples up with a server's own clock */
        fprintf(G.samples, "# t0 %.6f (CLOCK_MONOTONIC, s)\n", (double)G.t0 / 1e9);
    if (G.samples && fclose(G.samples) != 0)
        fprintf(stderr, "bench_exec: BENCH_SAMPLES: write failed\n");
    return errors ? 1 : 0;
}
