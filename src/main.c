/*
 * main.c — the promptd command line: serve, migrate, keys, version.
 *
 * serve: open (and migrate) the store, create the first organization and
 * admin key on an empty database, start the HTTP server, wait for SIGINT or
 * SIGTERM, then stop accepting, let in-flight requests finish, exit 0.
 * Signals are blocked in every thread and taken with sigwait() here, so no
 * handler runs inside library code.
 */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api.h"
#include "auth/keys.h"
#include "auth/secret.h"
#include "config.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/version.h"
#include "core/dispatcher.h"
#include "core/recorder.h"
#include "engine/engine.h"
#include "engine/engine_config.h"
#include "http/http.h"
#include "store/store.h"

#define DEFAULT_ORG "default"
#define DEFAULT_ADMIN_EMAIL "admin@localhost"

static void usage_main(FILE *f)
{
    fprintf(f, "promptd %s — self-hosted prompt execution server\n\n"
               "Usage: promptd COMMAND [OPTIONS]\n\n"
               "Commands:\n"
               "  serve      serve the HTTP APIs (default 127.0.0.1:8080, ./promptd.db)\n"
               "  migrate    create or upgrade the database schema, then exit\n"
               "  keys       create, list and revoke API keys\n"
               "  tokens     issue bearer tokens (JWT) for users\n"
               "  version    print the version\n\n"
               "Run 'promptd COMMAND --help' for a command's options.\n",
            PROMPTD_VERSION);
}

static void usage_serve(FILE *f)
{
    fprintf(f, "Usage: promptd serve [--listen HOST:PORT] [--db PATH] [--config FILE] [--body-limit BYTES]\n\n"
               "  --listen HOST:PORT   address to serve on (env PROMPTD_LISTEN; default 127.0.0.1:8080)\n"
               "  --db PATH            SQLite database file (env PROMPTD_DB; default ./promptd.db)\n"
               "  --config FILE        JSON config file (env PROMPTD_CONFIG): server keys and providers\n"
               "  --body-limit BYTES   largest request body (env PROMPTD_BODY_LIMIT; default 1M)\n\n"
               "On first start with an empty database promptd creates the organization 'default',\n"
               "its admin user and an admin API key, printed once. PROMPTD_ADMIN_KEY (20+ characters)\n"
               "makes that first key a known one instead.\n");
}

static void usage_migrate(FILE *f)
{
    fprintf(f, "Usage: promptd migrate [--db PATH]\n\nApplies every pending schema migration and prints the "
               "schema version.\n");
}

static void usage_keys(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  promptd keys create --org NAME [--name LABEL] [--rate-limit PER_MINUTE] [--db PATH]\n"
               "      create the organization and its admin user if missing; print a new key for that admin\n"
               "      (--rate-limit: this key's own requests per minute; 0 = unlimited)\n"
               "  promptd keys list [--org NAME] [--db PATH]\n"
               "      list keys (prefixes only; secrets are never stored)\n"
               "  promptd keys revoke PREFIX [--db PATH]\n"
               "      revoke the key whose shown prefix is PREFIX (takes effect at once, also on a running server)\n");
}

static void usage_tokens(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  promptd tokens create --user EMAIL [--org NAME] [--ttl SECONDS] [--db PATH]\n"
               "      print an HS256 bearer token for the user (organization 'default' unless --org;\n"
               "      lifetime 24 h unless --ttl). Send it as Authorization: Bearer <token>.\n"
               "      The signing secret is PROMPTD_JWT_SECRET, or the secret file's (PROMPTD_JWT_SECRET_FILE,\n"
               "      by default the database's path + \".jwt-secret\", mode 0600, made on first use).\n"
               "  promptd tokens rotate-secret [--db PATH]\n"
               "      put a new signing secret in the secret file; the old one is still accepted, so tokens\n"
               "      already issued stay good until they expire. Servers use it from their next start.\n");
}

