/*
 * test_template.c — core/template: variable scanning (order, duplicates,
 * whitespace, escapes), malformed templates with their offsets, and rendering
 * every kind of JSON value.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/template.h"

/* The variables of tpl joined with ',' (the template must be well formed). */
static char *vars_of(const char *tpl)
{
    json_t *names = NULL;
    template_error err;
    cr_assert_eq(template_variables(tpl, &names, &err), 0, "'%s' rejected: %s", tpl, err.message);
    cr_assert(json_is_array(names));
    static char buf[1024];
    buf[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        cr_assert(json_is_string(v));
        if (i)
            strcat(buf, ",");
        strcat(buf, json_string_value(v));
    }
    json_decref(names);
    return buf;
}

/* tpl must be rejected at offset, with msg_part in the message. */
static void assert_malformed(const char *tpl, size_t offset, const char *msg_part)
{
    json_t *names = (json_t *)0x1;
    template_error err = {.offset = 9999};
    cr_assert_eq(template_variables(tpl, &names, &err), -1, "'%s' accepted", tpl);
    cr_assert_eq(err.offset, offset, "'%s': offset %zu, want %zu (%s)", tpl, err.offset, offset, err.message);
    cr_assert(strlen(err.message) > 0);
    if (msg_part)
        cr_assert(strstr(err.message, msg_part), "'%s': message '%s' lacks '%s'", tpl, err.message, msg_part);
    /* render agrees */
    char *out = NULL;
    template_error err2;
    cr_assert_eq(template_render(tpl, NULL, &out, NULL, NULL, &err2), -1, "'%s' rendered", tpl);
    cr_assert_eq(err2.offset, offset);
    cr_assert_null(out);
    /* a NULL error pointer is allowed */
    cr_assert_eq(template_variables(tpl, &names, NULL), -1);
}

/* Render tpl with vars (JSON text or NULL); compare text, used, missing (',' joined). */
static void assert_render(const char *tpl, const char *vars_json, const char *want, const char *want_used,
                          const char *want_missing)
{
    json_t *vars = NULL;
    if (vars_json) {
        json_error_t je;
        vars = json_loads(vars_json, 0, &je);
        cr_assert_not_null(vars, "bad test JSON %s: %s", vars_json, je.text);
    }
    char *out = NULL;
    json_t *used = NULL, *missing = NULL;
    template_error err;
    cr_assert_eq(template_render(tpl, vars, &out, &used, &missing, &err), 0, "'%s': %s", tpl, err.message);
    cr_assert_str_eq(out, want, "render of '%s'", tpl);
    char got[512] = "";
    size_t i;
    json_t *v;
    json_array_foreach(used, i, v)
    {
        if (i)
            strcat(got, ",");
        strcat(got, json_string_value(v));
    }
    cr_assert_str_eq(got, want_used, "used of '%s'", tpl);
    got[0] = '\0';
    json_array_foreach(missing, i, v)
    {
        if (i)
            strcat(got, ",");
        strcat(got, json_string_value(v));
    }
    cr_assert_str_eq(got, want_missing, "missing of '%s'", tpl);
    free(out);
    json_decref(used);
    json_decref(missing);
    json_decref(vars);
}

/* ---------------------------------------------------------------- variables */

Test(template, variables_in_order_without_duplicates)
{
    cr_assert_str_eq(vars_of("{{b}} {{a}} {{b}} {{c}} {{a}}"), "b,a,c");
    cr_assert_str_eq(vars_of("Write a {{tone}} email about {{topic}}."), "tone,topic");
    cr_assert_str_eq(vars_of(""), "");
    cr_assert_str_eq(vars_of("no variables here"), "");
    cr_assert_str_eq(vars_of("{{x}}"), "x");
    cr_assert_str_eq(vars_of("{{x}}{{y}}"), "x,y");
}

Test(template, names_may_hold_dots_dashes_digits)
{
    cr_assert_str_eq(vars_of("{{user.name}} {{first-name}} {{_private}} {{v2}} {{A_B}}"),
                     "user.name,first-name,_private,v2,A_B");
}

Test(template, whitespace_inside_braces)
{
    cr_assert_str_eq(vars_of("{{ name }} {{name}} {{\tname\t}} {{  name}}"), "name");
    cr_assert_str_eq(vars_of("{{ a }}{{ b}}{{c }}"), "a,b,c");
}

Test(template, single_braces_are_text) { cr_assert_str_eq(vars_of("{a} } { }} {x}} json: {\"k\": 1}"), ""); }

Test(template, escaped_braces_are_text)
{
    cr_assert_str_eq(vars_of("\\{{not_a_var}} {{real}}"), "real");
    cr_assert_str_eq(vars_of("\\{{ not even valid"), "");
    assert_render("\\{{x}} and {{x}}", "{\"x\":\"X\"}", "{{x}} and X", "x", "");
    assert_render("a \\{{ b", NULL, "a {{ b", "", "");
    /* a backslash not before {{ stays */
    assert_render("a\\b \\{ c", NULL, "a\\b \\{ c", "", "");
}

