/*
 * log.h — structured logs: one JSON object per line on stderr.
 *
 * {"ts":"2025-01-10T10:30:00Z","level":"info","msg":"..."} plus optional
 * fields. Never pass a secret (an API key, a token, a provider key) to a log.
 */
#ifndef PROMPTD_CORE_LOG_H
#define PROMPTD_CORE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
