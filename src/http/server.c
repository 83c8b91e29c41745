/*
 * server.c — libmicrohttpd glue: per-request state, body limit, keep-alive,
 * suspend/resume, graceful stop (see http.h for the contract), and the event
 * loops that drive libmicrohttpd.
 *
 * MHD facts this file is built around (libmicrohttpd 0.9.75):
 *  - Queueing the answer on the first call of the access handler makes MHD
 *    close the connection after it (no keep-alive), so the first call only
 *    sets up state, later calls take the body, and the answer is queued on the
 *    call after the body is complete. The one exception is 413 for a declared
 *    Content-Length over the limit: we answer before reading the body, and
 *    the connection closing afterwards is exactly right.
 *  - MHD has no body limit: we count bytes ourselves.
 *  - A suspended connection never times out: whoever suspends must resume,
 *    and every suspended request must be answered before MHD_stop_daemon.
 *  - Resume may happen (from the engine thread) before the access handler has
 *    returned to suspend; a small per-request lock orders the two.
 *  - Pipelined requests behind a suspended one are kept, and answered in
 *    order after it: bytes MHD had read stay in the connection's read buffer,
 *    and while suspended the socket is out of MHD's epoll set, so later bytes
 *    wait in the kernel; on resume MHD marks the socket readable and, once
 *    the answer is sent, parses the next request from the buffer and reads
 *    on (test_http_edge.c, edge_pipeline).
 *  - MHD's inactivity timeout restarts with every byte, so a client dripping
 *    its headers would never time out: the header deadline (below) bounds the
 *    whole header block.
 *  - MHD's own epoll thread can leave ready requests unread for up to the
 *    idle timeout, so MHD runs without an internal thread, driven by ours
 *    ("event loops", below); a resume therefore wakes nobody by itself and
 *    always goes through http_server_resume().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/thread.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "http/http.h"
#include "http/http_internal.h"

#define HTTP_MAX_HEADERS 100      /* more header fields than this: 431 */
#define HTTP_MAX_HEAD 12288       /* request line + header fields as sent, CRLFs included: 431 beyond */
#define HTTP_MAX_URI 4096         /* longer request targets: 414 */
#define HTTP_MAX_QUERY_ARGS 128   /* more query parameters than this: 431 */
/*
 * libmicrohttpd's per-connection memory pool, sized from the limits above.
 * What 0.9.75 keeps in it (read in its connection.c and memorypool.c, and
 * measured with requests at every limit at once):
 *  - The read buffer: the request head stays in it, parsed in place, while
 *    the request runs. On each new request it starts at half the pool (and
 *    reads as much as fits, so pipelined requests or body bytes may fill it).
 *  - One record per query parameter and per header field (struct
 *    MHD_HTTP_Header: 7 words, 64 bytes with the pool's 16-byte rounding),
 *    taken from the other half: 128 parameters alone are 8 KiB.
 *  - The answer's status line and header fields (a write buffer: whatever
 *    is still free), about 600 bytes for ours.
 * When a record does not fit, 0.9.75 mishandles it: out of room in the query
 * parameters it queues a 431 and then goes on reading as if nothing had
 * happened (the client gets nothing until a timeout: a 408 after 10 s); out
 * of room for the answer's header it closes the connection without a word.
 * So the pool must hold, each in its half, HTTP_MAX_HEAD bytes of head, and
 * (HTTP_MAX_QUERY_ARGS + HTTP_MAX_HEADERS) records plus our answer's header
 * (static asserts below). The 8 KiB pool before held 60 query parameters
 * but not 100, nor 40 beside a 5 KB header field.
 * Cost: the pool is allocated when a connection is accepted and MHD zeroes
 * all of it between two requests of a kept-alive connection, so it is
 * resident for as long as the connection is open. Measured (3,000 kept-alive
 * connections after two requests each): 32.6 KiB of RSS per connection, was
 * 8.6 KiB with an 8 KiB pool; 10,000 open connections take ~320 MiB instead
 * of ~85 MiB (the rest of a request waiting on a model, ~12 KiB by
 * heaptrack, comes on top). 32 KiB is also the largest pool MHD takes from
 * malloc(); above it MHD maps every connection's pool with mmap(), two more
 * system calls per connection.
 * Cookies: MHD also copies a Cookie header and splits it into one record
 * per cookie, which no limit of ours can bound (MHD parses it before any
 * callback of ours runs); a request whose cookies do not fit gets MHD's own
 * 431 (its header block sent twice: 0.9.75 builds it again after its own
 * error, as for a Content-Length that is not a number). With the pool at
 * 32 KiB, 400 cookies beside a few other fields fit. promptd reads none.
 */
#define HTTP_CONNECTION_POOL (32 * 1024)
#define HTTP_MHD_RECORD 64        /* one query parameter or header field in the pool (64-bit) */
#define HTTP_ANSWER_HEAD_MAX 1536 /* our answers' status line + header fields, MHD's own fields included */
_Static_assert(HTTP_CONNECTION_POOL / 2 >= HTTP_MAX_HEAD, "the request head must fit the first read buffer");
_Static_assert(HTTP_CONNECTION_POOL / 2 >=
                   (HTTP_MAX_QUERY_ARGS + HTTP_MAX_HEADERS) * HTTP_MHD_RECORD + HTTP_ANSWER_HEAD_MAX,
               "the records of a request at the limits and our answer's header must fit the other half");
_Static_assert(HTTP_MAX_URI + 16 < HTTP_MAX_HEAD, "a request target at its limit must leave room for headers");
#define HTTP_UPLOAD_DEADLINE_MS 60000 /* a body still arriving after this is cut off (slow clients) */
#define HTTP_HEADER_SCAN_MS 500       /* how often the header deadline is checked (its granularity) */
#define HTTP_CONNECTION_LIMIT 60000   /* open connections, all server threads together */
#define HTTP_LISTEN_BACKLOG 4096      /* per listening socket */

