/*
 * harness.c — start/stop promptd, run its CLI, HTTP with libcurl, JSON paths
 * (API and rules in harness.h).
 *
 * Children are made with fork + execve; everything the child needs (argv,
 * envp, file descriptors) is prepared before fork, so the child only calls
 * async-signal-safe functions. PR_SET_PDEATHSIG ties each child to the thread
 * that forked it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, nftw, getrandom (the Makefile defines it too) */
#endif
#include "support/harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int pd_slow(void);
#define PD_START_TIMEOUT_MS (5000 * pd_slow())
#define PD_STOP_TIMEOUT_MS 10000
#define PD_CLI_TIMEOUT_MS 30000
#define PD_MAX_ARGS 64

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- files */

int pd_mkdtemp(char *out, size_t outlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    int n = snprintf(out, outlen, "%s/promptd-test-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    if (!mkdtemp(out)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        fprintf(stderr, "harness: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

int pd_rmrf(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0)
        return -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

char *pd_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

int pd_count(const char *hay, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    if (!hay || !nl)
        return 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + nl, needle))
        n++;
    return n;
}

/* ---------------------------------------------------------------- processes */

const char *pd_bin(void)
{
    const char *bin = getenv("PROMPTD_BIN");
    if (!bin || !*bin) {
        fprintf(stderr, "harness: PROMPTD_BIN is not set (run through `make unit` / `make integration`)\n");
        return NULL;
    }
    return bin;
}

/* Is this variable of our own environment kept for children? */
static int env_inherited(const char *entry)
{
    if (strncmp(entry, "PROMPTD_BIN=", 12) == 0 || strncmp(entry, "PROMPTD_MOCK_BIN=", 17) == 0)
        return 1;
    return strncmp(entry, "PROMPTD_", 8) != 0 && strncmp(entry, "OPENAI_", 7) != 0 &&
           strncmp(entry, "ANTHROPIC_", 10) != 0;
}

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Is the variable of entry (NAME=... or NAME) named in extra? */
static int env_overridden(const char *entry, const char *const *extra)
{
    size_t n = name_len(entry);
    for (size_t i = 0; extra && extra[i]; i++)
        if (name_len(extra[i]) == n && strncmp(extra[i], entry, n) == 0)
            return 1;
    return 0;
}

