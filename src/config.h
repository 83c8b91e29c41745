/*
 * config.h — server configuration: defaults < config file < environment < flags.
 *
 * The config file is JSON. Server keys: "listen", "db", "body_limit",
 * "idle_timeout_s", "threads". The whole parsed file is kept (file_root) so
 * the engine can read its own keys (providers, aliases, fallbacks, retry).
 * Environment: PROMPTD_LISTEN, PROMPTD_DB, PROMPTD_CONFIG, PROMPTD_BODY_LIMIT,
 * PROMPTD_IDLE_TIMEOUT, PROMPTD_THREADS, PROMPTD_LOG_LEVEL.
 */
#ifndef PROMPTD_CONFIG_H
#define PROMPTD_CONFIG_H

#include <jansson.h>
#include <stddef.h>

typedef struct config {
    char listen[256];
    char db[1024];
    char config_file[1024];
    size_t body_limit;
    unsigned idle_timeout_s;
    unsigned threads;
    json_t *file_root; /* parsed config file or NULL; owned */
} config;

/* Defaults, then the environment (and the file PROMPTD_CONFIG names). */
int config_init(config *c, char *err, size_t errlen);
/* Load a config file; its values apply, then the environment again on top
 * (flags are applied by the caller afterwards). */
int config_load_file(config *c, const char *path, char *err, size_t errlen);
void config_free(config *c);

#endif
