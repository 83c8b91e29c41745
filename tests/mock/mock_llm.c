/*
 * mock_llm.c — entry point of the mock LLM provider used by promptd's tests
 * and benchmarks: a local HTTP server speaking the OpenAI chat-completions
 * and Anthropic Messages wire formats, tool calls included (see
 * mock_server.c for the routes, the tool rules and the [mock:...]
 * directives that make it misbehave on request).
 *
 *   mock_llm [--port N] [--latency-ms N] [--require-key KEY] [--threads N]
 *            [--parent-pid PID] [--verbose] [--help]
 *
 * It listens on 127.0.0.1 (port 0 picks a free one), then prints exactly
 * "listening on PORT\n" to stdout. SIGTERM / SIGINT / SIGHUP: clean exit 0.
 * With --parent-pid it also exits once that process is no longer its parent
 * (checked every 250 ms), so a crashed test never leaks a mock.
 *
 * Scale: libmicrohttpd in epoll mode with suspend/resume; waiting requests
 * hold no thread (mock_timer.c). Each of the --threads N daemons (all on the
 * same port, SO_REUSEPORT) is run by a thread of ours (mock_loop.c), not by
 * MHD's internal polling thread, whose epoll loop can leave ready requests
 * unread for up to a minute in libmicrohttpd 0.9.75.
 */
#include "mock/mock_llm.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define CONNECTION_LIMIT 20000
#define LISTEN_BACKLOG 4096
#define CONNECTION_TIMEOUT_S 60
#define MAX_THREADS 64
/* Per-connection MHD memory pool. MHD clears the whole pool for every new
 * connection; the default 32 KiB made page clearing the main cost at 10,000
 * connections. Requests from HTTP clients have small headers; bodies are
 * streamed to the handler piecewise, so a small pool limits nothing else. */
#define CONNECTION_MEMORY 8192

typedef struct options {
    long port;
    long threads;
    long parent_pid;
    mock_config cfg;
} options;

static void usage(FILE *f)
{
    fputs("usage: mock_llm [options]\n"
          "  --port N           listen on 127.0.0.1:N (0, the default: a free port);\n"
          "                     prints 'listening on PORT' once ready\n"
          "  --latency-ms N     delay every answer by N ms (default 0)\n"
          "  --require-key KEY  OpenAI routes need 'Authorization: Bearer KEY',\n"
          "                     Anthropic routes need 'x-api-key: KEY'\n"
          "  --threads N        HTTP server threads (default 1)\n"
          "  --parent-pid PID   exit when PID stops being the parent process\n"
          "  --verbose          log requests and MHD errors to stderr\n"
          "  --help             this text\n"
          "Routes: POST /v1/chat/completions, POST /v1/messages, GET /v1/models,\n"
          "GET /_mock/stats, POST /_mock/reset. Directives such as [mock:latency=MS],\n"
          "[mock:status=CODE], [mock:fail_times=N], [mock:drop], [mock:drip=MS] in the\n"
          "last user message alter the answer. With a non-empty 'tools' array the answer\n"
          "to a user message is one call to the first tool, arguments {\"text\":MESSAGE}\n"
          "([mock:tool_calls=N]: N calls, arguments {\"text\":MESSAGE,\"n\":K};\n"
          "[mock:tool_text]: the text 'Let me check.' before the calls);\n"
          "a tool result as the last message gets 'mock reply: tool said RESULT'\n"
          "(see tests/mock/mock_server.c).\n",
          f);
}

static int parse_number(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static const char *option_name(const struct option *opts, int val)
{
    for (; opts->name != NULL; opts++)
        if (opts->val == val)
            return opts->name;
    return "?";
}

/* Returns 0 to run, 1 after --help, -1 on a usage error. */
static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"latency-ms", required_argument, NULL, 'l'},
        {"require-key", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 't'},
        {"parent-pid", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->threads = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p': bad = parse_number(optarg, 0, 65535, &o->port); break;
        case 'l': bad = parse_number(optarg, 0, 3600000, &o->cfg.latency_ms); break;
        case 'k': o->cfg.require_key = optarg; break;
        case 't': bad = parse_number(optarg, 1, MAX_THREADS, &o->threads); break;
        case 'P': bad = parse_number(optarg, 1, 0x7fffffff, &o->parent_pid); break;
        case 'v': o->cfg.verbose = true; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "mock_llm: bad value for --%s: %s\n", option_name(longopts, c), optarg);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mock_llm: unexpected argument: %s\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Thousands of connections need thousands of descriptors. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "mock_llm: warning: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("mock_llm: mhd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* One daemon on 127.0.0.1:port, to be run by mock_loop.c (epoll, no internal
 * thread). reuse: SO_REUSEPORT, for the several daemons of --threads N. */
