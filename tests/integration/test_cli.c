/*
 * test_cli.c — the promptd command line: help texts, exit codes, migrate,
 * keys create/list/revoke, the first-start admin key (printed once, on
 * stdout), PROMPTD_ADMIN_KEY rules, bad serve options, and a clean exit 0 on
 * SIGTERM / SIGINT.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/harness.h"

static char DIR_[256];
static char DB[320];
static pd_server S; /* for the tests that use a harness server */

static void setup(void)
{
    cr_assert_eq(pd_mkdtemp(DIR_, sizeof DIR_), 0);
    snprintf(DB, sizeof DB, "%s/cli.db", DIR_);
    memset(&S, 0, sizeof S);
}

static void teardown(void)
{
    pd_stop(&S);
    if (getenv("PD_KEEP"))
        fprintf(stderr, "kept %s\n", DIR_);
    else
        pd_rmrf(DIR_);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

#define OUT_MAX 16384
static char OUT[OUT_MAX], ERR[OUT_MAX];

/* Run promptd with args (NULL-terminated list literal), capturing OUT / ERR. */
#define RUN(...) pd_run((const char *const[]){__VA_ARGS__, NULL}, NULL, 20000, OUT, sizeof OUT, ERR, sizeof ERR)
#define RUN_ENV(env, ...)                                                                                              \
    pd_run((const char *const[]){__VA_ARGS__, NULL}, (env), 20000, OUT, sizeof OUT, ERR, sizeof ERR)

/* A clean failure: non-zero, and not a crash. */
static void assert_clean_failure(int rc, const char *what)
{
    cr_assert(rc > 0 && rc < 128, "%s: exit code %d (want a clean non-zero exit)\nstdout: %s\nstderr: %s", what, rc,
              OUT, ERR);
}

static int is_generated_key(const char *s, size_t n)
{
    if (n != 48 || strncmp(s, "pk_live_", 8) != 0)
        return 0;
    for (size_t i = 8; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- help and version */

Test(cli, help_texts_exit_zero)
{
    struct {
        const char *args[4];
        const char *must[3];
    } cases[] = {
        {{"--help"}, {"Usage: promptd COMMAND", "serve", "keys"}},
        {{"-h"}, {"Usage: promptd COMMAND", "migrate", NULL}},
        {{"help"}, {"Usage: promptd COMMAND", "version", NULL}},
        {{"serve", "--help"}, {"Usage: promptd serve", "--listen", "--body-limit"}},
        {{"serve", "-h"}, {"Usage: promptd serve", "--db", NULL}},
        {{"migrate", "--help"}, {"Usage: promptd migrate", "--db", NULL}},
        {{"keys", "--help"}, {"promptd keys create", "promptd keys list", "promptd keys revoke"}},
        {{"keys", "create", "--help"}, {"promptd keys create", NULL, NULL}},
        {{"version", "--help"}, {"Usage: promptd version", NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = pd_run(cases[i].args, NULL, 20000, OUT, sizeof OUT, ERR, sizeof ERR);
        cr_assert_eq(rc, 0, "promptd %s %s: exit %d\n%s", cases[i].args[0], cases[i].args[1] ? cases[i].args[1] : "",
                     rc, ERR);
        for (size_t k = 0; k < 3 && cases[i].must[k]; k++)
            cr_assert(strstr(OUT, cases[i].must[k]), "promptd %s %s: stdout lacks '%s':\n%s", cases[i].args[0],
                      cases[i].args[1] ? cases[i].args[1] : "", cases[i].must[k], OUT);
    }
}

Test(cli, version)
{
    const char *forms[] = {"version", "--version"};
    for (size_t i = 0; i < 2; i++) {
        int rc = pd_run((const char *const[]){forms[i], NULL}, NULL, 20000, OUT, sizeof OUT, ERR, sizeof ERR);
        cr_assert_eq(rc, 0);
        int a, b, c;
        cr_assert_eq(sscanf(OUT, "promptd %d.%d.%d", &a, &b, &c), 3, "version output: %s", OUT);
    }
}

Test(cli, unknown_command_fails)
{
    int rc = RUN("frobnicate");
    assert_clean_failure(rc, "unknown command");
    cr_assert(strstr(ERR, "unknown command"), "%s", ERR);
    cr_assert(strstr(ERR, "frobnicate"), "%s", ERR);
    rc = pd_run((const char *const[]){NULL}, NULL, 20000, OUT, sizeof OUT, ERR, sizeof ERR);
    assert_clean_failure(rc, "no command");
    cr_assert(strstr(ERR, "Usage"), "%s", ERR);
    rc = RUN("serve", "--no-such-option");
    assert_clean_failure(rc, "unknown serve option");
}

/* ---------------------------------------------------------------- migrate */

Test(cli, migrate_prints_the_schema_version)
{
    int rc = RUN("migrate", "--db", DB);
    cr_assert_eq(rc, 0, "%s", ERR);
    const char *p = strstr(OUT, "schema version ");
    cr_assert_not_null(p, "%s", OUT);
    int v1 = atoi(p + strlen("schema version "));
    cr_assert_geq(v1, 1, "%s", OUT);
    cr_assert(access(DB, F_OK) == 0, "migrate did not create the database");
    /* again: nothing to do, same version */
    rc = RUN("migrate", "--db", DB);
    cr_assert_eq(rc, 0, "%s", ERR);
    p = strstr(OUT, "schema version ");
    cr_assert_not_null(p);
    cr_assert_eq(atoi(p + strlen("schema version ")), v1);
    /* PROMPTD_DB names the database too */
    char env[400];
    snprintf(env, sizeof env, "PROMPTD_DB=%s/env.db", DIR_);
    rc = RUN_ENV(((const char *const[]){env, NULL}), "migrate");
    cr_assert_eq(rc, 0, "%s", ERR);
    char envdb[400];
    snprintf(envdb, sizeof envdb, "%s/env.db", DIR_);
    cr_assert(access(envdb, F_OK) == 0, "PROMPTD_DB was not used");
}

Test(cli, migrate_unusable_location_fails)
{
    int rc = RUN("migrate", "--db", "/nonexistent-dir/for/sure/x.db");
    assert_clean_failure(rc, "migrate on a missing directory");
    cr_assert(strlen(ERR) > 0, "no message");
}

/* serve on DB as a user who may read the database but not write it: root drops to nobody
 * (root writes any file whatever its mode), anyone else gets a file of mode 0444. Returns the
 * exit code; stderr into ERR. */
static int serve_read_only(void)
{
    char err_path[400];
    snprintf(err_path, sizeof err_path, "%s/serve.err", DIR_);
    cr_assert_eq(chmod(DIR_, 0755), 0);
    cr_assert_eq(chmod(DB, 0444), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(120);
        if (getuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
            _exit(121);
        execl(pd_bin(), pd_bin(), "serve", "--listen", "127.0.0.1:0", "--db", DB, (char *)NULL);
        _exit(122);
    }
    int rc = pd_wait(pid, 20000);
    char *err = pd_read_file(err_path);
    snprintf(ERR, sizeof ERR, "%s", err ? err : "");
    free(err);
    return rc;
}

Test(cli, serve_on_a_read_only_database_says_so)
{
    cr_assert_eq(RUN("migrate", "--db", DB), 0, "migrate: %s", ERR);
    int rc = serve_read_only();
    cr_assert(rc > 0 && rc < 120, "serve on a read-only database: exit code %d (want a clean failure): %s", rc, ERR);
    cr_assert(strstr(ERR, "read-only") && strstr(ERR, DB), "the message should say the database is read-only: %s",
              ERR);
}

/* ---------------------------------------------------------------- keys */

/* keys create --org org: the printed key into key (>= 64 bytes). */
static void create_key(const char *org, char *key)
{
    int rc = RUN("keys", "create", "--org", org, "--db", DB);
    cr_assert_eq(rc, 0, "keys create: %d %s", rc, ERR);
    size_t n = strcspn(OUT, "\n");
    cr_assert(is_generated_key(OUT, n), "not a generated key: '%s'", OUT);
    cr_assert_eq(OUT[n], '\n');
    cr_assert_eq(OUT[n + 1], '\0', "more than the key on stdout: '%s'", OUT);
    memcpy(key, OUT, n);
    key[n] = '\0';
}

Test(cli, keys_create_prints_a_key)
{
    char k1[64], k2[64];
    create_key("acme", k1);
    create_key("acme", k2);
    cr_assert_str_neq(k1, k2);
    /* the secret goes to stdout only */
    create_key("beta", k1);
    cr_assert_null(strstr(ERR, k1), "the key was printed on stderr too");
    int rc = RUN("keys", "create", "--db", DB);
    assert_clean_failure(rc, "keys create without --org");
    cr_assert(strstr(ERR, "--org"), "%s", ERR);
    rc = RUN("keys", "create", "--org", "", "--db", DB);
    assert_clean_failure(rc, "keys create with an empty --org");
}

Test(cli, keys_list_shows_prefixes_not_keys)
{
    char a1[64], a2[64], b1[64];
    create_key("acme", a1);
    create_key("acme", a2);
    create_key("beta", b1);
    int rc = RUN("keys", "list", "--db", DB);
    cr_assert_eq(rc, 0, "%s", ERR);
    const char *keys[] = {a1, a2, b1};
    for (size_t i = 0; i < 3; i++) {
        char prefix[17];
        snprintf(prefix, sizeof prefix, "%.16s", keys[i]);
        cr_assert(strstr(OUT, prefix), "prefix %s not listed:\n%s", prefix, OUT);
        cr_assert_null(strstr(OUT, keys[i]), "a full key is listed:\n%s", OUT);
        /* not even 17 characters of it */
        char longer[18];
        snprintf(longer, sizeof longer, "%.17s", keys[i]);
        cr_assert_null(strstr(OUT, longer), "more than the prefix is listed:\n%s", OUT);
    }
    cr_assert(strstr(OUT, "acme") && strstr(OUT, "beta"), "%s", OUT);
    cr_assert_eq(pd_count(OUT, "active"), 3, "%s", OUT);

    rc = RUN("keys", "list", "--org", "beta", "--db", DB);
    cr_assert_eq(rc, 0);
    char pa[17], pb[17];
    snprintf(pa, sizeof pa, "%.16s", a1);
    snprintf(pb, sizeof pb, "%.16s", b1);
    cr_assert(strstr(OUT, pb), "%s", OUT);
    cr_assert_null(strstr(OUT, pa), "--org beta lists acme's key:\n%s", OUT);

    rc = RUN("keys", "list", "--org", "nobody", "--db", DB);
    cr_assert_eq(rc, 0);
    cr_assert_null(strstr(OUT, "pk_live_"), "%s", OUT);
}

Test(cli, keys_revoke)
{
    char a[64], b[64];
    create_key("acme", a);
    create_key("acme", b);
    char pa[17], pb[17];
    snprintf(pa, sizeof pa, "%.16s", a);
    snprintf(pb, sizeof pb, "%.16s", b);

    int rc = RUN("keys", "revoke", pa, "--db", DB);
    cr_assert_eq(rc, 0, "%s", ERR);
    rc = RUN("keys", "list", "--db", DB);
    cr_assert_eq(rc, 0);
    /* a's row is no longer active, b's still is */
    const char *row_a = strstr(OUT, pa), *row_b = strstr(OUT, pb);
    cr_assert(row_a && row_b, "%s", OUT);
    size_t la = strcspn(row_a, "\n"), lb = strcspn(row_b, "\n");
    char line_a[512], line_b[512];
    snprintf(line_a, sizeof line_a, "%.*s", (int)la, row_a);
    snprintf(line_b, sizeof line_b, "%.*s", (int)lb, row_b);
    cr_assert_null(strstr(line_a, "active"), "revoked key still active: %s", line_a);
    cr_assert(strstr(line_b, "active"), "%s", line_b);

    /* again: fine */
    rc = RUN("keys", "revoke", pa, "--db", DB);
    cr_assert_eq(rc, 0, "revoking twice: %s", ERR);

    rc = RUN("keys", "revoke", "pk_live_NOSUCHKEY", "--db", DB);
    assert_clean_failure(rc, "revoking an unknown prefix");
    cr_assert(strstr(ERR, "pk_live_NOSUCHKEY"), "%s", ERR);
    rc = RUN("keys", "revoke", "--db", DB);
    assert_clean_failure(rc, "revoke without a prefix");
    rc = RUN("keys", "revoke", pa, pb, "--db", DB);
    assert_clean_failure(rc, "revoke with two prefixes");
}

Test(cli, keys_bad_subcommands)
{
    int rc = RUN("keys", "--db", DB);
    assert_clean_failure(rc, "keys without a subcommand");
    rc = RUN("keys", "explode", "--db", DB);
    assert_clean_failure(rc, "keys explode");
    cr_assert(strstr(ERR, "explode"), "%s", ERR);
    rc = pd_run((const char *const[]){"keys", NULL}, NULL, 20000, OUT, sizeof OUT, ERR, sizeof ERR);
    assert_clean_failure(rc, "bare keys");
}

/* ---------------------------------------------------------------- serve: the admin key */

/* Start serve on DB with stdout / stderr into separate files; wait until listening. */
static pid_t serve_split(const char *out_path, const char *err_path, const char *const *env, int *port)
{
    const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--db", DB, NULL};
    pid_t pid = pd_spawn(args, env, out_path, err_path);
    cr_assert_gt(pid, 0);
    *port = pd_wait_listening(err_path, pid, 5000);
    if (*port <= 0) {
        char *log = pd_read_file(err_path);
        cr_assert_fail("serve did not start:\n%s", log ? log : "");
    }
    return pid;
}

Test(cli, first_start_prints_a_key_once)
{
    char out1[400], err1[400], out2[400], err2[400];
    snprintf(out1, sizeof out1, "%s/out1", DIR_);
    snprintf(err1, sizeof err1, "%s/err1", DIR_);
    snprintf(out2, sizeof out2, "%s/out2", DIR_);
    snprintf(err2, sizeof err2, "%s/err2", DIR_);
    const char *const no_key[] = {"PROMPTD_ADMIN_KEY", NULL};

    int port;
    pid_t pid = serve_split(out1, err1, no_key, &port);
    char *out = pd_read_file(out1), *err = pd_read_file(err1);
    cr_assert_eq(pd_count(out, "pk_live_"), 1, "stdout of the first start:\n%s", out);
    const char *k = strstr(out, "pk_live_");
    size_t n = strcspn(k, " \r\n");
    cr_assert(is_generated_key(k, n), "%s", out);
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)n, k);
    cr_assert_null(strstr(err, key), "the key is in the log (stderr):\n%s", err);
    free(out);
    free(err);

    pd_server s = {.pid = pid, .port = port};
    snprintf(s.base_url, sizeof s.base_url, "http://127.0.0.1:%d", port);
    pd_resp r;
    cr_assert_eq(pd_req(&s, "GET", "/prompts", key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "the printed key does not work: %s", r.body);
    pd_resp_free(&r);
    cr_assert_eq(pd_kill_wait(&s, SIGTERM, 10000), 0);

    /* second start on the same database: no key */
    pid = serve_split(out2, err2, no_key, &port);
    out = pd_read_file(out2);
    cr_assert_null(strstr(out, "pk_live_"), "second start printed a key:\n%s", out);
    cr_assert_null(strstr(out, "admin API key"), "second start printed a key:\n%s", out);
    free(out);
    s.pid = pid;
    s.port = port;
    snprintf(s.base_url, sizeof s.base_url, "http://127.0.0.1:%d", port);
    cr_assert_eq(pd_req(&s, "GET", "/prompts", key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "the first key stopped working: %s", r.body);
    pd_resp_free(&r);
    cr_assert_eq(pd_kill_wait(&s, SIGTERM, 10000), 0);
}

Test(cli, harness_picks_up_a_printed_key)
{
    const char *const no_key[] = {"PROMPTD_ADMIN_KEY", NULL};
    cr_assert_eq(pd_start(&S, NULL, no_key), 0);
    cr_assert(is_generated_key(S.admin_key, strlen(S.admin_key)), "admin_key: '%s'", S.admin_key);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
    /* a restart keeps the database: the same key works, none is printed again */
    cr_assert_eq(pd_restart(&S, NULL, no_key), 0);
    char *log = pd_read_file(S.log_path);
    cr_assert_eq(pd_count(log, "pk_live_"), 1, "%s", log);
    free(log);
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
}

Test(cli, chosen_admin_key_is_not_printed)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0);
    char *log = pd_read_file(S.log_path);
    cr_assert_null(strstr(log, S.admin_key), "PROMPTD_ADMIN_KEY appears in the output:\n%s", log);
    char prefix[17];
    snprintf(prefix, sizeof prefix, "%.16s", S.admin_key);
    cr_assert(strstr(log, prefix), "the chosen key's prefix is not shown:\n%s", log);
    free(log);
}

Test(cli, short_admin_key_refuses_to_start)
{
    const char *bad[] = {"PROMPTD_ADMIN_KEY=short",                        /* 5 */
                         "PROMPTD_ADMIN_KEY=abcdefghijklmnopqrs",          /* 19 */
                         "PROMPTD_ADMIN_KEY=abcdefghij klmnopqrstuvwxyz"}; /* a space */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *const env[] = {bad[i], NULL};
        int rc = RUN_ENV(env, "serve", "--listen", "127.0.0.1:0", "--db", DB);
        assert_clean_failure(rc, bad[i]);
        cr_assert(strstr(ERR, "PROMPTD_ADMIN_KEY"), "%s", ERR);
    }
    /* the database was not bootstrapped with a bad key: a good one works afterwards */
    const char *const good[] = {"PROMPTD_ADMIN_KEY=abcdefghijklmnopqrst", NULL}; /* exactly 20 */
    cr_assert_eq(pd_start(&S, NULL, good), 0);
    cr_assert_str_eq(S.admin_key, "abcdefghijklmnopqrst");
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- serve: options and signals */

Test(cli, serve_rejects_bad_options)
{
    int rc = RUN("serve", "--listen", "not-an-address", "--db", DB);
    assert_clean_failure(rc, "--listen not-an-address");
    static const char *const bad_ports[] = {"127.0.0.1:99999", "127.0.0.1:http", "127.0.0.1:", "127.0.0.1:-1",
                                            "127.0.0.1:80x"};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        rc = RUN("serve", "--listen", bad_ports[i], "--db", DB);
        assert_clean_failure(rc, bad_ports[i]);
    }
    rc = RUN("serve", "--listen", "127.0.0.1:0", "--db", DB, "--body-limit", "lots");
    assert_clean_failure(rc, "--body-limit lots");
    rc = RUN("serve", "--listen", "127.0.0.1:0", "--db", DB, "--body-limit", "0");
    assert_clean_failure(rc, "--body-limit 0");
    rc = RUN("serve", "--listen", "127.0.0.1:0", "--db", DB, "--config", "/nonexistent/promptd.json");
    assert_clean_failure(rc, "--config missing file");
}

Test(cli, serve_refuses_a_busy_port)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", S.port);
    int rc = RUN("serve", "--listen", listen, "--db", DB);
    assert_clean_failure(rc, "serve on a busy port");
    cr_assert(strlen(ERR) > 0);
}

Test(cli, sigterm_stops_cleanly)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/health", NULL, NULL, NULL, &r), 0);
    pd_resp_free(&r);
    cr_assert_eq(pd_kill_wait(&S, SIGTERM, 10000), 0, "exit status after SIGTERM");
    char *log = pd_read_file(S.log_path);
    cr_assert(strstr(log, "SIGTERM"), "%s", log);
    cr_assert(strstr(log, "stopped"), "the log does not say stopped:\n%s", log);
    free(log);
}

Test(cli, sigint_stops_cleanly)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0);
    cr_assert_eq(pd_kill_wait(&S, SIGINT, 10000), 0, "exit status after SIGINT");
    char *log = pd_read_file(S.log_path);
    cr_assert(strstr(log, "stopped"), "%s", log);
    free(log);
}

Test(cli, data_survives_a_restart)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0);
    char id[64];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "durable", "kept {{x}}", id, sizeof id), 201);
    cr_assert_eq(pd_restart(&S, NULL, NULL), 0);
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "durable");
    pd_resp_free(&r);
}
