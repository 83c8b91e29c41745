/*
 * engine_config.c — loading, validating, copying and routing the engine's
 * configuration (format and ownership rules: engine_config.h).
 *
 * Loading is strict where a typo would silently change behaviour (fields of a
 * provider, the retry block) and every error names the field, e.g.
 * "providers[1].max_concurrency: must be an integer in 1..100000".
 */
#include "engine/engine_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ENGINE_CFG_MAX_CONCURRENCY = 100000,
    ENGINE_CFG_MAX_ATTEMPTS = 20,
};
#define ENGINE_CFG_MAX_MS 86400000L /* one day: anything longer is a mistake */

int engine_config_init(engine_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->retry_max_attempts = ENGINE_DEFAULT_RETRY_ATTEMPTS;
    cfg->retry_base_delay_ms = ENGINE_DEFAULT_RETRY_BASE_MS;
    cfg->retry_max_delay_ms = ENGINE_DEFAULT_RETRY_MAX_MS;
    cfg->retry_after_max_ms = ENGINE_DEFAULT_RETRY_AFTER_MAX_MS;
    return 0;
}

static void engine_config_free_provider(engine_provider_config *p)
{
    free(p->name);
    free(p->base_url);
    if (p->api_key) {
        /* a secret: do not leave it lying around in freed heap */
        memset(p->api_key, 0, strlen(p->api_key));
        free(p->api_key);
    }
}

static void engine_config_free_fallback(engine_fallback *f)
{
    free(f->model);
    for (size_t j = 0; j < f->n_models; j++)
        free(f->models[j]);
    free(f->models);
}

void engine_config_free(engine_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->default_model);
    for (size_t i = 0; i < cfg->n_providers; i++)
        engine_config_free_provider(&cfg->providers[i]);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        free(cfg->aliases[i].name);
        free(cfg->aliases[i].model);
    }
    free(cfg->aliases);
    for (size_t i = 0; i < cfg->n_fallbacks; i++)
        engine_config_free_fallback(&cfg->fallbacks[i]);
    free(cfg->fallbacks);
    engine_config_init(cfg);
}

/* strdup that keeps NULL as NULL; *ok cleared on out of memory. */
static char *engine_config_dup(const char *s, int *ok)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

/* strdup without trailing slashes: base URLs are joined with "/path". */
static char *engine_config_dup_url(const char *s)
{
    char *d = strdup(s);
    size_t n;

    if (!d)
        return NULL;
    n = strlen(d);
    while (n > 0 && d[n - 1] == '/')
        d[--n] = '\0';
    return d;
}

static engine_provider_config *engine_config_find_provider(const engine_config *cfg,
                                                           const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (strlen(cfg->providers[i].name) == len && memcmp(cfg->providers[i].name, name, len) == 0)
            return &cfg->providers[i];
    return NULL;
}

engine_provider_config *engine_config_set_provider(engine_config *cfg, const char *name,
                                                   enum engine_provider_type type,
                                                   const char *base_url, const char *api_key)
{
    engine_provider_config *p = engine_config_find_provider(cfg, name, strlen(name));
    char *n = NULL, *u = NULL, *k = NULL;

    if (!base_url)
        base_url = type == ENGINE_PROVIDER_ANTHROPIC ? ENGINE_DEFAULT_ANTHROPIC_URL
                                                     : ENGINE_DEFAULT_OPENAI_URL;
    u = engine_config_dup_url(base_url);
    k = api_key && api_key[0] ? strdup(api_key) : NULL;
    if (!p)
        n = strdup(name);
    if (!u || (api_key && api_key[0] && !k) || (!p && !n))
        goto fail;
    if (!p) {
        engine_provider_config *arr =
            realloc(cfg->providers, (cfg->n_providers + 1) * sizeof(*arr));
        if (!arr)
            goto fail;
        cfg->providers = arr;
        p = &arr[cfg->n_providers++];
        memset(p, 0, sizeof(*p));
        p->name = n;
        p->max_concurrency = ENGINE_DEFAULT_MAX_CONCURRENCY;
        p->connect_timeout_ms = ENGINE_DEFAULT_CONNECT_TIMEOUT_MS;
        p->timeout_ms = ENGINE_DEFAULT_TIMEOUT_MS;
    } else {
        free(p->base_url);
        if (p->api_key) {
            memset(p->api_key, 0, strlen(p->api_key));
            free(p->api_key);
        }
    }
    p->type = type;
    p->base_url = u;
    p->api_key = k;
    return p;
fail:
    free(n);
    free(u);
    free(k);
    return NULL;
}

