/*
 * secret.h — the file that holds the HS256 signing secret of promptd's own tokens.
 *
 * Whoever can read the secret can forge any user's token, an admin's included, so it is kept
 * out of the database (a copy or a read-only view of the database file must not be enough):
 * in a file of its own beside it, `<database>.jwt-secret` unless configured otherwise, readable
 * by its owner only (mode 0600; a file that group or others may read is refused, as ssh
 * refuses such a private key).
 *
 * The file is text: the current secret on the first line, and optionally the secret before
 * it on the second. A line is the secret's bytes as written (surrounding blanks trimmed), or
 * "hex:" and the bytes in hexadecimal (how a binary secret, such as one an older promptd kept
 * in its database, is written). The current one signs and verifies; the previous one only verifies, so a
 * rotation (secret_file_rotate) never invalidates tokens already handed out: they stay good
 * until they expire, and a server picks up a rotated file when it restarts (nodes may restart
 * one at a time: each accepts tokens signed with either secret). Each secret is at least
 * PROMPTD_JWT_MIN_SECRET characters; generated ones are 64 hex digits (32 random bytes).
 *
 * Writes are atomic (a temporary file renamed or linked into place, fsync'd with its folder),
 * so a crash leaves the old file or the new one, never half of one; two processes creating the
 * file at once agree on one secret. Errors: -1 with a message in err (no secret is ever
 * written into a message). Not thread-safe against concurrent rotations of the same file.
 */
#ifndef PROMPTD_AUTH_SECRET_H
#define PROMPTD_AUTH_SECRET_H

#include <stddef.h>

#define SECRET_MAX 255 /* longest secret, bytes */

typedef struct secret_pair {
    unsigned char current[SECRET_MAX]; /* signs and verifies */
    size_t current_len;
    unsigned char previous[SECRET_MAX]; /* verifies only */
    size_t previous_len;                /* 0 when none */
} secret_pair;

/* The default path of the secret file for a database file: "<db>.jwt-secret". */
int secret_file_default_path(const char *db_path, char *out, size_t outlen);

/*
 * Read the file at path into *out. Returns 0, 1 when there is no such file (*out zeroed),
 * -1 when it cannot be used: not a regular file, readable or writable by group or others,
 * larger than two secrets, or a line shorter than PROMPTD_JWT_MIN_SECRET.
 */
int secret_file_load(const char *path, secret_pair *out, char *err, size_t errlen);

/*
 * Make sure the file exists and read it: when missing, create it with a new random secret,
 * and `carried` (initial_len bytes: a secret kept elsewhere until now, e.g. in an older
 * version's database; NULL = none) as the previous one, so that tokens signed with it stay
 * good until they expire. When another process created the file first, theirs is read.
 * Returns 0 or -1.
 */
int secret_file_ensure(const char *path, const unsigned char *carried, size_t carried_len, secret_pair *out,
                       char *err, size_t errlen);

/*
 * Rotate: a new random secret becomes the current one and the current one the previous (the
 * one before is dropped). The file must exist. Fills *out with the new pair. Returns 0 or -1.
 */
int secret_file_rotate(const char *path, secret_pair *out, char *err, size_t errlen);

/* Wipe a pair from memory. */
void secret_pair_clear(secret_pair *p);

#endif