/* envp for a child (the array is malloc'd; strings are borrowed). */
static char **build_env(const char *const *extra)
{
    size_t n = 0, ne = 0;
    while (environ[n])
        n++;
    while (extra && extra[ne])
        ne++;
    char **env = calloc(n + ne + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (env_inherited(environ[i]) && !env_overridden(environ[i], extra))
            env[o++] = environ[i];
    for (size_t i = 0; i < ne; i++) {
        if (!strchr(extra[i], '='))
            continue; /* bare NAME: removal only */
        int dup = 0;  /* the last setting of a name wins */
        for (size_t j = i + 1; j < ne; j++)
            if (name_len(extra[j]) == name_len(extra[i]) && !strncmp(extra[j], extra[i], name_len(extra[i])))
                dup = 1;
        if (!dup)
            env[o++] = (char *)extra[i];
    }
    env[o] = NULL;
    return env;
}

/* ---- checkers (issue 6): `make test SAN=1` and `make valgrind` ----
 * Under `make valgrind`, PD_VALGRIND holds a valgrind command line (words
 * separated by spaces) that every promptd started here runs in, and every
 * timeout the harness applies (its own and those given to pd_run, pd_wait,
 * pd_wait_listening and pd_kill_wait) grows tenfold. A promptd that exits
 * with the code the sanitizers (PD_SANITIZER_EXIT) or valgrind
 * (PD_VALGRIND_EXIT) are set to exit with has had a report: the harness
 * prints it and aborts the test, so the test fails even when its caller
 * ignores the exit status. */
#define PD_SANITIZER_EXIT 86 /* ASAN/LSAN/UBSAN_OPTIONS exitcode= of `make test SAN=1` */
#define PD_VALGRIND_EXIT 99  /* valgrind --error-exitcode= of `make valgrind` */

static char vg_buf[1024];
static char *vg_words[24];
static size_t vg_count;
static pthread_once_t vg_once = PTHREAD_ONCE_INIT;

static void vg_setup(void)
{
    const char *v = getenv("PD_VALGRIND");
    char *save = NULL;
    if (!v || !*v)
        return;
    snprintf(vg_buf, sizeof vg_buf, "%s", v);
    for (char *w = strtok_r(vg_buf, " ", &save); w && vg_count < 24; w = strtok_r(NULL, " ", &save))
        vg_words[vg_count++] = w;
}

static int pd_slow(void)
{
    pthread_once(&vg_once, vg_setup);
    return vg_count ? 10 : 1;
}

/* Print the checker's report for pid (the file the options name, else the server log) and abort. */
static void checker_failed(pid_t pid, int code, const char *log_path)
{
    char path[1100] = "";
    const char *opt = getenv(code == PD_SANITIZER_EXIT ? "ASAN_OPTIONS" : "PD_VALGRIND");
    const char *at = opt ? strstr(opt, code == PD_SANITIZER_EXIT ? "log_path=" : "--log-file=") : NULL;
    if (at) {
        at = strchr(at, '=') + 1;
        size_t n = strcspn(at, code == PD_SANITIZER_EXIT ? ": " : " ");
        const char *pct = code == PD_VALGRIND_EXIT ? strstr(at, "%p") : NULL;
        if (pct && (size_t)(pct - at) < n)
            snprintf(path, sizeof path, "%.*s%ld%.*s", (int)(pct - at), at, (long)pid,
                     (int)(n - (size_t)(pct - at) - 2), pct + 2);
        else if (code == PD_SANITIZER_EXIT)
            snprintf(path, sizeof path, "%.*s.%ld", (int)n, at, (long)pid);
    }
    char *report = path[0] ? pd_read_file(path) : NULL;
    if (!report && log_path)
        report = pd_read_file(log_path);
    fprintf(stderr, "harness: promptd %ld exited with code %d: %s reported a problem (%s)\n%s\n", (long)pid, code,
            code == PD_SANITIZER_EXIT ? "a sanitizer" : "valgrind",
            path[0]    ? path
            : log_path ? log_path
                       : "",
            report ? report : "");
    free(report);
    abort();
}

/* Under ASan the Criterion runner (which runs no test itself: its
 * "boxfort-worker" processes do) leaks a block of its own at exit; it is told
 * to ignore its allocations, so every leak report left is a test's or
 * promptd's. (__lsan_disable is weak: absent in a build without ASan.) */
extern void __lsan_disable(void) __attribute__((weak));
__attribute__((constructor)) static void runner_ignores_leaks(int argc, char **argv)
{
    if (__lsan_disable && argc > 0 && strcmp(argv[0], "boxfort-worker") != 0)
        __lsan_disable();
}

/* argv = [valgrind ...] bin, args..., tail... (tail may be NULL). Returns 0 or -1. */
static int build_argv(char **argv, const char *bin, const char *const *args, const char *const *tail)
{
    size_t n = 0;
    pthread_once(&vg_once, vg_setup);
    for (size_t i = 0; i < vg_count && n < PD_MAX_ARGS / 2; i++)
        argv[n++] = vg_words[i];
    argv[n++] = (char *)bin;
    for (size_t i = 0; args && args[i]; i++) {
        if (n >= PD_MAX_ARGS - 4)
            return -1;
        argv[n++] = (char *)args[i];
    }
    for (size_t i = 0; tail && tail[i]; i++) {
        if (n >= PD_MAX_ARGS - 1)
            return -1;
        argv[n++] = (char *)tail[i];
    }
    argv[n] = NULL;
    return 0;
}

static pid_t fork_exec(char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd);

/* fd moved above 2 (close-on-exec), so that dup2() onto 0..2 in the child
 * cannot overwrite one source with another. Returns the new fd or -1. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    return moved;
}

/* fork + execve with the given descriptors as stdin/stdout/stderr (the
 * caller's descriptors stay open in the parent; it closes them). */
static pid_t spawn_fds(char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd)
{
    int moved[3] = {above_stdio(in_fd), above_stdio(out_fd), above_stdio(err_fd)};
    for (int i = 0; i < 3; i++) {
        if (moved[i] < 0) {
            fprintf(stderr, "harness: fcntl: %s\n", strerror(errno));
            for (int k = 0; k < 3; k++)
                if (moved[k] >= 0 && moved[k] != (k == 0 ? in_fd : k == 1 ? out_fd : err_fd))
                    close(moved[k]);
            return -1;
        }
    }
    pid_t pid = fork_exec(argv, envp, moved[0], moved[1], moved[2]);
    if (moved[0] != in_fd)
        close(moved[0]);
    if (moved[1] != out_fd)
        close(moved[1]);
    if (moved[2] != err_fd)
        close(moved[2]);
    return pid;
}

static pid_t fork_exec(char *const argv[], char *const envp[], int in_fd, int out_fd, int err_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the parent died before prctl */
            _exit(127);
        if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
            _exit(127);
        /* the test process may have blocked signals; the server expects a clean mask */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    return pid;
}

pid_t pd_spawn(const char *const *args, const char *const *extra_env, const char *out_path, const char *err_path)
{
    const char *bin = pd_bin();
    char *argv[PD_MAX_ARGS];
    if (!bin || build_argv(argv, bin, args, NULL))
        return -1;
    char **envp = build_env(extra_env);
    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out_fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int err_fd = -1;
    if (err_path && out_path && strcmp(err_path, out_path) == 0)
        err_fd = dup(out_fd);
    else
        err_fd = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    pid_t pid = -1;
    if (envp && in_fd >= 0 && out_fd >= 0 && err_fd >= 0)
        pid = spawn_fds(argv, envp, in_fd, out_fd, err_fd);
    else
        fprintf(stderr, "harness: cannot prepare to start %s: %s\n", bin, strerror(errno));
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    free(envp);
    return pid;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* waitpid with a deadline; returns 1 and the status when reaped, 0 on timeout, -1 on error. */
static int reap(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (mono_ms() >= deadline)
            return 0;
        usleep(2000);
    }
}

static int wait_child(pid_t pid, int timeout_ms);

int pd_wait(pid_t pid, int timeout_ms) { return wait_child(pid, timeout_ms * pd_slow()); }

static int wait_child(pid_t pid, int timeout_ms)
{
    int st = 0;
    if (pid <= 0)
        return -1;
    int r = reap(pid, timeout_ms, &st);
    if (r == 1 && WIFEXITED(st) && (WEXITSTATUS(st) == PD_SANITIZER_EXIT || WEXITSTATUS(st) == PD_VALGRIND_EXIT))
        checker_failed(pid, WEXITSTATUS(st), NULL);
    if (r == 1)
        return decode_status(st);
    if (r == 0) {
        fprintf(stderr, "harness: process %ld still running after %d ms; killing it\n", (long)pid, timeout_ms);
        kill(pid, SIGKILL);
        reap(pid, 5000, &st);
    }
    return -1;
}

/* Read from the two pipes into the buffers until both close or the deadline passes. */
static int drain_pipes(int fds[2], char *bufs[2], size_t lens[2], long long deadline)
{
    size_t used[2] = {0, 0};
    int open_fds = 2;
    char scratch[4096];
    for (int i = 0; i < 2; i++)
        if (bufs[i] && lens[i])
            bufs[i][0] = '\0';
    while (open_fds) {
        struct pollfd pfd[2];
        int np = 0, map[2];
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) {
                pfd[np].fd = fds[i];
                pfd[np].events = POLLIN;
                map[np++] = i;
            }
        }
        long long left = deadline - mono_ms();
        if (left <= 0)
            return -1;
        int pr = poll(pfd, (nfds_t)np, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -1;
        for (int k = 0; k < np; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int i = map[k];
            ssize_t r = read(fds[i], scratch, sizeof scratch);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
                continue;
            }
            if (bufs[i] && lens[i]) {
                size_t room = lens[i] - 1 - used[i];
                size_t take = (size_t)r < room ? (size_t)r : room;
                memcpy(bufs[i] + used[i], scratch, take);
                used[i] += take;
                bufs[i][used[i]] = '\0';
            }
        }
    }
    return 0;
}