int engine_config_set_alias(engine_config *cfg, const char *name, const char *model)
{
    char *m = strdup(model), *n = NULL;
    engine_alias *arr;

    if (!m)
        return -1;
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        if (strcmp(cfg->aliases[i].name, name) == 0) {
            free(cfg->aliases[i].model);
            cfg->aliases[i].model = m;
            return 0;
        }
    }
    n = strdup(name);
    arr = n ? realloc(cfg->aliases, (cfg->n_aliases + 1) * sizeof(*arr)) : NULL;
    if (!arr) {
        free(m);
        free(n);
        return -1;
    }
    cfg->aliases = arr;
    arr[cfg->n_aliases].name = n;
    arr[cfg->n_aliases].model = m;
    cfg->n_aliases++;
    return 0;
}

int engine_config_set_fallbacks(engine_config *cfg, const char *model,
                                const char *const *models, size_t n)
{
    engine_fallback f = {0}, *arr;

    f.model = strdup(model);
    f.models = calloc(n ? n : 1, sizeof(char *));
    if (!f.model || !f.models)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        f.models[i] = strdup(models[i]);
        if (!f.models[i])
            goto fail;
        f.n_models++;
    }
    for (size_t i = 0; i < cfg->n_fallbacks; i++) {
        if (strcmp(cfg->fallbacks[i].model, model) == 0) {
            engine_config_free_fallback(&cfg->fallbacks[i]);
            cfg->fallbacks[i] = f;
            return 0;
        }
    }
    arr = realloc(cfg->fallbacks, (cfg->n_fallbacks + 1) * sizeof(*arr));
    if (!arr)
        goto fail;
    cfg->fallbacks = arr;
    arr[cfg->n_fallbacks++] = f;
    return 0;
fail:
    engine_config_free_fallback(&f);
    return -1;
}

int engine_config_set_default(engine_config *cfg, const char *model)
{
    char *d = strdup(model);

    if (!d)
        return -1;
    free(cfg->default_model);
    cfg->default_model = d;
    return 0;
}

/* Route without alias expansion. */
static int engine_config_route_direct(const engine_config *cfg, const char *name)
{
    const char *slash;
    engine_provider_config *p;

    if (strcmp(name, "echo") == 0)
        return ENGINE_ROUTE_ECHO;
    slash = strchr(name, '/');
    if (!slash || slash == name || slash[1] == '\0')
        return ENGINE_ROUTE_UNKNOWN;
    p = engine_config_find_provider(cfg, name, (size_t)(slash - name));
    return p ? (int)(p - cfg->providers) : ENGINE_ROUTE_UNKNOWN;
}

int engine_config_route(const engine_config *cfg, const char *name, const char **target)
{
    int r;

    if (!name || !name[0])
        name = cfg->default_model && cfg->default_model[0] ? cfg->default_model : "echo";
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        if (strcmp(cfg->aliases[i].name, name) == 0) {
            name = cfg->aliases[i].model;
            break;
        }
    }
    r = engine_config_route_direct(cfg, name);
    if (r != ENGINE_ROUTE_UNKNOWN && target)
        *target = name;
    return r;
}

const engine_fallback *engine_config_fallbacks(const engine_config *cfg, const char *model)
{
    for (size_t i = 0; i < cfg->n_fallbacks; i++) {
        const char *t = NULL;
        if (strcmp(cfg->fallbacks[i].model, model) == 0)
            return &cfg->fallbacks[i];
        /* a hand-built config may key fallbacks by alias */
        if (engine_config_route(cfg, cfg->fallbacks[i].model, &t) != ENGINE_ROUTE_UNKNOWN &&
            strcmp(t, model) == 0)
            return &cfg->fallbacks[i];
    }
    return NULL;
}