static struct MHD_Daemon *start_daemon(options *o, uint16_t port, bool reuse)
{
    struct sockaddr_in sin;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL}, /* must come first */
        {MHD_OPTION_SOCK_ADDR, 0, &sin},
        {MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, LISTEN_BACKLOG, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)mock_completed, NULL},
        {reuse ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1, NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (o->cfg.verbose)
        flags |= MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, port, NULL, NULL, mock_handle, &o->cfg, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

/* Starts o->threads daemons into d[]; the first one picks the port (when
 * --port 0), the others share it. Returns the port, or 0 on failure. */
static uint16_t start_daemons(options *o, struct MHD_Daemon **d)
{
    const union MHD_DaemonInfo *info;
    bool reuse = o->threads > 1;
    uint16_t port;

    d[0] = start_daemon(o, (uint16_t)o->port, reuse);
    if (d[0] == NULL) {
        fprintf(stderr, "mock_llm: cannot start the HTTP server on 127.0.0.1:%ld\n", o->port);
        return 0;
    }
    info = MHD_get_daemon_info(d[0], MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "mock_llm: cannot tell the bound port\n");
        return 0;
    }
    port = info->port;
    for (long i = 1; i < o->threads; i++) {
        d[i] = start_daemon(o, port, reuse);
        if (d[i] == NULL) {
            fprintf(stderr, "mock_llm: cannot start HTTP server %ld of %ld on 127.0.0.1:%u\n", i + 1, o->threads,
                    (unsigned)port);
            return 0;
        }
    }
    return port;
}

/* Blocks the exit signals in every thread (call before creating any) and
 * returns a signalfd for them, or -1. */
static int exit_signals_fd(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

/* Waits for an exit signal or, with parent_pid, for the parent to go. */
static void wait_for_exit(int sfd, pid_t parent_pid)
{
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};

    for (;;) {
        int n = poll(&pfd, 1, parent_pid > 0 ? 250 : -1);
        if (n < 0 && errno != EINTR)
            return;
        if (n > 0)
            return; /* a signal arrived; no need to read it */
        if (parent_pid > 0 && getppid() != parent_pid)
            return;
    }
}

int main(int argc, char **argv)
{
    options o;
    struct MHD_Daemon *d[MAX_THREADS] = {NULL};
    uint16_t port;
    int sfd = -1;
    int rc = 1;
    int pa = parse_args(argc, argv, &o);

    if (pa != 0)
        return pa > 0 ? 0 : 2;
    if (o.parent_pid > 0 && getppid() != (pid_t)o.parent_pid)
        return 0; /* parent already gone */
    raise_nofile();
    if ((sfd = exit_signals_fd()) < 0) {
        fprintf(stderr, "mock_llm: signals: %s\n", strerror(errno));
        goto out;
    }
    if (mock_timer_start() != 0)
        goto out;
    if ((port = start_daemons(&o, d)) == 0)
        goto out;
    if (mock_loop_start(d, (size_t)o.threads) != 0)
        goto out;
    if (printf("listening on %u\n", (unsigned)port) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "mock_llm: cannot write to stdout\n");
        goto out;
    }
    wait_for_exit(sfd, (pid_t)o.parent_pid);
    rc = 0;
out:
    mock_timer_stop(); /* resumes every suspended connection first */
    mock_loop_stop();  /* lets MHD take the resumed connections back */
    for (size_t i = 0; i < MAX_THREADS; i++) {
        if (d[i] != NULL)
            MHD_stop_daemon(d[i]);
    }
    mock_state_free();
    if (sfd >= 0)
        close(sfd);
    return rc;
}
