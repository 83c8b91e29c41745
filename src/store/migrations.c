/*
 * migrations.c — embeds src/store/migrations/<backend>/ *.sql into the binary.
 *
 * The assembler's .incbin reads each file at build time (the Makefile makes
 * this object depend on every .sql file), and a NUL byte ends each text.
 * Adding a migration: add the file, one EMBED line and one table row.
 */
#include "store/migrations.h"

#define EMBED(sym, path)                                                                           \
    __asm__(".section .rodata\n"                                                                   \
            ".global " #sym "\n"                                                                   \
            ".type " #sym ", @object\n"                                                            \
            ".balign 16\n" #sym ":\n"                                                              \
            ".incbin \"" path "\"\n"                                                               \
            ".byte 0\n"                                                                            \
            ".previous\n");                                                                        \
    extern const char sym[]

EMBED(sqlite_0001_init, "src/store/migrations/sqlite/0001_init.sql");
EMBED(sqlite_0002_executions, "src/store/migrations/sqlite/0002_executions.sql");
EMBED(sqlite_0003_clusters, "src/store/migrations/sqlite/0003_clusters.sql");
EMBED(sqlite_0004_queue, "src/store/migrations/sqlite/0004_queue.sql");
EMBED(sqlite_0006_auth, "src/store/migrations/sqlite/0006_auth.sql");
EMBED(sqlite_0005_history, "src/store/migrations/sqlite/0005_history.sql");
EMBED(sqlite_0007_tool_calls, "src/store/migrations/sqlite/0007_tool_calls.sql");
EMBED(sqlite_0008_numbers, "src/store/migrations/sqlite/0008_numbers.sql");
EMBED(sqlite_0009_idem_caller, "src/store/migrations/sqlite/0009_idem_caller.sql");
EMBED(sqlite_0010_rate_hits, "src/store/migrations/sqlite/0010_rate_hits.sql");
EMBED(sqlite_0011_comment_threads, "src/store/migrations/sqlite/0011_comment_threads.sql");
EMBED(sqlite_0012_idp_identity, "src/store/migrations/sqlite/0012_idp_identity.sql");

const store_migration store_sqlite_migrations[] = {
    {1, "0001_init", sqlite_0001_init},
    {2, "0002_executions", sqlite_0002_executions},
    {3, "0003_clusters", sqlite_0003_clusters},
    {4, "0004_queue", sqlite_0004_queue},
    {5, "0005_history", sqlite_0005_history},
    {6, "0006_auth", sqlite_0006_auth},
    {7, "0007_tool_calls", sqlite_0007_tool_calls},
    {8, "0008_numbers", sqlite_0008_numbers},
    {9, "0009_idem_caller", sqlite_0009_idem_caller},
    {10, "0010_rate_hits", sqlite_0010_rate_hits},
    {11, "0011_comment_threads", sqlite_0011_comment_threads},
    {12, "0012_idp_identity", sqlite_0012_idp_identity},
};
const size_t store_sqlite_migrations_count = sizeof store_sqlite_migrations / sizeof store_sqlite_migrations[0];