/* Marks a request answered by uri_check() before MHD parsed it. */
static char rejected_early;

/* Header deadline: where the clock of a connection's current request stands. */
enum hdr_phase {
    HDR_RUNNING, /* headers expected: cut when header_timeout_s has passed since `since_ms` */
    HDR_OFF,     /* headers complete (request in progress), or already cut */
    HDR_IDLE,    /* keep-alive, between requests: idle until bytes of a new request arrive */
};

/* One open connection in the header-deadline registry (its MHD socket_context). */
typedef struct http_conn {
    struct http_conn *prev, *next; /* intrusive: O(1) add and remove */
    int fd;                        /* set once, before the entry is listed */
    enum hdr_phase phase;          /* this and below: under conns_lock */
    int64_t since_ms;              /* monotonic: RUNNING: clock start; IDLE: last seen idle */
    uint64_t rx_mark;              /* IDLE: bytes received (TCP_INFO) when the last request ended */
    int rx_known;                  /* rx_mark is valid */
} http_conn;

/* One MHD daemon and the thread that runs it (see "event loops" below). */
typedef struct http_loop {
    http_server *srv;
    struct MHD_Daemon *daemon;
    int epoll_fd;            /* MHD's: ready when one of the daemon's sockets is */
    int wake_fd;             /* eventfd (ours): resumes, quiesce and stop wake the thread through it */
    atomic_int wake_pending; /* 1: wake_fd written since the thread last ran MHD, no need to write again */
    atomic_int quiesce;      /* asked to stop accepting */
    int quiesced;            /* under loops_lock: MHD_quiesce_daemon done (the daemon no longer accepts) */
    int run_failed;          /* MHD_run failed at least once (logged once) */
    pthread_t thread;
    int thread_running;
} http_loop;

struct http_server {
    http_server_config cfg;
    int listen_fd; /* shared by every daemon; closed by us once none uses it (never by MHD: see stop) */
    int port;
    atomic_int open_requests;
    _Atomic size_t stream_bytes; /* what every stream holds for its client together (stream.c) */

    /* event loops: one daemon and one thread each, all on the same port */
    http_loop *loops;
    unsigned nloops;
    atomic_int loops_quit;      /* http_server_stop: each loop runs MHD once more and ends */
    int loops_sync_ready;       /* loops_lock and loops_quiesced initialised */
    pthread_mutex_t loops_lock; /* every loop's `quiesced` */
    pthread_cond_t loops_quiesced;

    /* header deadline (see "header deadline" below); off when header_limit_ms is 0 */
    int64_t header_limit_ms;
    int sync_ready;             /* conns_lock and conns_wake initialised */
    pthread_mutex_t conns_lock; /* the list, every entry's phase fields, the watchdog's flags */
    pthread_cond_t conns_wake;  /* wakes the watchdog early to stop */
    http_conn *conns;
    int watchdog_running, watchdog_stop;
    pthread_t watchdog;
    char timeout_msg[400]; /* the 408 sent to a connection that is cut */
    size_t timeout_msg_len;
    size_t timeout_id_off; /* where in timeout_msg each cut writes a new X-Request-Id (ID_LEN bytes) */
};

/* A client's X-Request-Id is kept when it is 1..HTTP_REQUEST_ID_MAX token
 * characters (RFC 9110 tchar, plus ':', '/', '=', '@' that ids in base64 or
 * URN form use): safe to echo in a header and to write in a log line. */
static int request_id_ok(const char *v)
{
    static const char extra[] = "!#$%&'*+-.^_`|~:/=@";
    size_t n = 0;
    for (; v && v[n]; n++) {
        char c = v[n];
        if (n >= HTTP_REQUEST_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c)))
            return 0;
    }
    return n > 0;
}

static void request_id_set(http_req *r)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (request_id_ok(v))
        snprintf(r->request_id, sizeof r->request_id, "%s", v);
    else
        id_new(r->request_id);
}

static http_req *req_new(http_server *srv, struct MHD_Connection *conn, const char *url, const char *method)
{
    http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = srv;
    r->conn = conn;
    r->upstream_us = -1;
    r->method = strdup(method);
    r->path = strdup(url);
    if (!r->method || !r->path) {
        free(r->method);
        free(r->path);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->started_ms = time_mono_ms();
    request_id_set(r);
    if (strncmp(url, "/api/v1/", 8) == 0 || strcmp(url, "/api/v1") == 0)
        r->style = HTTP_STYLE_V1;
    else if (strncmp(url, "/v1/", 4) == 0)
        r->style = HTTP_STYLE_OPENAI;
    else
        r->style = HTTP_STYLE_JARVIS;
    atomic_fetch_add(&srv->open_requests, 1);
    return r;
}

static void req_free(http_req *r)
{
    if (!r)
        return;
    if (r->app_free)
        r->app_free(r->app_data);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->out_body);
    free(r->out_type);
    free(r->body);
    free(r->method);
    free(r->path);
    atomic_fetch_sub(&r->srv->open_requests, 1);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static enum MHD_Result check_query_utf8(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    http_req *r = cls;
    if (!utf8_valid(key, strlen(key)) || (value && !utf8_valid(value, strlen(value)))) {
        r->bad_utf8 = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result queue_reply(http_req *r)
{
    struct MHD_Response *resp;
    r->state = REQ_SENT;
    if (r->stream_reader) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, r->stream_reader, r->stream_cls,
                                                 r->stream_free);
        r->stream_free = NULL; /* MHD owns the stream state now */
    } else {
        resp = MHD_create_response_from_buffer(r->out_len, r->out_body ? r->out_body : (void *)"",
                                               r->out_body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (resp)
            r->out_body = NULL; /* MHD frees it */
    }
    if (!resp)
        return MHD_NO;
    /* Only answers that called a model: a stream's headers leave before its
     * end (no total to give), and timing every answer would hand anyone,
     * signed in or not, the server's own measure of e.g. a key check. */
    if (r->handled_us && !r->stream_reader && r->upstream_us >= 0) {
        char timing[96];
        snprintf(timing, sizeof timing, "upstream;dur=%.3f, total;dur=%.3f", (double)r->upstream_us / 1000.0,
                 (double)(time_mono_us() - r->handled_us) / 1000.0);
        MHD_add_response_header(resp, "Server-Timing", timing);
    }
    if (r->out_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->out_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, "X-Request-Id") != 0) /* the request's own id, always */
            MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->out_status, resp);
    MHD_destroy_response(resp);
    /* the access log, at debug level; the line names the request (log.h) */
    log_debug("http: %s %s -> %d%s", r->method, r->path, r->out_status, r->stream_reader ? " (stream)" : "");
    return ret;
}

