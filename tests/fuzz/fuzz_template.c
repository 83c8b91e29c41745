/*
 * fuzz_template.c — libFuzzer target for src/core/template.c.
 *
 * Input: TEMPLATE, optionally followed by a NUL byte and a JSON object of
 * variables. Without one (or when it does not parse) the variables are
 * derived from the template's own names: the input's bytes choose for each
 * name a string, a number, a boolean, null, an object or nothing, so both
 * substitution and "missing" are reached.
 *
 * Checked: template_variables and template_render agree on whether the
 * template is malformed (and then on the offset, which lies inside the text);
 * a rendered template's used + missing names are exactly its variables, each
 * once; a template rendered with no variables comes back unchanged apart from
 * "\{{" -> "{{"; and rendering is deterministic.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/template.h"
#include "fuzz/fuzz_http.h"

static int in_array(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static void check_names(const json_t *names)
{
    size_t i;
    json_t *v;
    if (!json_is_array(names))
        fz_fail("names is not an array", NULL);
    json_array_foreach(names, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !*s || strlen(s) > TEMPLATE_NAME_MAX)
            fz_fail("a variable name is empty or too long", s);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_array_get(names, j)), s) == 0)
                fz_fail("a variable is listed twice", s);
    }
}

/* What rendering with no variables must give: the text with "\{{" -> "{{". */
static char *unescaped(const char *tpl)
{
    size_t n = strlen(tpl);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        fz_fail("out of memory", NULL);
    for (const char *p = tpl; *p;) {
        if (p[0] == '\\' && p[1] == '{' && p[2] == '{') {
            *o++ = '{';
            *o++ = '{';
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static json_t *derive_vars(const json_t *names, const uint8_t *data, size_t size)
{
    json_t *vars = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        uint8_t pick = size ? data[(i * 7 + 3) % size] : 0;
        const char *name = json_string_value(v);
        switch (pick % 7) {
        case 0: json_object_set_new(vars, name, json_string("value {{ not_a_var }} \\{{x}}")); break;
        case 1: json_object_set_new(vars, name, json_integer((json_int_t)pick * 1000003)); break;
        case 2: json_object_set_new(vars, name, json_real(pick / 7.0)); break;
        case 3: json_object_set_new(vars, name, json_boolean(pick & 8)); break;
        case 4: json_object_set_new(vars, name, json_null()); break;
        case 5: json_object_set_new(vars, name, json_pack("{s:[i,s]}", "k", pick, "\xc3\xa9")); break;
        default: break; /* absent */
        }
    }
    return vars;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_pieces pc;
    fz_split(data, size, '\0', 2, &pc);
    const char *tpl = pc.p[0];
    size_t tlen = strlen(tpl);

    json_t *names = NULL, *used = NULL, *missing = NULL;
    template_error e1, e2;
    char *out = NULL;
    memset(&e1, 0, sizeof e1);
    memset(&e2, 0, sizeof e2);

    int rv = template_variables(tpl, &names, &e1);
    json_t *vars = NULL;
    if (pc.n > 1)
        vars = json_loadb(pc.p[1], pc.len[1], JSON_REJECT_DUPLICATES, NULL);
    if (!vars && rv == 0)
        vars = derive_vars(names, data, size);

    int rr = template_render(tpl, vars, &out, &used, &missing, &e2);
    if ((rv == 0) != (rr == 0))
        fz_fail("template_variables and template_render disagree", tpl);
    if (rv != 0) {
        if (e1.offset != e2.offset || strcmp(e1.message, e2.message) != 0)
            fz_fail("the two report different errors", e1.message);
        if (e1.offset > tlen || !e1.message[0])
            fz_fail("error offset outside the template", e1.message);
    } else {
        check_names(names);
        check_names(used);
        check_names(missing);
        if (json_array_size(used) + json_array_size(missing) != json_array_size(names))
            fz_fail("used + missing != variables", tpl);
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v)
        {
            const char *n = json_string_value(v);
            if (in_array(used, n) == in_array(missing, n))
                fz_fail("a variable is neither (or both) used and missing", n);
            const json_t *val = json_is_object(vars) ? json_object_get(vars, n) : NULL;
            if (in_array(used, n) != (val && !json_is_null(val)))
                fz_fail("used does not follow the variables", n);
        }
        if (!out)
            fz_fail("no output", NULL);

        /* no variables: the text itself (placeholders stay) */
        char *plain = NULL;
        json_t *u2 = NULL, *m2 = NULL;
        if (template_render(tpl, NULL, &plain, &u2, &m2, NULL) != 0)
            fz_fail("rendering without variables failed", tpl);
        char *want = unescaped(tpl);
        /* a placeholder is written back as "{{name}}": compare only when none had spaces */
        if (!strstr(tpl, "{{ ") && !strstr(tpl, "{{\t") && !strstr(tpl, " }}") && !strstr(tpl, "\t}}") &&
            strcmp(plain, want) != 0)
            fz_fail("rendering without variables changed the text", tpl);
        if (json_array_size(u2) != 0 || json_array_size(m2) != json_array_size(names))
            fz_fail("without variables, every name is missing", tpl);
        free(want);
        free(plain);
        json_decref(u2);
        json_decref(m2);

        /* deterministic */
        char *again = NULL;
        if (template_render(tpl, vars, &again, NULL, NULL, NULL) != 0 || strcmp(again, out) != 0)
            fz_fail("rendering twice gave different text", tpl);
        free(again);
    }
    free(out);
    json_decref(names);
    json_decref(used);
    json_decref(missing);
    json_decref(vars);
    fz_split_free(&pc);
    return 0;
}
