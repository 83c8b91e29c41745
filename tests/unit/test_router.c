/*
 * test_router.c — http/router: literal, ":param" and "*tail" segments, parameters,
 * trailing slashes and empty segments, 405 allow lists, not found, bad
 * patterns, and limits.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/router.h"

static router *R;

/* Handlers are only compared, never called: any distinct addresses do. */
static int h_list, h_create, h_get, h_put, h_delete, h_versions, h_publish, h_search, h_health, h_deep, h_model,
    h_model_x;

static void setup(void)
{
    R = router_new();
    cr_assert_not_null(R);
    cr_assert_eq(router_add(R, "GET", "/health", &h_health, 7), 0);
    cr_assert_eq(router_add(R, "GET", "/prompts", &h_list, 0), 0);
    cr_assert_eq(router_add(R, "POST", "/prompts", &h_create, 0), 0);
    cr_assert_eq(router_add(R, "GET", "/prompts/search", &h_search, 0), 0); /* literal before the parameter */
    cr_assert_eq(router_add(R, "GET", "/prompts/:id", &h_get, 0), 0);
    cr_assert_eq(router_add(R, "PUT", "/prompts/:id", &h_put, 0), 0);
    cr_assert_eq(router_add(R, "DELETE", "/prompts/:id", &h_delete, 0), 0);
    cr_assert_eq(router_add(R, "GET", "/prompts/:id/versions", &h_versions, 0), 0);
    cr_assert_eq(router_add(R, "POST", "/prompts/:id/versions/:version_id/publish", &h_publish, 0), 0);
    cr_assert_eq(router_add(R, "GET", "/a/:b/c/:d/e/:f/g/:h", &h_deep, 0), 0);
    cr_assert_eq(router_add(R, "GET", "/v1/models/*model", &h_model, 0), 0);
    cr_assert_eq(router_add(R, "DELETE", "/v1/:kind/*model", &h_model_x, 0), 0);
}

static void teardown(void) { router_free(R); }

TestSuite(router, .init = setup, .fini = teardown);

static void *match_ok(const char *method, const char *path, router_match *m)
{
    int rc = router_match_path(R, method, path, m);
    cr_assert_eq(rc, ROUTER_FOUND, "%s %s: rc %d", method, path, rc);
    return m->handler;
}

Test(router, literal_routes)
{
    router_match m;
    cr_assert_eq(match_ok("GET", "/health", &m), &h_health);
    cr_assert_eq(m.flags, 7, "flags are handed back");
    cr_assert_eq(m.nparams, 0);
    cr_assert_eq(match_ok("GET", "/prompts", &m), &h_list);
    cr_assert_eq(match_ok("POST", "/prompts", &m), &h_create);
    cr_assert_eq(m.flags, 0);
}

Test(router, parameters)
{
    router_match m;
    cr_assert_eq(match_ok("GET", "/prompts/abc-123", &m), &h_get);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(router_param(&m, "id"), "abc-123");
    cr_assert_null(router_param(&m, "version_id"));
    cr_assert_null(router_param(&m, "nope"));

    cr_assert_eq(match_ok("POST", "/prompts/p1/versions/v9/publish", &m), &h_publish);
    cr_assert_eq(m.nparams, 2);
    cr_assert_str_eq(router_param(&m, "id"), "p1");
    cr_assert_str_eq(router_param(&m, "version_id"), "v9");

    cr_assert_eq(match_ok("GET", "/a/1/c/2/e/3/g/4", &m), &h_deep);
    cr_assert_eq(m.nparams, 4);
    cr_assert_str_eq(router_param(&m, "b"), "1");
    cr_assert_str_eq(router_param(&m, "d"), "2");
    cr_assert_str_eq(router_param(&m, "f"), "3");
    cr_assert_str_eq(router_param(&m, "h"), "4");
}

Test(router, parameter_values_are_copies)
{
    char path[64] = "/prompts/first";
    router_match m;
    match_ok("GET", path, &m);
    strcpy(path, "/prompts/other");
    cr_assert_str_eq(router_param(&m, "id"), "first", "a parameter points into the caller's path");
}

Test(router, literal_beats_parameter_registered_after_it)
{
    router_match m;
    cr_assert_eq(match_ok("GET", "/prompts/search", &m), &h_search);
    cr_assert_eq(m.nparams, 0);
    cr_assert_eq(match_ok("GET", "/prompts/searching", &m), &h_get);
    cr_assert_str_eq(router_param(&m, "id"), "searching");
    /* the literal exists only for GET: other methods fall to the parameter route */
    cr_assert_eq(match_ok("PUT", "/prompts/search", &m), &h_put);
    cr_assert_str_eq(router_param(&m, "id"), "search");
}

Test(router, trailing_slash_and_empty_segments)
{
    router_match m;
    cr_assert_eq(match_ok("GET", "/prompts/", &m), &h_list);
    cr_assert_eq(match_ok("GET", "//prompts", &m), &h_list);
    cr_assert_eq(match_ok("GET", "/prompts//x//versions/", &m), &h_versions);
    cr_assert_str_eq(router_param(&m, "id"), "x");
    cr_assert_eq(match_ok("GET", "/health/", &m), &h_health);
}

Test(router, not_found)
{
    router_match m;
    const char *paths[] = {"/",
                           "",
                           "/nope",
                           "/prompts/x/y",
                           "/prompts/x/versions/y",
                           "/health/x",
                           "/promptsx",
                           "/Prompts",
                           "/prompts/x/versions/y/publish/z",
                           "/a/1/c/2/e/3/g"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int rc = router_match_path(R, "GET", paths[i], &m);
        cr_assert_eq(rc, ROUTER_NOT_FOUND, "'%s': rc %d", paths[i], rc);
        cr_assert_null(m.handler);
    }
}

