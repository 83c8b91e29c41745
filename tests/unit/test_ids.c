/*
 * test_ids.c — core/ids: UUIDv4 layout (version and variant nibbles), the
 * pattern the official Jarvis SDK checks, randomness (no time order),
 * uniqueness, and id_is_uuid (any version, so stored UUIDv7 ids still work).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <regex.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

static void setup(void) { cr_assert_geq(sodium_init(), 0); }

TestSuite(ids, .init = setup);

Test(ids, format_is_canonical_v4)
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
        cr_assert_eq(id[14], '4', "version nibble: %s", id);
        cr_assert(strchr("89ab", id[19]), "variant nibble: %s", id);
        cr_assert(id_is_uuid(id), "%s", id);
    }
}

/* The check @23blocks/contracts applies before sending any request
 * (assertUuid): RFC 4122 form, version 1-5, variant 8/9/a/b. */
Test(ids, pass_the_jarvis_sdk_check)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                         REG_EXTENDED | REG_ICASE | REG_NOSUB),
                 0);
    for (int n = 0; n < 1000; n++) {
        char id[ID_LEN + 1];
        id_new(id);
        cr_assert_eq(regexec(&re, id, 0, NULL, 0), 0, "refused by the SDK's pattern: %s", id);
    }
    regfree(&re);
}

/* 122 random bits: every hex digit outside the version/variant nibbles takes
 * many values over a sample, and consecutive ids do not share a prefix the way
 * time-ordered ids would. */
Test(ids, random_not_time_ordered)
{
    enum { N = 2000 };
    unsigned seen[ID_LEN] = {0};
    int ascending = 0;
    char prev[ID_LEN + 1], cur[ID_LEN + 1];
    id_new(prev);
    for (int n = 0; n < N; n++) {
        id_new(cur);
        for (int i = 0; i < ID_LEN; i++)
            if (isxdigit((unsigned char)cur[i]))
                seen[i] |= 1u << (cur[i] <= '9' ? cur[i] - '0' : cur[i] - 'a' + 10);
        if (strcmp(prev, cur) < 0)
            ascending++;
        memcpy(prev, cur, sizeof cur);
    }
    for (int i = 0; i < ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23 || i == 14)
            continue;
        int values = __builtin_popcount(seen[i]);
        cr_assert_geq(values, i == 19 ? 4 : 16, "position %d took only %d values", i, values);
    }
    /* about half the neighbours ascend; time-ordered ids would all do */
    cr_assert(ascending > N / 4 && ascending < 3 * N / 4, "%d of %d ascending", ascending, N);
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
    cr_assert(id_is_uuid("0190a0b0-1234-7abc-8def-0123456789ab")); /* stored v7 ids stay valid */
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
