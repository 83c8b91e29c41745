/*
 * ids.h — identifiers: UUIDv7 (RFC 9562) for every resource, and validation of
 * ids arriving in URLs.
 *
 * UUIDv7 puts a millisecond timestamp in the top 48 bits, so ids sort by
 * creation time and index well in B-trees; the rest is libsodium randomness.
 */
#ifndef PROMPTD_CORE_IDS_H
#define PROMPTD_CORE_IDS_H

#include <stddef.h>

#define ID_LEN 36 /* "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx" */

/* Write a new UUIDv7 into out (at least ID_LEN + 1 bytes), NUL-terminated. */
void id_new(char out[ID_LEN + 1]);

/* 1 if s is a canonical (lowercase or uppercase hex) 8-4-4-4-12 UUID, else 0. */
int id_is_uuid(const char *s);

#endif