Test(router, method_not_allowed_lists_methods)
{
    router_match m;
    int rc = router_match_path(R, "PATCH", "/prompts", &m);
    cr_assert_eq(rc, ROUTER_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET, POST");

    rc = router_match_path(R, "POST", "/prompts/abc", &m);
    cr_assert_eq(rc, ROUTER_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET, PUT, DELETE");

    rc = router_match_path(R, "DELETE", "/health", &m);
    cr_assert_eq(rc, ROUTER_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET");

    rc = router_match_path(R, "GET", "/prompts/x/versions/y/publish", &m);
    cr_assert_eq(rc, ROUTER_BAD_METHOD);
    cr_assert_str_eq(m.allow, "POST");

    /* /prompts/search: GET literal plus PUT / DELETE through the parameter, GET once */
    rc = router_match_path(R, "POST", "/prompts/search", &m);
    cr_assert_eq(rc, ROUTER_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET, PUT, DELETE");
}

Test(router, a_tail_takes_the_rest_of_the_path_with_its_slashes)
{
    router_match m;
    cr_assert_eq(match_ok("GET", "/v1/models/echo", &m), &h_model);
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(router_param(&m, "model"), "echo");
    cr_assert_eq(match_ok("GET", "/v1/models/openai/gpt-4o", &m), &h_model);
    cr_assert_str_eq(router_param(&m, "model"), "openai/gpt-4o");
    cr_assert_eq(match_ok("GET", "/v1/models/a/b/c/", &m), &h_model);
    cr_assert_str_eq(router_param(&m, "model"), "a/b/c", "a trailing slash is not part of it");
    cr_assert_eq(match_ok("GET", "/v1/models/a//b", &m), &h_model);
    cr_assert_str_eq(router_param(&m, "model"), "a//b", "the path's own text, slashes as sent");
    cr_assert_eq(match_ok("DELETE", "/v1/models/openai/x", &m), &h_model_x);
    cr_assert_str_eq(router_param(&m, "kind"), "models");
    cr_assert_str_eq(router_param(&m, "model"), "openai/x");

    /* a tail takes one segment at least */
    cr_assert_eq(router_match_path(R, "GET", "/v1/models", &m), ROUTER_NOT_FOUND);
    cr_assert_eq(router_match_path(R, "GET", "/v1/models/", &m), ROUTER_NOT_FOUND);
    cr_assert_eq(router_match_path(R, "POST", "/v1/models/openai/x", &m), ROUTER_BAD_METHOD);
    cr_assert_str_eq(m.allow, "GET, DELETE");
    cr_assert_eq(router_add(R, "GET", "/x/*rest/y", &h_list, 0), -1, "a tail must be the last segment");
}

Test(router, methods_are_case_sensitive)
{
    router_match m;
    cr_assert_eq(router_match_path(R, "get", "/prompts", &m), ROUTER_BAD_METHOD);
}

Test(router, a_match_resets_the_previous_one)
{
    router_match m;
    match_ok("POST", "/prompts/p/versions/v/publish", &m);
    cr_assert_eq(router_match_path(R, "PATCH", "/prompts", &m), ROUTER_BAD_METHOD);
    cr_assert_eq(m.nparams, 0);
    cr_assert_null(router_param(&m, "id"));
    cr_assert_eq(router_match_path(R, "GET", "/health", &m), ROUTER_FOUND);
    cr_assert_str_eq(m.allow, "");
}

Test(router, bad_patterns_are_refused)
{
    cr_assert_eq(router_add(R, "LONGMETHOD", "/x", &h_list, 0), -1, "method longer than the route's buffer");
    char deep[512] = "";
    for (int i = 0; i < ROUTER_MAX_SEGMENTS + 1; i++)
        strcat(deep, "/s");
    cr_assert_eq(router_add(R, "GET", deep, &h_list, 0), -1, "too many segments");
    char exact[512] = "";
    for (int i = 0; i < ROUTER_MAX_SEGMENTS; i++)
        strcat(exact, "/s");
    cr_assert_eq(router_add(R, "GET", exact, &h_deep, 0), 0);
    router_match m;
    cr_assert_eq(match_ok("GET", exact, &m), &h_deep);
}

Test(router, overlong_paths_do_not_match)
{
    char path[4096];
    memset(path, 'a', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    router_match m;
    cr_assert_eq(router_match_path(R, "GET", path, &m), ROUTER_NOT_FOUND);
    char deep[512] = "/prompts";
    for (int i = 0; i < ROUTER_MAX_SEGMENTS + 4; i++)
        strcat(deep, "/x");
    cr_assert_eq(router_match_path(R, "GET", deep, &m), ROUTER_NOT_FOUND);
}

Test(router, empty_router)
{
    router *e = router_new();
    router_match m;
    cr_assert_eq(router_match_path(e, "GET", "/anything", &m), ROUTER_NOT_FOUND);
    router_free(e);
    router_free(NULL);
}

Test(router, many_routes)
{
    router *r = router_new();
    static int handlers[200];
    char pat[64];
    for (int i = 0; i < 200; i++) {
        snprintf(pat, sizeof pat, "/r%d/:id", i);
        cr_assert_eq(router_add(r, "GET", pat, &handlers[i], i), 0);
    }
    router_match m;
    for (int i = 0; i < 200; i += 37) {
        snprintf(pat, sizeof pat, "/r%d/v%d", i, i);
        cr_assert_eq(router_match_path(r, "GET", pat, &m), ROUTER_FOUND);
        cr_assert_eq(m.handler, &handlers[i]);
        cr_assert_eq(m.flags, i);
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        cr_assert_str_eq(router_param(&m, "id"), want);
    }
    router_free(r);
}
