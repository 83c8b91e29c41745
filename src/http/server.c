/*
 * server.c — libmicrohttpd glue: per-request state, body limit, keep-alive,
 * suspend/resume, graceful stop (see http.h for the contract).
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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "core/utf8.h"
#include "http/http.h"
#include "http/http_internal.h"

#define HTTP_MAX_HEADERS 100      /* more header fields than this: 431 */
#define HTTP_MAX_URI 4096         /* longer request targets: 414 */
#define HTTP_MAX_QUERY_ARGS 128   /* more query parameters than this: 431 */
/* libmicrohttpd's per-connection pool holds the request line, headers and
 * query records (bodies go to our own buffer). 16 KiB fits the limits above
 * with room to spare, and keeps 10,000 waiting connections near 160 MB
 * instead of 640 MB at 64 KiB (bench/README.md). */
#define HTTP_CONNECTION_POOL (16 * 1024)
#define HTTP_UPLOAD_DEADLINE_MS 60000 /* a body still arriving after this is cut off (slow clients) */

/* Marks a request answered by uri_check() before MHD parsed it. */
static char rejected_early;

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_config cfg;
    int listen_fd; /* ours after quiesce */
    int port;
    atomic_int open_requests;
};

static http_req *req_new(http_server *srv, struct MHD_Connection *conn, const char *url, const char *method)
{
    http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = srv;
    r->conn = conn;
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
    if (r->out_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->out_type);
    for (size_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->out_status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    http_server *srv = cls;
    http_req *r = *con_cls;
    if (r == (void *)&rejected_early) /* answered by uri_check() */
        return MHD_NO;

    if (!r) { /* first call: headers only */
        if (!(r = req_new(srv, conn, url, method)))
            return MHD_NO;
        *con_cls = r;
        if (MHD_get_connection_values(conn, MHD_HEADER_KIND, NULL, NULL) > HTTP_MAX_HEADERS) {
            http_error(r, 431, NULL, NULL, "Too many header fields (at most %d)", HTTP_MAX_HEADERS);
            return queue_reply(r);
        }
        r->bad_utf8 = !utf8_valid(url, strlen(url));
        if (!r->bad_utf8)
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_query_utf8, r);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > srv->cfg.body_limit) {
                http_error(r, 413, NULL, NULL, "Request body exceeds the limit of %zu bytes",
                           srv->cfg.body_limit);
                return queue_reply(r);
            }
        }
        return MHD_YES;
    }

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
            size_t cap = r->body_cap ? r->body_cap : 1024;
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
        if (r->too_large)
            http_error(r, 413, NULL, NULL, "Request body exceeds the limit of %zu bytes", srv->cfg.body_limit);
        else if (r->bad_utf8)
            http_error(r, 400, NULL, NULL, "The URL (path or query) is not valid UTF-8");
        else
            srv->cfg.handler(srv->cfg.app, r);
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
        char body[160], msg[400];
        int blen = snprintf(body, sizeof body,
                            "{\"errors\":[{\"status\":\"%d\",\"code\":\"%s\",\"title\":\"%s\",\"detail\":\"%s\"}]}",
                            status, status == 414 ? "uri_too_long" : "too_many_parameters",
                            status == 414 ? "URI Too Long" : "Request Header Fields Too Large",
                            status == 414 ? "The request target is over 4096 bytes" : "More than 128 query parameters");
        int mlen = snprintf(msg, sizeof msg,
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                            "Connection: close\r\n\r\n%s",
                            status, status == 414 ? "URI Too Long" : "Request Header Fields Too Large", blen, body);
        ssize_t w = send(ci->connect_fd, msg, (size_t)mlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(ci->connect_fd, SHUT_WR); /* whatever MHD tries next fails and it closes */
    }
    return &rejected_early;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*con_cls != &rejected_early)
        req_free(*con_cls);
    *con_cls = NULL;
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

/* Split "HOST:PORT" / "[V6]:PORT" / ":PORT" and bind a listening socket. */
static int listen_on(const char *spec, int *port_out, char *err, size_t errlen)
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
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 4096) == 0)
            break;
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int http_server_start(const http_server_config *cfg, http_server **out, char *err, size_t errlen)
{
    http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    srv->listen_fd = listen_on(cfg->listen, &srv->port, err, errlen);
    if (srv->listen_fd < 0) {
        free(srv);
        return -1;
    }
    unsigned threads = cfg->threads ? cfg->threads : 2;
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, MHD_OPTION_URI_LOG_CALLBACK, uri_check, srv, MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s ? cfg->idle_timeout_s : 30u,
        MHD_OPTION_CONNECTION_LIMIT, 60000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_POOL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "libmicrohttpd failed to start on %s", cfg->listen);
        close(srv->listen_fd);
        free(srv);
        return -1;
    }
    *out = srv;
    return 0;
}

int http_server_port(const http_server *srv) { return srv->port; }

void http_server_quiesce(http_server *srv)
{
    if (srv->daemon && srv->listen_fd >= 0) {
        MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
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
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
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

void http_suspend(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->want_suspend = 1;
    pthread_mutex_unlock(&r->lock);
}

void http_resume(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->resumed = 1; /* after this unlock the caller must not touch r: it may be freed */
    if (r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
}
