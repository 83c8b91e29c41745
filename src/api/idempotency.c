/*
 * idempotency.c — Idempotency-Key handling (see api_idempotency.h).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_idempotency.h"

int api_idem_begin(api_req *rq, api_idem *st)
{
    memset(st, 0, sizeof *st);
    const char *key = http_header(rq->http, "Idempotency-Key");
    if (!key)
        return 0;
    size_t n = strlen(key);
    int printable = n > 0 && n < sizeof st->key;
    for (size_t i = 0; i < n && printable; i++)
        printable = key[i] > ' ' && key[i] <= '~';
    if (!printable) {
        http_error(rq->http, 400, NULL, "Idempotency-Key", "Idempotency-Key must be 1 to 255 printable characters");
        return 1;
    }
    size_t blen;
    const char *body = http_body(rq->http, &blen);
    unsigned char hash[32];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof hash);
    crypto_generichash_update(&h, (const unsigned char *)http_method(rq->http), strlen(http_method(rq->http)));
    crypto_generichash_update(&h, (const unsigned char *)http_path(rq->http), strlen(http_path(rq->http)) + 1);
    crypto_generichash_update(&h, (const unsigned char *)body, blen);
    crypto_generichash_final(&h, hash, sizeof hash);

    /* either part may be empty: a key that names no user, a token without a key */
    snprintf(st->caller, sizeof st->caller, "%s/%s", rq->who.user_id, rq->who.key_id);
    enum store_idem_state state;
    int status = 0;
    char *response = NULL;
    if (store_idem_begin(rq->app->store, rq->who.org_id, st->caller, key, rq->who.user_id, hash, &state, &status,
                         &response) != STORE_OK) {
        api_store_failure(rq);
        return 1;
    }
    switch (state) {
    case STORE_IDEM_NEW:
        st->active = 1;
        memcpy(st->org_id, rq->who.org_id, sizeof st->org_id);
        memcpy(st->key, key, n + 1);
        return 0;
    case STORE_IDEM_REPLAY:
        http_add_header(rq->http, "Idempotent-Replayed", "true");
        http_reply(rq->http, status, "application/json", response, response ? strlen(response) : 0);
        return 1;
    case STORE_IDEM_IN_PROGRESS:
        free(response);
        http_error(rq->http, 409, NULL, "Idempotency-Key",
                   "A request with this Idempotency-Key is still being processed");
        return 1;
    case STORE_IDEM_MISMATCH:
    default:
        free(response);
        http_error(rq->http, 422, NULL, "Idempotency-Key",
                   "This Idempotency-Key was already used with a different request body");
        return 1;
    }
}

void api_idem_save(store_t *store, const api_idem *st, int status, const json_t *body)
{
    if (!st->active)
        return;
    char *text = json_dumps(body, JSON_COMPACT);
    if (text)
        store_idem_finish(store, st->org_id, st->caller, st->key, status, text);
    else
        store_idem_abort(store, st->org_id, st->caller, st->key);
    free(text);
}

void api_idem_abort(store_t *store, const api_idem *st)
{
    if (st->active)
        store_idem_abort(store, st->org_id, st->caller, st->key);
}
