/*
 * mock_text.c — text handling for the mock LLM provider.
 *
 * - [mock:...] directives: a test puts them in the last user message to make
 *   the mock misbehave (see the list in mock_server.c). Syntax: "[mock:NAME]"
 *   or "[mock:NAME=VALUE]", VALUE running up to the next ']'. Unknown names
 *   and invalid values are removed from the text and otherwise ignored.
 * - Cleaned text: the message with every directive removed; whitespace that
 *   follows a removed directive is dropped when the text so far is empty or
 *   already ends in whitespace, and the result is trimmed at both ends. So
 *   "[mock:drop] hi [mock:latency=5] there " becomes "hi there" (other
 *   whitespace is kept as it is).
 * - Words: maximal runs of non-whitespace bytes (isspace in the C locale).
 *   The mock's "tokens" are words.
 * - Pieces: the unit of streaming; each piece is one word plus the whitespace
 *   after it, so the pieces concatenate to the text exactly. A tool call's
 *   arguments (JSON, not words) stream as thirds instead, cut only between
 *   UTF-8 sequences; they too concatenate to the text exactly.
 */
#include "mock/mock_llm.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DIRECTIVE_OPEN "[mock:"

static bool is_space(char c) { return isspace((unsigned char)c) != 0; }

/* Parses all of s as a decimal long within [min, max]. */
static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Applies one directive "NAME" or "NAME=VALUE" (nul-terminated copy). */
static int apply_directive(char *spec, mock_directives *d)
{
    char *value = strchr(spec, '=');
    long v;

    if (value != NULL)
        *value++ = '\0';
    if (strcmp(spec, "latency") == 0 && parse_long(value, 0, 600000, &v))
        d->latency_ms = v;
    else if (strcmp(spec, "error_latency") == 0 && parse_long(value, 0, 600000, &v))
        d->error_latency_ms = v;
    else if (strcmp(spec, "status") == 0 && parse_long(value, 100, 599, &v))
        d->status = (int)v;
    else if (strcmp(spec, "retry_after") == 0 && parse_long(value, 0, 86400, &v))
        d->retry_after = v;
    else if (strcmp(spec, "fail_times") == 0 && parse_long(value, 0, 1000000, &v))
        d->fail_times = v;
    else if (strcmp(spec, "drip") == 0 && parse_long(value, 0, 60000, &v))
        d->drip_ms = v;
    else if (strcmp(spec, "tool_calls") == 0 && parse_long(value, 1, MOCK_MAX_TOOL_CALLS, &v))
        d->tool_calls = v;
    else if (strcmp(spec, "fail_model") == 0 && value != NULL) {
        char *copy = strdup(value);
        if (copy == NULL)
            return -1;
        free(d->fail_model);
        d->fail_model = copy;
    } else if (strncmp(spec, "error_", 6) == 0 && value != NULL && *value != '\0') {
        char **field = strcmp(spec, "error_message") == 0 ? &d->error_message
                       : strcmp(spec, "error_type") == 0  ? &d->error_type
                       : strcmp(spec, "error_code") == 0  ? &d->error_code
                       : strcmp(spec, "error_param") == 0 ? &d->error_param
                                                          : NULL;
        char *copy = field != NULL ? strdup(value) : NULL;
        if (field != NULL && copy == NULL)
            return -1;
        if (field != NULL) {
            free(*field);
            *field = copy;
        }
    } else if (strcmp(spec, "malformed") == 0)
        d->malformed = true;
    else if (strcmp(spec, "no_usage") == 0)
        d->no_usage = true;
    else if (strcmp(spec, "bad_types") == 0)
        d->bad_types = true;
    else if (strcmp(spec, "drop") == 0)
        d->drop = true;
    else if (strcmp(spec, "echo_request") == 0)
        d->echo_request = true;
    else if (strcmp(spec, "tool_text") == 0)
        d->tool_text = true;
    return 0;
}

/* If s starts a complete directive, applies it and returns its length;
 * returns 0 when s is not a directive, -1 on allocation failure. */