/* ---------------------------------------------------------------- header deadline
 *
 * A client may take at most header_timeout_s to deliver a request's header
 * block; slower ones (slowloris: one byte every few seconds, each resetting
 * MHD's inactivity timeout) are disconnected.
 *
 * Every open connection is an entry of a registry (an intrusive doubly
 * linked list under conns_lock: add and remove are O(1)) holding its socket
 * and the state of its clock. A watchdog thread wakes every
 * HTTP_HEADER_SCAN_MS, walks the list and cuts the connections past the
 * deadline, so a client is cut between header_timeout_s and
 * header_timeout_s + HTTP_HEADER_SCAN_MS after its clock started. The walk
 * is a comparison per entry (10,000 connections: about 0.1 ms under the lock,
 * measured cold); a system call is made only for an entry past its deadline.
 * Per request the cost is two uncontended lock round trips and one
 * getsockopt (TCP_INFO, below) when it ends.
 *
 * When the clock runs:
 *  - From the accept (NOTIFY_STARTED) of a new connection, whether or not it
 *    sends anything: opening a connection is the start of its first request
 *    (nginx's client_header_timeout counts the same way).
 *  - It stops at the first call of the access handler for the request, which
 *    MHD makes once the header block is complete. From then on the request
 *    is never cut by this deadline: bodies have their own
 *    (HTTP_UPLOAD_DEADLINE_MS), and a suspended request or a streamed answer
 *    may take as long as it needs.
 *  - When a request ends (NOTIFY_COMPLETED) on a connection kept alive, the
 *    connection is idle, not slow, until a byte of the next request arrives:
 *    idle connections are the idle timeout's business (idle_timeout_s, MHD's
 *    own). MHD has no "first byte" hook and drains the socket at once, so the
 *    kernel is asked instead: the TCP_INFO byte count noted when the request
 *    ended is compared when the deadline passes. Unchanged: still idle, the
 *    clock restarts. Changed: a new request began and its headers are still
 *    incomplete (else the access handler would have stopped the clock): its
 *    clock starts then. Such a request thus gets between one and two
 *    deadlines (plus a scan) from its first byte, never less than one, and a
 *    slow keep-alive client is still cut after a bounded time. Where TCP_INFO
 *    lacks the count (Linux before 4.1), the connection counts as slow: the
 *    clock runs from the end of the previous request, so idle keep-alive
 *    connections are closed after header_timeout_s there.
 *
 * Cutting: a best-effort 408, then shutdown(SHUT_RDWR); MHD's next read sees
 * the end of the stream and MHD closes the connection its usual way. The
 * watchdog never calls into MHD. MHD calls NOTIFY_CLOSED before it closes
 * the socket (MHD_cleanup_connections, and the failure path of accepting, in
 * 0.9.75), and conns_lock covers both the watchdog's shutdown() and the
 * removal at NOTIFY_CLOSED: while an entry is listed its fd is its own
 * socket, never a reused descriptor.
 */

/* Bytes the kernel has received on socket fd; -1 when it cannot tell. */
static int rx_bytes(int fd, uint64_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return -1;
    *out = ti.tcpi_bytes_received;
    return 0;
}

/* MHD_OPTION_NOTIFY_CONNECTION: list the connection on accept, unlist it before MHD closes it. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *c = ci ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            /* a connection the watchdog does not know would escape the deadline: refuse it */
            log_error("http: cannot track a new connection (out of memory); closing it");
            if (ci)
                shutdown(ci->connect_fd, SHUT_RDWR);
            return;
        }
        c->fd = ci->connect_fd;
        c->phase = HDR_RUNNING;
        c->since_ms = time_mono_ms();
        pthread_mutex_lock(&srv->conns_lock);
        c->next = srv->conns;
        if (c->next)
            c->next->prev = c;
        srv->conns = c;
        pthread_mutex_unlock(&srv->conns_lock);
        *socket_context = c;
        return;
    }
    http_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    *socket_context = NULL;
    free(c);
}

