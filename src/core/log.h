/*
 * log.h — structured logs: one JSON object per line on stderr.
 *
 * {"ts":"2025-01-10T10:30:00Z","level":"info","msg":"...","request_id":"..."}:
 * request_id is there when the writing thread is working for a request (see
 * log_set_request). Never pass a secret (an API key, a token, a provider
 * key) to a log.
 */
#ifndef PROMPTD_CORE_LOG_H
#define PROMPTD_CORE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The request the calling thread works for from now on (NULL: none); its
 * lines name it as "request_id". The string is borrowed: the caller clears
 * it (NULL) before the string goes away. Per thread. */
void log_set_request(const char *request_id);
/* The calling thread's current request id, or NULL. */
const char *log_request(void);

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
