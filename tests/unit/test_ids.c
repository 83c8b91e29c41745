/*
 * test_ids.c — core/ids: UUIDv7 layout (version and variant nibbles, the
 * millisecond timestamp), ordering by time, uniqueness, and id_is_uuid.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ids.h"

static void setup(void) { cr_assert_geq(sodium_init(), 0); }

TestSuite(ids, .init = setup);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The 48-bit timestamp of a UUIDv7. */
static int64_t ts_of(const char *id)
{
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    return (int64_t)strtoll(hex, NULL, 16);
}

Test(ids, format_is_canonical_v7)
{
    for (int n = 0; n < 1000; n++) {
        char id[ID_LEN + 1];
        memset(id, 'Z', sizeof id);
        id_new(id);
        cr_assert_eq(strlen(id), ID_LEN);
        for (int i = 0; i < ID_LEN; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                cr_assert_eq(id[i], '-', "%s", id);
            else
                cr_assert(isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]), "%s", id);
        }
        cr_assert_eq(id[14], '7', "version nibble: %s", id);
        cr_assert(strchr("89ab", id[19]), "variant nibble: %s", id);
        cr_assert(id_is_uuid(id), "%s", id);
    }
}

Test(ids, timestamp_is_now)
{
    int64_t before = now_ms();
    char id[ID_LEN + 1];
    id_new(id);
    int64_t after = now_ms();
    int64_t ts = ts_of(id);
    cr_assert(ts >= before && ts <= after, "timestamp %lld outside [%lld, %lld]", (long long)ts, (long long)before,
              (long long)after);
}

Test(ids, later_ids_sort_after)
{
    char prev[ID_LEN + 1], cur[ID_LEN + 1];
    id_new(prev);
    for (int i = 0; i < 5; i++) {
        usleep(2000);
        id_new(cur);
        cr_assert_lt(strcmp(prev, cur), 0, "%s !< %s", prev, cur);
        cr_assert_gt(ts_of(cur), ts_of(prev));
        memcpy(prev, cur, sizeof cur);
    }
    /* within one burst the timestamps never go back */
    int64_t last = 0;
    for (int i = 0; i < 2000; i++) {
        id_new(cur);
        cr_assert_geq(ts_of(cur), last);
        last = ts_of(cur);
    }
}

static int cmp(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

Test(ids, unique_over_ten_thousand)
{
    enum { N = 10000 };
    char(*ids)[ID_LEN + 1] = malloc(N * sizeof *ids);
    cr_assert_not_null(ids);
    for (int i = 0; i < N; i++)
        id_new(ids[i]);
    qsort(ids, N, sizeof *ids, cmp);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate id %s", ids[i]);
    free(ids);
}

Test(ids, is_uuid_accepts)
{
    cr_assert(id_is_uuid("0190a0b0-1234-7abc-8def-0123456789ab"));
    cr_assert(id_is_uuid("0190A0B0-1234-7ABC-8DEF-0123456789AB"));
    cr_assert(id_is_uuid("00000000-0000-0000-0000-000000000000"));
    cr_assert(id_is_uuid("ffffffff-ffff-4fff-bfff-ffffffffffff"));
}

Test(ids, is_uuid_rejects)
{
    const char *bad[] = {
        "",
        "not-a-uuid",
        "0190a0b0-1234-7abc-8def-0123456789a",   /* short */
        "0190a0b0-1234-7abc-8def-0123456789abc", /* long */
        "0190a0b0-1234-7abc-8def-0123456789ag",  /* non-hex */
        "0190a0b0_1234-7abc-8def-0123456789ab",  /* wrong separator */
        "0190a0b01-234-7abc-8def-0123456789ab",  /* dash misplaced */
        "0190a0b0-1234-7abc-8def0-123456789ab",
        "{0190a0b0-1234-7abc-8def-0123456789ab}",
        "0190a0b012347abc8def0123456789ab", /* no dashes */
        "0190a0b0-1234-7abc-8def-0123456789a ",
        " 190a0b0-1234-7abc-8def-0123456789ab",
        "0190a0b0-1234-7abc-8def-0123456789ab\n",
        "------------------------------------",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(id_is_uuid(bad[i]), "accepted '%s'", bad[i]);
    cr_assert_not(id_is_uuid(NULL));
}