static int engine_config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int engine_config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int engine_config_url_ok(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

int engine_config_validate(const engine_config *cfg, char *err, size_t errlen)
{
    const char *t;

    for (size_t i = 0; i < cfg->n_providers; i++) {
        const engine_provider_config *p = &cfg->providers[i];
        if (!p->name || !p->name[0] || strchr(p->name, '/') || strcmp(p->name, "echo") == 0)
            return engine_config_fail(err, errlen,
                                      "providers[%zu].name: must be non-empty, without '/', "
                                      "and not \"echo\"",
                                      i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->providers[j].name, p->name) == 0)
                return engine_config_fail(err, errlen, "providers[%zu].name: duplicate \"%s\"",
                                          i, p->name);
        if (p->type != ENGINE_PROVIDER_OPENAI && p->type != ENGINE_PROVIDER_ANTHROPIC)
            return engine_config_fail(err, errlen,
                                      "providers[%zu].type: must be \"openai\" or \"anthropic\"",
                                      i);
        if (!p->base_url || !engine_config_url_ok(p->base_url))
            return engine_config_fail(err, errlen,
                                      "providers[%zu].base_url: must be an http:// or https:// URL",
                                      i);
        if (p->max_concurrency < 1 || p->max_concurrency > ENGINE_CFG_MAX_CONCURRENCY)
            return engine_config_fail(err, errlen,
                                      "providers[%zu].max_concurrency: must be in 1..%d", i,
                                      ENGINE_CFG_MAX_CONCURRENCY);
        if (p->timeout_ms < 1 || p->timeout_ms > ENGINE_CFG_MAX_MS)
            return engine_config_fail(err, errlen, "providers[%zu].timeout_ms: must be in 1..%ld",
                                      i, ENGINE_CFG_MAX_MS);
        if (p->connect_timeout_ms < 1 || p->connect_timeout_ms > ENGINE_CFG_MAX_MS)
            return engine_config_fail(err, errlen,
                                      "providers[%zu].connect_timeout_ms: must be in 1..%ld", i,
                                      ENGINE_CFG_MAX_MS);
    }
    if (cfg->retry_max_attempts < 1 || cfg->retry_max_attempts > ENGINE_CFG_MAX_ATTEMPTS)
        return engine_config_fail(err, errlen, "retry.max_attempts: must be in 1..%d",
                                  ENGINE_CFG_MAX_ATTEMPTS);
    if (cfg->retry_base_delay_ms < 0 || cfg->retry_base_delay_ms > ENGINE_CFG_MAX_MS)
        return engine_config_fail(err, errlen, "retry.base_delay_ms: must be in 0..%ld",
                                  ENGINE_CFG_MAX_MS);
    if (cfg->retry_max_delay_ms < cfg->retry_base_delay_ms ||
        cfg->retry_max_delay_ms > ENGINE_CFG_MAX_MS)
        return engine_config_fail(err, errlen,
                                  "retry.max_delay_ms: must be in base_delay_ms..%ld",
                                  ENGINE_CFG_MAX_MS);
    if (cfg->retry_after_max_ms < 0 || cfg->retry_after_max_ms > ENGINE_CFG_MAX_MS)
        return engine_config_fail(err, errlen, "retry.max_retry_after_ms: must be in 0..%ld",
                                  ENGINE_CFG_MAX_MS);
    for (size_t i = 0; i < cfg->n_aliases; i++) {
        const engine_alias *a = &cfg->aliases[i];
        if (!a->name || !a->name[0])
            return engine_config_fail(err, errlen, "aliases: empty alias name");
        if (!a->model || engine_config_route_direct(cfg, a->model) == ENGINE_ROUTE_UNKNOWN)
            return engine_config_fail(err, errlen,
                                      "aliases.%s: \"%s\" is not \"echo\" or "
                                      "\"<configured provider>/<model>\"",
                                      a->name, a->model ? a->model : "");
    }
    for (size_t i = 0; i < cfg->n_fallbacks; i++) {
        const engine_fallback *f = &cfg->fallbacks[i];
        if (!f->model || engine_config_route(cfg, f->model, &t) == ENGINE_ROUTE_UNKNOWN)
            return engine_config_fail(err, errlen, "fallbacks.%s: unknown model",
                                      f->model ? f->model : "");
        for (size_t j = 0; j < f->n_models; j++)
            if (!f->models[j] ||
                engine_config_route(cfg, f->models[j], &t) == ENGINE_ROUTE_UNKNOWN)
                return engine_config_fail(err, errlen, "fallbacks.%s[%zu]: unknown model \"%s\"",
                                          f->model, j, f->models[j] ? f->models[j] : "");
    }
    if (engine_config_route(cfg, NULL, &t) == ENGINE_ROUTE_UNKNOWN)
        return engine_config_fail(err, errlen,
                                  "default_model: \"%s\" routes to no configured provider",
                                  cfg->default_model);
    return 0;
}

