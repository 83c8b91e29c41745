/*
 * config.c — configuration layering (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    if (*end || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int apply_env(config *c, char *err, size_t errlen)
{
    const char *v;
    if ((v = getenv("PROMPTD_LISTEN")) && *v)
        snprintf(c->listen, sizeof c->listen, "%s", v);
    if ((v = getenv("PROMPTD_DB")) && *v)
        snprintf(c->db, sizeof c->db, "%s", v);
    if ((v = getenv("PROMPTD_BODY_LIMIT")) && *v && parse_size(v, &c->body_limit)) {
        snprintf(err, errlen, "PROMPTD_BODY_LIMIT must be a size such as 1048576 or 1M");
        return -1;
    }
    size_t n;
    if ((v = getenv("PROMPTD_IDLE_TIMEOUT")) && *v) {
        if (parse_size(v, &n) || n > 86400) {
            snprintf(err, errlen, "PROMPTD_IDLE_TIMEOUT must be seconds (1..86400)");
            return -1;
        }
        c->idle_timeout_s = (unsigned)n;
    }
    if ((v = getenv("PROMPTD_HEADER_TIMEOUT")) && *v) { /* 0 is allowed (no limit): parse_size refuses it */
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' || s > 86400) {
            snprintf(err, errlen, "PROMPTD_HEADER_TIMEOUT must be seconds (0 = no limit, at most 86400)");
            return -1;
        }
        c->header_timeout_s = (unsigned)s;
    }
    if ((v = getenv("PROMPTD_STREAM_BUFFER")) && *v &&
        (parse_size(v, &c->stream_buffer) || c->stream_buffer < CONFIG_STREAM_BUFFER_MIN)) {
        snprintf(err, errlen, "PROMPTD_STREAM_BUFFER must be a size of at least 4K, such as 262144 or 256K");
        return -1;
    }
    if ((v = getenv("PROMPTD_STREAM_BUFFER_TOTAL")) && *v &&
        (parse_size(v, &c->stream_buffer_total) || c->stream_buffer_total < CONFIG_STREAM_BUFFER_MIN)) {
        snprintf(err, errlen, "PROMPTD_STREAM_BUFFER_TOTAL must be a size of at least 4K, such as 64M");
        return -1;
    }
    if ((v = getenv("PROMPTD_STREAM_STALL_TIMEOUT")) && *v) {
        if (parse_size(v, &n) || n > 86400) {
            snprintf(err, errlen, "PROMPTD_STREAM_STALL_TIMEOUT must be seconds (1..86400)");
            return -1;
        }
        c->stream_stall_timeout_s = (unsigned)n;
    }
    if ((v = getenv("PROMPTD_THREADS")) && *v) {
        if (parse_size(v, &n) || n > 256) {
            snprintf(err, errlen, "PROMPTD_THREADS must be 1..256");
            return -1;
        }
        c->threads = (unsigned)n;
    }
    const struct {
        const char *env;
        long *dst;
        long min, max;
    } limits[] = {{"PROMPTD_RATE_LIMIT_PER_MINUTE", &c->rate_limit_per_minute, 0, 1000000},
                  {"PROMPTD_RATE_LIMIT_PER_DAY", &c->rate_limit_per_day, 0, 1000000},
                  {"PROMPTD_RATE_LIMIT_PER_ADDRESS", &c->rate_limit_per_address, 0, 1000000},
                  {"PROMPTD_RATE_LIMIT_KEY_WINDOW", &c->rate_limit_key_window_s, 1, 31622400},
                  {"PROMPTD_RATE_LIMIT_USER_WINDOW", &c->rate_limit_user_window_s, 1, 31622400},
                  {"PROMPTD_RATE_LIMIT_ADDRESS_WINDOW", &c->rate_limit_address_window_s, 1, 31622400},
                  {"PROMPTD_CLUSTER_MEMBERS_MAX", &c->cluster_members_max, 1, 10000},
                  {"PROMPTD_CLUSTER_REPLIES_MAX", &c->cluster_replies_max, 1, 10000}};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if ((v = getenv(limits[i].env)) && *v) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || *end || n < limits[i].min || n > limits[i].max) {
                snprintf(err, errlen, "%s must be a number from %ld%s to %ld", limits[i].env, limits[i].min,
                         limits[i].min == 0 ? " (off)" : "", limits[i].max);
                return -1;
            }
            *limits[i].dst = n;
        }
    }
    const struct {
        const char *env;
        char *dst;
        size_t len;
    } strs[] = {{"PROMPTD_JWT_SECRET", c->jwt_secret, sizeof c->jwt_secret},
                {"PROMPTD_JWT_PREVIOUS_SECRET", c->jwt_previous_secret, sizeof c->jwt_previous_secret},
                {"PROMPTD_JWT_SECRET_FILE", c->jwt_secret_file, sizeof c->jwt_secret_file},
                {"PROMPTD_JWT_PUBLIC_KEY_FILE", c->jwt_public_key_file, sizeof c->jwt_public_key_file},
                {"PROMPTD_JWT_ISSUER", c->jwt_issuer, sizeof c->jwt_issuer},
                {"PROMPTD_JWT_AUDIENCE", c->jwt_audience, sizeof c->jwt_audience},
                {"PROMPTD_JWT_DEFAULT_ORG", c->jwt_default_org, sizeof c->jwt_default_org}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if ((v = getenv(strs[i].env)) && *v)
            snprintf(strs[i].dst, strs[i].len, "%s", v);
    if (c->jwt_secret[0] && strlen(c->jwt_secret) < 32) {
        snprintf(err, errlen, "PROMPTD_JWT_SECRET must be at least 32 characters");
        return -1;
    }
    if (c->jwt_previous_secret[0] && (strlen(c->jwt_previous_secret) < 32 || !c->jwt_secret[0])) {
        snprintf(err, errlen, "PROMPTD_JWT_PREVIOUS_SECRET must be at least 32 characters, beside PROMPTD_JWT_SECRET");
        return -1;
    }
    if ((v = getenv("PROMPTD_JWT_LINK_ADMINS")) && *v) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "PROMPTD_JWT_LINK_ADMINS must be 0 or 1");
            return -1;
        }
        c->jwt_link_admins = v[0] == '1';
    }
    if ((v = getenv("PROMPTD_LOG_LEVEL")) && *v) {
        if (!strcmp(v, "debug"))
            log_set_level(LOG_DEBUG);
        else if (!strcmp(v, "warn"))
            log_set_level(LOG_WARN);
        else if (!strcmp(v, "error"))
            log_set_level(LOG_ERROR);
    }
    return 0;
}

