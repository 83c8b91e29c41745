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
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

struct http_stream {
    pthread_mutex_t lock;
    int refs;
    http_server *srv; /* resumes go through it */
    struct MHD_Connection *conn;
    char *buf;
    size_t len, off, cap;
    int closed;    /* producer finished */
    int detached;  /* MHD is done with the response (client gone or body sent) */
    int suspended; /* the reader suspended the connection */
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

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    http_stream *st = cls;
    ssize_t n;
    pthread_mutex_lock(&st->lock);
    if (st->off < st->len) {
        size_t avail = st->len - st->off;
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(out, st->buf + st->off, (size_t)n);
        st->off += (size_t)n;
        if (st->off == st->len)
            st->off = st->len = 0;
    } else if (st->closed) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        st->suspended = 1;
        MHD_suspend_connection(st->conn);
        n = 0;
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

static void stream_free(void *cls)
{
    http_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    st->detached = 1;
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
    pthread_mutex_init(&st->lock, NULL);
    st->refs = 2; /* producer + MHD */
    st->srv = r->srv;
    st->conn = r->conn;
    http_reply(r, status, content_type, NULL, 0);
    r->stream_reader = stream_read;
    r->stream_cls = st;
    r->stream_free = stream_free;
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "X-Accel-Buffering", "no");
    return st;
}

int http_stream_write(http_stream *st, const char *data, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (st->detached || st->closed) {
        rc = -1;
        goto out;
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
    wake_reader(st);
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