static long take_directive(const char *s, mock_directives *d)
{
    const char *start = s + strlen(DIRECTIVE_OPEN);
    const char *close;
    char *spec;
    int rc;

    if (strncmp(s, DIRECTIVE_OPEN, strlen(DIRECTIVE_OPEN)) != 0)
        return 0;
    close = strchr(start, ']');
    if (close == NULL)
        return 0;
    spec = strndup(start, (size_t)(close - start));
    if (spec == NULL)
        return -1;
    rc = apply_directive(spec, d);
    free(spec);
    return rc < 0 ? -1 : (long)(close + 1 - s);
}

static void trim_in_place(char *s)
{
    size_t len = strlen(s);
    size_t lead = 0;

    while (len > 0 && is_space(s[len - 1]))
        s[--len] = '\0';
    while (lead < len && is_space(s[lead]))
        lead++;
    memmove(s, s + lead, len - lead + 1);
}

int mock_directives_parse(const char *text, mock_directives *d, char **cleaned)
{
    size_t o = 0;
    char *out;

    memset(d, 0, sizeof(*d));
    d->latency_ms = d->error_latency_ms = d->retry_after = d->fail_times = d->drip_ms = d->tool_calls = -1;
    *cleaned = NULL;
    out = malloc(strlen(text) + 1);
    if (out == NULL)
        return -1;
    while (*text != '\0') {
        long n = take_directive(text, d);
        if (n < 0)
            goto fail;
        if (n == 0) {
            out[o++] = *text++;
            continue;
        }
        text += n;
        if (o == 0 || is_space(out[o - 1]))
            while (is_space(*text))
                text++;
    }
    out[o] = '\0';
    trim_in_place(out);
    *cleaned = out;
    return 0;
fail:
    free(out);
    mock_directives_free(d);
    return -1;
}

void mock_directives_free(mock_directives *d)
{
    free(d->fail_model);
    d->fail_model = NULL;
    free(d->error_message);
    free(d->error_type);
    free(d->error_code);
    free(d->error_param);
    d->error_message = d->error_type = d->error_code = d->error_param = NULL;
}

size_t mock_count_words(const char *s)
{
    size_t n = 0;
    bool in_word = false;

    for (; *s != '\0'; s++) {
        bool sp = is_space(*s);
        if (!sp && !in_word)
            n++;
        in_word = !sp;
    }
    return n;
}

bool mock_truncate_words(char *s, size_t n)
{
    size_t seen = 0;
    bool in_word = false;
    char *p;

    for (p = s; *p != '\0'; p++) {
        bool sp = is_space(*p);
        if (sp && in_word && seen == n) {
            *p = '\0';
            return true;
        }
        if (!sp && !in_word) {
            if (seen == n) {
                *p = '\0';
                trim_in_place(s);
                return true;
            }
            seen++;
        }
        in_word = !sp;
    }
    return false;
}

size_t mock_split_pieces(const char *text, mock_piece **out)
{
    size_t n = mock_count_words(text);
    size_t i = 0;
    const char *p = text;
    mock_piece *pieces;

    *out = NULL;
    if (n == 0)
        return 0;
    pieces = calloc(n, sizeof(*pieces));
    if (pieces == NULL)
        return (size_t)-1;
    while (*p != '\0' && i < n) {
        const char *start = (i == 0) ? text : p;
        if (i == 0)
            while (is_space(*p))
                p++;
        while (*p != '\0' && !is_space(*p))
            p++;
        while (*p != '\0' && is_space(*p))
            p++;
        pieces[i].p = start;
        pieces[i].len = (size_t)(p - start);
        i++;
    }
    *out = pieces;
    return n;
}

/* True for a UTF-8 continuation byte (10xxxxxx): no sequence starts there. */
static bool is_continuation(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

size_t mock_split_thirds(const char *text, mock_piece **out)
{
    size_t len = strlen(text);
    size_t start = 0, n = 0;
    mock_piece *pieces;

    *out = NULL;
    if (len == 0)
        return 0;
    pieces = calloc(3, sizeof(*pieces));
    if (pieces == NULL)
        return (size_t)-1;
    for (size_t k = 1; k <= 3; k++) {
        size_t end = len * k / 3;
        while (end < len && is_continuation(text[end]))
            end++;
        if (end <= start)
            continue;
        pieces[n].p = text + start;
        pieces[n].len = end - start;
        n++;
        start = end;
    }
    *out = pieces;
    return n;
}
