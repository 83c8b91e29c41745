/*
 * router.c — a list of split patterns matched segment by segment (see router.h).
 *
 * A linear scan is deliberate: promptd has well under a hundred routes, and
 * comparing a few short segments each is far cheaper than anything else a
 * request does.
 */
#include "http/router.h"

#include <stdlib.h>
#include <string.h>

typedef struct route {
    char method[8];
    int nseg;
    char *seg[ROUTER_MAX_SEGMENTS]; /* ":name" for parameters, "*name" for the rest of the path */
    void *handler;
    int flags;
} route;

struct router {
    route *routes;
    size_t count, cap;
};

router *router_new(void) { return calloc(1, sizeof(router)); }

void router_free(router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        for (int s = 0; s < r->routes[i].nseg; s++)
            free(r->routes[i].seg[s]);
    free(r->routes);
    free(r);
}

/* Split path into segments inside buf (modified copy). Returns count or -1. */
static int split(const char *path, char *buf, size_t buflen, char **seg)
{
    size_t n = strlen(path);
    if (n >= buflen)
        return -1;
    memcpy(buf, path, n + 1);
    int count = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (count == ROUTER_MAX_SEGMENTS)
            return -1;
        seg[count++] = t;
    }
    return count;
}

int router_add(router *r, const char *method, const char *pattern, void *handler, int flags)
{
    char buf[512];
    char *seg[ROUTER_MAX_SEGMENTS];
    int n = split(pattern, buf, sizeof buf, seg);
    if (n < 0 || strlen(method) >= sizeof(((route *)0)->method))
        return -1;
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        route *nr = realloc(r->routes, cap * sizeof *nr);
        if (!nr)
            return -1;
        r->routes = nr;
        r->cap = cap;
    }
    route *rt = &r->routes[r->count];
    memset(rt, 0, sizeof *rt);
    strcpy(rt->method, method);
    for (int i = 0; i < n; i++) {
        if (!(rt->seg[i] = strdup(seg[i]))) {
            while (i--)
                free(rt->seg[i]);
            return -1;
        }
    }
    for (int i = 0; i + 1 < n; i++)
        if (rt->seg[i][0] == '*') { /* only the last segment may take the rest */
            for (int k = 0; k < n; k++)
                free(rt->seg[k]);
            return -1;
        }
    rt->nseg = n;
    rt->handler = handler;
    rt->flags = flags;
    r->count++;
    return 0;
}

static int has_tail(const route *rt) { return rt->nseg > 0 && rt->seg[rt->nseg - 1][0] == '*'; }

static int segments_match(const route *rt, char **seg, int n)
{
    int fixed = has_tail(rt) ? rt->nseg - 1 : rt->nseg;
    if (has_tail(rt) ? n < rt->nseg : n != rt->nseg)
        return 0;
    for (int i = 0; i < fixed; i++)
        if (rt->seg[i][0] != ':' && strcmp(rt->seg[i], seg[i]) != 0)
            return 0;
    return 1;
}

int router_match_path(const router *r, const char *method, const char *path, router_match *m)
{
    char *seg[ROUTER_MAX_SEGMENTS];
    memset(m, 0, offsetof(router_match, buf));
    int n = split(path, m->buf, sizeof m->buf, seg);
    if (n < 0)
        return ROUTER_NOT_FOUND;
    int path_known = 0;
    for (size_t i = 0; i < r->count; i++) {
        const route *rt = &r->routes[i];
        if (!segments_match(rt, seg, n))
            continue;
        if (strcmp(rt->method, method) != 0) {
            if (!strstr(m->allow, rt->method) && strlen(m->allow) + strlen(rt->method) + 3 < sizeof m->allow) {
                if (m->allow[0])
                    strcat(m->allow, ", ");
                strcat(m->allow, rt->method);
            }
            path_known = 1;
            continue;
        }
        for (int s = 0; s < rt->nseg; s++) {
            if ((rt->seg[s][0] == ':' || rt->seg[s][0] == '*') && m->nparams < ROUTER_MAX_PARAMS) {
                m->names[m->nparams] = rt->seg[s] + 1;
                m->values[m->nparams] = seg[s];
                m->nparams++;
            }
        }
        /* the tail's segments are contiguous in buf: put back the separators
         * split() cut, from its first segment to the end of the path */
        if (has_tail(rt))
            for (int s = rt->nseg - 1; s + 1 < n; s++)
                seg[s][strlen(seg[s])] = '/';
        m->handler = rt->handler;
        m->flags = rt->flags;
        return ROUTER_FOUND;
    }
    return path_known ? ROUTER_BAD_METHOD : ROUTER_NOT_FOUND;
}

const char *router_param(const router_match *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->names[i], name) == 0)
            return m->values[i];
    return NULL;
}