int pd_run(const char *const *args, const char *const *extra_env, int timeout_ms, char *out, size_t outlen, char *err,
           size_t errlen)
{
    const char *bin = pd_bin();
    char *argv[PD_MAX_ARGS];
    int p_out[2] = {-1, -1}, p_err[2] = {-1, -1}, in_fd = -1, rc = -1;
    timeout_ms *= pd_slow();
    char **envp = NULL;
    if (!bin || build_argv(argv, bin, args, NULL))
        return -1;
    if (!(envp = build_env(extra_env)) || pipe2(p_out, O_CLOEXEC) || pipe2(p_err, O_CLOEXEC) ||
        (in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "harness: cannot prepare to run %s: %s\n", bin, strerror(errno));
        goto out;
    }
    pid_t pid = spawn_fds(argv, envp, in_fd, p_out[1], p_err[1]);
    close(p_out[1]);
    close(p_err[1]);
    p_out[1] = p_err[1] = -1;
    if (pid < 0)
        goto out;
    int fds[2] = {p_out[0], p_err[0]};
    char *bufs[2] = {out, err};
    size_t lens[2] = {out ? outlen : 0, err ? errlen : 0};
    long long deadline = mono_ms() + timeout_ms;
    int drained = drain_pipes(fds, bufs, lens, deadline);
    p_out[0] = fds[0];
    p_err[0] = fds[1];
    long long left = deadline - mono_ms();
    rc = wait_child(pid, drained == 0 && left > 0 ? (int)left : 0);
    if (drained != 0) {
        fprintf(stderr, "harness: %s %s timed out after %d ms\n", bin, args && args[0] ? args[0] : "", timeout_ms);
        rc = -1;
    }
out:
    for (int i = 0; i < 2; i++) {
        if (p_out[i] >= 0)
            close(p_out[i]);
        if (p_err[i] >= 0)
            close(p_err[i]);
    }
    if (in_fd >= 0)
        close(in_fd);
    free(envp);
    return rc;
}