int engine_config_copy(engine_config *dst, const engine_config *src)
{
    int ok = 1;

    engine_config_init(dst);
    dst->retry_max_attempts = src->retry_max_attempts;
    dst->retry_base_delay_ms = src->retry_base_delay_ms;
    dst->retry_max_delay_ms = src->retry_max_delay_ms;
    dst->retry_after_max_ms = src->retry_after_max_ms;
    dst->default_model = engine_config_dup(src->default_model, &ok);
    if (src->n_providers) {
        dst->providers = calloc(src->n_providers, sizeof(*dst->providers));
        if (!dst->providers)
            goto fail;
        dst->n_providers = src->n_providers;
        for (size_t i = 0; i < src->n_providers; i++) {
            dst->providers[i] = src->providers[i];
            dst->providers[i].name = engine_config_dup(src->providers[i].name, &ok);
            dst->providers[i].base_url = engine_config_dup(src->providers[i].base_url, &ok);
            dst->providers[i].api_key = engine_config_dup(src->providers[i].api_key, &ok);
        }
    }
    if (src->n_aliases) {
        dst->aliases = calloc(src->n_aliases, sizeof(*dst->aliases));
        if (!dst->aliases)
            goto fail;
        dst->n_aliases = src->n_aliases;
        for (size_t i = 0; i < src->n_aliases; i++) {
            dst->aliases[i].name = engine_config_dup(src->aliases[i].name, &ok);
            dst->aliases[i].model = engine_config_dup(src->aliases[i].model, &ok);
        }
    }
    if (src->n_fallbacks) {
        dst->fallbacks = calloc(src->n_fallbacks, sizeof(*dst->fallbacks));
        if (!dst->fallbacks)
            goto fail;
        dst->n_fallbacks = src->n_fallbacks;
        for (size_t i = 0; i < src->n_fallbacks; i++) {
            const engine_fallback *s = &src->fallbacks[i];
            engine_fallback *d = &dst->fallbacks[i];
            d->model = engine_config_dup(s->model, &ok);
            d->models = calloc(s->n_models ? s->n_models : 1, sizeof(char *));
            if (!d->models)
                goto fail;
            d->n_models = s->n_models;
            for (size_t j = 0; j < s->n_models; j++)
                d->models[j] = engine_config_dup(s->models[j], &ok);
        }
    }
    if (!ok)
        goto fail;
    return 0;
fail:
    engine_config_free(dst);
    return -1;
}

/* ---- loading from JSON ---- */

/* An optional integer member in [lo, hi]. */
static int engine_config_get_long(const json_t *obj, const char *key, long lo, long hi,
                                  long *out, const char *ctx, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return engine_config_fail(err, errlen, "%s%s: must be an integer in %ld..%ld", ctx, key,
                                  lo, hi);
    *out = (long)json_integer_value(v);
    return 0;
}

static int engine_config_get_str(const json_t *obj, const char *key, const char **out,
                                 const char *ctx, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return engine_config_fail(err, errlen, "%s%s: must be a string", ctx, key);
    *out = json_string_value(v);
    return 0;
}

