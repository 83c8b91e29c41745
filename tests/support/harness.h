/*
 * harness.h — what integration tests need to drive a real promptd: start one
 * on a free port with a fresh database, run its CLI, speak HTTP to it, and
 * look into JSON answers. Unit tests use the temp-dir helpers.
 *
 * The promptd binary is $PROMPTD_BIN (set by `make unit` / `make integration`
 * to the absolute path of build/promptd or build-san/promptd).
 *
 * Processes: every promptd the harness starts dies with the thread that
 * started it (PR_SET_PDEATHSIG), so a crashed or timed-out test never leaks a
 * server. Start servers from the test's own thread (Criterion's .init fixture
 * or the test body), stop them in .fini (pd_stop).
 *
 * Rate limits are off in children (PROMPTD_RATE_LIMIT_PER_MINUTE/_PER_DAY=0)
 * unless extra_env sets them.
 *
 * Environment of the children: hermetic. Every PROMPTD_* variable except
 * PROMPTD_BIN / PROMPTD_MOCK_BIN, and every OPENAI_* / ANTHROPIC_* variable of
 * the test's own environment is removed; extra_env entries are then applied:
 * "NAME=value" sets, a bare "NAME" (no '=') removes.
 *
 * Ownership: pd_resp owns its body, headers and json (pd_resp_free). Strings
 * returned by pd_json_at / pd_str_at are borrowed from the json they came from.
 */
#ifndef PROMPTD_TESTS_HARNESS_H
#define PROMPTD_TESTS_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* ---- a running server ---- */

typedef struct pd_server {
    pid_t pid; /* 0 when not running */
    int port;
    char base_url[64];  /* "http://127.0.0.1:PORT" */
    char dir[256];      /* temp dir owned by this server */
    char db_path[300];  /* <dir>/promptd.db */
    char log_path[300]; /* <dir>/server.log: the server's stdout + stderr */
    char admin_key[80]; /* the bootstrap admin key (random, or the one the server printed) */
} pd_server;

/* Start `$PROMPTD_BIN serve --listen 127.0.0.1:0 --db <tmpdir>/promptd.db
 * [extra_args...]` with PROMPTD_ADMIN_KEY set to a random 40-character key
 * (stored in admin_key), stdout+stderr to <tmpdir>/server.log; wait (<= 5 s)
 * for the log line "listening on http://127.0.0.1:PORT" and parse PORT.
 * extra_args / extra_env: NULL-terminated lists or NULL (see the top comment
 * for extra_env). If extra_env removes or empties PROMPTD_ADMIN_KEY, admin_key
 * is the key the server printed on its first start (pd_restart keeps the
 * previous admin_key when the server prints none).
 * Returns 0, or -1 after printing the log to stderr (nothing is left running). */
int pd_start(pd_server *s, const char *const *extra_args, const char *const *extra_env);

/* Stop the server (if running) and start it again on the same temp dir and
 * database with these arguments and environment (the log is appended to). */
int pd_restart(pd_server *s, const char *const *extra_args, const char *const *extra_env);

/* Send sig to the server and wait up to timeout_ms for it to exit (SIGKILL
 * after that). Returns its exit code, -1 if it died from a signal or could not
 * be reaped. The temp dir stays; s->pid becomes 0. */
int pd_kill_wait(pd_server *s, int sig, int timeout_ms);

/* SIGTERM, wait (SIGKILL after 10 s); returns the exit status, or -1 if it was
 * not running, died from a signal, or its log holds a sanitizer report (the
 * log is then printed). Removes the temp dir unless the environment variable
 * PD_KEEP is set (then its path is printed). Safe to call on a server that is
 * stopped or never started. */
int pd_stop(pd_server *s);

/* Run a promptd CLI command against this server's database: args (e.g.
 * {"keys", "create", "--org", "acme", NULL}) + "--db <db_path>". stdout goes to
 * out (NUL-terminated, truncated to outlen; out may be NULL), stderr is appended
 * to <dir>/cli.log. Returns the exit code (see pd_run). */
int pd_cli(pd_server *s, const char *const *args, char *out, size_t outlen);

/* A new API key (printed by `keys create --org org`, organization created if
 * missing) into key. Returns 0 or -1. */
int pd_new_org_key(pd_server *s, const char *org, char *key, size_t keylen);

/* ---- running the binary directly (CLI tests) ---- */

/* $PROMPTD_BIN, or NULL (with a message) when unset. */
const char *pd_bin(void);