/* Size of a file, 0 when missing. */
static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* pd_wait_listening, looking only past the first `from` bytes of the log. */
static int wait_listening_from(const char *log_path, size_t from, pid_t pid, int timeout_ms)
{
    static const char needle[] = "listening on http://";
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        char *log = pd_read_file(log_path);
        const char *p = log && strlen(log) >= from ? strstr(log + from, needle) : NULL;
        if (p) {
            p += sizeof needle - 1;
            const char *end = p;
            while (*end && *end != ' ' && *end != '"' && *end != '\n' && *end != '(')
                end++;
            const char *colon = NULL;
            for (const char *q = p; q < end; q++)
                if (*q == ':')
                    colon = q;
            int port = colon ? atoi(colon + 1) : -1;
            free(log);
            return port > 0 && port < 65536 ? port : -1;
        }
        free(log);
        int st;
        if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "harness: promptd exited (status %d) before listening\n", decode_status(st));
            return -2; /* reaped */
        }
        if (mono_ms() >= deadline)
            return -1;
        usleep(5000);
    }
}

int pd_wait_listening(const char *log_path, pid_t pid, int timeout_ms)
{
    int port = wait_listening_from(log_path, 0, pid, timeout_ms * pd_slow());
    return port > 0 ? port : -1;
}

/* ---------------------------------------------------------------- servers */

static void random_key(char *out, size_t len)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char raw[128];
    if (len > sizeof raw)
        len = sizeof raw;
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(raw + got, len - got, 0);
        if (r <= 0) { /* fall back to something still unique enough for a test */
            for (; got < len; got++)
                raw[got] = (unsigned char)(rand() ^ (int)getpid() ^ (int)mono_ms());
            break;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[raw[i] % 62];
    out[len] = '\0';
}

static void print_log(const pd_server *s)
{
    char *log = pd_read_file(s->log_path);
    fprintf(stderr, "---- promptd log (%s) ----\n%s\n---- end of log ----\n", s->log_path, log ? log : "(none)");
    free(log);
}

/* The admin key this start will use: the last PROMPTD_ADMIN_KEY in extra_env, "" when removed, or ours. */
static const char *admin_key_setting(const char *const *extra_env, int *found)
{
    const char *v = NULL;
    *found = 0;
    for (size_t i = 0; extra_env && extra_env[i]; i++) {
        if (name_len(extra_env[i]) == 17 && strncmp(extra_env[i], "PROMPTD_ADMIN_KEY", 17) == 0) {
            *found = 1;
            v = strchr(extra_env[i], '=') ? extra_env[i] + 18 : "";
        }
    }
    return v;
}

