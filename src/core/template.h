/*
 * template.h — prompt templates with {{variables}}.
 *
 * Syntax: "{{ name }}" (spaces optional) where name is [A-Za-z_][A-Za-z0-9_.-]*
 * and at most TEMPLATE_NAME_MAX bytes. "\{{" is a literal "{{". Any other
 * "{{" (unclosed, empty or invalid name) makes the template malformed, so a
 * typo is reported when the prompt is saved, not silently sent to a model.
 *
 * Rendering substitutes each variable from a JSON object: strings as they are,
 * numbers and booleans in their JSON spelling, objects/arrays as compact JSON;
 * null or absent values are "missing" and their placeholder stays in the text.
 */
#ifndef PROMPTD_CORE_TEMPLATE_H
#define PROMPTD_CORE_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#define TEMPLATE_NAME_MAX 64

typedef struct template_error {
    char message[160];
    size_t offset; /* byte offset of the problem in the template */
} template_error;

/* Variables in order of first appearance, without duplicates.
 * Returns 0 and a new JSON array of strings in *names (caller owns), or -1 with
 * *err filled when the template is malformed. */
int template_variables(const char *tpl, json_t **names, template_error *err);

/* Render tpl with vars (a JSON object or NULL). On success returns 0 and sets
 * *out (malloc'd, caller frees), *used (names that got a value) and *missing
 * (names without one), both new JSON arrays the caller owns; any of used/missing
 * may be NULL if not wanted. Returns -1 with *err when malformed. */
int template_render(const char *tpl, const json_t *vars, char **out, json_t **used, json_t **missing,
                    template_error *err);

#endif
