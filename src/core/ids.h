/*
 * ids.h — identifiers: random UUIDv4 (RFC 9562) for every resource, and
 * validation of ids arriving in URLs.
 *
 * New ids are version 4 (122 random bits from libsodium) because clients
 * check them: the official Jarvis SDK accepts only version digits 1-5, so a
 * time-ordered UUIDv7 would be refused before a request is sent. Ids carry no
 * order: the store orders rows by created_at with its own insertion sequence
 * (rowid) as tiebreaker, never by id.
 *
 * Ids stored by earlier versions (UUIDv7) stay valid inputs: id_is_uuid checks
 * the 8-4-4-4-12 hex syntax only, whatever the version digit.
 */
#ifndef PROMPTD_CORE_IDS_H
#define PROMPTD_CORE_IDS_H

#include <stddef.h>

#define ID_LEN 36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */

/* Write a new lowercase UUIDv4 into out (at least ID_LEN + 1 bytes),
 * NUL-terminated. Needs sodium_init() to have run. */
void id_new(char out[ID_LEN + 1]);

/* 1 if s is a canonical (lowercase or uppercase hex) 8-4-4-4-12 UUID of any
 * version, else 0. */
int id_is_uuid(const char *s);

#endif