/* Launch promptd serve on s->dir (already set up) and wait for its port. */
static int launch(pd_server *s, const char *const *extra_args, const char *const *extra_env)
{
    char env_key[120];
    const char *envs[PD_MAX_ARGS + 4];
    size_t ne = 0;
    int overridden = 0;
    const char *chosen = admin_key_setting(extra_env, &overridden);
    if (overridden && chosen[0]) {
        snprintf(s->admin_key, sizeof s->admin_key, "%s", chosen);
    } else if (!overridden && !s->admin_key[0]) {
        random_key(s->admin_key, 40);
    }
    if (!overridden) {
        snprintf(env_key, sizeof env_key, "PROMPTD_ADMIN_KEY=%s", s->admin_key);
        envs[ne++] = env_key;
    }
    /* tests make many requests per key: rate limits are off unless a test turns them on
     * (extra_env comes after these, so it wins) */
    envs[ne++] = "PROMPTD_RATE_LIMIT_PER_MINUTE=0";
    envs[ne++] = "PROMPTD_RATE_LIMIT_PER_DAY=0";
    envs[ne++] = "PROMPTD_RATE_LIMIT_PER_ADDRESS=0"; /* every test client is 127.0.0.1 */
    for (size_t i = 0; extra_env && extra_env[i] && ne < PD_MAX_ARGS; i++)
        envs[ne++] = extra_env[i];
    envs[ne] = NULL;

    const char *args[PD_MAX_ARGS + 8];
    size_t na = 0;
    args[na++] = "serve";
    args[na++] = "--listen";
    args[na++] = "127.0.0.1:0";
    args[na++] = "--db";
    args[na++] = s->db_path;
    for (size_t i = 0; extra_args && extra_args[i] && na < PD_MAX_ARGS; i++)
        args[na++] = extra_args[i];
    args[na] = NULL;

    size_t log_from = file_size(s->log_path); /* a restart appends to the log */
    s->pid = pd_spawn(args, envs, s->log_path, s->log_path);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    int port = wait_listening_from(s->log_path, log_from, s->pid, PD_START_TIMEOUT_MS);
    if (port <= 0) {
        if (port == -2) /* already reaped */
            s->pid = 0;
        else
            pd_kill_wait(s, SIGKILL, 5000);
        fprintf(stderr, "harness: promptd did not start\n");
        print_log(s);
        return -1;
    }
    s->port = port;
    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", port);

    if (overridden && !chosen[0]) { /* the server chose the key (if it printed one, this is a first start) */
        char *log = pd_read_file(s->log_path);
        const char *p =
            log && strlen(log) >= log_from ? strstr(log + log_from, "admin API key (shown once, keep it): ") : NULL;
        if (p) {
            p += strlen("admin API key (shown once, keep it): ");
            size_t n = strcspn(p, " \r\n");
            if (n >= sizeof s->admin_key)
                n = sizeof s->admin_key - 1;
            memcpy(s->admin_key, p, n);
            s->admin_key[n] = '\0';
        }
        free(log);
    }
    return 0;
}

int pd_start(pd_server *s, const char *const *extra_args, const char *const *extra_env)
{
    memset(s, 0, sizeof *s);
    if (!pd_bin() || pd_mkdtemp(s->dir, sizeof s->dir))
        return -1;
    snprintf(s->db_path, sizeof s->db_path, "%s/promptd.db", s->dir);
    snprintf(s->log_path, sizeof s->log_path, "%s/server.log", s->dir);
    if (launch(s, extra_args, extra_env) != 0) {
        pd_rmrf(s->dir);
        s->dir[0] = '\0';
        return -1;
    }
    return 0;
}

int pd_restart(pd_server *s, const char *const *extra_args, const char *const *extra_env)
{
    if (!s->dir[0])
        return -1;
    if (s->pid > 0 && pd_kill_wait(s, SIGTERM, PD_STOP_TIMEOUT_MS) != 0)
        fprintf(stderr, "harness: promptd did not stop cleanly before restart\n");
    s->port = 0;
    s->base_url[0] = '\0';
    return launch(s, extra_args, extra_env);
}

int pd_kill_wait(pd_server *s, int sig, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    int st = 0, rc = -1;
    timeout_ms *= pd_slow();
    kill(s->pid, sig);
    int r = reap(s->pid, timeout_ms, &st);
    if (r == 0) {
        fprintf(stderr, "harness: promptd %ld ignored signal %d for %d ms; killing it\n", (long)s->pid, sig,
                timeout_ms);
        kill(s->pid, SIGKILL);
        reap(s->pid, 5000, &st);
    } else if (r == 1 && WIFEXITED(st)) {
        rc = WEXITSTATUS(st);
        if (rc == PD_SANITIZER_EXIT || rc == PD_VALGRIND_EXIT)
            checker_failed(s->pid, rc, s->log_path);
    }
    s->pid = 0;
    return rc;
}

