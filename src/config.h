/*
 * config.h — server configuration: defaults < config file < environment < flags.
 *
 * The config file is JSON. Server keys: "listen", "db", "body_limit",
 * "idle_timeout_s", "header_timeout_s", "threads", "stream_buffer",
 * "stream_buffer_total", "stream_stall_timeout_s". The whole parsed file is
 * kept (file_root) so the engine can read its own keys (providers, aliases,
 * fallbacks, retry).
 * Environment: PROMPTD_LISTEN, PROMPTD_DB, PROMPTD_CONFIG, PROMPTD_BODY_LIMIT,
 * PROMPTD_IDLE_TIMEOUT, PROMPTD_HEADER_TIMEOUT (seconds a request's headers
 * may take to arrive, default 10; 0 = no limit), PROMPTD_THREADS,
 * PROMPTD_STREAM_BUFFER (bytes one streamed answer may hold for a client
 * that reads slower than the model before the model is paused, default
 * 256K), PROMPTD_STREAM_BUFFER_TOTAL (the same for all streams together,
 * default 64M), PROMPTD_STREAM_STALL_TIMEOUT (seconds a stream's client may
 * take nothing while bytes wait for it before it is disconnected, default
 * 30; its execution still completes and is recorded whole),
 * PROMPTD_LOG_LEVEL,
 * PROMPTD_RATE_LIMIT_PER_MINUTE (per API key, default 60; 0 = off),
 * PROMPTD_RATE_LIMIT_PER_DAY (per user, default 500; 0 = off),
 * PROMPTD_RATE_LIMIT_PER_ADDRESS (requests that do not authenticate, per
 * client address, default 60 a minute; 0 = off), and the three windows'
 * lengths in seconds: PROMPTD_RATE_LIMIT_KEY_WINDOW (default 60),
 * PROMPTD_RATE_LIMIT_USER_WINDOW (default 86400),
 * PROMPTD_RATE_LIMIT_ADDRESS_WINDOW (default 60), 1..31622400 (config file:
 * rate_limit_per_address, rate_limit_key_window_s, rate_limit_user_window_s,
 * rate_limit_address_window_s),
 * PROMPTD_JWT_SECRET (HS256 secret for promptd's own tokens) and
 * PROMPTD_JWT_PREVIOUS_SECRET (the one before a rotation, still accepted);
 * without them the secret file PROMPTD_JWT_SECRET_FILE (default
 * "<db>.jwt-secret", see auth/secret.h), PROMPTD_JWT_PUBLIC_KEY_FILE (an identity
 * provider's RS256 public key, PEM), PROMPTD_JWT_ISSUER and PROMPTD_JWT_AUDIENCE
 * (that provider's iss and aud), PROMPTD_JWT_DEFAULT_ORG (organization of
 * provider tokens without an "org" claim; default "default"),
 * PROMPTD_JWT_LINK_ADMINS (1: a provider's user whose verified email is a
 * local admin's may become that admin; default 0, never).
 */
#ifndef PROMPTD_CONFIG_H
#define PROMPTD_CONFIG_H

#include <jansson.h>
#include <stddef.h>

#define CONFIG_STREAM_BUFFER_MIN 4096 /* smaller stream buffers would pause the model at every few pieces */

typedef struct config {
    char listen[256];
    char db[1024];
    char config_file[1024];
    size_t body_limit;
    unsigned idle_timeout_s;
    unsigned header_timeout_s; /* total time to receive a request's headers; 0 = no limit */
    unsigned threads;
    size_t stream_buffer;            /* per stream; see http.h, http_server_config */
    size_t stream_buffer_total;      /* all streams together */
    unsigned stream_stall_timeout_s; /* a stream's client taking nothing this long is disconnected */
    long rate_limit_per_minute; /* per API key; 0 = off */
    long rate_limit_per_day;    /* per user; 0 = off */
    long rate_limit_per_address; /* unauthenticated requests per client address; 0 = off */
    long rate_limit_key_window_s, rate_limit_user_window_s, rate_limit_address_window_s;
    long cluster_members_max;      /* members one cluster may have (default 32) */
    long cluster_replies_max;      /* replies one cluster message may ask for (default 32) */
    char jwt_secret[256];          /* "" = the secret file's */
    char jwt_previous_secret[256]; /* "" = none; only with jwt_secret */
    char jwt_secret_file[1024];    /* "" = "<db>.jwt-secret" */
    char jwt_public_key_file[1024];
    char jwt_issuer[256], jwt_audience[256];
    char jwt_default_org[128];
    int jwt_link_admins; /* a provider's verified email may bind a local admin */
    json_t *file_root; /* parsed config file or NULL; owned */
} config;

/* Defaults, then the environment (and the file PROMPTD_CONFIG names). */
int config_init(config *c, char *err, size_t errlen);
/* Load a config file; its values apply, then the environment again on top
 * (flags are applied by the caller afterwards). */
int config_load_file(config *c, const char *path, char *err, size_t errlen);
void config_free(config *c);

#endif
