/*
 * thread.c — see thread.h.
 */
#include "core/thread.h"

#include <signal.h>

int thread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    int rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc != 0)
        return rc;
    rc = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0 && name)
        (void)pthread_setname_np(*thread, name); /* cosmetic: a name too long (ERANGE) changes nothing */
    return rc;
}