int pd_stop(pd_server *s)
{
    int rc = -1;
    if (s->pid > 0)
        rc = pd_kill_wait(s, SIGTERM, PD_STOP_TIMEOUT_MS);
    if (s->dir[0]) {
        /* a sanitizer report in the log would vanish with the temp dir: show it */
        char *log = pd_read_file(s->log_path);
        if (log && (strstr(log, "Sanitizer") || strstr(log, "runtime error:"))) {
            fprintf(stderr, "harness: promptd reported a sanitizer error\n");
            print_log(s);
            if (rc == 0)
                rc = -1;
        }
        free(log);
        if (getenv("PD_KEEP"))
            fprintf(stderr, "harness: kept %s\n", s->dir);
        else
            pd_rmrf(s->dir);
        s->dir[0] = '\0';
    }
    return rc;
}

int pd_cli(pd_server *s, const char *const *args, char *out, size_t outlen)
{
    const char *tail[] = {"--db", s->db_path, NULL};
    const char *all[PD_MAX_ARGS];
    size_t n = 0;
    for (size_t i = 0; args && args[i] && n < PD_MAX_ARGS - 3; i++)
        all[n++] = args[i];
    for (size_t i = 0; tail[i]; i++)
        all[n++] = tail[i];
    all[n] = NULL;
    char err[8192];
    int rc = pd_run(all, NULL, PD_CLI_TIMEOUT_MS, out, outlen, err, sizeof err);
    char path[320];
    snprintf(path, sizeof path, "%s/cli.log", s->dir);
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "$ promptd");
        for (size_t i = 0; i < n; i++)
            fprintf(f, " %s", all[i]);
        fprintf(f, "  -> %d\n%s", rc, err);
        fclose(f);
    }
    return rc;
}

int pd_new_org_key(pd_server *s, const char *org, char *key, size_t keylen)
{
    const char *args[] = {"keys", "create", "--org", org, NULL};
    char out[512];
    if (pd_cli(s, args, out, sizeof out) != 0)
        return -1;
    size_t n = strcspn(out, " \r\n");
    if (n == 0 || n >= keylen)
        return -1;
    memcpy(key, out, n);
    key[n] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- HTTP */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct growbuf {
    char *p;
    size_t len;
} growbuf;

static size_t grow_write(char *data, size_t size, size_t n, void *ud)
{
    growbuf *b = ud;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, add);
    b->len += add;
    p[b->len] = '\0';
    b->p = p;
    return add;
}

static size_t header_write(char *data, size_t size, size_t n, void *ud)
{
    growbuf *b = ud;
    if (size * n >= 5 && strncmp(data, "HTTP/", 5) == 0) /* a new status line: keep only the final block */
        b->len = 0;
    return grow_write(data, size, n, ud);
}

typedef struct upload {
    const char *p;
    size_t left;
} upload;

/* Hands out the body in small pieces, so a chunked upload has several chunks. */
static size_t upload_read(char *dst, size_t size, size_t n, void *ud)
{
    upload *u = ud;
    size_t take = size * n;
    if (take > 300)
        take = 300;
    if (take > u->left)
        take = u->left;
    memcpy(dst, u->p, take);
    u->p += take;
    u->left -= take;
    return take;
}

/* Does some extra header have this name? If value is given, it must match too. */
static int has_header(const char *const *hs, const char *name, const char *value)
{
    size_t n = strlen(name);
    for (size_t i = 0; hs && hs[i]; i++) {
        if (strncasecmp(hs[i], name, n) != 0 || hs[i][n] != ':')
            continue;
        if (!value)
            return 1;
        const char *v = hs[i] + n + 1;
        while (*v == ' ')
            v++;
        if (strncasecmp(v, value, strlen(value)) == 0)
            return 1;
    }
    return 0;
}

