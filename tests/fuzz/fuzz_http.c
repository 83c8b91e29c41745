/*
 * fuzz_http.c — the in-memory request behind the fuzz targets (fuzz_http.h).
 *
 * The request struct is the real one (http_internal.h), so response.c and
 * stream.c work on it unchanged; the request's headers and query arguments,
 * which server.c asks libmicrohttpd for, live in a side table that the
 * request's conn pointer designates (nothing but this file dereferences it).
 */
#include "fuzz/fuzz_http.h"

#include <ftw.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "store/store.h"

#define FZ_MAX_KV 32

typedef struct fz_kv {
    char *name, *value;
} fz_kv;

typedef struct fz_conn {
    fz_kv hdr[FZ_MAX_KV], arg[FZ_MAX_KV];
    size_t nhdr, narg;
} fz_conn;

void fz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz check failed: %s\n%s%s", what, detail ? detail : "", detail ? "\n" : "");
    abort();
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        fz_fail("out of memory", NULL);
    return d;
}

http_req *fz_req_new(const char *method, const char *path)
{
    http_req *r = calloc(1, sizeof *r);
    fz_conn *c = calloc(1, sizeof *c);
    if (!r || !c)
        fz_fail("out of memory", NULL);
    r->conn = (struct MHD_Connection *)(void *)c;
    r->method = xstrdup(method);
    r->path = xstrdup(path);
    pthread_mutex_init(&r->lock, NULL);
    /* as server.c's req_new decides it */
    if (strncmp(r->path, "/api/v1/", 8) == 0 || strcmp(r->path, "/api/v1") == 0)
        r->style = HTTP_STYLE_V1;
    else if (strncmp(r->path, "/v1/", 4) == 0)
        r->style = HTTP_STYLE_OPENAI;
    else
        r->style = HTTP_STYLE_JARVIS;
    r->state = REQ_HANDLING;
    return r;
}

static void kv_add(fz_kv *kv, size_t *n, const char *name, const char *value)
{
    if (*n >= FZ_MAX_KV)
        return;
    kv[*n].name = xstrdup(name);
    kv[*n].value = xstrdup(value);
    (*n)++;
}

void fz_req_header(http_req *r, const char *name, const char *value)
{
    fz_conn *c = (fz_conn *)(void *)r->conn;
    kv_add(c->hdr, &c->nhdr, name, value);
}

void fz_req_query(http_req *r, const char *name, const char *value)
{
    fz_conn *c = (fz_conn *)(void *)r->conn;
    kv_add(c->arg, &c->narg, name, value);
}

void fz_req_body(http_req *r, const char *body, size_t len)
{
    free(r->body);
    r->body = malloc(len + 1);
    if (!r->body)
        fz_fail("out of memory", NULL);
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->body_len = len;
    r->body_cap = len + 1;
}

void fz_req_reset_answer(http_req *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->out_body);
    free(r->out_type);
    r->headers = NULL;
    r->nheaders = r->cap_headers = 0;
    r->out_body = NULL;
    r->out_type = NULL;
    r->out_len = 0;
    r->out_status = 0;
    r->reply_ready = 0;
}

int fz_req_status(const http_req *r) { return r->reply_ready ? r->out_status : 0; }

const char *fz_req_answer(const http_req *r, size_t *len)
{
    if (len)
        *len = r->out_body ? r->out_len : 0;
    return r->out_body ? r->out_body : "";
}

void fz_req_expect_answer(const http_req *r, int ok_2xx, const char *what)
{
    char detail[600];
    size_t len;
    const char *body = fz_req_answer(r, &len);
    snprintf(detail, sizeof detail, "%s %s -> %d: %.400s", r->method, r->path, fz_req_status(r), body);
    if (!r->reply_ready)
        fz_fail(what, "no answer was given");
    if (!(r->out_status >= 400 && r->out_status < 500) && !(ok_2xx && r->out_status >= 200 && r->out_status < 300))
        fz_fail(what, detail);
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!json_is_object(j))
        fz_fail("the answer is not a JSON object", detail);
    json_decref(j);
}