Test(template, name_length_limit)
{
    char tpl[TEMPLATE_NAME_MAX + 16];
    char name[TEMPLATE_NAME_MAX + 2];
    memset(name, 'n', TEMPLATE_NAME_MAX);
    name[TEMPLATE_NAME_MAX] = '\0';
    snprintf(tpl, sizeof tpl, "{{%s}}", name);
    cr_assert_str_eq(vars_of(tpl), name);
    name[TEMPLATE_NAME_MAX] = 'n';
    name[TEMPLATE_NAME_MAX + 1] = '\0';
    snprintf(tpl, sizeof tpl, "x {{%s}}", name);
    assert_malformed(tpl, 2, "too long");
}

/* ---------------------------------------------------------------- malformed */

Test(template, malformed_with_offsets)
{
    assert_malformed("{{unclosed", 0, "unclosed");
    assert_malformed("abc {{unclosed", 4, "unclosed");
    assert_malformed("{{", 0, "unclosed");
    assert_malformed("ok {{a}} then {{", 14, "unclosed");
    assert_malformed("{{}}", 0, NULL);
    assert_malformed("Hi {{ }}", 3, NULL);
    assert_malformed("{{1abc}}", 0, NULL);
    assert_malformed("x{{-a}}", 1, NULL);
    assert_malformed("{{a b}}", 0, NULL);
    assert_malformed("{{a}", 0, NULL);
    assert_malformed("{{a} }", 0, NULL);
    assert_malformed("{{a!}}", 0, NULL);
    assert_malformed("{{ a", 0, "unclosed");
    assert_malformed("{{{a}}}", 0, NULL);
    assert_malformed("good {{a}} bad {{b c}}", 15, NULL);
}

/* ---------------------------------------------------------------- render */

Test(template, render_strings)
{
    assert_render("Hello {{name}}!", "{\"name\":\"Ann\"}", "Hello Ann!", "name", "");
    assert_render("{{ a }}-{{b}}-{{a}}", "{\"a\":\"1\",\"b\":\"2\"}", "1-2-1", "a,b", "");
    assert_render("{{e}}|", "{\"e\":\"\"}", "|", "e", "");
    assert_render("{{u}}", "{\"u\":\"caf\\u00e9 \\ud83d\\ude00\"}", "caf\xc3\xa9 \xf0\x9f\x98\x80", "u", "");
    assert_render("plain", "{\"x\":1}", "plain", "", "");
    assert_render("", "{}", "", "", "");
}

Test(template, render_numbers_bools_objects)
{
    assert_render("{{i}} {{neg}} {{r}} {{t}} {{f}}", "{\"i\":42,\"neg\":-7,\"r\":2.5,\"t\":true,\"f\":false}",
                  "42 -7 2.5 true false", "i,neg,r,t,f", "");
    assert_render("{{o}} {{a}} {{empty}}", "{\"o\":{\"k\":\"v\",\"n\":1},\"a\":[1,\"two\",null],\"empty\":{}}",
                  "{\"k\":\"v\",\"n\":1} [1,\"two\",null] {}", "o,a,empty", "");
}

Test(template, render_null_and_missing)
{
    assert_render("a {{x}} b {{y}} c {{x}}", "{\"x\":null}", "a {{x}} b {{y}} c {{x}}", "", "x,y");
    assert_render("{{ spaced }}", NULL, "{{spaced}}", "", "spaced");
    assert_render("{{a}} {{b}}", "{\"b\":\"B\"}", "{{a}} B", "b", "a");
    /* vars that are not an object give nothing */
    json_t *arr = json_pack("[s]", "a");
    char *out = NULL;
    json_t *used = NULL, *missing = NULL;
    cr_assert_eq(template_render("{{a}}", arr, &out, &used, &missing, NULL), 0);
    cr_assert_str_eq(out, "{{a}}");
    cr_assert_eq(json_array_size(missing), 1);
    free(out);
    json_decref(used);
    json_decref(missing);
    json_decref(arr);
}

Test(template, values_are_not_expanded_again)
{
    assert_render("{{a}} {{b}}", "{\"a\":\"{{b}}\",\"b\":\"B\"}", "{{b}} B", "a,b", "");
    assert_render("{{a}}", "{\"a\":\"\\\\{{z}}\"}", "\\{{z}}", "a", "");
}

Test(template, used_and_missing_are_optional)
{
    json_t *vars = json_pack("{s:s}", "a", "A");
    char *out = NULL;
    cr_assert_eq(template_render("{{a}}{{b}}", vars, &out, NULL, NULL, NULL), 0);
    cr_assert_str_eq(out, "A{{b}}");
    free(out);
    json_decref(vars);
}

Test(template, long_template)
{
    size_t n = 200000;
    char *tpl = malloc(n + 1);
    for (size_t i = 0; i < n; i += 10)
        memcpy(tpl + i, "{{v}} abc ", 10);
    tpl[n] = '\0';
    json_t *vars = json_pack("{s:s}", "v", "xy");
    char *out = NULL;
    json_t *used = NULL;
    cr_assert_eq(template_render(tpl, vars, &out, &used, NULL, NULL), 0);
    cr_assert_eq(strlen(out), n / 10 * 7);
    cr_assert_eq(json_array_size(used), 1);
    free(out);
    free(tpl);
    json_decref(used);
    json_decref(vars);
}