int config_init(config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    snprintf(c->db, sizeof c->db, "./promptd.db");
    c->body_limit = 1024 * 1024;
    c->idle_timeout_s = 30;
    c->header_timeout_s = 10;
    c->threads = 2;
    c->stream_buffer = 256 * 1024;
    c->stream_buffer_total = 64 * 1024 * 1024;
    c->stream_stall_timeout_s = 30;
    c->rate_limit_per_minute = 60;
    c->rate_limit_per_day = 500;
    c->rate_limit_per_address = 60;
    c->rate_limit_key_window_s = 60;
    c->rate_limit_user_window_s = 86400;
    c->rate_limit_address_window_s = 60;
    /* one message fans out to one upstream call per member: a bound on what one request costs */
    c->cluster_members_max = 32;
    c->cluster_replies_max = 32;
    snprintf(c->jwt_default_org, sizeof c->jwt_default_org, "default");
    const char *file = getenv("PROMPTD_CONFIG");
    if (file && *file)
        return config_load_file(c, file, err, errlen);
    return apply_env(c, err, errlen);
}

int config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "config file %s: line %d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "config file %s: must hold a JSON object", path);
        json_decref(root);
        return -1;
    }
    json_t *v;
    if ((v = json_object_get(root, "listen")) && json_is_string(v))
        snprintf(c->listen, sizeof c->listen, "%s", json_string_value(v));
    if ((v = json_object_get(root, "db")) && json_is_string(v))
        snprintf(c->db, sizeof c->db, "%s", json_string_value(v));
    if ((v = json_object_get(root, "body_limit"))) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            snprintf(err, errlen, "config file %s: body_limit must be a positive integer", path);
            json_decref(root);
            return -1;
        }
        c->body_limit = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(root, "idle_timeout_s")) && json_is_integer(v) && json_integer_value(v) > 0)
        c->idle_timeout_s = (unsigned)json_integer_value(v);
    if ((v = json_object_get(root, "header_timeout_s")) && json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= 86400)
        c->header_timeout_s = (unsigned)json_integer_value(v);
    if ((v = json_object_get(root, "threads")) && json_is_integer(v) && json_integer_value(v) > 0)
        c->threads = (unsigned)json_integer_value(v);
    const struct {
        const char *name;
        size_t *dst;
    } sizes[] = {{"stream_buffer", &c->stream_buffer}, {"stream_buffer_total", &c->stream_buffer_total}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (!(v = json_object_get(root, sizes[i].name)))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < CONFIG_STREAM_BUFFER_MIN) {
            snprintf(err, errlen, "config file %s: %s must be an integer of at least %d (bytes)", path, sizes[i].name,
                     CONFIG_STREAM_BUFFER_MIN);
            json_decref(root);
            return -1;
        }
        *sizes[i].dst = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(root, "stream_stall_timeout_s"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400) {
            snprintf(err, errlen, "config file %s: stream_stall_timeout_s must be an integer from 1 to 86400", path);
            json_decref(root);
            return -1;
        }
        c->stream_stall_timeout_s = (unsigned)json_integer_value(v);
    }
    if ((v = json_object_get(root, "rate_limit_per_minute")) && json_is_integer(v) && json_integer_value(v) >= 0)
        c->rate_limit_per_minute = (long)json_integer_value(v);
    if ((v = json_object_get(root, "rate_limit_per_day")) && json_is_integer(v) && json_integer_value(v) >= 0)
        c->rate_limit_per_day = (long)json_integer_value(v);
    const struct {
        const char *name;
        long *dst;
        long min;
    } rl[] = {{"rate_limit_per_address", &c->rate_limit_per_address, 0},
              {"rate_limit_key_window_s", &c->rate_limit_key_window_s, 1},
              {"rate_limit_user_window_s", &c->rate_limit_user_window_s, 1},
              {"rate_limit_address_window_s", &c->rate_limit_address_window_s, 1}};
    const struct {
        const char *name;
        long *dst;
    } caps[] = {{"cluster_members_max", &c->cluster_members_max}, {"cluster_replies_max", &c->cluster_replies_max}};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        if (!(v = json_object_get(root, caps[i].name)))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000) {
            snprintf(err, errlen, "config file %s: %s must be an integer from 1 to 10000", path, caps[i].name);
            json_decref(root);
            return -1;
        }
        *caps[i].dst = (long)json_integer_value(v);
    }
    for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
        if (!(v = json_object_get(root, rl[i].name)))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < rl[i].min ||
            json_integer_value(v) > (rl[i].min ? 31622400 : 1000000)) {
            snprintf(err, errlen, "config file %s: %s must be an integer from %ld to %ld", path, rl[i].name,
                     rl[i].min, rl[i].min ? 31622400L : 1000000L);
            json_decref(root);
            return -1;
        }
        *rl[i].dst = (long)json_integer_value(v);
    }
    json_decref(c->file_root);
    c->file_root = root;
    snprintf(c->config_file, sizeof c->config_file, "%s", path);
    return apply_env(c, err, errlen);
}

void config_free(config *c)
{
    json_decref(c->file_root);
    c->file_root = NULL;
}
