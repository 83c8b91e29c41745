/*
 * echo.c — the built-in "echo" model: offline, deterministic, free.
 *
 * It answers with the content of the LAST message whose role is "user" (the
 * rendered prompt, for a one-message execution), or "" when there is none,
 * so every endpoint works without any provider configured.
 *
 * Token estimate (no tokenizer is involved, so it is a documented rule of
 * thumb, the same one used when a real provider omits usage):
 *   prompt_tokens     = ceil(bytes of ALL message contents / 4), minimum 1
 *   completion_tokens = ceil(bytes of the output / 4),           minimum 1
 *   total_tokens      = prompt_tokens + completion_tokens
 * finish_reason is always "stop". max_tokens and temperature are ignored.
 *
 * Streaming: the engine cuts the output with provider_echo_piece() into
 * words, each carrying the whitespace that follows it, so the pieces
 * concatenate to exactly the output.
 *
 * Ownership: the response text is malloc'd; provider_response_free() frees it.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int provider_echo_reply(const provider_message *msgs, size_t n, provider_response *out,
                        char *err, size_t errlen)
{
    const provider_message *last = NULL;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        if (msgs[i].role && strcmp(msgs[i].role, "user") == 0)
            last = &msgs[i];
    out->text_len = last ? last->content_len : 0;
    out->text = malloc(out->text_len + 1);
    if (!out->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (out->text_len)
        memcpy(out->text, last->content, out->text_len);
    out->text[out->text_len] = '\0';
    out->prompt_tokens = provider_estimate_tokens(provider_messages_bytes(msgs, n));
    out->completion_tokens = provider_estimate_tokens(out->text_len);
    out->total_tokens = out->prompt_tokens + out->completion_tokens;
    out->has_usage = 1;
    snprintf(out->finish_reason, sizeof(out->finish_reason), "stop");
    return 0;
}

static int provider_echo_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t provider_echo_piece(const char *text, size_t len, size_t off)
{
    size_t i = off;

    if (off >= len)
        return 0;
    while (i < len && provider_echo_space(text[i]))
        i++;
    while (i < len && !provider_echo_space(text[i]))
        i++;
    while (i < len && provider_echo_space(text[i]))
        i++;
    return i - off;
}
