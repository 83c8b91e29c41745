/*
 * template.c — {{variable}} scanning and rendering (see template.h).
 *
 * One scanner (template_scan) walks the text and reports literal runs and
 * placeholders to a callback, so validation and rendering share one grammar.
 */
#include "core/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*scan_fn)(void *ctx, int is_var, const char *s, size_t len);

static int name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int scan_fail(template_error *err, size_t off, const char *msg)
{
    if (err) {
        snprintf(err->message, sizeof err->message, "%s at offset %zu", msg, off);
        err->offset = off;
    }
    return -1;
}

static int template_scan(const char *tpl, scan_fn fn, void *ctx, template_error *err)
{
    const char *p = tpl, *lit = tpl;
    while (*p) {
        if (p[0] == '\\' && p[1] == '{' && p[2] == '{') {
            if (p > lit && fn(ctx, 0, lit, (size_t)(p - lit)))
                return -1;
            if (fn(ctx, 0, "{{", 2))
                return -1;
            p += 3;
            lit = p;
            continue;
        }
        if (p[0] != '{' || p[1] != '{') {
            p++;
            continue;
        }
        size_t open_at = (size_t)(p - tpl);
        const char *q = p + 2;
        while (*q == ' ' || *q == '\t')
            q++;
        const char *name = q;
        if (!name_start(*q))
            return scan_fail(err, open_at, *q ? "invalid or empty variable name after '{{'"
                                              : "unclosed '{{'");
        while (name_char(*q))
            q++;
        size_t name_len = (size_t)(q - name);
        if (name_len > TEMPLATE_NAME_MAX)
            return scan_fail(err, open_at, "variable name too long");
        while (*q == ' ' || *q == '\t')
            q++;
        if (q[0] != '}' || q[1] != '}')
            return scan_fail(err, open_at, *q ? "invalid character in variable name or missing '}}'"
                                              : "unclosed '{{'");
        if (p > lit && fn(ctx, 0, lit, (size_t)(p - lit)))
            return -1;
        if (fn(ctx, 1, name, name_len))
            return -1;
        p = q + 2;
        lit = p;
    }
    if (p > lit && fn(ctx, 0, lit, (size_t)(p - lit)))
        return -1;
    return 0;
}

static int array_has(const json_t *arr, const char *s, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *t = json_string_value(v);
        if (strlen(t) == len && memcmp(t, s, len) == 0)
            return 1;
    }
    return 0;
}

static int array_add_unique(json_t *arr, const char *s, size_t len)
{
    if (array_has(arr, s, len))
        return 0;
    return json_array_append_new(arr, json_stringn(s, len));
}

static int collect_names(void *ctx, int is_var, const char *s, size_t len)
{
    return is_var ? array_add_unique(ctx, s, len) : 0;
}

int template_variables(const char *tpl, json_t **names, template_error *err)
{
    json_t *arr = json_array();
    if (!arr)
        return scan_fail(err, 0, "out of memory");
    if (template_scan(tpl ? tpl : "", collect_names, arr, err)) {
        json_decref(arr);
        return -1;
    }
    *names = arr;
    return 0;
}

struct render_ctx {
    char *buf;
    size_t len, cap;
    const json_t *vars;
    json_t *used, *missing;
    int oom;
};

static int buf_add(struct render_ctx *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb) {
            r->oom = 1;
            return -1;
        }
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return 0;
}

static int render_piece(void *ctx, int is_var, const char *s, size_t len)
{
    struct render_ctx *r = ctx;
    if (!is_var)
        return buf_add(r, s, len);

    char key[TEMPLATE_NAME_MAX + 1];
    memcpy(key, s, len);
    key[len] = '\0';
    const json_t *v = json_is_object(r->vars) ? json_object_get(r->vars, key) : NULL;
    if (!v || json_is_null(v)) {
        if (array_add_unique(r->missing, s, len))
            return -1;
        if (buf_add(r, "{{", 2) || buf_add(r, s, len) || buf_add(r, "}}", 2))
            return -1;
        return 0;
    }
    if (array_add_unique(r->used, s, len))
        return -1;
    if (json_is_string(v))
        return buf_add(r, json_string_value(v), json_string_length(v));
    char *dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!dumped)
        return -1;
    int rc = buf_add(r, dumped, strlen(dumped));
    free(dumped);
    return rc;
}

int template_render(const char *tpl, const json_t *vars, char **out, json_t **used, json_t **missing,
                    template_error *err)
{
    struct render_ctx r = {.vars = vars, .used = json_array(), .missing = json_array()};
    int rc = -1;
    if (!r.used || !r.missing || buf_add(&r, "", 0)) {
        scan_fail(err, 0, "out of memory");
        goto out;
    }
    if (template_scan(tpl ? tpl : "", render_piece, &r, err))
        goto out;
    if (r.oom) {
        scan_fail(err, 0, "out of memory");
        goto out;
    }
    *out = r.buf;
    r.buf = NULL;
    if (used) {
        *used = r.used;
        r.used = NULL;
    }
    if (missing) {
        *missing = r.missing;
        r.missing = NULL;
    }
    rc = 0;
out:
    free(r.buf);
    json_decref(r.used);
    json_decref(r.missing);
    return rc;
}
