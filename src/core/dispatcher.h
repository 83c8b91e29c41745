/*
 * dispatcher.h — runs async executions: claims queued rows from the store
 * with a lease, feeds them to the engine, and writes their outcomes back in
 * group commits. One thread; it never waits on an LLM call (the engine
 * does), only on the store and its own condition variable.
 *
 * Crash safety: a claimed row carries a lease (owner + expiry) that the
 * dispatcher renews while it works on the row. If promptd dies, the lease
 * runs out and the row is claimed again after a restart; finishing writes
 * are fenced by the lease, so each execution ends exactly once. On a clean
 * stop, rows still running are given back (queued) for the next start.
 *
 * An outcome the store refuses to write (a full disk, a lock held elsewhere)
 * is kept and written again later (100 ms, doubling to 5 s between tries):
 * the worker renews only leases of rows it still knows, and it knows every
 * row until its outcome is written, so no job is left `processing` after the
 * store recovers. At stop, outcomes still unwritable after 10 s are let go:
 * their leases expire and the jobs run again after a restart.
 */
#ifndef PROMPTD_CORE_DISPATCHER_H
#define PROMPTD_CORE_DISPATCHER_H

#include "engine/engine.h"
#include "store/store.h"

typedef struct dispatcher dispatcher;

typedef struct dispatcher_config {
    long lease_ms;    /* lease length; renewed every lease_ms / 3 (default 30000) */
    int max_in_flight; /* claimed and not yet finished (default 1024) */
    int claim_batch;  /* rows claimed per transaction (default 256) */
    long idle_poll_ms; /* how often to look for work when nobody notified (default 500) */
} dispatcher_config;

int dispatcher_start(store_t *store, engine_t *engine, const dispatcher_config *cfg, dispatcher **out, char *err,
                     size_t errlen);
/* New work was queued: look now instead of at the next poll. Thread-safe. */
void dispatcher_notify(dispatcher *d);
/* Stop claiming, give back the rows still running (after the engine fails
 * them with ENGINE_ERR_SHUTDOWN), flush outcomes, join. The engine must be
 * shut down (engine_shutdown) between dispatcher_quiesce and dispatcher_stop
 * so in-flight calls end. */
void dispatcher_quiesce(dispatcher *d);
void dispatcher_stop(dispatcher *d);

#endif