static http_conn *conn_entry(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The access handler's first call for a request: its headers are complete. */
static void headers_done(http_server *srv, struct MHD_Connection *conn)
{
    http_conn *c;
    if (!srv->header_limit_ms || !(c = conn_entry(conn)))
        return;
    pthread_mutex_lock(&srv->conns_lock);
    c->phase = HDR_OFF;
    pthread_mutex_unlock(&srv->conns_lock);
}

/* A request ended; if the connection stays open it is idle until the next one begins. */
static void request_done(http_server *srv, struct MHD_Connection *conn)
{
    http_conn *c;
    if (!srv->header_limit_ms || !(c = conn_entry(conn)))
        return;
    uint64_t rx = 0;
    int known = rx_bytes(c->fd, &rx) == 0; /* c->fd never changes: read without the lock */
    pthread_mutex_lock(&srv->conns_lock);
    c->phase = HDR_IDLE;
    c->since_ms = time_mono_ms();
    c->rx_mark = rx;
    c->rx_known = known;
    pthread_mutex_unlock(&srv->conns_lock);
}

/* One pass over the registry (conns_lock held); returns how many connections were cut. */
static int header_scan(http_server *srv)
{
    int64_t now = time_mono_ms();
    int cut = 0;
    for (http_conn *c = srv->conns; c; c = c->next) {
        if (c->phase == HDR_OFF || now - c->since_ms < srv->header_limit_ms)
            continue;
        if (c->phase == HDR_IDLE && c->rx_known) {
            uint64_t rx;
            if (rx_bytes(c->fd, &rx) == 0) {
                if (rx != c->rx_mark) /* a new request has begun: its clock starts now */
                    c->phase = HDR_RUNNING;
                c->since_ms = now; /* still idle: look again one deadline later */
                continue;
            }
        }
        char msg[sizeof srv->timeout_msg], id[ID_LEN + 1];
        memcpy(msg, srv->timeout_msg, srv->timeout_msg_len);
        id_new(id);
        memcpy(msg + srv->timeout_id_off, id, ID_LEN); /* an answer like any other names a request */
        ssize_t w = send(c->fd, msg, srv->timeout_msg_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w; /* best effort: the client may not be reading */
        shutdown(c->fd, SHUT_RDWR);
        c->phase = HDR_OFF; /* once; MHD closes it on its next read */
        cut++;
    }
    return cut;
}

static void *watchdog_main(void *arg)
{
    http_server *srv = arg;
    pthread_mutex_lock(&srv->conns_lock);
    while (!srv->watchdog_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += HTTP_HEADER_SCAN_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
        }
        pthread_cond_timedwait(&srv->conns_wake, &srv->conns_lock, &until); /* spurious wake-up: an early scan */
        if (srv->watchdog_stop)
            break;
        int cut = header_scan(srv);
        if (cut) {
            pthread_mutex_unlock(&srv->conns_lock); /* do not hold every connection up on logging */
            log_warn("http: closed %d connection%s that took over %u s to send a request's headers", cut,
                     cut == 1 ? "" : "s", srv->cfg.header_timeout_s);
            pthread_mutex_lock(&srv->conns_lock);
        }
    }
    pthread_mutex_unlock(&srv->conns_lock);
    return NULL;
}

/* Set up the registry and start the watchdog (nothing when the deadline is off). */
static int header_deadline_start(http_server *srv, char *err, size_t errlen)
{
    srv->header_limit_ms = (int64_t)srv->cfg.header_timeout_s * 1000;
    if (!srv->header_limit_ms)
        return 0;
    static const char body[] = "{\"errors\":[{\"status\":\"408\",\"code\":\"request_timeout\",\"title\":\"Request "
                               "Timeout\",\"detail\":\"The request headers took too long to arrive\"}]}";
    static const char head[] = "HTTP/1.1 408 Request Timeout\r\nX-Request-Id: ";
    int n = snprintf(srv->timeout_msg, sizeof srv->timeout_msg,
                     "%s%*s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     head, ID_LEN, "", sizeof body - 1, body);
    if (n < 0 || (size_t)n >= sizeof srv->timeout_msg) {
        snprintf(err, errlen, "internal error: the 408 answer does not fit");
        return -1;
    }
    srv->timeout_msg_len = (size_t)n;
    srv->timeout_id_off = sizeof head - 1;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* waits are not moved by wall-clock changes */
        if (rc == 0)
            rc = pthread_cond_init(&srv->conns_wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc == 0 && (rc = pthread_mutex_init(&srv->conns_lock, NULL)) != 0)
        pthread_cond_destroy(&srv->conns_wake);
    if (rc) {
        snprintf(err, errlen, "cannot set up the header deadline: %s", strerror(rc));
        return -1;
    }
    srv->sync_ready = 1;
    return 0;
}

static int watchdog_start(http_server *srv, char *err, size_t errlen)
{
    if (!srv->header_limit_ms)
        return 0;
    int rc = thread_start(&srv->watchdog, "pd-watchdog", watchdog_main, srv);
    if (rc) {
        snprintf(err, errlen, "cannot start the header deadline watchdog: %s", strerror(rc));
        return -1;
    }
    srv->watchdog_running = 1;
    return 0;
}

static void watchdog_stop(http_server *srv)
{
    if (!srv->watchdog_running)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    srv->watchdog_stop = 1;
    pthread_cond_signal(&srv->conns_wake);
    pthread_mutex_unlock(&srv->conns_lock);
    pthread_join(srv->watchdog, NULL);
    srv->watchdog_running = 0;
}

/* An answer the server made itself: the application's own_answer hook may
 * add to it or replace it before it is sent. */
static enum MHD_Result queue_own_answer(http_server *srv, http_req *r)
{
    if (srv->cfg.own_answer)
        srv->cfg.own_answer(srv->cfg.app, r);
    return queue_reply(r);
}

/* What the first call learns from the header fields (head_check). */
struct head_scan {
    size_t fields;
    const char *cl, *te; /* first Content-Length / Transfer-Encoding value */
    size_t cl_len, te_len;
    unsigned cl_count, te_count;
    int cl_differ; /* a later Content-Length differs from the first */
};

static enum MHD_Result head_scan_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                       const char *value, size_t value_size)
{
    (void)kind;
    struct head_scan *h = cls;
    h->fields++;
    if (!value)
        value = "";
    if (key_size == 14 && strncasecmp(key, "Content-Length", 14) == 0) {
        if (h->cl_count++ == 0) {
            h->cl = value;
            h->cl_len = value_size;
        } else if (value_size != h->cl_len || memcmp(value, h->cl, value_size) != 0) {
            h->cl_differ = 1;
        }
    } else if (key_size == 17 && strncasecmp(key, "Transfer-Encoding", 17) == 0) {
        if (h->te_count++ == 0) {
            h->te = value;
            h->te_len = value_size;
        }
    }
    return MHD_YES;
}

/* The checks made from the request head alone, on the first call: 0, or the
 * status of the error answer set on r. Framing errors (the body's end cannot
 * be known) close the connection: what follows on it cannot be trusted to be
 * a new request. */
static int head_check(http_server *srv, http_req *r, struct MHD_Connection *conn)
{
    struct head_scan h = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, head_scan_field, &h);
    if (h.fields > HTTP_MAX_HEADERS) {
        http_error(r, 431, NULL, NULL, "Too many header fields (at most %d)", HTTP_MAX_HEADERS);
        return 431;
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci && ci->header_size > HTTP_MAX_HEAD) {
        http_error(r, 431, NULL, NULL, "The request line and header fields take %zu bytes (at most %d)",
                   ci->header_size, HTTP_MAX_HEAD);
        return 431;
    }
    /* libmicrohttpd decodes chunked alone and reads any other coding as a
     * body without end: refuse it before a byte of the body is read */
    if (h.te_count > 1) {
        http_error(r, 501, NULL, NULL, "Transfer-Encoding is given more than once: only one, chunked, is supported");
        goto close;
    }
    if (h.te_count && !(h.te_len == 7 && strncasecmp(h.te, "chunked", 7) == 0)) {
        http_error(r, 501, NULL, NULL, "Transfer-Encoding '%.*s' is not supported: only chunked",
                   (int)(h.te_len > 64 ? 64 : h.te_len), h.te);
        goto close;
    }
    if (h.te_count && h.cl_count) {
        http_error(r, 400, NULL, NULL, "Both Transfer-Encoding and Content-Length are given");
        goto close;
    }
    if (h.cl_differ) { /* the same value repeated is one length (RFC 9110, 8.6) */
        http_error(r, 400, NULL, NULL, "Content-Length is given more than once with different values");
        goto close;
    }
    if (h.cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(h.cl, &end, 10);
        if (errno || *end || n > srv->cfg.body_limit) {
            http_error(r, 413, NULL, NULL, "Request body exceeds the limit of %zu bytes", srv->cfg.body_limit);
            return 413;
        }
        r->body_hint = (size_t)n + 1; /* exact: a waiting request keeps its body */
    }
    return 0;
close:
    http_add_header(r, "Connection", "close");
    return r->out_status;
}

