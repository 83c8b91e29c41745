/*
 * engine_config.h — what the engine needs to know: providers, model aliases,
 * fallbacks, retry policy; loaded from the JSON config file, then the
 * environment on top.
 *
 * Config file shape (every member optional; unknown TOP-LEVEL members are
 * ignored because the file is shared with the rest of promptd, unknown
 * members inside "providers[]" and "retry" are errors, to catch typos):
 *
 *   {
 *     "default_model": "echo",
 *     "providers": [
 *       {"name": "local", "type": "openai",            // or "anthropic"
 *        "base_url": "http://127.0.0.1:11434/v1",      // default per type:
 *                       // openai https://api.openai.com/v1, anthropic https://api.anthropic.com
 *        "api_key": "...",  "api_key_env": "LOCAL_KEY", // key inline, or read from env
 *        "max_concurrency": 64, "timeout_ms": 60000, "connect_timeout_ms": 5000}
 *     ],
 *     "aliases":   {"fast": "local/llama3.2"},
 *     "fallbacks": {"openai/gpt-4o": ["anthropic/claude-sonnet-4-5", "echo"]},
 *     "retry": {"max_attempts": 3, "base_delay_ms": 250, "max_delay_ms": 10000,
 *               "max_retry_after_ms": 30000}
 *   }
 *
 * Environment (applied after the file; an empty variable counts as unset):
 *   OPENAI_API_KEY / OPENAI_BASE_URL        create or update provider "openai"
 *                                           (type openai; a base URL alone is valid, e.g. Ollama)
 *   ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL  create or update provider "anthropic"
 *   PROMPTD_DEFAULT_MODEL                   the default model
 *
 * Model names: "echo", "<provider>/<model>" (split at the FIRST '/', so
 * "local/library/llama3:8b" is model "library/llama3:8b" of provider "local"),
 * or an alias. An alias maps to a model name, never to another alias.
 * Base URLs come only from here, never from requests.
 *
 * Ownership: every string and array inside an engine_config is owned by it
 * and released by engine_config_free(). engine_config_init() allocates
 * nothing, so a struct fresh from init needs no free; after free the struct
 * is back in the init state. Nothing here is thread-safe for writing; a
 * loaded config is read-only and may be read from any thread.
 */
#ifndef PROMPTD_ENGINE_CONFIG_H
#define PROMPTD_ENGINE_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#include "engine/engine.h"

#define ENGINE_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define ENGINE_DEFAULT_TIMEOUT_MS 120000L
#define ENGINE_DEFAULT_MAX_CONCURRENCY 256
#define ENGINE_DEFAULT_RETRY_ATTEMPTS 3
#define ENGINE_DEFAULT_RETRY_BASE_MS 250L
#define ENGINE_DEFAULT_RETRY_MAX_MS 10000L
#define ENGINE_DEFAULT_RETRY_AFTER_MAX_MS 30000L
#define ENGINE_DEFAULT_OPENAI_URL "https://api.openai.com/v1"
#define ENGINE_DEFAULT_ANTHROPIC_URL "https://api.anthropic.com"

enum engine_provider_type {
    ENGINE_PROVIDER_OPENAI = 1,    /* any OpenAI-compatible /chat/completions */
    ENGINE_PROVIDER_ANTHROPIC = 2, /* Anthropic Messages API */
};

typedef struct engine_provider_config {
    char *name; /* routing prefix; not "echo", no '/' */
    enum engine_provider_type type;
    char *base_url; /* no trailing '/' */
    char *api_key;  /* NULL = send no credentials */
    int max_concurrency;     /* upstream requests in flight; the rest wait in a FIFO */
    long connect_timeout_ms; /* per attempt */
    long timeout_ms;         /* per attempt, whole request including the stream */
} engine_provider_config;

typedef struct engine_alias {
    char *name;
    char *model;
} engine_alias;

typedef struct engine_fallback {
    char *model;   /* the model whose failure triggers the list */
    char **models; /* tried in order */
    size_t n_models;
} engine_fallback;

struct engine_config {
    char *default_model; /* NULL = "echo" */
    engine_provider_config *providers;
    size_t n_providers;
    engine_alias *aliases;
    size_t n_aliases;
    engine_fallback *fallbacks;
    size_t n_fallbacks;
    int retry_max_attempts;   /* upstream attempts per model, >= 1 */
    long retry_base_delay_ms; /* backoff: random in [0, min(max, base * 2^(n-1))] */
    long retry_max_delay_ms;
    long retry_after_max_ms; /* cap on an upstream Retry-After */
};

/* Defaults, echo only. Allocates nothing. Returns 0. */
int engine_config_init(engine_config *cfg);

/* init, then root (parsed config file, may be NULL), then the environment;
 * validates the result. 0, or -1 with a message naming the field in err (cfg
 * is then back in the init state). Do not pass a cfg holding allocations. */
int engine_config_load(engine_config *cfg, const json_t *root, char *err, size_t errlen);

/* Check names, numbers and that the default, every alias target and every
 * fallback entry route somewhere. 0, or -1 with err. */
int engine_config_validate(const engine_config *cfg, char *err, size_t errlen);

/* Deep copy into dst (which must not hold allocations). 0 or -1 (out of memory,
 * dst left in the init state). */
int engine_config_copy(engine_config *dst, const engine_config *src);

/* Release everything; cfg is back in the init state. NULL is fine. */
void engine_config_free(engine_config *cfg);

/* Add a provider with default limits (or update the one with that name);
 * api_key may be NULL. For programs and tests that build a config by hand.
 * Returns the provider, or NULL on out of memory. */
engine_provider_config *engine_config_set_provider(engine_config *cfg, const char *name,
                                                   enum engine_provider_type type,
                                                   const char *base_url, const char *api_key);
int engine_config_set_alias(engine_config *cfg, const char *name, const char *model);
int engine_config_set_fallbacks(engine_config *cfg, const char *model,
                                const char *const *models, size_t n);
int engine_config_set_default(engine_config *cfg, const char *model);

/* Route a model name. name NULL or "" means the default model; aliases are
 * expanded once. On success *target is the canonical name ("echo" or
 * "<provider>/<model>"), borrowed from cfg or from name, and the return value
 * is the provider index, or ENGINE_ROUTE_ECHO. ENGINE_ROUTE_UNKNOWN when the
 * name routes nowhere. */
enum { ENGINE_ROUTE_ECHO = -1, ENGINE_ROUTE_UNKNOWN = -2 };
int engine_config_route(const engine_config *cfg, const char *name, const char **target);

/* The fallback list configured for a canonical model name, or NULL. */
const engine_fallback *engine_config_fallbacks(const engine_config *cfg, const char *model);

#endif