void fz_req_free(http_req *r)
{
    if (!r)
        return;
    fz_conn *c = (fz_conn *)(void *)r->conn;
    for (size_t i = 0; i < c->nhdr; i++) {
        free(c->hdr[i].name);
        free(c->hdr[i].value);
    }
    for (size_t i = 0; i < c->narg; i++) {
        free(c->arg[i].name);
        free(c->arg[i].value);
    }
    free(c);
    fz_req_reset_answer(r);
    if (r->app_free)
        r->app_free(r->app_data);
    free(r->body);
    free(r->method);
    free(r->path);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- what server.c provides for a request ---- */

const char *http_method(const http_req *r) { return r->method; }
const char *http_path(const http_req *r) { return r->path; }

const char *http_header(http_req *r, const char *name)
{
    fz_conn *c = (fz_conn *)(void *)r->conn;
    for (size_t i = 0; i < c->nhdr; i++)
        if (strcasecmp(c->hdr[i].name, name) == 0)
            return c->hdr[i].value;
    return NULL;
}

const char *http_query(http_req *r, const char *name)
{
    fz_conn *c = (fz_conn *)(void *)r->conn;
    for (size_t i = 0; i < c->narg; i++)
        if (strcmp(c->arg[i].name, name) == 0)
            return c->arg[i].value;
    return NULL;
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

void http_suspend(http_req *r) { r->want_suspend = 1; }
void http_resume(http_req *r) { r->resumed = 1; }
/* stream.c resumes through the server; the fuzzed handlers never stream to a live connection */
void http_server_resume(http_server *srv, struct MHD_Connection *conn)
{
    (void)srv;
    (void)conn;
}

/* ---- input splitting ---- */

void fz_split(const uint8_t *data, size_t size, char sep, int max_pieces, fz_pieces *out)
{
    memset(out, 0, sizeof *out);
    if (max_pieces > 16)
        max_pieces = 16;
    out->buf = malloc(size + 1);
    if (!out->buf)
        fz_fail("out of memory", NULL);
    memcpy(out->buf, data, size);
    out->buf[size] = '\0';
    char *p = out->buf, *end = out->buf + size;
    out->n = 0;
    while (out->n < max_pieces) {
        char *q = out->n + 1 < max_pieces ? memchr(p, sep, (size_t)(end - p)) : NULL;
        out->p[out->n] = p;
        out->len[out->n] = q ? (size_t)(q - p) : (size_t)(end - p);
        out->n++;
        if (!q)
            break;
        *q = '\0';
        p = q + 1;
    }
}

void fz_split_free(fz_pieces *pc)
{
    free(pc->buf);
    pc->buf = NULL;
}

/* ---- a store for targets that reach it ---- */

static char store_dir[256];
static store_t *the_store;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void store_cleanup(void)
{
    store_close(the_store);
    the_store = NULL;
    if (store_dir[0])
        nftw(store_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

void fz_app_store(app *a, auth_principal *who, char key[AUTH_KEY_LEN + 1])
{
    char err[256], location[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(store_dir, sizeof store_dir, "%s/promptd-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (sodium_init() < 0 || !mkdtemp(store_dir))
        fz_fail("cannot make a temporary directory", store_dir);
    snprintf(location, sizeof location, "%s/fuzz.db", store_dir);
    if (store_open(location, &the_store, err, sizeof err) != STORE_OK)
        fz_fail("cannot open the store", err);
    atexit(store_cleanup);
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    store_key row;
    auth_key_generate(key);
    auth_key_prefix(key, prefix);
    auth_key_hash(key, hash);
    if (store_key_create_for_org(the_store, "fuzz", "fuzz", prefix, hash, &row) != STORE_OK)
        fz_fail("cannot create a key", NULL);
    if (auth_key_verify(the_store, key, who) != AUTH_OK)
        fz_fail("the new key does not verify", NULL);
    a->store = the_store;
}