static enum MHD_Result access_step(http_server *srv, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    http_req *r = *con_cls;
    if (r == (void *)&rejected_early) /* answered by uri_check() */
        return MHD_NO;

    if (!r) { /* first call: headers only */
        headers_done(srv, conn);
        if (!(r = req_new(srv, conn, url, method)))
            return MHD_NO;
        *con_cls = r;
        log_set_request(r->request_id);
        if (head_check(srv, r, conn))
            return queue_own_answer(srv, r);
        r->bad_utf8 = !utf8_valid(url, strlen(url));
        if (!r->bad_utf8)
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_query_utf8, r);
        return MHD_YES;
    }

    log_set_request(r->request_id);
    if (r->state == REQ_SENT) /* 413 already queued: discard whatever arrives */
    {
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*upload_data_size) { /* a piece of the body */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (time_mono_ms() - r->started_ms > HTTP_UPLOAD_DEADLINE_MS) {
            log_warn("http: %s %s: body still arriving after %d s; closing", r->method, r->path,
                     HTTP_UPLOAD_DEADLINE_MS / 1000);
            return MHD_NO;
        }
        if (r->too_large)
            return MHD_YES;
        if (r->body_len + n > srv->cfg.body_limit) {
            r->too_large = 1; /* chunked body over the limit: drop it, answer 413 at the end */
            free(r->body);
            r->body = NULL;
            r->body_len = 0;
            return MHD_YES;
        }
        if (r->body_len + n + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : r->body_hint ? r->body_hint : 256;
            while (cap < r->body_len + n + 1)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    }

    if (r->state == REQ_RECEIVING) { /* body complete: run the handler */
        r->state = REQ_HANDLING;
        if (r->too_large || r->bad_utf8) {
            if (r->too_large)
                http_error(r, 413, NULL, NULL, "Request body exceeds the limit of %zu bytes", srv->cfg.body_limit);
            else
                http_error(r, 400, NULL, NULL, "The URL (path or query) is not valid UTF-8");
            if (srv->cfg.own_answer)
                srv->cfg.own_answer(srv->cfg.app, r);
        } else {
            r->handled_us = time_mono_us();
            srv->cfg.handler(srv->cfg.app, r);
        }
        pthread_mutex_lock(&r->lock);
        if (r->want_suspend && !r->resumed) {
            r->suspended = 1;
            MHD_suspend_connection(conn);
            pthread_mutex_unlock(&r->lock);
            return MHD_YES;
        }
        pthread_mutex_unlock(&r->lock);
    }

    if (r->state == REQ_HANDLING) {
        pthread_mutex_lock(&r->lock);
        int waiting = r->want_suspend && !r->resumed;
        pthread_mutex_unlock(&r->lock);
        if (waiting) /* spurious wake-up: keep waiting */
            return MHD_YES;
        if (!r->reply_ready) {
            log_error("http: %s %s: handler gave no answer", r->method, r->path);
            http_error(r, 500, NULL, NULL, "The server produced no answer");
        }
        return queue_reply(r);
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    enum MHD_Result ret = access_step(cls, conn, url, method, upload_data, upload_data_size, con_cls);
    log_set_request(NULL); /* lines this thread logs next belong to no request */
    return ret;
}


/*
 * MHD keeps every query argument in the connection's memory pool; when a
 * request has so many that the pool runs out, MHD can no longer build even
 * its own error answer and silently closes the connection (or holds it until
 * the idle timeout). So the raw request target is checked here, before MHD
 * parses it: too long (414) or too many parameters (431) is answered directly
 * on the socket, and the connection is closed.
 */
static void *uri_check(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    size_t len = strlen(uri), args = 0;
    const char *q = strchr(uri, '?');
    for (const char *p = q; p && *p; p++)
        args += *p == '&';
    if (q && q[1])
        args++;
    int status = len > HTTP_MAX_URI ? 414 : args > HTTP_MAX_QUERY_ARGS ? 431 : 0;
    if (!status)
        return NULL;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        char body[160], msg[512];
        int blen = snprintf(body, sizeof body,
                            "{\"errors\":[{\"status\":\"%d\",\"code\":\"%s\",\"title\":\"%s\",\"detail\":\"%s\"}]}",
                            status, status == 414 ? "uri_too_long" : "too_many_parameters",
                            status == 414 ? "URI Too Long" : "Request Header Fields Too Large",
                            status == 414 ? "The request target is over 4096 bytes" : "More than 128 query parameters");
        char id[ID_LEN + 1];
        id_new(id); /* the request's headers are not parsed yet: a client's id cannot be read */
        int mlen = snprintf(msg, sizeof msg,
                            "HTTP/1.1 %d %s\r\nX-Request-Id: %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                            status, status == 414 ? "URI Too Long" : "Request Header Fields Too Large", id, blen, body);
        ssize_t w = send(ci->connect_fd, msg, (size_t)mlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(ci->connect_fd, SHUT_WR); /* whatever MHD tries next fails and it closes */
    }
    return &rejected_early;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    if (*con_cls != &rejected_early)
        req_free(*con_cls);
    *con_cls = NULL;
    request_done(cls, conn);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    log_warn("http: %s", buf);
}

/* ---------------------------------------------------------------- event loops
 *
 * Why not MHD's internal polling threads (MHD_USE_INTERNAL_POLLING_THREAD |
 * MHD_USE_EPOLL with a thread pool, as this file used before): in
 * libmicrohttpd 0.9.75 MHD_epoll() collects events 128 at a time, and when
 * an epoll_wait() call fills all 128 entries it calls epoll_wait() again
 * with the blocking timeout it computed before anything was ready (up to the
 * idle timeout). The connections the full batch marked ready are handled
 * only after that second wait returns, so when exactly 128, 256, ... sockets
 * become readable together and nothing else happens, their requests sit
 * unread until an unrelated event or the timeout (test_http.c, ready_at_once;
 * the mock LLM had the same bug, see tests/mock/mock_loop.c).
 *
 * So each of cfg.threads threads runs a daemon of its own in MHD's external
 * epoll mode: MHD_run() (whose epoll_wait() calls never block), then poll()
 * on the daemon's epoll fd and an eventfd for at most MHD_get_timeout() — 0
 * while MHD still has connections marked ready, else the nearest idle
 * timeout. The upload deadline needs no timer (it is checked as body bytes
 * arrive) and the header deadline has its own thread. The daemons share one
 * non-blocking listening socket, as MHD's own thread pool does: each has it
 * in its epoll set, and whichever thread is free accepts (the other's
 * accept() finds nothing, which MHD ignores). Not SO_REUSEPORT: that would
 * let a second promptd started by mistake on the same port take a share of
 * the connections instead of failing to start. MHD closes a daemon's
 * listening socket when it stops, so every daemon is quiesced first (which
 * makes it forget the socket) and the socket is closed once, by us.
 *
 * Wake-ups: MHD_resume_connection() from another thread (engine, recorder,
 * dispatcher, a stream producer) wakes no external loop (measured: the poll()
 * above sleeps on), so every resume goes through http_server_resume(), which
 * writes the eventfd of the connection's own daemon afterwards. Waking every
 * loop instead made 1.7 to 14 times the writes and up to 3 times the loop
 * turns (bench/run.sh, a and b). The write is skipped while one is pending
 * (wake_pending: set by the writer, cleared by the loop just before
 * MHD_run(), which then sees every resume made before the clear): 10,000
 * requests resumed in a burst took 200 to 700 writes.
 *
 * Quiesce and stop are flags a loop reads at the top of its turn, after a
 * wake-up. The loop quiesces its own daemon between two MHD_run() calls, so
 * the socket can be closed at once (microhttpd.h: a socket quiesced while
 * another thread runs the daemon must stay open until MHD_stop_daemon). A
 * stopping loop runs MHD once more, so the connections resumed before the
 * stop are back in MHD's hands when MHD_stop_daemon() runs.
 */

/* How long poll() may wait: MHD_get_timeout(), or -1 (until an event) when MHD has nothing timed. */
static int wait_ms(struct MHD_Daemon *d)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(d, &t) != MHD_YES)
        return -1;
    return t > (MHD_UNSIGNED_LONG_LONG)INT_MAX ? INT_MAX : (int)t;
}

