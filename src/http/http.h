/*
 * http.h — the HTTP edge: a libmicrohttpd server and the request/response
 * contract the api/ layer programs against. Nothing below api/ includes it.
 *
 * Life of a request:
 *   1. The server reads headers and body (up to body_limit; a larger declared
 *      Content-Length is answered 413 before the body is read), then calls the
 *      application's handler once, on a server thread.
 *   2. The handler either answers at once (http_reply_*, http_error*) or calls
 *      http_suspend() and returns; later, from any thread, it answers with
 *      http_reply_* and then http_resume(). A suspended request holds no
 *      thread. Until http_resume() the request stays valid; after it the
 *      caller must not touch the request again.
 *   3. The server sends the answer (keep-alive is preserved) and frees the
 *      request.
 *
 * Request accessors return strings owned by the request, valid until the
 * answer is sent; code answering from another thread must copy what it needs
 * before suspending.
 *
 * Request ids: every request has one (http_request_id): the client's
 * X-Request-Id when it sent a sane one (1..HTTP_REQUEST_ID_MAX characters,
 * each a letter, digit or one of !#$%&'*+-.^_`|~:/=@), else a new UUID.
 * Every answer carries it as X-Request-Id (a handler cannot set another), and
 * every log line written on a server thread while the request is handled
 * names it (log.h, log_set_request).
 */
#ifndef PROMPTD_HTTP_H
#define PROMPTD_HTTP_H

#include <jansson.h>
#include <stddef.h>

typedef struct http_server http_server;
typedef struct http_req http_req;

/* Which envelope errors use: decided from the path, overridable by the handler. */
enum http_style {
    HTTP_STYLE_JARVIS, /* {"errors":[{"status","code","title","detail"}]} */
    HTTP_STYLE_V1,     /* {"success":false,"error":{"code","message"},"message"} (paths under /api/v1) */
    HTTP_STYLE_OPENAI, /* {"error":{"message","type","param","code"}} (paths under /v1) */
};

typedef void (*http_handler_fn)(void *app, http_req *req);

#define HTTP_REQUEST_ID_MAX 128
#define HTTP_STREAM_BUFFER_DEFAULT ((size_t)256 * 1024)
#define HTTP_STREAM_TOTAL_DEFAULT ((size_t)64 * 1024 * 1024)

typedef struct http_server_config {
    const char *listen;      /* "HOST:PORT", "[v6]:PORT"; port 0 = any free port */
    size_t body_limit;       /* bytes; larger bodies get 413 */
    unsigned idle_timeout_s; /* idle keep-alive connections are closed after this */
    /* A request's header block must be complete this long after its
     * connection was accepted (first request) or, on a keep-alive
     * connection, after the bytes of a new request are first seen; slower
     * clients are disconnected. Idle keep-alive connections are left to
     * idle_timeout_s. Exact rule: "header deadline" in server.c. 0 = no limit. */
    unsigned header_timeout_s;
    unsigned threads;        /* server threads, each with its own daemon, epoll set and listening socket; 0 = 2 */
    /* Streamed answers (see "streamed answers" below). A stream holding
     * stream_buffer bytes its client has not taken yet, or all streams
     * together holding stream_buffer_total, stops its producer until the
     * client catches up; a stream whose client takes nothing for
     * stream_stall_timeout_s while bytes wait for it is closed.
     * 0 = HTTP_STREAM_BUFFER_DEFAULT, HTTP_STREAM_TOTAL_DEFAULT, idle_timeout_s. */
    size_t stream_buffer;
    size_t stream_buffer_total;
    unsigned stream_stall_timeout_s;
    http_handler_fn handler; /* called once per complete request */
    /* Called on a server thread for each answer the server makes itself,
     * without calling handler (413 body too large, 431 too many header
     * fields or a head over 12 KiB, 501 a transfer coding other than
     * chunked, 400 Content-Length twice with different values or beside
     * Transfer-Encoding, 400 URL not UTF-8), just before it is sent: the application
     * may add headers or replace the answer (e.g. a per-address limit).
     * NULL = none. The raw answers written on the socket before a request
     * exists (414, 431 for the request target, 408 header timeout) do not
     * pass here: they carry a new X-Request-Id and no other field. */
    void (*own_answer)(void *app, http_req *req);
    void *app;
} http_server_config;

int http_server_start(const http_server_config *cfg, http_server **out, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *srv);
/* Stop accepting new connections (in-flight requests go on); returns once no
 * listening socket is left, so new connection attempts are refused. */
void http_server_quiesce(http_server *srv);
/* Wait up to timeout_ms for open requests to finish; returns how many remain. */
int http_server_drain(http_server *srv, int timeout_ms);
/* Stop and free. Every suspended request must have been resumed. */
void http_server_stop(http_server *srv);

/* ---- reading the request ---- */
const char *http_method(const http_req *r);
const char *http_path(const http_req *r);
/* Header value (case-insensitive name) or NULL. */
const char *http_header(http_req *r, const char *name);
/* Query-string argument (decoded) or NULL. */
const char *http_query(http_req *r, const char *name);
/* Body bytes (NUL-terminated for convenience) and length; "" when none. */
const char *http_body(const http_req *r, size_t *len);
enum http_style http_style_of(const http_req *r);
/* The request id (see the top), NUL-terminated, valid as long as the request. */
const char *http_request_id(const http_req *r);
/* The client's address as a rate-limit key into out: "ip4:a.b.c.d", or for
 * IPv6 its /64 network "ip6:xxxx:xxxx:xxxx:xxxx::/64" (one host usually has
 * a whole /64); IPv4-mapped addresses count as IPv4. -1 when unknown. */
