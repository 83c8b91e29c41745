/*
 * mock_timer.c — the mock's only source of delay.
 *
 * Handlers never sleep: a connection that must wait (latency, drip) is
 * suspended with MHD_suspend_connection() and put in a min-heap keyed by its
 * due time. One timer thread waits on a condition variable (CLOCK_MONOTONIC
 * timed wait) for the earliest due time and then calls
 * MHD_resume_connection() and mock_loop_wake() (the daemons run without an
 * internal thread, see mock_loop.c, so a resume alone wakes nobody); MHD
 * calls the access handler (or the content reader) again, which answers.
 * Thousands of waiting requests therefore cost one heap entry each and no
 * thread.
 *
 * Suspending and pushing happen under the heap mutex, so the timer can never
 * resume a connection before it is suspended. On shutdown every pending
 * connection is resumed at once (MHD must not be stopped with suspended
 * connections) and later suspend requests are refused.
 */
#include "mock/mock_llm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct timer_entry {
    uint64_t due;
    struct MHD_Connection *conn;
} timer_entry;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;
    bool quit;
    timer_entry *heap;
    size_t n, cap;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

uint64_t mock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- binary min-heap on due (caller holds T.mu) ------------------------- */

static void heap_swap(size_t a, size_t b)
{
    timer_entry t = T.heap[a];
    T.heap[a] = T.heap[b];
    T.heap[b] = t;
}

/* Makes room for one more entry. */
static int heap_reserve(void)
{
    size_t cap;
    timer_entry *h;

    if (T.n < T.cap)
        return 0;
    cap = T.cap ? T.cap * 2 : 1024;
    h = realloc(T.heap, cap * sizeof(*h));
    if (h == NULL)
        return -1;
    T.heap = h;
    T.cap = cap;
    return 0;
}

/* Needs heap_reserve() first. */
static void heap_push(timer_entry e)
{
    size_t i = T.n++;

    T.heap[i] = e;
    while (i > 0 && T.heap[(i - 1) / 2].due > T.heap[i].due) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static timer_entry heap_pop(void)
{
    timer_entry top = T.heap[0];
    size_t i = 0;

    T.heap[0] = T.heap[--T.n];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < T.n && T.heap[l].due < T.heap[m].due)
            m = l;
        if (r < T.n && T.heap[r].due < T.heap[m].due)
            m = r;
        if (m == i)
            break;
        heap_swap(i, m);
        i = m;
    }
    return top;
}

/* ---- the thread --------------------------------------------------------- */

static struct timespec abs_monotonic(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    return ts;
}

/* Moves every entry due at now (all of them when quitting) into batch. */
static size_t take_due(timer_entry *batch, size_t max, uint64_t now)
{
    size_t k = 0;

    while (k < max && T.n > 0 && (T.quit || T.heap[0].due <= now))
        batch[k++] = heap_pop();
    return k;
}

static void *timer_main(void *arg)
{
    enum { BATCH = 256 };
    timer_entry batch[BATCH];

    (void)arg;
    pthread_mutex_lock(&T.mu);
    for (;;) {
        size_t k = take_due(batch, BATCH, mock_now_ms());
        if (k > 0) {
            /* resume outside the lock: MHD takes its own locks */
            pthread_mutex_unlock(&T.mu);
            for (size_t i = 0; i < k; i++)
                MHD_resume_connection(batch[i].conn);
            mock_loop_wake(); /* after the resumes, so that MHD_run() sees them */
            pthread_mutex_lock(&T.mu);
            continue;
        }
        if (T.quit)
            break;
        if (T.n == 0) {
            pthread_cond_wait(&T.cv, &T.mu);
        } else {
            struct timespec ts = abs_monotonic(T.heap[0].due);
            pthread_cond_timedwait(&T.cv, &T.mu, &ts);
        }
    }
    pthread_mutex_unlock(&T.mu);
    return NULL;
}

int mock_timer_start(void)
{
    pthread_condattr_t attr;
    int rc;

    if ((rc = pthread_condattr_init(&attr)) != 0)
        goto fail;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&T.cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        goto fail;
    if ((rc = pthread_create(&T.thread, NULL, timer_main, NULL)) != 0) {
        pthread_cond_destroy(&T.cv);
        goto fail;
    }
    T.started = true;
    return 0;
fail:
    fprintf(stderr, "mock_llm: timer: %s\n", strerror(rc));
    return -1;
}

int mock_timer_suspend(struct MHD_Connection *c, uint64_t due_ms)
{
    int rc = -1;

    pthread_mutex_lock(&T.mu);
    if (!T.started || T.quit)
        goto out;
    if (heap_reserve() != 0) /* before suspending: the push must not fail */
        goto out;
    MHD_suspend_connection(c);
    heap_push((timer_entry){.due = due_ms, .conn = c});
    if (T.heap[0].conn == c)
        pthread_cond_signal(&T.cv);
    rc = 0;
out:
    pthread_mutex_unlock(&T.mu);
    return rc;
}

void mock_timer_stop(void)
{
    if (!T.started)
        return;
    pthread_mutex_lock(&T.mu);
    T.quit = true;
    pthread_cond_signal(&T.cv);
    pthread_mutex_unlock(&T.mu);
    pthread_join(T.thread, NULL);
    pthread_cond_destroy(&T.cv);
    free(T.heap);
    T.heap = NULL;
    T.n = T.cap = 0;
    T.started = false;
}