static int want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

enum { OPT_LISTEN = 1, OPT_DB, OPT_CONFIG, OPT_BODY_LIMIT, OPT_ORG, OPT_NAME, OPT_USER, OPT_TTL, OPT_RATE };

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN}, {"db", required_argument, NULL, OPT_DB},
    {"config", required_argument, NULL, OPT_CONFIG}, {"body-limit", required_argument, NULL, OPT_BODY_LIMIT},
    {"org", required_argument, NULL, OPT_ORG},       {"name", required_argument, NULL, OPT_NAME},
    {"user", required_argument, NULL, OPT_USER},     {"ttl", required_argument, NULL, OPT_TTL},
    {"rate-limit", required_argument, NULL, OPT_RATE}, {NULL, 0, NULL, 0}};

typedef struct cli {
    config cfg;
    const char *org, *name, *user, *ttl, *rate;
    char *positional[4];
    int npositional;
} cli;

/* Parse options into c (config layered: defaults < file < env < flags). */
static int parse_cli(cli *c, int argc, char **argv, void (*usage)(FILE *))
{
    char err[512];
    const char *listen = NULL, *db = NULL, *file = NULL, *body_limit = NULL;
    int opt;
    optind = 1;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN: listen = optarg; break;
        case OPT_DB: db = optarg; break;
        case OPT_CONFIG: file = optarg; break;
        case OPT_BODY_LIMIT: body_limit = optarg; break;
        case OPT_ORG: c->org = optarg; break;
        case OPT_NAME: c->name = optarg; break;
        case OPT_USER: c->user = optarg; break;
        case OPT_TTL: c->ttl = optarg; break;
        case OPT_RATE: c->rate = optarg; break;
        default: usage(stderr); return -1;
        }
    }
    for (int i = optind; i < argc && c->npositional < 4; i++)
        c->positional[c->npositional++] = argv[i];
    if (config_init(&c->cfg, err, sizeof err) || (file && config_load_file(&c->cfg, file, err, sizeof err))) {
        fprintf(stderr, "promptd: %s\n", err);
        return -1;
    }
    if (listen)
        snprintf(c->cfg.listen, sizeof c->cfg.listen, "%s", listen);
    if (db)
        snprintf(c->cfg.db, sizeof c->cfg.db, "%s", db);
    if (body_limit) {
        char *end;
        unsigned long long v = strtoull(body_limit, &end, 10);
        if (*end || v == 0) {
            fprintf(stderr, "promptd: --body-limit must be a positive number of bytes\n");
            return -1;
        }
        c->cfg.body_limit = (size_t)v;
    }
    return 0;
}

static int open_store(const config *cfg, store_t **out)
{
    char err[512];
    if (store_open(cfg->db, out, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "promptd: %s\n", err);
        return -1;
    }
    return 0;
}

/* First start: the default organization, its admin and the first key. */
static int bootstrap(store_t *store)
{
    char generated[AUTH_KEY_LEN + 1];
    const char *key = getenv("PROMPTD_ADMIN_KEY");
    if (key && *key && !auth_key_acceptable(key)) {
        fprintf(stderr, "promptd: PROMPTD_ADMIN_KEY must be 20 to 256 printable characters without spaces\n");
        return -1;
    }
    int chosen = key && *key;
    if (!chosen) {
        auth_key_generate(generated);
        key = generated;
    }
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    auth_key_prefix(key, prefix);
    auth_key_hash(key, hash);
    int created = 0;
    if (store_bootstrap(store, DEFAULT_ORG, DEFAULT_ADMIN_EMAIL, prefix, hash, &created) != STORE_OK) {
        fprintf(stderr, "promptd: cannot initialise the database\n");
        return -1;
    }
    if (created) {
        log_info("created organization '%s' with admin user %s", DEFAULT_ORG, DEFAULT_ADMIN_EMAIL);
        if (chosen)
            printf("promptd: admin API key set from PROMPTD_ADMIN_KEY (prefix %s)\n", prefix);
        else
            printf("promptd: admin API key (shown once, keep it): %s\n", key);
        fflush(stdout);
    }
    sodium_memzero(generated, sizeof generated);
    return 0;
}

