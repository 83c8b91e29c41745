/*
 * utf8.h — strict UTF-8 validation (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) and the nesting depth of JSON text,
 * so bad input is refused before any parser or index sees it.
 */
#ifndef PROMPTD_CORE_UTF8_H
#define PROMPTD_CORE_UTF8_H

#include <stddef.h>

/* 1 if the n bytes at s are valid UTF-8 (NUL bytes allowed), else 0. */
int utf8_valid(const char *s, size_t n);

/* Replace, in place, each byte that is not part of valid UTF-8 with '?' (a
 * NUL-terminated string): for texts that quote untrusted bytes, such as an
 * error detail naming a path, which jansson would otherwise refuse. */
void utf8_scrub(char *s);

/* The deepest nesting of [ and { in JSON text (strings skipped). Stops
 * counting past limit + 1, so the scan is O(n) and cheap. */
int json_nesting_depth(const char *s, size_t n, int limit);

#endif