static void loop_wake(http_loop *l)
{
    static const uint64_t one = 1;
    if (atomic_exchange(&l->wake_pending, 1))
        return; /* written and not yet acted on: the loop's next MHD_run() comes after this caller's change */
    /* EAGAIN: the counter is full, so the eventfd is readable and the loop awake anyway */
    if (write(l->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN) {
        atomic_store(&l->wake_pending, 0); /* the next caller tries again */
        log_error("http: cannot wake a server thread: %s", strerror(errno));
    }
}

static void loop_quiesce(http_loop *l)
{
    http_server *srv = l->srv;
    (void)MHD_quiesce_daemon(l->daemon); /* the shared socket: closed by http_server_quiesce/stop */
    pthread_mutex_lock(&srv->loops_lock);
    l->quiesced = 1;
    pthread_cond_broadcast(&srv->loops_quiesced);
    pthread_mutex_unlock(&srv->loops_lock);
}

static void *loop_main(void *arg)
{
    http_loop *l = arg;
    http_server *srv = l->srv;
    for (;;) {
        /* before MHD_run() and the flags: a wake-up asked for from here on is written */
        atomic_store(&l->wake_pending, 0);
        int quit = atomic_load(&srv->loops_quit);
        if (!l->quiesced && atomic_load(&l->quiesce))
            loop_quiesce(l);
        if (MHD_run(l->daemon) != MHD_YES && !l->run_failed) {
            l->run_failed = 1;
            log_error("http: MHD_run failed (not logged again for this thread)");
        }
        if (quit)
            break;
        struct pollfd p[2] = {{.fd = l->epoll_fd, .events = POLLIN}, {.fd = l->wake_fd, .events = POLLIN}};
        if (poll(p, 2, wait_ms(l->daemon)) < 0) {
            if (errno != EINTR) {
                log_error("http: poll: %s", strerror(errno));
                usleep(10 * 1000); /* ENOMEM: try again rather than spin */
            }
            continue;
        }
        if (p[1].revents & POLLIN) {
            uint64_t v;
            if (read(l->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)
                log_error("http: cannot read a server thread's wake-up: %s", strerror(errno));
        }
    }
    return NULL;
}

void http_server_resume(http_server *srv, struct MHD_Connection *conn)
{
    /* looked up first: once resumed, conn may be closed and freed by its loop */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
    http_loop *own = NULL;
    for (unsigned i = 0; ci && i < srv->nloops && !own; i++)
        if (srv->loops[i].daemon == ci->daemon)
            own = &srv->loops[i];
    MHD_resume_connection(conn);
    if (own) {
        loop_wake(own);
        return;
    }
    for (unsigned i = 0; i < srv->nloops; i++) /* not expected: every connection is one of our daemons' */
        loop_wake(&srv->loops[i]);
}

/* A non-blocking listening socket bound to addr (several threads accept on
 * it); -1 with errno set. */
static int bind_listen(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 && bind(fd, addr, len) == 0 &&
        listen(fd, HTTP_LISTEN_BACKLOG) == 0)
        return fd;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Split "HOST:PORT" / "[V6]:PORT" / ":PORT" and bind a listening socket; the
 * address it got (with the port chosen when PORT is 0) goes to *bound. */
static int listen_on(const char *spec, struct sockaddr_storage *bound, socklen_t *boundlen, char *err,
                     size_t errlen)
{
    char host[256] = "", port[16] = "";
    const char *colon;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host) {
            snprintf(err, errlen, "bad listen address '%s' (want HOST:PORT)", spec);
            return -1;
        }
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host) {
            snprintf(err, errlen, "bad listen address '%s' (want HOST:PORT)", spec);
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
    }
    snprintf(port, sizeof port, "%s", colon + 1);
    /* getaddrinfo would take "99999" modulo 65536 and "http" by name: a port is 0..65535 in digits */
    char *end = NULL;
    errno = 0;
    long pn = strtol(port, &end, 10);
    if (!port[0] || *end || errno || pn < 0 || pn > 65535 || strspn(port, "0123456789") != strlen(port)) {
        snprintf(err, errlen, "bad port in listen address '%s' (want 0 to 65535)", spec);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = bind_listen(a->ai_addr, a->ai_addrlen);
        if (fd < 0)
            snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    *boundlen = sizeof *bound;
    if (getsockname(fd, (struct sockaddr *)bound, boundlen) != 0) {
        snprintf(err, errlen, "cannot tell the address bound for %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The daemon of loop number i, on the shared listening socket. */
static int loop_start_daemon(http_loop *l, unsigned i, char *err, size_t errlen)
{
    http_server *srv = l->srv;
    /* the limit is per daemon: share the total out, as MHD's thread pool did */
    unsigned limit = HTTP_CONNECTION_LIMIT / srv->nloops + (i < HTTP_CONNECTION_LIMIT % srv->nloops);
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wake_fd < 0) {
        snprintf(err, errlen, "cannot create a server thread's eventfd: %s", strerror(errno));
        return -1;
    }
    int fd = srv->listen_fd;
    l->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_access,
                                 srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, MHD_OPTION_URI_LOG_CALLBACK,
                                 uri_check, srv, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
                                 srv->cfg.idle_timeout_s ? srv->cfg.idle_timeout_s : 30u, MHD_OPTION_CONNECTION_LIMIT,
                                 limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_POOL,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
                                 srv->header_limit_ms ? on_connection : NULL, srv, MHD_OPTION_END);
    if (!l->daemon) {
        /* whether MHD closed the socket it was given is not documented:
         * closing it again could close another thread's new descriptor, so it
         * is left open (a failed start ends the process anyway) */
        srv->listen_fd = -1;
        snprintf(err, errlen, "libmicrohttpd failed to start on %s", srv->cfg.listen);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0) {
        snprintf(err, errlen, "libmicrohttpd has no epoll descriptor to wait on");
        return -1;
    }
    l->epoll_fd = info->epoll_fd;
    return 0;
}

int http_server_start(const http_server_config *cfg, http_server **out, char *err, size_t errlen)
{
    http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    srv->listen_fd = -1;
    unsigned n = cfg->threads ? cfg->threads : 2;
    if (!(srv->loops = calloc(n, sizeof *srv->loops))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    srv->nloops = n;
    for (unsigned i = 0; i < n; i++) {
        srv->loops[i].srv = srv;
        srv->loops[i].epoll_fd = srv->loops[i].wake_fd = -1;
    }
    int rc = pthread_mutex_init(&srv->loops_lock, NULL);
    if (rc == 0 && (rc = pthread_cond_init(&srv->loops_quiesced, NULL)) != 0)
        pthread_mutex_destroy(&srv->loops_lock);
    if (rc) {
        snprintf(err, errlen, "cannot set up the server threads: %s", strerror(rc));
        goto fail;
    }
    srv->loops_sync_ready = 1;
    /* the watchdog starts before MHD: until MHD accepts, its registry is empty */
    if (header_deadline_start(srv, err, errlen) || watchdog_start(srv, err, errlen))
        goto fail;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    if ((srv->listen_fd = listen_on(cfg->listen, &addr, &addrlen, err, errlen)) < 0)
        goto fail;
    srv->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                 : ((struct sockaddr_in *)&addr)->sin_port);
    for (unsigned i = 0; i < n; i++)
        if (loop_start_daemon(&srv->loops[i], i, err, errlen))
            goto fail;
    for (unsigned i = 0; i < n; i++) {
        if ((rc = thread_start(&srv->loops[i].thread, "pd-http", loop_main, &srv->loops[i])) != 0) {
            snprintf(err, errlen, "cannot start server thread %u of %u: %s", i + 1, n, strerror(rc));
            goto fail;
        }
        srv->loops[i].thread_running = 1;
    }
    *out = srv;
    return 0;
fail:
    http_server_stop(srv);
    return -1;
}

int http_server_port(const http_server *srv) { return srv->port; }

const http_server_config *http_server_cfg(const http_server *srv) { return &srv->cfg; }
_Atomic size_t *http_server_stream_bytes(http_server *srv) { return &srv->stream_bytes; }

void http_server_quiesce(http_server *srv)
{
    for (unsigned i = 0; i < srv->nloops; i++) {
        atomic_store(&srv->loops[i].quiesce, 1);
        loop_wake(&srv->loops[i]);
    }
    /* once no daemon accepts, the socket is closed: a connection attempt from now on is refused */
    pthread_mutex_lock(&srv->loops_lock);
    for (unsigned i = 0; i < srv->nloops; i++)
        while (srv->loops[i].thread_running && !srv->loops[i].quiesced)
            pthread_cond_wait(&srv->loops_quiesced, &srv->loops_lock);
    int all = 1;
    for (unsigned i = 0; i < srv->nloops; i++)
        all &= srv->loops[i].quiesced;
    pthread_mutex_unlock(&srv->loops_lock);
    if (all && srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
}

int http_server_drain(http_server *srv, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (atomic_load(&srv->open_requests) == 0)
            break;
        usleep(10 * 1000);
    }
    return atomic_load(&srv->open_requests);
}

void http_server_stop(http_server *srv)
{
    if (!srv)
        return;
    watchdog_stop(srv); /* first: nothing scans while MHD closes every connection */
    atomic_store(&srv->loops_quit, 1);
    for (unsigned i = 0; i < srv->nloops; i++)
        if (srv->loops[i].thread_running)
            loop_wake(&srv->loops[i]);
    for (unsigned i = 0; i < srv->nloops; i++)
        if (srv->loops[i].thread_running)
            pthread_join(srv->loops[i].thread, NULL); /* each ran MHD once more: resumed connections are back */
    for (unsigned i = 0; i < srv->nloops; i++) {
        http_loop *l = &srv->loops[i];
        if (l->daemon && !l->quiesced)
            (void)MHD_quiesce_daemon(l->daemon); /* the loops are gone: safe here; MHD then leaves the socket to us */
        if (l->daemon)
            MHD_stop_daemon(l->daemon); /* NOTIFY_CLOSED for each connection empties the registry */
        if (l->wake_fd >= 0)
            close(l->wake_fd);
    }
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    free(srv->loops);
    if (srv->loops_sync_ready) {
        pthread_cond_destroy(&srv->loops_quiesced);
        pthread_mutex_destroy(&srv->loops_lock);
    }
    if (srv->sync_ready) {
        while (srv->conns) { /* none expected: MHD unlists every connection it closes */
            http_conn *c = srv->conns;
            srv->conns = c->next;
            free(c);
        }
        pthread_cond_destroy(&srv->conns_wake);
        pthread_mutex_destroy(&srv->conns_lock);
    }
    free(srv);
}

/* ---------------------------------------------------------------- request accessors */

const char *http_method(const http_req *r) { return r->method; }
const char *http_path(const http_req *r) { return r->path; }

const char *http_header(http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_body(const http_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

enum http_style http_style_of(const http_req *r) { return r->style; }
void http_set_style(http_req *r, enum http_style style) { r->style = style; }

void http_set_app_data(http_req *r, void *data, void (*free_fn)(void *))
{
    r->app_data = data;
    r->app_free = free_fn;
}

void *http_app_data(const http_req *r) { return r->app_data; }

const char *http_request_id(const http_req *r) { return r->request_id; }

int http_reply_status(const http_req *r) { return r->reply_ready ? r->out_status : 0; }

int http_client_address(http_req *r, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char text[INET6_ADDRSTRLEN];
    int n = -1;
    if (!sa)
        return -1;
    if (sa->sa_family == AF_INET) {
        if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text))
            n = snprintf(out, outlen, "ip4:%s", text);
    } else if (sa->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, sizeof mapped) == 0)
            n = snprintf(out, outlen, "ip4:%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
        else
            n = snprintf(out, outlen, "ip6:%x:%x:%x:%x::/64", b[0] << 8 | b[1], b[2] << 8 | b[3], b[4] << 8 | b[5],
                         b[6] << 8 | b[7]);
    }
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

void http_suspend(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->want_suspend = 1;
    pthread_mutex_unlock(&r->lock);
}

void http_resume(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->resumed = 1;
    int was_suspended = r->suspended;
    r->suspended = 0;
    http_server *srv = r->srv;
    struct MHD_Connection *conn = r->conn;
    pthread_mutex_unlock(&r->lock);
    /* After the unlock r may be freed at any moment (its request can complete),
     * so it is not touched again; conn stays valid until resumed, since MHD
     * never frees a suspended connection. */
    if (was_suspended)
        http_server_resume(srv, conn);
}