/* A positive integer from the environment, or def. */
static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : 0;
    return v && *v && !*end && n > 0 ? n : def;
}

#define LEGACY_SECRET_SETTING "jwt_hs256_secret" /* where promptd kept the secret before the file */

/*
 * The HS256 secrets: PROMPTD_JWT_SECRET (and PROMPTD_JWT_PREVIOUS_SECRET), else the secret
 * file (auth/secret.h), made on first use. A secret that an older promptd kept in the
 * database moves into the file as the previous one (tokens it signed stay good until they
 * expire) and is then deleted from the database, in that order, so a crash in between only
 * repeats the move.
 */
static int jwt_secrets(const config *cfg, store_t *store, secret_pair *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (cfg->jwt_secret[0]) {
        out->current_len = strlen(cfg->jwt_secret);
        memcpy(out->current, cfg->jwt_secret, out->current_len);
        out->previous_len = strlen(cfg->jwt_previous_secret);
        memcpy(out->previous, cfg->jwt_previous_secret, out->previous_len);
        return 0;
    }
    char path[1100];
    if (cfg->jwt_secret_file[0])
        snprintf(path, sizeof path, "%s", cfg->jwt_secret_file);
    else if (secret_file_default_path(cfg->db, path, sizeof path)) {
        snprintf(err, errlen, "the database path is too long to name a secret file beside it");
        return -1;
    }
    unsigned char legacy[SECRET_MAX];
    size_t legacy_len = 0;
    int lrc = store_setting_get(store, LEGACY_SECRET_SETTING, legacy, sizeof legacy, &legacy_len);
    if (lrc != STORE_OK && lrc != STORE_NOTFOUND) {
        snprintf(err, errlen, "cannot read the database's settings");
        return -1;
    }
    int rc = secret_file_ensure(path, lrc == STORE_OK && legacy_len >= PROMPTD_JWT_MIN_SECRET ? legacy : NULL,
                                legacy_len, out, err, errlen);
    sodium_memzero(legacy, sizeof legacy);
    if (rc == 0 && lrc == STORE_OK && store_setting_delete(store, LEGACY_SECRET_SETTING) != STORE_OK)
        log_warn("could not delete the token secret an older version kept in the database; it is unused");
    return rc;
}

