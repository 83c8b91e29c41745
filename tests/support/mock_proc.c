/*
 * mock_proc.c — starts and stops the mock LLM provider (tests/mock/) as a
 * child process for a test (API in mock_proc.h).
 *
 * The mock is spawned from $PROMPTD_MOCK_BIN with "--port 0 --parent-pid
 * <our pid>" plus the caller's extra arguments, its stdin on /dev/null and
 * its stdout on a pipe from which we read the line "listening on PORT"
 * (10 s at most). --parent-pid makes the mock exit by itself if this process
 * dies without calling mock_proc_stop(), so tests never leak mocks.
 */
#include "support/mock_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define MAX_EXTRA_ARGS 32

extern char **environ;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* argv for the mock; strings point into bin, pidbuf and extra_args. */
static int build_argv(const char *bin, const char *pidbuf, const char *const *extra_args,
                      char *argv[static MAX_EXTRA_ARGS + 7])
{
    size_t n = 0;

    argv[n++] = (char *)bin;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--parent-pid";
    argv[n++] = (char *)pidbuf;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (i == MAX_EXTRA_ARGS) {
            fprintf(stderr, "mock_proc: too many extra arguments\n");
            return -1;
        }
        argv[n++] = (char *)extra_args[i];
    }
    argv[n] = NULL;
    return 0;
}

static int spawn_mock(const char *bin, char *const argv[], int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int rc;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        goto out_nofa;
    if ((rc = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO)) != 0)
        goto out;
    rc = posix_spawn(pid, bin, &fa, NULL, argv, environ);
out:
    posix_spawn_file_actions_destroy(&fa);
out_nofa:
    if (rc != 0)
        fprintf(stderr, "mock_proc: cannot start %s: %s\n", bin, strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* Reads one line (without '\n') from fd within the deadline. */
static int read_line(int fd, char *buf, size_t size, long long deadline)
{
    size_t n = 0;

    while (n + 1 < size) {
        long long left = deadline - now_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0) {
            fprintf(stderr, "mock_proc: the mock did not report its port in time\n");
            return -1;
        }
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "mock_proc: the mock exited before listening\n");
            return -1;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    fprintf(stderr, "mock_proc: first line from the mock is too long\n");
    return -1;
}

/* Waits up to timeout_ms for pid; returns true once reaped (or gone). */
static bool reap(pid_t pid, long long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;

    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return true;
        if (now_ms() >= deadline)
            return false;
        usleep(5000);
    }
}

int mock_proc_start(mock_proc *m, const char *const *extra_args)
{
    const char *bin = getenv("PROMPTD_MOCK_BIN");
    char *argv[MAX_EXTRA_ARGS + 7];
    char pidbuf[24], line[128];
    int fds[2] = {-1, -1};
    int port = 0;
    int rc = -1;

    memset(m, 0, sizeof(*m));
    if (bin == NULL || *bin == '\0') {
        fprintf(stderr, "mock_proc: PROMPTD_MOCK_BIN is not set\n");
        return -1;
    }
    snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
    if (build_argv(bin, pidbuf, extra_args, argv) != 0)
        return -1;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "mock_proc: pipe: %s\n", strerror(errno));
        return -1;
    }
    if (spawn_mock(bin, argv, fds[1], &m->pid) != 0)
        goto out;
    close(fds[1]);
    fds[1] = -1;
    if (read_line(fds[0], line, sizeof(line), now_ms() + START_TIMEOUT_MS) != 0)
        goto out;
    if (sscanf(line, "listening on %d", &port) != 1 || port <= 0 || port > 65535) {
        fprintf(stderr, "mock_proc: unexpected first line from the mock: %s\n", line);
        goto out;
    }
    m->port = port;
    snprintf(m->base_url, sizeof(m->base_url), "http://127.0.0.1:%d", port);
    rc = 0;
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (rc != 0)
        mock_proc_stop(m);
    return rc;
}

void mock_proc_stop(mock_proc *m)
{
    if (m == NULL || m->pid <= 0)
        return;
    if (kill(m->pid, SIGTERM) == 0 && !reap(m->pid, STOP_TIMEOUT_MS)) {
        fprintf(stderr, "mock_proc: mock %ld ignored SIGTERM; killing it\n", (long)m->pid);
        kill(m->pid, SIGKILL);
        reap(m->pid, STOP_TIMEOUT_MS);
    } else {
        reap(m->pid, 0);
    }
    m->pid = 0;
    m->port = 0;
    m->base_url[0] = '\0';
}