static int engine_config_load_provider(engine_config *cfg, const json_t *jp, size_t i,
                                       char *err, size_t errlen)
{
    static const char *const known[] = {"name",       "type",           "base_url",
                                        "api_key",    "api_key_env",    "max_concurrency",
                                        "timeout_ms", "connect_timeout_ms", NULL};
    const char *name, *type, *url, *key, *key_env, *k;
    char ctx[48];
    enum engine_provider_type t;
    engine_provider_config *p;
    long mc = ENGINE_DEFAULT_MAX_CONCURRENCY, to = ENGINE_DEFAULT_TIMEOUT_MS,
         cto = ENGINE_DEFAULT_CONNECT_TIMEOUT_MS;
    json_t *v;

    snprintf(ctx, sizeof(ctx), "providers[%zu].", i);
    if (!json_is_object(jp))
        return engine_config_fail(err, errlen, "providers[%zu]: must be an object", i);
    json_object_foreach((json_t *)jp, k, v) {
        size_t j;
        for (j = 0; known[j] && strcmp(known[j], k) != 0; j++)
            ;
        if (!known[j])
            return engine_config_fail(err, errlen, "%s%s: unknown field", ctx, k);
    }
    if (engine_config_get_str(jp, "name", &name, ctx, err, errlen) != 0 ||
        engine_config_get_str(jp, "type", &type, ctx, err, errlen) != 0 ||
        engine_config_get_str(jp, "base_url", &url, ctx, err, errlen) != 0 ||
        engine_config_get_str(jp, "api_key", &key, ctx, err, errlen) != 0 ||
        engine_config_get_str(jp, "api_key_env", &key_env, ctx, err, errlen) != 0 ||
        engine_config_get_long(jp, "max_concurrency", 1, ENGINE_CFG_MAX_CONCURRENCY, &mc, ctx,
                               err, errlen) != 0 ||
        engine_config_get_long(jp, "timeout_ms", 1, ENGINE_CFG_MAX_MS, &to, ctx, err, errlen) !=
            0 ||
        engine_config_get_long(jp, "connect_timeout_ms", 1, ENGINE_CFG_MAX_MS, &cto, ctx, err,
                               errlen) != 0)
        return -1;
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, "echo") == 0)
        return engine_config_fail(err, errlen,
                                  "%sname: required, without '/', and not \"echo\"", ctx);
    if (engine_config_find_provider(cfg, name, strlen(name)))
        return engine_config_fail(err, errlen, "%sname: duplicate \"%s\"", ctx, name);
    if (!type || strcmp(type, "openai") == 0)
        t = ENGINE_PROVIDER_OPENAI;
    else if (strcmp(type, "anthropic") == 0)
        t = ENGINE_PROVIDER_ANTHROPIC;
    else
        return engine_config_fail(err, errlen, "%stype: must be \"openai\" or \"anthropic\"", ctx);
    if (url && !engine_config_url_ok(url))
        return engine_config_fail(err, errlen, "%sbase_url: must be an http:// or https:// URL",
                                  ctx);
    if (key && key_env)
        return engine_config_fail(err, errlen, "%sapi_key_env: give api_key or api_key_env, not both",
                                  ctx);
    if (key_env)
        key = getenv(key_env); /* unset: no key, like a local server */
    p = engine_config_set_provider(cfg, name, t, url, key);
    if (!p)
        return engine_config_fail(err, errlen, "%s: out of memory", ctx);
    p->max_concurrency = (int)mc;
    p->timeout_ms = to;
    p->connect_timeout_ms = cto;
    return 0;
}

static int engine_config_load_retry(engine_config *cfg, const json_t *r, char *err,
                                    size_t errlen)
{
    static const char *const known[] = {"max_attempts", "base_delay_ms", "max_delay_ms",
                                        "max_retry_after_ms", NULL};
    const char *k;
    json_t *v;
    long att = cfg->retry_max_attempts;

    if (!json_is_object(r))
        return engine_config_fail(err, errlen, "retry: must be an object");
    json_object_foreach((json_t *)r, k, v) {
        size_t j;
        for (j = 0; known[j] && strcmp(known[j], k) != 0; j++)
            ;
        if (!known[j])
            return engine_config_fail(err, errlen, "retry.%s: unknown field", k);
    }
    if (engine_config_get_long(r, "max_attempts", 1, ENGINE_CFG_MAX_ATTEMPTS, &att, "retry.",
                               err, errlen) != 0 ||
        engine_config_get_long(r, "base_delay_ms", 0, ENGINE_CFG_MAX_MS,
                               &cfg->retry_base_delay_ms, "retry.", err, errlen) != 0 ||
        engine_config_get_long(r, "max_delay_ms", 0, ENGINE_CFG_MAX_MS, &cfg->retry_max_delay_ms,
                               "retry.", err, errlen) != 0 ||
        engine_config_get_long(r, "max_retry_after_ms", 0, ENGINE_CFG_MAX_MS,
                               &cfg->retry_after_max_ms, "retry.", err, errlen) != 0)
        return -1;
    cfg->retry_max_attempts = (int)att;
    return 0;
}