/* Token verification and rate limiters for serve. */
static int setup_auth(const config *cfg, store_t *store, app *a, secret_pair *secrets, char **pem)
{
    char err[1400];
    if (jwt_secrets(cfg, store, secrets, err, sizeof err)) {
        fprintf(stderr, "promptd: cannot set up the token secret: %s\n", err);
        return -1;
    }
    a->jwt.hs256_secret = secrets->current;
    a->jwt.hs256_secret_len = secrets->current_len;
    if (secrets->previous_len) {
        a->jwt.hs256_previous_secret = secrets->previous;
        a->jwt.hs256_previous_secret_len = secrets->previous_len;
    }
    a->jwt.leeway_s = PROMPTD_JWT_DEFAULT_LEEWAY_S;
    if (cfg->jwt_public_key_file[0]) {
        FILE *f = fopen(cfg->jwt_public_key_file, "r");
        char *buf = calloc(1, 16385);
        size_t n = f && buf ? fread(buf, 1, 16384, f) : 0;
        if (f)
            fclose(f);
        if (!n || !cfg->jwt_issuer[0] || !cfg->jwt_audience[0]) {
            free(buf);
            fprintf(stderr, "promptd: PROMPTD_JWT_PUBLIC_KEY_FILE needs a readable PEM file, PROMPTD_JWT_ISSUER and "
                            "PROMPTD_JWT_AUDIENCE\n");
            return -1;
        }
        *pem = buf;
        a->jwt.rs256_public_key_pem = buf;
        a->jwt.rs256_issuer = cfg->jwt_issuer;
        a->jwt.rs256_audience = cfg->jwt_audience;
    }
    if (promptd_jwt_config_check(&a->jwt) != PROMPTD_JWT_OK) {
        fprintf(stderr, "promptd: the bearer token configuration is not usable\n");
        return -1;
    }
    snprintf(a->jwt_default_org, sizeof a->jwt_default_org, "%s", cfg->jwt_default_org);
    a->jwt_link_admins = cfg->jwt_link_admins;
    /* the key and user windows are kept in the database: a restart goes on
     * counting. The key window is always present: with the default off (0),
     * keys with their own limit are still held to it. */
    a->cluster_members_max = cfg->cluster_members_max;
    a->cluster_replies_max = cfg->cluster_replies_max;
    if (!(a->per_minute =
              ratelimit_new_durable(cfg->rate_limit_per_minute, cfg->rate_limit_key_window_s, store, "key", err,
                                    sizeof err)) ||
        (cfg->rate_limit_per_day > 0 &&
         !(a->per_day = ratelimit_new_durable(cfg->rate_limit_per_day, cfg->rate_limit_user_window_s, store, "user",
                                              err, sizeof err)))) {
        fprintf(stderr, "promptd: %s\n", err);
        return -1;
    }
    /* a brake, not a quota: kept in memory */
    if (cfg->rate_limit_per_address > 0 &&
        !(a->per_address = ratelimit_new_memory(cfg->rate_limit_per_address, cfg->rate_limit_address_window_s))) {
        fprintf(stderr, "promptd: out of memory for the per-address rate limit\n");
        return -1;
    }
    log_info("rate limits (0 = off): %ld per %ld s per key, %ld per %ld s per user, %ld per %ld s per client "
             "address without valid credentials",
             cfg->rate_limit_per_minute, cfg->rate_limit_key_window_s, cfg->rate_limit_per_day,
             cfg->rate_limit_user_window_s, cfg->rate_limit_per_address, cfg->rate_limit_address_window_s);
    return 0;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cmd_serve(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        usage_serve(stdout);
        return 0;
    }
    cli c = {0};
    int rc = 1;
    store_t *store = NULL;
    engine_t *engine = NULL;
    dispatcher *disp = NULL;
    recorder *rec = NULL;
    http_server *srv = NULL;
    secret_pair jwt_keys;
    char *jwt_pem = NULL;
    app a = {0};
    char err[512];
    if (parse_cli(&c, argc, argv, usage_serve))
        goto out;

    /* block the stop signals before any thread starts, so only sigwait() sees them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    if (open_store(&c.cfg, &store) || bootstrap(store))
        goto out;
    long interrupted = 0;
    if (store_recover_interrupted(store, &interrupted) == STORE_OK && interrupted)
        log_warn("marked %ld executions or replies interrupted by the last stop as failed", interrupted);
    engine_config ecfg;
    if (engine_config_load(&ecfg, c.cfg.file_root, err, sizeof err)) {
        fprintf(stderr, "promptd: configuration: %s\n", err);
        goto out;
    }
    int erc = engine_new(&ecfg, &engine, err, sizeof err);
    engine_config_free(&ecfg);
    if (erc) {
        fprintf(stderr, "promptd: engine: %s\n", err);
        goto out;
    }
    dispatcher_config dc = {.lease_ms = env_long("PROMPTD_LEASE_MS", 30000),
                            .max_in_flight = (int)env_long("PROMPTD_QUEUE_CONCURRENCY", 1024)};
    if (dispatcher_start(store, engine, &dc, &disp, err, sizeof err)) {
        fprintf(stderr, "promptd: queue: %s\n", err);
        goto out;
    }
    if (recorder_start(store, &rec, err, sizeof err)) {
        fprintf(stderr, "promptd: %s\n", err);
        goto out;
    }
    a.store = store;
    a.engine = engine;
    a.dispatcher = disp;
    a.recorder = rec;
    if (setup_auth(&c.cfg, store, &a, &jwt_keys, &jwt_pem))
        goto out;
    a.body_limit = c.cfg.body_limit;
    if (api_init(&a)) {
        fprintf(stderr, "promptd: cannot build the route table\n");
        goto out;
    }
    http_server_config hc = {.listen = c.cfg.listen,
                             .body_limit = c.cfg.body_limit,
                             .idle_timeout_s = c.cfg.idle_timeout_s,
                             .header_timeout_s = c.cfg.header_timeout_s,
                             .threads = c.cfg.threads,
                             .stream_buffer = c.cfg.stream_buffer,
                             .stream_buffer_total = c.cfg.stream_buffer_total,
                             .stream_stall_timeout_s = c.cfg.stream_stall_timeout_s,
                             .handler = api_dispatch,
                             .own_answer = api_own_answer,
                             .app = &a};
    if (http_server_start(&hc, &srv, err, sizeof err)) {
        fprintf(stderr, "promptd: %s\n", err);
        goto out;
    }
    char shown[300];
    snprintf(shown, sizeof shown, "%s", c.cfg.listen);
    char *colon = strrchr(shown, ':');
    if (colon)
        *colon = '\0';
    log_info("listening on http://%s:%d (database %s, schema version %d)", shown, http_server_port(srv), c.cfg.db,
             store_schema_version(store));

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("received %s: finishing in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_server_quiesce(srv);
    int left = http_server_drain(srv, 10000);
    if (left) {
        /* model calls still running: fail them (503), which answers and resumes their requests */
        log_warn("%d requests still open after 10 s; cancelling their model calls", left);
        engine_shutdown(engine);
        http_server_drain(srv, 2000);
    }
    rc = 0;
