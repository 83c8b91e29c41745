/*
 * fuzz_router.c — libFuzzer target for src/http/router.c and the routing
 * half of api_dispatch (404 / 405 answers).
 *
 * Input: "METHOD\nPATH[\nPATTERN]". Checked on every input:
 *  - matching PATH against promptd's real route table (api_init) never
 *    misbehaves: parameters point into the match buffer and are named by the
 *    pattern, and `allow` is a short NUL-terminated list;
 *  - a path no route takes, or takes with another method, is answered by
 *    api_dispatch with 404 / 405 and a JSON error in the path's style;
 *  - PATTERN, when router_add accepts it into a fresh router, matches itself
 *    (written as a path) with its method, and then every ":param" (and a
 *    last "*param") of the pattern comes back with the path's segment; a
 *    longer path matches only when the pattern ends in "*param", which then
 *    takes the rest, slashes included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "fuzz/fuzz_http.h"
#include "http/router.h"

static app the_app;

static void check_match(const router_match *m, int rc)
{
    if (rc != ROUTER_FOUND && rc != ROUTER_NOT_FOUND && rc != ROUTER_BAD_METHOD)
        fz_fail("router_match_path returned an unknown code", NULL);
    if (!memchr(m->allow, '\0', sizeof m->allow))
        fz_fail("allow is not NUL-terminated", NULL);
    if (rc == ROUTER_BAD_METHOD && !m->allow[0])
        fz_fail("405 without an Allow list", NULL);
    if (rc != ROUTER_FOUND)
        return;
    if (!m->handler || m->nparams < 0 || m->nparams > ROUTER_MAX_PARAMS)
        fz_fail("bad match", NULL);
    for (int i = 0; i < m->nparams; i++) {
        if (!m->names[i] || !m->values[i] || m->values[i] < m->buf || m->values[i] >= m->buf + sizeof m->buf)
            fz_fail("a parameter points outside the match", NULL);
        /* only the last can be a "*tail", whose value may hold inner slashes */
        const char *v = m->values[i];
        if (!*v || v[0] == '/' || v[strlen(v) - 1] == '/' || (i + 1 < m->nparams && strchr(v, '/')))
            fz_fail("a parameter value is empty or holds a '/' it should not", v);
        if (!router_param(m, m->names[i]))
            fz_fail("router_param lost a parameter", m->names[i]);
    }
}

/* 1 when the pattern's last segment (empty ones skipped) is a "*tail" and a
 * path one segment longer is still within ROUTER_MAX_SEGMENTS. */
static int takes_a_longer_path(const char *pattern)
{
    int tail = 0, nseg = 0;
    for (const char *p = pattern; *p; p++)
        if (*p != '/' && (p == pattern || p[-1] == '/')) {
            tail = *p == '*';
            nseg++;
        }
    return tail && nseg < ROUTER_MAX_SEGMENTS;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (api_init(&the_app) != 0) {
        fprintf(stderr, "api_init failed\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_pieces pc;
    fz_split(data, size, '\n', 3, &pc);
    const char *method = pc.p[0];
    const char *path = pc.n > 1 ? pc.p[1] : "/";
    router_match m;

    /* 1. the real table */
    int rc = router_match_path(the_app.routes, method, path, &m);
    check_match(&m, rc);
    /* api_dispatch looks GET up for HEAD */
    int rc_get = router_match_path(the_app.routes, strcmp(method, "HEAD") == 0 ? "GET" : method, path, &m);
    check_match(&m, rc_get);
    if (rc_get != ROUTER_FOUND) {
        http_req *r = fz_req_new(method, path);
        api_dispatch(&the_app, r);
        fz_req_expect_answer(r, 0, "an unrouted request was not answered 404/405 with JSON");
        int want = rc_get == ROUTER_NOT_FOUND ? 404 : 405;
        if (fz_req_status(r) != want)
            fz_fail("wrong status for an unrouted request", NULL);
        fz_req_free(r);
    }

    /* 2. a fuzzed pattern in a router of its own */
    if (pc.n > 2 && strlen(method) > 0) {
        router *rt = router_new();
        if (!rt)
            fz_fail("out of memory", NULL);
        const char *pattern = pc.p[2];
        if (router_add(rt, method, pattern, (void *)rt, 7) == 0) {
            rc = router_match_path(rt, method, pattern, &m);
            check_match(&m, rc);
            if (rc != ROUTER_FOUND || m.handler != (void *)rt || m.flags != 7)
                fz_fail("a pattern does not match itself", pattern);
            for (int i = 0; i < m.nparams; i++)
                if ((m.values[i][0] != ':' && m.values[i][0] != '*') || strcmp(m.values[i] + 1, m.names[i]) != 0)
                    fz_fail("a parameter did not take its segment", m.names[i]);
            int tail = takes_a_longer_path(pattern);
            /* another method on the same path: 405 naming ours */
            rc = router_match_path(rt, strcmp(method, "GET") ? "GET" : "PUT", pattern, &m);
            check_match(&m, rc);
            if (rc != ROUTER_BAD_METHOD || strcmp(m.allow, method) != 0)
                fz_fail("405 does not name the route's method", pattern);
            /* and the path under it is unknown */
            if (strlen(pattern) < 500) {
                char longer[600];
                snprintf(longer, sizeof longer, "%s/x", pattern);
                rc = router_match_path(rt, method, longer, &m);
                check_match(&m, rc);
                if ((rc == ROUTER_FOUND) != tail)
                    fz_fail(tail ? "a tail did not take a longer path" : "a longer path matched", longer);
            }
        }
        router_free(rt);
    }
    fz_split_free(&pc);
    return 0;
}