static int engine_config_load_file(engine_config *cfg, const json_t *root, char *err,
                                   size_t errlen)
{
    json_t *v, *e;
    const char *k, *s;
    size_t i;

    if (!json_is_object(root))
        return engine_config_fail(err, errlen, "config: must be a JSON object");
    if (engine_config_get_str(root, "default_model", &s, "", err, errlen) != 0)
        return -1;
    if (s && engine_config_set_default(cfg, s) != 0)
        return engine_config_fail(err, errlen, "default_model: out of memory");
    v = json_object_get(root, "providers");
    if (v && !json_is_array(v))
        return engine_config_fail(err, errlen, "providers: must be an array");
    json_array_foreach(v, i, e)
        if (engine_config_load_provider(cfg, e, i, err, errlen) != 0)
            return -1;
    v = json_object_get(root, "aliases");
    if (v && !json_is_object(v))
        return engine_config_fail(err, errlen, "aliases: must be an object");
    json_object_foreach(v, k, e) {
        if (!json_is_string(e))
            return engine_config_fail(err, errlen, "aliases.%s: must be a string", k);
        if (!k[0])
            return engine_config_fail(err, errlen, "aliases: empty alias name");
        if (engine_config_set_alias(cfg, k, json_string_value(e)) != 0)
            return engine_config_fail(err, errlen, "aliases.%s: out of memory", k);
    }
    v = json_object_get(root, "fallbacks");
    if (v && !json_is_object(v))
        return engine_config_fail(err, errlen, "fallbacks: must be an object");
    json_object_foreach(v, k, e) {
        const char **list;
        size_t j;
        json_t *m;
        int rc;

        if (!json_is_array(e))
            return engine_config_fail(err, errlen, "fallbacks.%s: must be an array of model names",
                                      k);
        list = calloc(json_array_size(e) + 1, sizeof(*list));
        if (!list)
            return engine_config_fail(err, errlen, "fallbacks.%s: out of memory", k);
        json_array_foreach(e, j, m) {
            if (!json_is_string(m)) {
                free(list);
                return engine_config_fail(err, errlen, "fallbacks.%s[%zu]: must be a string", k,
                                          j);
            }
            list[j] = json_string_value(m);
        }
        rc = engine_config_set_fallbacks(cfg, k, list, json_array_size(e));
        free(list);
        if (rc != 0)
            return engine_config_fail(err, errlen, "fallbacks.%s: out of memory", k);
    }
    v = json_object_get(root, "retry");
    if (v && engine_config_load_retry(cfg, v, err, errlen) != 0)
        return -1;
    return 0;
}

static const char *engine_config_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* OPENAI_* / ANTHROPIC_*: create the provider, or update the file's one. */
static int engine_config_load_env_provider(engine_config *cfg, const char *name,
                                           enum engine_provider_type type, const char *key_var,
                                           const char *url_var, char *err, size_t errlen)
{
    const char *key = engine_config_env(key_var), *url = engine_config_env(url_var);
    engine_provider_config *p;

    if (!key && !url)
        return 0;
    if (url && !engine_config_url_ok(url))
        return engine_config_fail(err, errlen, "%s: must be an http:// or https:// URL", url_var);
    p = engine_config_find_provider(cfg, name, strlen(name));
    if (p) {
        /* keep the file's limits and, when the variable is unset, its URL/key */
        char *u = url ? engine_config_dup_url(url) : NULL, *k = key ? strdup(key) : NULL;
        if ((url && !u) || (key && !k)) {
            free(u);
            free(k);
            return engine_config_fail(err, errlen, "%s: out of memory", key_var);
        }
        if (u) {
            free(p->base_url);
            p->base_url = u;
        }
        if (k) {
            if (p->api_key) {
                memset(p->api_key, 0, strlen(p->api_key));
                free(p->api_key);
            }
            p->api_key = k;
        }
        p->type = type;
        return 0;
    }
    if (!engine_config_set_provider(cfg, name, type, url, key))
        return engine_config_fail(err, errlen, "%s: out of memory", key_var);
    return 0;
}

int engine_config_load(engine_config *cfg, const json_t *root, char *err, size_t errlen)
{
    const char *dm;

    engine_config_init(cfg);
    if (root && engine_config_load_file(cfg, root, err, errlen) != 0)
        goto fail;
    if (engine_config_load_env_provider(cfg, "openai", ENGINE_PROVIDER_OPENAI, "OPENAI_API_KEY",
                                        "OPENAI_BASE_URL", err, errlen) != 0 ||
        engine_config_load_env_provider(cfg, "anthropic", ENGINE_PROVIDER_ANTHROPIC,
                                        "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", err,
                                        errlen) != 0)
        goto fail;
    dm = engine_config_env("PROMPTD_DEFAULT_MODEL");
    if (dm && engine_config_set_default(cfg, dm) != 0) {
        engine_config_fail(err, errlen, "PROMPTD_DEFAULT_MODEL: out of memory");
        goto fail;
    }
    if (engine_config_validate(cfg, err, errlen) != 0) {
        /* name the environment when that is where the bad default came from */
        if (dm && engine_config_route(cfg, NULL, NULL) == ENGINE_ROUTE_UNKNOWN)
            engine_config_fail(err, errlen,
                               "PROMPTD_DEFAULT_MODEL: \"%s\" routes to no configured provider",
                               dm);
        goto fail;
    }
    return 0;
fail:
    engine_config_free(cfg);
    return -1;
}
