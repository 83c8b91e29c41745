/*
 * secret.c — the token-signing secret's file (see secret.h for the contract).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/secret.h"

#define SECRET_FILE_MAX (2 * (SECRET_MAX + 2)) /* two lines with their CR LF */

void secret_pair_clear(secret_pair *p) { sodium_memzero(p, sizeof *p); }

int secret_file_default_path(const char *db_path, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s.jwt-secret", db_path);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* One line of the file into dst (SECRET_MAX bytes): trimmed, "hex:" decoded, then checked
 * for length. */
static int take_line(const char *line, size_t len, unsigned char *dst, size_t *dst_len, const char *path,
                     const char *which, char *err, size_t errlen)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    while (len > 0 && (*line == ' ' || *line == '\t'))
        line++, len--;
    size_t n = len;
    if (len >= 4 && !memcmp(line, "hex:", 4)) {
        const char *end = NULL;
        if (sodium_hex2bin(dst, SECRET_MAX, line + 4, len - 4, NULL, &n, &end) != 0 || end != line + len) {
            snprintf(err, errlen, "secret file %s: the %s secret is not valid hexadecimal after \"hex:\"", path,
                     which);
            return -1;
        }
    } else if (len <= SECRET_MAX) {
        memcpy(dst, line, len);
    }
    if (n < PROMPTD_JWT_MIN_SECRET || n > SECRET_MAX) {
        sodium_memzero(dst, SECRET_MAX);
        snprintf(err, errlen, "secret file %s: the %s secret must be %d to %d bytes", path, which,
                 PROMPTD_JWT_MIN_SECRET, SECRET_MAX);
        return -1;
    }
    *dst_len = n;
    return 0;
}

int secret_file_load(const char *path, secret_pair *out, char *err, size_t errlen)
{
    char buf[SECRET_FILE_MAX + 1];
    int rc = -1;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "secret file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "secret file %s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "secret file %s is accessible by group or others (mode %03o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        goto out;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, sizeof buf - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "secret file %s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n == sizeof buf - 1) {
            snprintf(err, errlen, "secret file %s: larger than two secrets", path);
            goto out;
        }
    }
    buf[n] = '\0';
    const char *first = buf, *nl = memchr(buf, '\n', n);
    size_t first_len = nl ? (size_t)(nl - buf) : n;
    if (take_line(first, first_len, out->current, &out->current_len, path, "first", err, errlen))
        goto out;
    if (nl) {
        const char *second = nl + 1, *end = buf + n;
        const char *nl2 = memchr(second, '\n', (size_t)(end - second));
        size_t second_len = nl2 ? (size_t)(nl2 - second) : (size_t)(end - second);
        /* anything after the second line must be blank: a third secret would be ignored silently */
        for (const char *p = nl2 ? nl2 + 1 : end; p < end; p++)
            if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t') {
                snprintf(err, errlen, "secret file %s: more than two secrets", path);
                goto out;
            }
        int blank = 1;
        for (size_t i = 0; i < second_len; i++)
            blank &= second[i] == '\r' || second[i] == ' ' || second[i] == '\t';
        if (!blank && take_line(second, second_len, out->previous, &out->previous_len, path, "second", err, errlen))
            goto out;
    }
    rc = 0;
out:
    sodium_memzero(buf, sizeof buf);
    close(fd);
    if (rc != 0)
        secret_pair_clear(out);
    return rc;
}

/* A new secret's line: 64 hex digits of fresh randomness, used as they are. */
static void new_secret_line(char out[65])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, 65, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
}

/* A secret's bytes as a "hex:" line (out: at least 4 + 2 * SECRET_MAX + 1 bytes). */
static void hex_line(const unsigned char *secret, size_t len, char *out, size_t outlen)
{
    memcpy(out, "hex:", 5);
    sodium_bin2hex(out + 4, outlen - 4, secret, len);
}

/* Make the folder's entry for a new or renamed file durable. */
static void sync_dir_of(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Write text into a new owner-only temporary file beside path; its name into tmp. */
static int write_temp(const char *path, const char *text, char *tmp, size_t tmplen, char *err, size_t errlen)
{
    int n = snprintf(tmp, tmplen, "%s.tmp.%ld.%08x", path, (long)getpid(), randombytes_random());
    if (n < 0 || (size_t)n >= tmplen) {
        snprintf(err, errlen, "secret file %s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "secret file %s: cannot create %s: %s", path, tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "secret file %s: cannot write %s: %s", path, tmp, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

int secret_file_ensure(const char *path, const unsigned char *carried, size_t carried_len, secret_pair *out,
                       char *err, size_t errlen)
{
    int rc = secret_file_load(path, out, err, errlen);
    if (rc <= 0)
        return rc;
    if (carried && (carried_len < PROMPTD_JWT_MIN_SECRET || carried_len > SECRET_MAX)) {
        snprintf(err, errlen, "secret file %s: the secret to carry over is not %d to %d bytes", path,
                 PROMPTD_JWT_MIN_SECRET, SECRET_MAX);
        return -1;
    }
    char fresh[65], old[4 + 2 * SECRET_MAX + 1] = "", text[sizeof fresh + sizeof old + 2], tmp[4200];
    new_secret_line(fresh);
    if (carried)
        hex_line(carried, carried_len, old, sizeof old);
    snprintf(text, sizeof text, "%s\n%s%s", fresh, old, carried ? "\n" : "");
    sodium_memzero(fresh, sizeof fresh);
    sodium_memzero(old, sizeof old);
    rc = write_temp(path, text, tmp, sizeof tmp, err, errlen);
    sodium_memzero(text, sizeof text);
    if (rc)
        return -1;
    /* link() never replaces a file: if another process got there first, theirs stands */
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "secret file %s: cannot create it: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    unlink(tmp);
    sync_dir_of(path);
    rc = secret_file_load(path, out, err, errlen);
    if (rc == 1) {
        snprintf(err, errlen, "secret file %s: vanished right after it was written", path);
        rc = -1;
    }
    return rc;
}

int secret_file_rotate(const char *path, secret_pair *out, char *err, size_t errlen)
{
    secret_pair prev;
    int rc = secret_file_load(path, &prev, err, errlen);
    if (rc == 1)
        snprintf(err, errlen, "secret file %s does not exist (a server creates it on its first start)", path);
    if (rc != 0)
        return -1;
    char fresh[65], old[4 + 2 * SECRET_MAX + 1], text[sizeof fresh + sizeof old + 2], tmp[4200];
    new_secret_line(fresh);
    hex_line(prev.current, prev.current_len, old, sizeof old);
    snprintf(text, sizeof text, "%s\n%s\n", fresh, old);
    sodium_memzero(fresh, sizeof fresh);
    sodium_memzero(old, sizeof old);
    secret_pair_clear(&prev);
    rc = write_temp(path, text, tmp, sizeof tmp, err, errlen);
    sodium_memzero(text, sizeof text);
    if (rc)
        return -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "secret file %s: cannot replace it: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    sync_dir_of(path);
    rc = secret_file_load(path, out, err, errlen);
    return rc == 0 ? 0 : -1;
}
