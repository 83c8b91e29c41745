/*
 * thread.h — starting promptd's own threads.
 *
 * Signals belong to the main thread, which waits for SIGTERM/SIGINT with
 * sigwait(): every other thread must block them all, or the kernel may
 * deliver a stop signal to a thread that ignores it. A new thread inherits the
 * creator's mask, so the mask is set around pthread_create.
 */
#ifndef PROMPTD_CORE_THREAD_H
#define PROMPTD_CORE_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread, named name
 * (at most 15 characters; what `top -H`, `ps -L` and debuggers show, e.g.
 * "pd-engine"). 0 or an errno value. */
int thread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg);

#endif
