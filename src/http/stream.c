/*
 * stream.c — streamed answers (SSE) fed from another thread (see http.h).
 *
 * MHD pulls the body through a content-reader callback. When the buffer is
 * empty the reader suspends the connection and returns 0 (returning 0 while
 * running would make MHD spin); the producer's next write or close resumes
 * it. One mutex orders "reader finds nothing and suspends" against "producer
 * appends and resumes", so no wake-up is lost; the resume goes through
 * http_server_resume(), which also wakes the server thread that runs the
 * connection (server.c, "event loops"). Two references keep the state
 * alive: the producer's (dropped by http_stream_close) and MHD's (dropped by
 * the free callback when the response is destroyed).
 *
 * A client that stops reading. Without a cap, a stream buffered everything
 * its producer wrote (85 MB for one echo of a 0.8 MB prompt through the
 * OpenAI surface). Now:
 *  - Cap. A stream counts the bytes it holds (held = len - off), and the
 *    server counts them for all streams (http_server_stream_bytes). The
 *    write that brings held to cfg.stream_buffer, or the server's count to
 *    cfg.stream_buffer_total, still takes its bytes (an SSE frame cannot be
 *    cut) but returns 1 and calls the producer's stop hook; the reader calls
 *    go once held is back to half the cap. A stream stopped by the server's
 *    total thus goes again as soon as its own client takes its bytes, and
 *    stops again after its next write while the total stays high: each
 *    stream moves one write at a time, none is starved, and the total is
 *    passed by at most one write per stream.
 *  - Backpressure. The hooks are the producer's (api/ connects them to the
 *    engine: a paused upstream transfer, an echo that stops cutting pieces);
 *    this file only says when. Both run under the stream's lock, so a stop
 *    can never land after the go that should have cancelled it.
 *  - Deadline. A stalled client leaves bytes waiting in MHD and the socket,
 *    so the connection is not suspended and MHD's inactivity timeout, which
 *    restarts with every byte the client takes, applies: the reader sets it
 *    to cfg.stream_stall_timeout_s for the stream's life (MHD scans
 *    connections with a timeout of their own at every turn, so it is set
 *    only when it differs from the daemon's). When it fires MHD closes the
 *    connection and destroys the response: the stream is detached, its
 *    buffer freed and its bytes given back to the server's count, gone and
 *    go are called and the hooks released. From then on writes return -1,
 *    so the producer runs to its end at full speed (gone lets it skip
 *    formatting what nobody reads) and the execution is recorded whole:
 *    what the client missed was never the record's copy (the engine keeps
 *    the model's output itself, engine.h).
 * A client that reads slowly but steadily is never cut: it just sets the pace.
 * The socket's own send buffer is bounded as well (limit_kernel_buffer).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "http/http_internal.h"

/* A drained buffer larger than this is freed rather than kept for the next
 * burst: an idle stream then costs its struct only. */
#define STREAM_KEEP_IDLE (16u * 1024u)

struct http_stream {
    pthread_mutex_t lock;
    int refs;
    http_server *srv; /* resumes go through it; its count of stream bytes */
    struct MHD_Connection *conn;
    char *buf;
    size_t len, off, cap;  /* bytes [off, len) wait for the client; cap = allocated */
    size_t limit;          /* cfg.stream_buffer */
    size_t total_limit;    /* cfg.stream_buffer_total */
    unsigned stall_s;      /* the connection's timeout while the stream lasts; 0 = the daemon's */
    unsigned idle_s;       /* the daemon's, restored at the end */
    int started;           /* the reader ran once (socket and timeout set) */
    int timeout_set;       /* the reader set stall_s on the connection */
    int closed;            /* producer finished */
    int detached;          /* MHD is done with the response (client gone or body sent) */
    int suspended;         /* the reader suspended the connection */
    int stopped;           /* stop was called, go not yet */
    http_stream_flow flow; /* the producer's hooks (all NULL when none) */
};

static void stream_unref(http_stream *st)
{
    pthread_mutex_lock(&st->lock);
    int left = --st->refs;
    pthread_mutex_unlock(&st->lock);
    if (left == 0) {
        pthread_mutex_destroy(&st->lock);
        free(st->buf);
        free(st);
    }
}

/* Called with st->lock held. */
static void wake_reader(http_stream *st)
{
    if (st->suspended && !st->detached) {
        st->suspended = 0;
        http_server_resume(st->srv, st->conn);
    }
}

/* Called with st->lock held: the producer may go on (see the top). */
static void flow_go(http_stream *st)
{
    if (st->stopped) {
        st->stopped = 0;
        if (st->flow.go)
            st->flow.go(st->flow.ud);
    }
}

/* Called with st->lock held: no hook can come any more. */
static void flow_release(http_stream *st)
{
    if (st->flow.release)
        st->flow.release(st->flow.ud);
    memset(&st->flow, 0, sizeof st->flow);
}

/* The kernel's send buffer of the stream's socket: Linux grows it on its
 * own up to net.ipv4.tcp_wmem's maximum (4 MiB by default; 2.8 MB queued
 * for one stalled client on loopback), memory the cap above would not see.
 * Set to the stream's cap (the kernel doubles it for its bookkeeping), it
 * still carries a token stream at any speed a client reads. Best effort: a
 * socket that refuses keeps the kernel's own. */
