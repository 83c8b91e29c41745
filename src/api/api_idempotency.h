/*
 * api_idempotency.h — the Idempotency-Key header on POSTs that create work.
 *
 * A repeat with the same key and the same body gets the first answer again
 * (header Idempotent-Replayed: true); the same key with another body answers
 * 422; a repeat while the first is still running answers 409. Keys are
 * scoped to the caller, as Stripe scopes them: the user and the API key
 * together (another member, or the same user through another key, choosing
 * the same key starts work of its own). They are remembered for 24 hours (a
 * reservation whose request never finished, after a crash, for 10 minutes).
 */
#ifndef PROMPTD_API_IDEMPOTENCY_H
#define PROMPTD_API_IDEMPOTENCY_H

#include "api/api.h"

typedef struct api_idem {
    int active; /* a key was given and reserved for this request */
    store_id org_id;
    char caller[STORE_IDEM_CALLER_LEN]; /* "<user id>/<api key id>" */
    char key[256];
} api_idem;

/* Returns 1 when it answered the request (replay, 409, 422, 400, 500), 0 to
 * go on (st->active tells whether a key was reserved). */
int api_idem_begin(api_req *rq, api_idem *st);
/* Keep the answer for later repeats (any thread); no-op when not active. */
void api_idem_save(store_t *store, const api_idem *st, int status, const json_t *body);
/* The request was not accepted: forget the reservation. */
void api_idem_abort(store_t *store, const api_idem *st);

#endif
