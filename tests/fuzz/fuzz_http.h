/*
 * fuzz_http.h — a stand-in for src/http/server.c in the libFuzzer targets.
 *
 * The fuzz targets link every promptd object except main.o and server.o;
 * this file supplies the request accessors server.c would (http_method,
 * http_header, http_query, http_body, suspend/resume, ...) over a request
 * built in memory, so API code (api_read_body, api_dispatch, the query
 * helpers) runs exactly as it does behind libmicrohttpd, minus the socket.
 * The answer builders are the real ones (src/http/response.c).
 *
 * Single-threaded, like libFuzzer's input loop.
 */
#ifndef PROMPTD_TESTS_FUZZ_HTTP_H
#define PROMPTD_TESTS_FUZZ_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "auth/keys.h"
#include "http/http.h"

/* A request for method + path (both copied); its error style follows the
 * path as server.c decides it. */
http_req *fz_req_new(const char *method, const char *path);
/* Add a request header / a decoded query argument (copied; at most 32 each,
 * the rest is ignored). A header lookup is case-insensitive, like MHD's. */
void fz_req_header(http_req *r, const char *name, const char *value);
void fz_req_query(http_req *r, const char *name, const char *value);
/* The body (copied, NUL-terminated like server.c keeps it). */
void fz_req_body(http_req *r, const char *body, size_t len);
/* Forget the answer so far (to call another helper on the same request). */
void fz_req_reset_answer(http_req *r);
/* Status of the answer, 0 when none was given. */
int fz_req_status(const http_req *r);
/* Body of the answer ("" when none). */
const char *fz_req_answer(const http_req *r, size_t *len);
/* Abort (a libFuzzer crash) unless an answer was given whose body is a JSON
 * object and whose status is 4xx (or 2xx when ok_2xx); what names the check. */
void fz_req_expect_answer(const http_req *r, int ok_2xx, const char *what);
void fz_req_free(http_req *r);

/* An input cut into NUL-terminated pieces at each occurrence of sep (a byte).
 * The pieces live until fz_split_free. */
typedef struct fz_pieces {
    char *buf;
    char *p[16];
    size_t len[16];
    int n;
} fz_pieces;
void fz_split(const uint8_t *data, size_t size, char sep, int max_pieces, fz_pieces *out);
void fz_split_free(fz_pieces *pc);

/* Open a store in a fresh temporary directory (removed at exit) into
 * a->store, create organization "fuzz" with an admin key (written to key,
 * AUTH_KEY_LEN + 1 bytes) and fill *who as authentication would for it.
 * Aborts on failure. */
void fz_app_store(app *a, auth_principal *who, char key[AUTH_KEY_LEN + 1]);

/* Print what and abort: the fuzzer records the input as a crash. */
void fz_fail(const char *what, const char *detail) __attribute__((noreturn));

#endif
