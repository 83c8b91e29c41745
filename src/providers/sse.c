/*
 * sse.c — Server-Sent Events framing for streamed provider answers.
 *
 * Turns the raw bytes of a text/event-stream body, in whatever pieces the
 * network delivers them, into complete events (event name + joined data
 * lines) and hands each to a callback. Both OpenAI-compatible servers and
 * Anthropic stream this way; what an event MEANS is the provider's business.
 *
 * Follows the WHATWG framing rules that matter here: lines end in "\n",
 * "\r\n" or "\r"; "field: value" drops one space after the colon; lines
 * starting with ':' are comments; a blank line ends an event; several data
 * lines are joined with '\n'. A line longer than PROVIDER_SSE_MAX_LINE is
 * treated as a broken stream rather than buffered without bound.
 *
 * Ownership: the provider_sse struct is owned by the caller; its buffers are
 * grown on demand and released by provider_sse_free().
 */
#include "providers/provider.h"

#include <stdio.h>
#include <string.h>

static void provider_sse_clear_event(provider_sse *s)
{
    provider_buf_reset(&s->data);
    s->event[0] = '\0';
    s->has_data = 0;
}

static int provider_sse_dispatch(provider_sse *s, provider_sse_fn fn, void *ud, char *err,
                                 size_t errlen)
{
    int rc = 0;

    if (s->has_data)
        rc = fn(ud, s->event, s->data.data ? s->data.data : "", s->data.len, err, errlen);
    provider_sse_clear_event(s);
    return rc;
}

/* One complete line (without its terminator). */
static int provider_sse_line(provider_sse *s, const char *line, size_t len, provider_sse_fn fn,
                             void *ud, char *err, size_t errlen)
{
    const char *colon, *value;
    size_t flen, vlen;

    if (len == 0)
        return provider_sse_dispatch(s, fn, ud, err, errlen);
    if (line[0] == ':')
        return 0; /* comment / keep-alive */
    colon = memchr(line, ':', len);
    flen = colon ? (size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    vlen = colon ? len - flen - 1 : 0;
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        if (s->has_data &&
            provider_buf_append(&s->data, "\n", 1, PROVIDER_SSE_MAX_LINE) != 0)
            goto too_long;
        if (provider_buf_append(&s->data, value, vlen, PROVIDER_SSE_MAX_LINE) != 0)
            goto too_long;
        s->has_data = 1;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = vlen < sizeof(s->event) - 1 ? vlen : sizeof(s->event) - 1;
        memcpy(s->event, value, n);
        s->event[n] = '\0';
    }
    /* "id", "retry" and unknown fields mean nothing for a one-shot answer */
    return 0;

too_long:
    snprintf(err, errlen, "stream event too large or out of memory");
    return -1;
}

int provider_sse_feed(provider_sse *s, const char *p, size_t n, provider_sse_fn fn, void *ud,
                      char *err, size_t errlen)
{
    size_t i = 0;

    if (n > 0 && s->last_cr) {
        s->last_cr = 0;
        if (p[0] == '\n')
            i = 1; /* second half of a "\r\n" split across two reads */
    }
    while (i < n) {
        const char *start = p + i;
        size_t rest = n - i, k;

        for (k = 0; k < rest; k++)
            if (start[k] == '\n' || start[k] == '\r')
                break;
        if (k == rest) {
            /* incomplete line: keep it for the next read */
            if (provider_buf_append(&s->line, start, rest, PROVIDER_SSE_MAX_LINE) != 0) {
                snprintf(err, errlen, "stream line too long or out of memory");
                return -1;
            }
            return 0;
        }
        if (s->line.len > 0) {
            if (provider_buf_append(&s->line, start, k, PROVIDER_SSE_MAX_LINE) != 0) {
                snprintf(err, errlen, "stream line too long or out of memory");
                return -1;
            }
            if (provider_sse_line(s, s->line.data, s->line.len, fn, ud, err, errlen) != 0)
                return -1;
            provider_buf_reset(&s->line);
        } else if (provider_sse_line(s, start, k, fn, ud, err, errlen) != 0) {
            return -1;
        }
        i += k + 1;
        if (start[k] == '\r') {
            if (i < n) {
                if (p[i] == '\n')
                    i++;
            } else {
                s->last_cr = 1;
            }
        }
    }
    return 0;
}

int provider_sse_finish(provider_sse *s, provider_sse_fn fn, void *ud, char *err,
                        size_t errlen)
{
    if (s->line.len > 0) {
        if (provider_sse_line(s, s->line.data, s->line.len, fn, ud, err, errlen) != 0)
            return -1;
        provider_buf_reset(&s->line);
    }
    return provider_sse_dispatch(s, fn, ud, err, errlen);
}

void provider_sse_reset(provider_sse *s)
{
    provider_buf_reset(&s->line);
    provider_sse_clear_event(s);
    s->last_cr = 0;
}

void provider_sse_free(provider_sse *s)
{
    provider_buf_free(&s->line);
    provider_buf_free(&s->data);
    s->event[0] = '\0';
    s->has_data = 0;
    s->last_cr = 0;
}
