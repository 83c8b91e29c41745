/*
 * mock_loop.c — runs the mock's libmicrohttpd daemons: one thread per daemon
 * drives it in MHD's "external" epoll mode (MHD_run() + our own wait).
 *
 * Why not MHD's internal polling thread: in libmicrohttpd 0.9.75 (the Debian
 * 12 package) MHD_epoll() drains the epoll set in a loop that calls
 * epoll_wait() again whenever the previous call filled its whole 128-entry
 * event array, and it does so with the blocking timeout it computed before
 * the first call (up to the 60 s connection timeout, since nothing was ready
 * then). The connections that the full batches marked ready are only
 * processed after that second wait returns. So when exactly 128, 256, ...
 * sockets become readable together and nothing else happens, their requests
 * sit unread until an unrelated event (a new connection, a client closing, a
 * resume) or the timeout: promptd's crash test saw this as upstream calls
 * unanswered for 20 s after it opened 256 connections at once. (Reproduced
 * with 128 idle keep-alive connections that get their requests while the
 * mock is SIGSTOPped; see test_mock_llm.c, exactly_128_requests_at_once.)
 *
 * Through MHD_run() MHD_epoll() is called with a zero timeout, so none of its
 * epoll_wait() calls blocks; the blocking wait is done here instead, as
 * microhttpd.h prescribes for MHD_DAEMON_INFO_EPOLL_FD: poll() on the
 * daemon's epoll fd for at most MHD_get_timeout() — which is 0 while MHD
 * still has connections marked ready — plus an eventfd. Without an internal
 * thread MHD wakes nobody when another thread calls MHD_resume_connection(),
 * so mock_timer.c calls mock_loop_wake() after every batch of resumes and the
 * eventfd makes the loops run MHD_run(), which moves resumed connections back
 * into processing.
 */
#include "mock/mock_llm.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct loop {
    struct MHD_Daemon *d;
    int epoll_fd; /* owned by MHD */
    int wake_fd;  /* eventfd, ours */
    pthread_t thread;
    bool started;
} loop;

static struct {
    loop *l;
    size_t n;
    atomic_size_t woken; /* loops mock_loop_wake() may signal: 0 until all eventfds exist */
    atomic_bool quit;
} L;

/* How long poll() may wait: never longer than MHD_get_timeout(), which is 0
 * while connections are still marked ready; -1 (until an event) when MHD has
 * nothing timed. */
static int wait_ms(struct MHD_Daemon *d)
{
    MHD_UNSIGNED_LONG_LONG t;

    if (MHD_get_timeout(d, &t) != MHD_YES)
        return -1;
    return t > (MHD_UNSIGNED_LONG_LONG)INT_MAX ? INT_MAX : (int)t;
}

/* Empties the eventfd so that the next poll() blocks again. */
static void drain_wake(int fd)
{
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
        fprintf(stderr, "mock_llm: loop: read(eventfd): %s\n", strerror(errno));
}

static void *loop_main(void *arg)
{
    loop *l = arg;

    for (;;) {
        /* Read before MHD_run(): after mock_loop_stop() set quit, one more
         * MHD_run() moves the connections mock_timer_stop() resumed back into
         * processing, so MHD_stop_daemon() finds none suspended. */
        bool quit = atomic_load(&L.quit);
        struct pollfd p[2] = {
            {.fd = l->epoll_fd, .events = POLLIN},
            {.fd = l->wake_fd, .events = POLLIN},
        };

        if (MHD_run(l->d) != MHD_YES)
            fprintf(stderr, "mock_llm: loop: MHD_run failed\n");
        if (quit)
            break;
        if (poll(p, 2, wait_ms(l->d)) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "mock_llm: loop: poll: %s\n", strerror(errno));
            usleep(10000); /* ENOMEM: try again rather than spin */
            continue;
        }
        if (p[1].revents & POLLIN)
            drain_wake(l->wake_fd);
    }
    return NULL;
}

int mock_loop_start(struct MHD_Daemon *const *daemons, size_t n)
{
    int rc;

    L.l = calloc(n, sizeof(*L.l));
    if (L.l == NULL) {
        fprintf(stderr, "mock_llm: loop: out of memory\n");
        return -1;
    }
    L.n = n;
    for (size_t i = 0; i < n; i++)
        L.l[i].wake_fd = -1;
    for (size_t i = 0; i < n; i++) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemons[i], MHD_DAEMON_INFO_EPOLL_FD);
        if (info == NULL || info->epoll_fd < 0) {
            fprintf(stderr, "mock_llm: loop: the daemon has no epoll fd\n");
            return -1;
        }
        L.l[i].d = daemons[i];
        L.l[i].epoll_fd = info->epoll_fd;
        L.l[i].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (L.l[i].wake_fd < 0) {
            fprintf(stderr, "mock_llm: loop: eventfd: %s\n", strerror(errno));
            return -1;
        }
    }
    atomic_store(&L.woken, n);
    for (size_t i = 0; i < n; i++) {
        if ((rc = pthread_create(&L.l[i].thread, NULL, loop_main, &L.l[i])) != 0) {
            fprintf(stderr, "mock_llm: loop: pthread_create: %s\n", strerror(rc));
            return -1;
        }
        L.l[i].started = true;
    }
    return 0;
}

void mock_loop_wake(void)
{
    static const uint64_t one = 1;
    size_t n = atomic_load(&L.woken);

    for (size_t i = 0; i < n; i++) {
        /* EAGAIN: the counter is about to overflow, i.e. a wake-up is pending anyway */
        if (write(L.l[i].wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            fprintf(stderr, "mock_llm: loop: write(eventfd): %s\n", strerror(errno));
    }
}

void mock_loop_stop(void)
{
    if (L.l == NULL)
        return;
    atomic_store(&L.quit, true);
    mock_loop_wake();
    for (size_t i = 0; i < L.n; i++) {
        if (L.l[i].started)
            pthread_join(L.l[i].thread, NULL);
    }
    atomic_store(&L.woken, 0);
    for (size_t i = 0; i < L.n; i++) {
        if (L.l[i].wake_fd >= 0)
            close(L.l[i].wake_fd);
    }
    free(L.l);
    L.l = NULL;
    L.n = 0;
}
