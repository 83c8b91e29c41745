/*
 * recorder.h — group commit of the execution rows of synchronous requests.
 *
 * A sync execution is written twice: created "processing" before the model
 * call, finished after it. Written inline, those were two transactions per
 * request, one on an HTTP thread and one on the engine thread, serialised on
 * the store's writer lock and now and then carrying a WAL checkpoint: the two
 * kinds of thread that must never wait did (bench/README.md, "Why", 2).
 *
 * The recorder owns one thread. Callers queue writes and go on; the thread
 * takes everything queued, applies it in order in ONE transaction
 * (store_executions_write), and only then runs the callbacks of the finishes
 * it just committed, so a client still gets its answer only once the record is
 * final. While one batch commits, the next one queues up: the busier the
 * server, the bigger the batches.
 *
 * Order: writes are applied in the order they were queued, so a create
 * queued before the engine call always lands before its finish. A create is
 * not visible to readers until its batch commits, so only callers that show
 * the execution to no one before its finish queue their create here
 * (core/execution.c writes a stream's create itself).
 *
 * A create that cannot be written (a full disk, a foreign lock) has no
 * callback to tell: the recorder keeps it (it owns the copy) and writes it
 * again just before its finish, in the finish's transaction. The finish's
 * callback then says whether the execution as a whole is durable: its `why`
 * is STORE_FAIL_NONE only when the row exists, so a caller never names an
 * execution that was not written.
 */
#ifndef PROMPTD_CORE_RECORDER_H
#define PROMPTD_CORE_RECORDER_H

#include <stddef.h>

#include "store/store.h"

typedef struct recorder recorder;

/* Runs on the recorder thread after the finish was committed (or failed:
 * store_rc is the finish's STORE_* code). why is STORE_FAIL_NONE when the
 * execution's row is durable (finished, or already ended: STORE_CONFLICT),
 * else why it is not: the finish's own failure, or its create's when the
 * create could not be written even together with the finish. */
typedef void (*recorder_done_fn)(void *ud, int store_rc, enum store_failure why);

/* Start the thread. 0, or -1 with a message in err. */
int recorder_start(store_t *store, recorder **out, char *err, size_t errlen);

/* Write everything still queued, run its callbacks, stop the thread and free
 * (creates still kept for a finish that never came are dropped, logged).
 * Later calls to recorder_create/_finish fail (their callers write inline).
 * NULL is a no-op. */
void recorder_stop(recorder *r);

/* Queue the insert of e, deep-copied (e->id and e->status must be set).
 * -1 when out of memory or stopped: nothing was queued. */
int recorder_create(recorder *r, const store_execution *e);

/* Queue the finish of execution id with res (deep-copied); done, when not
 * NULL, runs on the recorder thread once the write is committed. -1 when out
 * of memory or stopped: nothing was queued and done will not run. */
int recorder_finish(recorder *r, const char *id, const store_execution_result *res, recorder_done_fn done,
                    void *ud);

#endif
