/*
 * router.h — maps (method, path) to a handler, with ":name" path parameters.
 *
 * Patterns are literal segments and ":param" segments ("/prompts/:id/versions");
 * the last segment may be "*param", which takes one or more segments with the
 * slashes between them, for names that contain slashes themselves: with the
 * pattern "/v1/models" + "/" + "*model", the path "/v1/models/openai/gpt-4o"
 * gives model = "openai/gpt-4o".
 * Empty segments are ignored, so "/prompts/" matches "/prompts". When a path
 * matches some pattern but not with this method, the result is
 * ROUTER_BAD_METHOD and `allow` lists the methods that would match (for 405).
 * A router is built once at start-up and then only read (thread-safe to match).
 */
#ifndef PROMPTD_HTTP_ROUTER_H
#define PROMPTD_HTTP_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 8
#define ROUTER_MAX_SEGMENTS 16

typedef struct router router;

enum router_rc { ROUTER_FOUND = 0, ROUTER_NOT_FOUND = 1, ROUTER_BAD_METHOD = 2 };

typedef struct router_match {
    void *handler;
    int flags;
    int nparams;
    const char *names[ROUTER_MAX_PARAMS];
    const char *values[ROUTER_MAX_PARAMS]; /* point into buf */
    char allow[96];                        /* "GET, PUT, DELETE" when ROUTER_BAD_METHOD */
    /* the path's segments; a longer path matches no route (404). Kept small:
     * every request waiting on a model holds one (api_req) */
    char buf[512];
} router_match;

router *router_new(void);
void router_free(router *r);
/* Returns 0, or -1 for a malformed pattern / out of memory. flags are the
 * caller's own (handed back in the match). */
int router_add(router *r, const char *method, const char *pattern, void *handler, int flags);
int router_match_path(const router *r, const char *method, const char *path, router_match *m);
/* Value of a path parameter of a match, or NULL. */
const char *router_param(const router_match *m, const char *name);

#endif
