/*
 * log.c — one JSON object per line on stderr (see log.h). The line is built in
 * full and written with one write(2) so lines from several threads never mix.
 */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "core/utf8.h"

static enum log_level min_level = LOG_INFO; /* set once at start-up, before threads */
static _Thread_local const char *cur_request;  /* borrowed: see log_set_request */

void log_set_level(enum log_level lvl) { min_level = lvl; }

void log_set_request(const char *request_id) { cur_request = request_id; }

const char *log_request(void) { return cur_request; }

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (lvl < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_scrub(msg); /* a message quoting request bytes (a path) must not lose the line */

    char ts[RFC3339_LEN + 1];
    time_format_rfc3339(time_now_ms(), ts);
    json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", names[lvl], "msg", msg);
    if (o && cur_request)
        json_object_set_new(o, "request_id", json_string(cur_request));
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (line) {
        size_t n = strlen(line);
        line[n] = '\n'; /* json_dumps leaves room: we overwrite the NUL and write n+1 bytes */
        ssize_t w = write(STDERR_FILENO, line, n + 1);
        (void)w;
    }
    free(line);
    json_decref(o);
}
