/*
 * http_internal.h — INTERNAL to src/http/: the request's state, shared by the
 * server glue (server.c) and the answer builders (response.c).
 */
#ifndef PROMPTD_HTTP_INTERNAL_H
#define PROMPTD_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

enum req_state { REQ_RECEIVING = 0, REQ_HANDLING, REQ_SENT };

struct http_header_kv {
    char *name, *value;
};

struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    char *method, *path;
    enum http_style style;
    enum req_state state;
    char request_id[HTTP_REQUEST_ID_MAX + 1];

    int64_t started_ms; /* monotonic: slow uploads are cut off */
    int64_t handled_us; /* monotonic: when the handler was called (0: never); Server-Timing's start */
    long long upstream_us; /* -1: no model was called (http_set_upstream_us): no Server-Timing */
    int bad_utf8;       /* the path or a query value is not valid UTF-8 */

    char *body; /* request body, NUL-terminated */
    size_t body_len, body_cap;
    size_t body_hint; /* the declared Content-Length + 1 (0: none): the first allocation */
    int too_large;

    pthread_mutex_t lock; /* orders suspend (server thread) against answer + resume (any thread) */
    int want_suspend, suspended, resumed, reply_ready;

    int out_status;
    char *out_type;
    char *out_body;
    size_t out_len;
    struct http_header_kv *headers;
    size_t nheaders, cap_headers;

    /* streamed answers (SSE): MHD content reader */
    MHD_ContentReaderCallback stream_reader;
    void *stream_cls;
    MHD_ContentReaderFreeCallback stream_free;

    void *app_data;
    void (*app_free)(void *);
};

/* MHD_resume_connection(conn), then a wake-up of the server thread that runs
 * conn's daemon: MHD runs without threads of its own and would not notice the
 * resume (server.c, "event loops"). Every resume must go through it. */
void http_server_resume(http_server *srv, struct MHD_Connection *conn);

/* The server's configuration, and the bytes all its streams hold (stream.c
 * counts them; server.c only keeps the counter). */
const http_server_config *http_server_cfg(const http_server *srv);
_Atomic size_t *http_server_stream_bytes(http_server *srv);

#endif