out:
    /* async work still running goes back to the queue for the next start */
    dispatcher_quiesce(disp);
    engine_shutdown(engine);
    dispatcher_stop(disp);
    /* after the engine: its last outcomes are queued; they are written and
     * their requests answered before the server stops */
    recorder_stop(rec);
    http_server_stop(srv);
    engine_free(engine);
    api_free(&a);
    /* before the store closes: they write what is still queued */
    ratelimit_free(a.per_minute);
    ratelimit_free(a.per_day);
    ratelimit_free(a.per_address);
    free(jwt_pem);
    secret_pair_clear(&jwt_keys);
    store_close(store);
    config_free(&c.cfg);
    if (rc == 0)
        log_info("stopped");
    return rc;
}

static int cmd_migrate(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        usage_migrate(stdout);
        return 0;
    }
    cli c = {0};
    store_t *store = NULL;
    if (parse_cli(&c, argc, argv, usage_migrate) || open_store(&c.cfg, &store)) {
        config_free(&c.cfg);
        return 1;
    }
    printf("database %s is at schema version %d\n", c.cfg.db, store_schema_version(store));
    store_close(store);
    config_free(&c.cfg);
    return 0;
}

static void print_key_row(const store_key *k)
{
    char created[RFC3339_LEN + 1], revoked[RFC3339_LEN + 1] = "-";
    time_format_rfc3339(k->created_at, created);
    if (k->revoked_at)
        time_format_rfc3339(k->revoked_at, revoked);
    printf("%-18s %-20s %-24s %-8s %-20s %s\n", k->prefix, k->org_name, k->user_email, k->role, created,
           k->revoked_at ? revoked : "active");
}