int http_client_address(http_req *r, char *out, size_t outlen);
/* The status of the answer given so far; 0 when none. */
int http_reply_status(const http_req *r);
void http_set_style(http_req *r, enum http_style style);

/* Application data attached to the request (freed with free_fn when the request ends). */
void http_set_app_data(http_req *r, void *data, void (*free_fn)(void *));
void *http_app_data(const http_req *r);

/* ---- answering ---- */
/* Takes ownership of body (malloc'd), may be NULL for an empty body. */
void http_reply(http_req *r, int status, const char *content_type, char *body, size_t len);
/* Takes the reference to json (steals it). */
void http_reply_json(http_req *r, int status, json_t *json);
void http_reply_empty(http_req *r, int status);
/* Add a response header (copied); call before or after the reply, before it is sent. */
void http_add_header(http_req *r, const char *name, const char *value);
/* How long a model took for this request (microseconds; engine_result's
 * upstream_us). A complete (not streamed) answer then carries
 * "Server-Timing: upstream;dur=<ms>, total;dur=<ms>": total runs from the
 * whole request being read to its answer being handed to the socket, so
 * total - upstream is what promptd itself added. Without it, no header. */
void http_set_upstream_us(http_req *r, long long us);

/* Errors in the request's style. title may be NULL (derived from status);
 * field names the offending field (JSON pointer for Jarvis, "param" for
 * OpenAI) or NULL. detail is printf-style. */
void http_error(http_req *r, int status, const char *title, const char *field, const char *detail_fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The code word a style's error envelope uses for status (v1 "BAD_REQUEST",
 * Jarvis "bad_request", OpenAI's type "invalid_request_error"): static. */
const char *http_status_code(enum http_style style, int status);

/* An upstream server's refusal passed on to the client (e.g. a model
 * provider's 400 "context_length_exceeded"): its own words. Borrowed strings;
 * NULL or "" when it gave none. */
typedef struct http_upstream_error {
    const char *type, *code, *param;
} http_upstream_error;

/* http_error for an upstream's refusal: the OpenAI envelope carries up's
 * type (else the status's own), code and param as they are (null when
 * absent); the Jarvis envelope adds errors[0].meta.upstream and the v1 one
 * error.upstream, each {type, code, param}. */
void http_error_upstream(http_req *r, int status, const char *title, const http_upstream_error *up,
                         const char *detail_fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- streamed answers (Server-Sent Events) ----
 * http_reply_stream() answers r with a body produced later, from any thread.
 * To hold the status line until there is something to send (so a stream that
 * cannot start is a plain error answer), http_suspend() first and call
 * http_reply_stream() (then http_resume()) from the producer's thread once
 * the first data is there, or answer with http_error() instead.
 * The caller owns one reference to the stream and must end it with
 * http_stream_close(). While no data is buffered the connection is suspended
 * (no thread waits, no busy loop). Writes after the client left return -1 and
 * are dropped, so a producer can always run to completion.
 * http_reply_stream() frees the request body: a stream may last minutes, and
 * handlers read the body before they suspend.
 *
 * Memory: what a stream holds for its client is capped (http_server_config:
 * stream_buffer per stream, stream_buffer_total for the server). A write is
 * always taken whole (a frame cannot be cut); the write that brings the
 * stream to its cap, or the server to its total, returns 1 and calls the
 * producer's stop hook (http_stream_set_flow); the go hook follows once the
 * client has taken the stream down to half its cap, or has left. A stream
 * thus passes its cap by at most what its producer writes between the stop
 * and noticing it. A client that takes nothing for stream_stall_timeout_s
 * while bytes wait for it is disconnected (its stream then detached: the
 * buffer is freed, later writes return -1, and go is called). */
typedef struct http_stream http_stream;
http_stream *http_reply_stream(http_req *r, int status, const char *content_type);
/* 0: taken; 1: taken, and the stream (or the server) is full: stop producing
 * until go; -1: the client is gone or out of memory, dropped. */
int http_stream_write(http_stream *st, const char *data, size_t len);
void http_stream_close(http_stream *st);
/* The producer's brake. stop and go are called with the stream's lock held,
 * from whichever thread writes (stop) or reads (go: a server thread); gone
 * likewise, from a server thread, when the client left before the producer
 * closed the stream (nothing written from then on will be read: the
 * producer may stop formatting). They must be quick, must not block and must
 * not call into the stream. release(ud) is called once, when no hook can
 * come any more (the client left, or the stream is freed). Set it before the
 * first write; a second call replaces nothing and releases ud at once. Any
 * hook may be NULL. */
typedef struct http_stream_flow {
    void (*stop)(void *ud);
    void (*go)(void *ud);
    void (*gone)(void *ud);
    void (*release)(void *ud);
    void *ud;
} http_stream_flow;
void http_stream_set_flow(http_stream *st, const http_stream_flow *flow);

/* ---- waiting without a thread ---- */
void http_suspend(http_req *r);
/* Call after answering a suspended request (any thread). */
void http_resume(http_req *r);

#endif
