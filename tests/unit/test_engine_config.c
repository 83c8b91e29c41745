/*
 * test_engine_config.c — loading the engine configuration (engine_config.h):
 * defaults, the JSON file shape, the environment on top, and that every bad
 * value is refused with a message naming the field. Criterion runs each test
 * in its own process, so setenv() here cannot leak into another test.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/engine_config.h"

TestSuite(engine_config, .timeout = 30);

static void clear_env(void)
{
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("ANTHROPIC_BASE_URL");
    unsetenv("PROMPTD_DEFAULT_MODEL");
}

/* Load from JSON text; returns the rc, err holds the message. */
static int load(engine_config *cfg, const char *text, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = text ? json_loads(text, 0, &je) : NULL;
    int rc;

    if (text)
        cr_assert_not_null(root, "test JSON: %s", je.text);
    err[0] = '\0';
    rc = engine_config_load(cfg, root, err, errlen);
    json_decref(root);
    return rc;
}

static const engine_provider_config *find(const engine_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

Test(engine_config, defaults_echo_only)
{
    engine_config cfg;
    char err[256];
    const char *t = NULL;

    clear_env();
    cr_assert_eq(load(&cfg, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.n_providers, 0);
    cr_assert_null(cfg.default_model);
    cr_assert_eq(cfg.retry_max_attempts, 3);
    cr_assert_eq(cfg.retry_base_delay_ms, 250);
    cr_assert_eq(cfg.retry_max_delay_ms, 10000);
    cr_assert_eq(engine_config_route(&cfg, NULL, &t), ENGINE_ROUTE_ECHO);
    cr_assert_str_eq(t, "echo");
    engine_config_free(&cfg);
    engine_config_free(&cfg); /* back in the init state: safe twice */
}

Test(engine_config, full_file)
{
    engine_config cfg, copy;
    char err[256];
    const engine_provider_config *p;
    const engine_fallback *f;
    const char *t = NULL;

    clear_env();
    cr_assert_eq(
        load(&cfg,
             "{\"listen\":\"ignored: other parts of promptd own it\","
             "\"default_model\":\"fast\","
             "\"providers\":[{\"name\":\"local\",\"type\":\"openai\","
             "\"base_url\":\"http://127.0.0.1:11434/v1/\",\"api_key\":\"k\","
             "\"max_concurrency\":64,\"timeout_ms\":60000,\"connect_timeout_ms\":5000},"
             "{\"name\":\"claude\",\"type\":\"anthropic\"}],"
             "\"aliases\":{\"fast\":\"local/llama3.2\"},"
             "\"fallbacks\":{\"fast\":[\"claude/claude-sonnet-4-5\",\"echo\"]},"
             "\"retry\":{\"max_attempts\":5,\"base_delay_ms\":100,\"max_delay_ms\":2000,"
             "\"max_retry_after_ms\":5000}}",
             err, sizeof(err)),
        0, "%s", err);
    p = find(&cfg, "local");
    cr_assert_not_null(p);
    cr_assert_eq(p->type, ENGINE_PROVIDER_OPENAI);
    cr_assert_str_eq(p->base_url, "http://127.0.0.1:11434/v1", "trailing slash dropped");
    cr_assert_str_eq(p->api_key, "k");
    cr_assert_eq(p->max_concurrency, 64);
    cr_assert_eq(p->timeout_ms, 60000);
    cr_assert_eq(p->connect_timeout_ms, 5000);
    p = find(&cfg, "claude");
    cr_assert_not_null(p);
    cr_assert_eq(p->type, ENGINE_PROVIDER_ANTHROPIC);
    cr_assert_str_eq(p->base_url, "https://api.anthropic.com");
    cr_assert_null(p->api_key);
    cr_assert_eq(p->max_concurrency, 256);
    cr_assert_eq(p->timeout_ms, 120000);
    cr_assert_eq(p->connect_timeout_ms, 10000);
    cr_assert_eq(cfg.retry_max_attempts, 5);
    cr_assert_eq(cfg.retry_base_delay_ms, 100);
    cr_assert_eq(cfg.retry_max_delay_ms, 2000);
    cr_assert_eq(cfg.retry_after_max_ms, 5000);
    cr_assert_eq(engine_config_route(&cfg, NULL, &t), 0);
    cr_assert_str_eq(t, "local/llama3.2");
    f = engine_config_fallbacks(&cfg, "local/llama3.2");
    cr_assert_not_null(f, "fallbacks keyed by an alias apply to its target");
    cr_assert_eq(f->n_models, 2);

    cr_assert_eq(engine_config_copy(&copy, &cfg), 0);
    engine_config_free(&cfg);
    cr_assert_str_eq(find(&copy, "local")->api_key, "k");
    cr_assert_str_eq(copy.aliases[0].model, "local/llama3.2");
    cr_assert_eq(engine_config_validate(&copy, err, sizeof(err)), 0, "%s", err);
    engine_config_free(&copy);
}

Test(engine_config, environment_on_top)
{
    engine_config cfg;
    char err[256];
    const engine_provider_config *p;

    clear_env();
    setenv("OPENAI_API_KEY", "sk-env", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant", 1);
    setenv("PROMPTD_DEFAULT_MODEL", "openai/gpt-4o-mini", 1);
    cr_assert_eq(load(&cfg, "{\"default_model\":\"echo\"}", err, sizeof(err)), 0, "%s", err);
    p = find(&cfg, "openai");
    cr_assert_not_null(p);
    cr_assert_str_eq(p->base_url, "https://api.openai.com/v1");
    cr_assert_str_eq(p->api_key, "sk-env");
    p = find(&cfg, "anthropic");
    cr_assert_not_null(p);
    cr_assert_eq(p->type, ENGINE_PROVIDER_ANTHROPIC);
    cr_assert_str_eq(p->base_url, "https://api.anthropic.com");
    cr_assert_str_eq(cfg.default_model, "openai/gpt-4o-mini");
    engine_config_free(&cfg);

    /* a base URL alone (Ollama) is a valid provider without a key; the env
     * updates a provider of the same name from the file, keeping its limits */
    clear_env();
    setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1", 1);
    setenv("ANTHROPIC_API_KEY", "", 1); /* empty = unset */
    cr_assert_eq(load(&cfg,
                      "{\"providers\":[{\"name\":\"openai\",\"api_key\":\"file-key\","
                      "\"max_concurrency\":7}]}",
                      err, sizeof(err)),
                 0, "%s", err);
    p = find(&cfg, "openai");
    cr_assert_str_eq(p->base_url, "http://127.0.0.1:11434/v1");
    cr_assert_str_eq(p->api_key, "file-key");
    cr_assert_eq(p->max_concurrency, 7);
    cr_assert_null(find(&cfg, "anthropic"));
    engine_config_free(&cfg);

    /* api_key_env reads the key from a named variable */
    clear_env();
    setenv("MY_LOCAL_KEY", "from-env", 1);
    cr_assert_eq(load(&cfg,
                      "{\"providers\":[{\"name\":\"l\",\"base_url\":\"http://x\","
                      "\"api_key_env\":\"MY_LOCAL_KEY\"}]}",
                      err, sizeof(err)),
                 0, "%s", err);
    cr_assert_str_eq(find(&cfg, "l")->api_key, "from-env");
    engine_config_free(&cfg);
}

Test(engine_config, bad_values_name_the_field)
{
    static const struct {
        const char *json;
        const char *field;
    } cases[] = {
        {"[]", "config"},
        {"{\"default_model\":3}", "default_model"},
        {"{\"default_model\":\"nowhere/x\"}", "default_model"},
        {"{\"providers\":{}}", "providers"},
        {"{\"providers\":[3]}", "providers[0]"},
        {"{\"providers\":[{\"type\":\"openai\"}]}", "providers[0].name"},
        {"{\"providers\":[{\"name\":\"a/b\"}]}", "providers[0].name"},
        {"{\"providers\":[{\"name\":\"echo\"}]}", "providers[0].name"},
        {"{\"providers\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "providers[1].name"},
        {"{\"providers\":[{\"name\":\"a\",\"type\":\"gemini\"}]}", "providers[0].type"},
        {"{\"providers\":[{\"name\":\"a\",\"base_url\":\"ftp://x\"}]}", "providers[0].base_url"},
        {"{\"providers\":[{\"name\":\"a\",\"base_url\":7}]}", "providers[0].base_url"},
        {"{\"providers\":[{\"name\":\"a\",\"max_concurrency\":0}]}", "providers[0].max_concurrency"},
        {"{\"providers\":[{\"name\":\"a\",\"max_concurrency\":\"9\"}]}",
         "providers[0].max_concurrency"},
        {"{\"providers\":[{\"name\":\"a\",\"timeout_ms\":-5}]}", "providers[0].timeout_ms"},
        {"{\"providers\":[{\"name\":\"a\",\"connect_timeout_ms\":1.5}]}",
         "providers[0].connect_timeout_ms"},
        {"{\"providers\":[{\"name\":\"a\",\"timeout\":5}]}", "providers[0].timeout"},
        {"{\"providers\":[{\"name\":\"a\",\"api_key\":\"k\",\"api_key_env\":\"K\"}]}",
         "providers[0].api_key_env"},
        {"{\"aliases\":[]}", "aliases"},
        {"{\"aliases\":{\"fast\":1}}", "aliases.fast"},
        {"{\"aliases\":{\"fast\":\"openai/gpt-4o\"}}", "aliases.fast"},
        {"{\"aliases\":{\"a\":\"echo\",\"b\":\"a\"}}", "aliases.b"},
        {"{\"fallbacks\":{\"echo\":\"echo\"}}", "fallbacks.echo"},
        {"{\"fallbacks\":{\"echo\":[1]}}", "fallbacks.echo[0]"},
        {"{\"fallbacks\":{\"echo\":[\"x/y\"]}}", "fallbacks.echo[0]"},
        {"{\"fallbacks\":{\"x/y\":[\"echo\"]}}", "fallbacks.x/y"},
        {"{\"retry\":5}", "retry"},
        {"{\"retry\":{\"max_attempts\":0}}", "retry.max_attempts"},
        {"{\"retry\":{\"max_attempts\":100}}", "retry.max_attempts"},
        {"{\"retry\":{\"base_delay_ms\":-1}}", "retry.base_delay_ms"},
        {"{\"retry\":{\"base_delay_ms\":500,\"max_delay_ms\":100}}", "retry.max_delay_ms"},
        {"{\"retry\":{\"attempts\":2}}", "retry.attempts"},
    };
    engine_config cfg;
    char err[256];

    clear_env();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(load(&cfg, cases[i].json, err, sizeof(err)), -1, "accepted: %s",
                     cases[i].json);
        cr_assert(strncmp(err, cases[i].field, strlen(cases[i].field)) == 0,
                  "%s: message \"%s\" does not start with \"%s\"", cases[i].json, err,
                  cases[i].field);
        cr_assert_eq(cfg.n_providers, 0, "left in the init state");
        cr_assert_null(cfg.default_model);
    }
    setenv("OPENAI_BASE_URL", "file:///etc/passwd", 1);
    cr_assert_eq(load(&cfg, NULL, err, sizeof(err)), -1);
    cr_assert(strncmp(err, "OPENAI_BASE_URL", 15) == 0, "%s", err);
    clear_env();
    setenv("PROMPTD_DEFAULT_MODEL", "anthropic/claude", 1);
    cr_assert_eq(load(&cfg, NULL, err, sizeof(err)), -1);
    cr_assert(strncmp(err, "PROMPTD_DEFAULT_MODEL", 21) == 0, "%s", err);
}

Test(engine_config, engine_new_validates_hand_built_configs)
{
    engine_config cfg;
    engine_t *eng = NULL;
    char err[256] = "";

    engine_config_init(&cfg);
    cr_assert_eq(engine_config_set_default(&cfg, "ghost/model"), 0);
    cr_assert_eq(engine_new(&cfg, &eng, err, sizeof(err)), -1);
    cr_assert_null(eng);
    cr_assert(strstr(err, "default_model") != NULL, "%s", err);
    engine_config_free(&cfg);

    engine_config_init(&cfg);
    cr_assert_not_null(engine_config_set_provider(&cfg, "p", ENGINE_PROVIDER_OPENAI, NULL, NULL));
    cfg.providers[0].max_concurrency = 0;
    cr_assert_eq(engine_new(&cfg, &eng, err, sizeof(err)), -1);
    cr_assert(strstr(err, "max_concurrency") != NULL, "%s", err);
    engine_config_free(&cfg);
}