static int cmd_keys(int argc, char **argv)
{
    if (argc < 2 || want_help(argc, argv)) {
        usage_keys(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    cli c = {0};
    store_t *store = NULL;
    int rc = 1;
    if (parse_cli(&c, argc - 1, argv + 1, usage_keys))
        goto out;
    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke")) {
        fprintf(stderr, "promptd keys: unknown subcommand '%s'\n", sub);
        usage_keys(stderr);
        rc = 2;
        goto out;
    }
    if (!strcmp(sub, "create") && (!c.org || !*c.org)) {
        fprintf(stderr, "promptd keys create: --org NAME is required\n");
        rc = 2;
        goto out;
    }
    if (!strcmp(sub, "revoke") && c.npositional != 1) {
        fprintf(stderr, "promptd keys revoke: give exactly one key PREFIX\n");
        rc = 2;
        goto out;
    }
    if (open_store(&c.cfg, &store))
        goto out;

    if (!strcmp(sub, "create")) {
        char key[AUTH_KEY_LEN + 1], prefix[STORE_KEY_PREFIX_LEN + 1];
        unsigned char hash[STORE_KEY_HASH_LEN];
        store_key row;
        auth_key_generate(key);
        auth_key_prefix(key, prefix);
        auth_key_hash(key, hash);
        if (store_key_create_for_org(store, c.org, c.name ? c.name : "", prefix, hash, &row) != STORE_OK) {
            fprintf(stderr, "promptd keys create: failed\n");
            goto out;
        }
        if (c.rate) {
            char *end;
            long n = strtol(c.rate, &end, 10);
            if (*end || n < 0 || store_key_set_rate_limit(store, row.org_id, prefix, n) != STORE_OK) {
                fprintf(stderr, "promptd keys create: --rate-limit must be requests per minute (0 = unlimited)\n");
                store_key_revoke(store, prefix);
                goto out;
            }
        }
        printf("%s\n", key);
        fprintf(stderr, "created key %s for %s in organization '%s' (shown once)\n", prefix, row.user_email,
                row.org_name);
        sodium_memzero(key, sizeof key);
        rc = 0;
    } else if (!strcmp(sub, "list")) {
        store_key_list l;
        if (store_key_list_all(store, c.org, &l) != STORE_OK) {
            fprintf(stderr, "promptd keys list: failed\n");
            goto out;
        }
        printf("%-18s %-20s %-24s %-8s %-20s %s\n", "PREFIX", "ORGANIZATION", "USER", "ROLE", "CREATED", "STATUS");
        for (size_t i = 0; i < l.count; i++)
            print_key_row(&l.items[i]);
        store_key_list_free(&l);
        rc = 0;
    } else {
        int r = store_key_revoke(store, c.positional[0]);
        if (r == STORE_NOTFOUND)
            fprintf(stderr, "promptd keys revoke: no key with prefix '%s'\n", c.positional[0]);
        else if (r != STORE_OK)
            fprintf(stderr, "promptd keys revoke: failed\n");
        else {
            printf("revoked %s\n", c.positional[0]);
            rc = 0;
        }
    }
out:
    store_close(store);
    config_free(&c.cfg);
    return rc;
}

/* promptd tokens rotate-secret: a new signing secret in the secret file, the old one kept as
 * the previous (still accepted). Servers read the file when they start. */
static int tokens_rotate_secret(const config *cfg)
{
    if (cfg->jwt_secret[0]) {
        fprintf(stderr, "promptd tokens rotate-secret: the secret comes from PROMPTD_JWT_SECRET: rotate it by "
                        "moving it to PROMPTD_JWT_PREVIOUS_SECRET and setting a new PROMPTD_JWT_SECRET\n");
        return 2;
    }
    char path[1100], err[1400];
    if (cfg->jwt_secret_file[0])
        snprintf(path, sizeof path, "%s", cfg->jwt_secret_file);
    else if (secret_file_default_path(cfg->db, path, sizeof path)) {
        fprintf(stderr, "promptd tokens rotate-secret: the database path is too long\n");
        return 1;
    }
    secret_pair p;
    int rc = secret_file_rotate(path, &p, err, sizeof err);
    secret_pair_clear(&p);
    if (rc) {
        fprintf(stderr, "promptd tokens rotate-secret: %s\n", err);
        return 1;
    }
    fprintf(stderr, "rotated the token secret in %s: new tokens are signed with the new secret; tokens signed "
                    "with the old one stay good until they expire. Restart each server (one at a time) to use it.\n",
            path);
    return 0;
}

static int cmd_tokens(int argc, char **argv)
{
    if (argc < 2 || want_help(argc, argv)) {
        usage_tokens(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cli c = {0};
    store_t *store = NULL;
    int rc = 1;
    char *token = NULL;
    store_user u = {0};
    if (parse_cli(&c, argc - 1, argv + 1, usage_tokens))
        goto out;
    if (!strcmp(argv[1], "rotate-secret")) {
        rc = tokens_rotate_secret(&c.cfg);
        goto out;
    }
    if (strcmp(argv[1], "create") != 0 || !c.user || !*c.user) {
        usage_tokens(stderr);
        rc = 2;
        goto out;
    }
    long ttl = PROMPTD_JWT_DEFAULT_LIFETIME_S;
    if (c.ttl) {
        char *end;
        ttl = strtol(c.ttl, &end, 10);
        if (*end || ttl < 60 || ttl > PROMPTD_JWT_MAX_LIFETIME_S) {
            fprintf(stderr, "promptd tokens create: --ttl must be 60 to %ld seconds\n", PROMPTD_JWT_MAX_LIFETIME_S);
            rc = 2;
            goto out;
        }
    }
    if (open_store(&c.cfg, &store))
        goto out;
    store_id org_id;
    if (store_org_find(store, c.org ? c.org : DEFAULT_ORG, org_id, NULL, 0) != STORE_OK) {
        fprintf(stderr, "promptd tokens create: no organization '%s'\n", c.org ? c.org : DEFAULT_ORG);
        goto out;
    }
    if (store_user_find_email(store, org_id, c.user, &u) != STORE_OK) {
        fprintf(stderr, "promptd tokens create: no user '%s' in organization '%s'\n", c.user,
                c.org ? c.org : DEFAULT_ORG);
        goto out;
    }
    secret_pair secrets;
    char err[1400];
    if (jwt_secrets(&c.cfg, store, &secrets, err, sizeof err)) {
        fprintf(stderr, "promptd tokens create: cannot read the signing secret: %s\n", err);
        goto out;
    }
    promptd_jwt_claims claims = {0};
    snprintf(claims.sub, sizeof claims.sub, "%s", u.id);
    snprintf(claims.email, sizeof claims.email, "%s", u.email);
    snprintf(claims.org, sizeof claims.org, "%s", u.org_id);
    snprintf(claims.role, sizeof claims.role, "%s", u.role);
    int jrc = promptd_jwt_issue_hs256(secrets.current, secrets.current_len, &claims, ttl, -1, &token);
    secret_pair_clear(&secrets);
    if (jrc != PROMPTD_JWT_OK) {
        fprintf(stderr, "promptd tokens create: %s\n", promptd_jwt_strerror(jrc));
        goto out;
    }
    printf("%s\n", token);
    fprintf(stderr, "token for %s (%s), valid %ld s\n", u.email, u.role, ttl);
    rc = 0;
out:
    free(token);
    store_user_clear(&u);
    store_close(store);
    config_free(&c.cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "promptd: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        if (argc > 2 && want_help(argc - 1, argv + 1)) {
            printf("Usage: promptd version\n\nPrints the promptd version.\n");
            return 0;
        }
        printf("promptd %s\n", PROMPTD_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "migrate"))
        return cmd_migrate(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys"))
        return cmd_keys(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokens"))
        return cmd_tokens(argc - 1, argv + 1);
    fprintf(stderr, "promptd: unknown command '%s'\n\n", cmd);
    usage_main(stderr);
    return 2;
}
