/*
 * test_thread.c — core/thread: a thread started by thread_start has every
 * signal blocked (so SIGTERM reaches the main thread's sigwait) and carries
 * the name it was given (what `top -H` and `ps -L` show); a name too long for
 * the kernel still starts the thread.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "core/thread.h"

typedef struct seen {
    const char *want; /* the name to wait for; NULL: do not wait */
    char name[32];
    int all_blocked;
} seen;

static void *look(void *arg)
{
    seen *s = arg;
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    s->all_blocked = sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGINT) == 1 &&
                     sigismember(&mask, SIGHUP) == 1 && sigismember(&mask, SIGPIPE) == 1 &&
                     sigismember(&mask, SIGUSR1) == 1;
    /* the name is set by the starter right after pthread_create: wait for it */
    for (int i = 0; s->want && i < 1000; i++) {
        if (pthread_getname_np(pthread_self(), s->name, sizeof s->name) == 0 && strcmp(s->name, s->want) == 0)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

Test(thread, blocks_every_signal_and_is_named)
{
    pthread_t t;
    seen s = {.want = "pd-test"};
    cr_assert_eq(thread_start(&t, "pd-test", look, &s), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert(s.all_blocked, "a thread_start thread must block every signal");
    cr_assert_str_eq(s.name, "pd-test");

    /* the caller's own mask is left as it was */
    sigset_t mine;
    pthread_sigmask(SIG_BLOCK, NULL, &mine);
    cr_assert_eq(sigismember(&mine, SIGUSR1), 0);
}

Test(thread, name_too_long_still_starts)
{
    pthread_t t;
    seen s = {0};
    cr_assert_eq(thread_start(&t, "a-name-longer-than-fifteen", look, &s), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert(s.all_blocked);
}
