/*
 * migrations.h — the SQL migrations of each backend, embedded in the binary.
 *
 * Each backend has an ordered list; migration i (1-based) brings the schema
 * from version i-1 to i. The .sql files live in src/store/migrations/<backend>/
 * and are embedded at build time (migrations.c), so the binary needs no files
 * at run time.
 */
#ifndef PROMPTD_STORE_MIGRATIONS_H
#define PROMPTD_STORE_MIGRATIONS_H

#include <stddef.h>

typedef struct store_migration {
    int version;
    const char *name;
    const char *sql; /* NUL-terminated */
} store_migration;

extern const store_migration store_sqlite_migrations[];
extern const size_t store_sqlite_migrations_count;

#endif