static void limit_kernel_buffer(http_stream *st)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int size = st->limit > (size_t)INT_MAX ? INT_MAX : (int)st->limit;
    if (!ci || setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0)
        log_debug("http: cannot set a stream's send buffer: %s", ci ? strerror(errno) : "no socket");
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    http_stream *st = cls;
    ssize_t n;
    pthread_mutex_lock(&st->lock);
    if (!st->started) {
        st->started = 1;
        limit_kernel_buffer(st);
        if (st->stall_s) {
            /* on this connection's own server thread, inside MHD: the one place it may change */
            MHD_set_connection_option(st->conn, MHD_CONNECTION_OPTION_TIMEOUT, st->stall_s);
            st->timeout_set = 1;
        }
    }
    if (st->off < st->len) {
        size_t avail = st->len - st->off;
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(out, st->buf + st->off, (size_t)n);
        st->off += (size_t)n;
        atomic_fetch_sub(http_server_stream_bytes(st->srv), (size_t)n);
        if (st->off == st->len) {
            st->off = st->len = 0;
            if (st->cap > STREAM_KEEP_IDLE) {
                free(st->buf);
                st->buf = NULL;
                st->cap = 0;
            }
        }
        if (st->len - st->off <= st->limit / 2)
            flow_go(st);
    } else if (st->closed) {
        if (st->timeout_set) /* the connection may serve more requests: its usual timeout again */
            MHD_set_connection_option(st->conn, MHD_CONNECTION_OPTION_TIMEOUT, st->idle_s);
        st->timeout_set = 0;
        st->stall_s = 0;
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        st->suspended = 1;
        MHD_suspend_connection(st->conn);
        n = 0;
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

/* MHD destroyed the response: the body was sent, or the client left (or
 * stalled past the deadline). What is still buffered will never be read. */
static void stream_free(void *cls)
{
    http_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    st->detached = 1;
    atomic_fetch_sub(http_server_stream_bytes(st->srv), st->len - st->off);
    free(st->buf);
    st->buf = NULL;
    st->len = st->off = st->cap = 0;
    if (!st->closed && st->flow.gone) /* the client left (or stalled past the deadline) first */
        st->flow.gone(st->flow.ud);
    flow_go(st); /* the producer runs to its end; its writes are dropped */
    flow_release(st);
    pthread_mutex_unlock(&st->lock);
    stream_unref(st);
}

http_stream *http_reply_stream(http_req *r, int status, const char *content_type)
{
    http_stream *st = calloc(1, sizeof *st);
    if (!st) {
        http_error(r, 500, NULL, NULL, "Out of memory");
        return NULL;
    }
    const http_server_config *cfg = http_server_cfg(r->srv);
    pthread_mutex_init(&st->lock, NULL);
    st->refs = 2; /* producer + MHD */
    st->srv = r->srv;
    st->conn = r->conn;
    st->limit = cfg->stream_buffer ? cfg->stream_buffer : HTTP_STREAM_BUFFER_DEFAULT;
    st->total_limit = cfg->stream_buffer_total ? cfg->stream_buffer_total : HTTP_STREAM_TOTAL_DEFAULT;
    st->idle_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : 30u; /* as server.c starts its daemons */
    st->stall_s =
        cfg->stream_stall_timeout_s && cfg->stream_stall_timeout_s != st->idle_s ? cfg->stream_stall_timeout_s : 0;
    /* the body is not read again (handlers parse it before they suspend) and
     * a stream may last minutes: a large prompt is not kept that long */
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    http_reply(r, status, content_type, NULL, 0);
    r->stream_reader = stream_read;
    r->stream_cls = st;
    r->stream_free = stream_free;
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "X-Accel-Buffering", "no");
    return st;
}

void http_stream_set_flow(http_stream *st, const http_stream_flow *flow)
{
    pthread_mutex_lock(&st->lock);
    int taken = !st->detached && !st->flow.stop && !st->flow.go && !st->flow.gone && !st->flow.release;
    if (taken)
        st->flow = *flow;
    pthread_mutex_unlock(&st->lock);
    if (!taken && flow->release)
        flow->release(flow->ud);
}

int http_stream_write(http_stream *st, const char *data, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (st->detached || st->closed) {
        rc = -1;
        goto out;
    }
    if (st->len + len > st->cap && st->off > 0) { /* room at the front: slide rather than grow */
        memmove(st->buf, st->buf + st->off, st->len - st->off);
        st->len -= st->off;
        st->off = 0;
    }
    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        while (cap < st->len + len)
            cap *= 2;
        char *nb = realloc(st->buf, cap);
        if (!nb) {
            rc = -1;
            goto out;
        }
        st->buf = nb;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    size_t total = atomic_fetch_add(http_server_stream_bytes(st->srv), len) + len;
    wake_reader(st);
    if (st->stopped || st->len - st->off >= st->limit || total >= st->total_limit) {
        rc = 1;
        if (!st->stopped) {
            st->stopped = 1;
            if (st->flow.stop)
                st->flow.stop(st->flow.ud);
        }
    }
out:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void http_stream_close(http_stream *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->closed = 1;
    wake_reader(st);
    pthread_mutex_unlock(&st->lock);
    stream_unref(st);
}
