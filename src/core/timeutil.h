/*
 * timeutil.h — wall-clock time as integer milliseconds since the Unix epoch
 * (how the store keeps every timestamp) and its RFC 3339 UTC rendering
 * ("2025-01-10T10:30:00Z", the format both API styles show).
 */
#ifndef PROMPTD_CORE_TIMEUTIL_H
#define PROMPTD_CORE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RFC3339_LEN 20 /* "2025-01-10T10:30:00Z" */

int64_t time_now_ms(void);
/* Monotonic milliseconds, for durations. */
int64_t time_mono_ms(void);
/* Monotonic microseconds, for short durations (Server-Timing). */
int64_t time_mono_us(void);
/* The time on `clock` ms milliseconds from now (ms >= 0), as the absolute deadline that
 * pthread_cond_timedwait (CLOCK_REALTIME unless the condition says otherwise) and
 * pthread_mutex_timedlock (always CLOCK_REALTIME) take. */
void time_deadline(clockid_t clock, int64_t ms, struct timespec *out);
/* Format ms (UTC, seconds precision) into out (>= RFC3339_LEN + 1 bytes). */
void time_format_rfc3339(int64_t ms, char out[RFC3339_LEN + 1]);
/* Parse "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ", with optional fraction and
 * +HH:MM offset. Returns 0 and sets *ms, or -1. */
int time_parse_rfc3339(const char *s, int64_t *ms);

#endif