/* Run $PROMPTD_BIN args... to completion (killed after timeout_ms). stdout /
 * stderr are captured into out / err (either may be NULL). Returns the exit
 * code, 128 + signal number when it died from a signal, -1 on a harness error
 * or timeout. */
int pd_run(const char *const *args, const char *const *extra_env, int timeout_ms, char *out, size_t outlen, char *err,
           size_t errlen);

/* Start $PROMPTD_BIN args... in the background, stdout appended to out_path and
 * stderr to err_path (the same path may be given for both; NULL = /dev/null).
 * The child dies with the calling thread. Returns its pid or -1. */
pid_t pd_spawn(const char *const *args, const char *const *extra_env, const char *out_path, const char *err_path);

/* Wait up to timeout_ms for pid (SIGKILL after). Returns its exit code, 128 +
 * signal when killed by a signal, -1 if it cannot be reaped. */
int pd_wait(pid_t pid, int timeout_ms);

/* Wait up to timeout_ms until the file at log_path contains "listening on
 * http://HOST:PORT" and return PORT; -1 on timeout, or if pid exits first
 * (it has then been reaped: do not wait for it again). */
int pd_wait_listening(const char *log_path, pid_t pid, int timeout_ms);

/* ---- HTTP ---- */

typedef struct pd_resp {
    long status; /* HTTP status; 0 if the transfer failed */
    char *body;  /* NUL-terminated ("" when empty) */
    size_t len;
    json_t *json;                /* parsed body or NULL */
    char *headers;               /* the final response's raw header block */
    long num_connects;           /* CURLINFO_NUM_CONNECTS: 0 when an existing connection was reused */
    char error[CURL_ERROR_SIZE]; /* libcurl's message when the transfer failed */
} pd_resp;

/* One HTTP request on a new libcurl easy handle. key: sent as "AppId: key"
 * unless NULL. body: sent with "Content-Type: application/json" unless NULL.
 * extra_headers: NULL-terminated "Name: value" strings, or NULL; a
 * Content-Type or AppId among them replaces the default, "Name:" removes a
 * header libcurl would add, and "Transfer-Encoding: chunked" sends body in
 * several chunks. path may carry a query string. Returns 0 when a response
 * arrived (any status), -1 when the transfer failed (out->error says why);
 * out is always safe to pd_resp_free. */
int pd_req(pd_server *s, const char *method, const char *path, const char *key, const char *body,
           const char *const *extra_headers, pd_resp *out);

/* The same on a caller-owned handle (curl_easy_init), so consecutive requests
 * can reuse its connection. The handle's options are reset first. */
int pd_req_on(CURL *h, pd_server *s, const char *method, const char *path, const char *key, const char *body,
              const char *const *extra_headers, pd_resp *out);

/* The mock LLM provider's counter name ("requests", "in_flight",
 * "max_in_flight") from GET base_url/_mock/stats, or -1 when unreadable. */
long long pd_mock_stat(const char *mock_base_url, const char *name);

/* Value of response header name (case-insensitive), trimmed, or NULL. Points
 * into a per-thread buffer, valid until the next pd_header call in the thread. */
const char *pd_header(const pd_resp *r, const char *name);
void pd_resp_free(pd_resp *r);

/* ---- JSON ---- */

/* The value at a dotted path such as "data.attributes.name" or
 * "errors.0.status" (numeric segments index arrays), or NULL. Borrowed. */
json_t *pd_json_at(const json_t *root, const char *path);
/* The string at path, or NULL if absent or not a string. Borrowed. */
const char *pd_str_at(const json_t *root, const char *path);
/* The integer at path, or def if absent or not an integer. */
long long pd_int_at(const json_t *root, const char *path, long long def);
/* json_pack() format + arguments -> compact JSON text (malloc'd), or NULL. */
char *pd_pack(const char *fmt, ...);

/* ---- shortcuts ---- */

/* POST /prompts {"prompt": {name, content}} with key; the new id into id
 * (>= 37 bytes, may be NULL). Returns the HTTP status (201 on success) or -1. */
long pd_create_prompt(pd_server *s, const char *key, const char *name, const char *content, char *id, size_t idlen);

/* ---- files ---- */

/* Make a fresh directory under $TMPDIR (or /tmp); its path into out. 0 or -1. */
int pd_mkdtemp(char *out, size_t outlen);
/* Remove a directory tree (no symlinks followed). 0 or -1. */
int pd_rmrf(const char *path);
/* Whole file (malloc'd, NUL-terminated) or NULL. */
char *pd_read_file(const char *path);
/* Occurrences of needle in hay (non-overlapping). */
int pd_count(const char *hay, const char *needle);

#endif
