/*
 * mock_proc.h — start and stop the mock LLM provider (tests/mock/) from a test.
 *
 * The mock binary's path comes from the environment variable PROMPTD_MOCK_BIN
 * (set by `make unit` / `make integration`). The mock is started on a free
 * loopback port; base_url is "http://127.0.0.1:PORT" (an OpenAI-compatible
 * base URL is base_url + "/v1"; the Anthropic base URL is base_url itself).
 */
#ifndef PROMPTD_TESTS_MOCK_PROC_H
#define PROMPTD_TESTS_MOCK_PROC_H

#include <sys/types.h>

typedef struct mock_proc {
    pid_t pid;
    int port;
    char base_url[64];
} mock_proc;

/* extra_args: NULL-terminated list of extra command-line arguments for the
 * mock (e.g. {"--latency-ms", "1000", NULL}), or NULL. Returns 0 when the mock
 * is listening, -1 on failure (message on stderr). */
int mock_proc_start(mock_proc *m, const char *const *extra_args);

/* SIGTERM, wait; safe to call twice. */
void mock_proc_stop(mock_proc *m);

#endif