int pd_req_on(CURL *h, pd_server *s, const char *method, const char *path, const char *key, const char *body,
              const char *const *extra_headers, pd_resp *out)
{
    memset(out, 0, sizeof *out);
    growbuf bbuf = {0}, hbuf = {0};
    struct curl_slist *hl = NULL;
    char url[2048], keyh[400];
    upload up = {0};
    int chunked = body && has_header(extra_headers, "Transfer-Encoding", "chunked");
    int rc = -1;

    curl_easy_reset(h);
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->error);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &bbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_write);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hbuf);

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && !body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (chunked) {
        up.p = body;
        up.left = strlen(body);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
        /* a body (possibly empty: "Content-Length: 0") */
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    for (size_t i = 0; extra_headers && extra_headers[i]; i++)
        hl = curl_slist_append(hl, extra_headers[i]);
    if (key && !has_header(extra_headers, "AppId", NULL)) {
        snprintf(keyh, sizeof keyh, "AppId: %s", key);
        hl = curl_slist_append(hl, keyh);
    }
    if (!has_header(extra_headers, "Content-Type", NULL) && strcmp(method, "HEAD") != 0 &&
        !(strcmp(method, "GET") == 0 && !body))
        hl = curl_slist_append(hl, body ? "Content-Type: application/json" : "Content-Type:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);

    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &out->num_connects);
        rc = 0;
    } else if (!out->error[0]) {
        snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(cc));
    }
    curl_slist_free_all(hl);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);

    out->body = bbuf.p ? bbuf.p : strdup("");
    out->len = bbuf.len;
    out->headers = hbuf.p ? hbuf.p : strdup("");
    if (out->len)
        out->json = json_loadb(out->body, out->len, 0, NULL);
    if (rc != 0)
        out->status = 0;
    return rc;
}

int pd_req(pd_server *s, const char *method, const char *path, const char *key, const char *body,
           const char *const *extra_headers, pd_resp *out)
{
    pthread_once(&curl_once, curl_setup);
    CURL *h = curl_easy_init();
    if (!h) {
        memset(out, 0, sizeof *out);
        snprintf(out->error, sizeof out->error, "curl_easy_init failed");
        return -1;
    }
    int rc = pd_req_on(h, s, method, path, key, body, extra_headers, out);
    curl_easy_cleanup(h);
    return rc;
}

const char *pd_header(const pd_resp *r, const char *name)
{
    static _Thread_local char value[2048];
    size_t n = strlen(name);
    const char *line = r->headers;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1, *end = line + ll;
            while (v < end && isspace((unsigned char)*v))
                v++;
            while (end > v && isspace((unsigned char)end[-1]))
                end--;
            size_t vl = (size_t)(end - v);
            if (vl >= sizeof value)
                vl = sizeof value - 1;
            memcpy(value, v, vl);
            value[vl] = '\0';
            return value;
        }
        line = eol ? eol + 1 : NULL;
    }
    return NULL;
}

void pd_resp_free(pd_resp *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- JSON */

json_t *pd_json_at(const json_t *root, const char *path)
{
    json_t *cur = (json_t *)root;
    char seg[256];
    const char *p = path;
    while (cur && p && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        p = p[n] ? p + n + 1 : p + n;
        if (json_is_array(cur)) {
            char *end;
            long idx = strtol(seg, &end, 10);
            if (!n || *end || idx < 0)
                return NULL;
            cur = json_array_get(cur, (size_t)idx);
        } else if (json_is_object(cur)) {
            cur = json_object_get(cur, seg);
        } else {
            return NULL;
        }
    }
    return cur;
}

const char *pd_str_at(const json_t *root, const char *path) { return json_string_value(pd_json_at(root, path)); }

long long pd_mock_stat(const char *mock_base_url, const char *name)
{
    pd_server ms;
    pd_resp r;
    memset(&ms, 0, sizeof ms);
    snprintf(ms.base_url, sizeof ms.base_url, "%s", mock_base_url);
    long long v = pd_req(&ms, "GET", "/_mock/stats", NULL, NULL, NULL, &r) == 0 && r.status == 200
                      ? pd_int_at(r.json, name, -1)
                      : -1;
    pd_resp_free(&r);
    return v;
}

long long pd_int_at(const json_t *root, const char *path, long long def)
{
    json_t *v = pd_json_at(root, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

char *pd_pack(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

/* ---------------------------------------------------------------- shortcuts */

long pd_create_prompt(pd_server *s, const char *key, const char *name, const char *content, char *id, size_t idlen)
{
    char *body = pd_pack("{s:{s:s, s:s}}", "prompt", "name", name, "content", content);
    pd_resp r;
    long status = -1;
    if (body && pd_req(s, "POST", "/prompts", key, body, NULL, &r) == 0) {
        status = r.status;
        const char *got = pd_str_at(r.json, "data.id");
        if (id && idlen) {
            snprintf(id, idlen, "%s", got ? got : "");
        }
    } else if (body) {
        fprintf(stderr, "harness: POST /prompts failed: %s\n", r.error);
    }
    if (body)
        pd_resp_free(&r);
    free(body);
    return status;
}
