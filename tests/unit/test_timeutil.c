/*
 * test_timeutil.c — core/timeutil: RFC 3339 formatting and parsing (round
 * trips, fractions, offsets, bad inputs) and the clocks.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"

static void assert_format(int64_t ms, const char *want)
{
    char out[RFC3339_LEN + 1];
    memset(out, 'X', sizeof out);
    time_format_rfc3339(ms, out);
    cr_assert_str_eq(out, want, "format(%lld)", (long long)ms);
}

static void assert_parse(const char *s, int64_t want)
{
    int64_t got = -12345;
    cr_assert_eq(time_parse_rfc3339(s, &got), 0, "'%s' rejected", s);
    cr_assert_eq(got, want, "'%s': %lld, want %lld", s, (long long)got, (long long)want);
}

static void assert_bad(const char *s)
{
    int64_t got = -12345;
    cr_assert_eq(time_parse_rfc3339(s, &got), -1, "'%s' accepted as %lld", s ? s : "(null)", (long long)got);
}

Test(timeutil, format)
{
    assert_format(0, "1970-01-01T00:00:00Z");
    assert_format(1736505000000LL, "2025-01-10T10:30:00Z");
    assert_format(1736505000999LL, "2025-01-10T10:30:00Z"); /* seconds precision: truncated */
    assert_format(951782400000LL, "2000-02-29T00:00:00Z");  /* leap day */
    assert_format(4102444799000LL, "2099-12-31T23:59:59Z");
    char out[RFC3339_LEN + 1];
    time_format_rfc3339(1736505000000LL, out);
    cr_assert_eq(strlen(out), RFC3339_LEN);
}

Test(timeutil, parse_utc)
{
    assert_parse("2025-01-10T10:30:00Z", 1736505000000LL);
    assert_parse("1970-01-01T00:00:00Z", 0);
    assert_parse("2025-01-10t10:30:00z", 1736505000000LL);
    assert_parse("2025-01-10 10:30:00Z", 1736505000000LL);
    assert_parse("2000-02-29T00:00:00Z", 951782400000LL);
}

Test(timeutil, parse_date_only)
{
    assert_parse("2025-01-10", 1736467200000LL);
    assert_parse("1970-01-01", 0);
}

Test(timeutil, parse_fractions)
{
    assert_parse("2025-01-10T10:30:00.5Z", 1736505000500LL);
    assert_parse("2025-01-10T10:30:00.123Z", 1736505000123LL);
    assert_parse("2025-01-10T10:30:00.123456789Z", 1736505000123LL);
    assert_parse("2025-01-10T10:30:00.000Z", 1736505000000LL);
    assert_parse("2025-01-10T10:30:00.07Z", 1736505000070LL);
}

Test(timeutil, parse_offsets)
{
    assert_parse("2025-01-10T12:30:00+02:00", 1736505000000LL);
    assert_parse("2025-01-10T05:00:00-05:30", 1736505000000LL);
    assert_parse("2025-01-10T10:30:00+00:00", 1736505000000LL);
    assert_parse("2025-01-10T10:30:00-00:00", 1736505000000LL);
    assert_parse("2025-01-11T00:30:00+14:00", 1736505000000LL);
    assert_parse("2025-01-10T12:30:00.250+02:00", 1736505000250LL);
}

Test(timeutil, round_trip)
{
    const int64_t samples[] = {0, 1000, 86399000, 1736505000000LL, 951782400000LL, 1709251199000LL, 4102444799000LL};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char s[RFC3339_LEN + 1];
        time_format_rfc3339(samples[i], s);
        int64_t back;
        cr_assert_eq(time_parse_rfc3339(s, &back), 0, "%s", s);
        cr_assert_eq(back, samples[i], "%s", s);
    }
    /* milliseconds are dropped by the format, so the round trip lands on the second */
    for (int64_t ms = 1736505000000LL; ms < 1736505000000LL + 5000; ms += 777) {
        char s[RFC3339_LEN + 1];
        time_format_rfc3339(ms, s);
        int64_t back;
        cr_assert_eq(time_parse_rfc3339(s, &back), 0);
        cr_assert_eq(back, ms / 1000 * 1000);
    }
}

Test(timeutil, bad_inputs)
{
    const char *bad[] = {
        "",
        "abc",
        "2025",
        "2025-01",
        "2025/01/10",
        "25-01-10",
        "2025-1-10",
        "2025-13-01",
        "2025-00-10",
        "2025-01-00",
        "2025-01-32",
        "2025-01-10T",
        "2025-01-10T10:30",
        "2025-01-10T10:30Z",
        "2025-01-10T10:30:00", /* a time needs a zone */
        "2025-01-10T25:00:00Z",
        "2025-01-10T10:60:00Z",
        "2025-01-10T10:30:61Z",
        "2025-01-10T10:30:00.Z",
        "2025-01-10T10:30:00+0200",
        "2025-01-10T10:30:00+02",
        "2025-01-10T10:30:00Zjunk",
        "2025-01-10junk",
        "2025-01-10T10:30:00 Z",
        "2025-01-10X10:30:00Z",
        " 2025-01-10",
        "2025-01-10T1a:30:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_bad(bad[i]);
    assert_bad(NULL);
}

Test(timeutil, impossible_calendar_dates)
{
    assert_bad("2025-02-30");
    assert_bad("2025-02-29"); /* not a leap year */
    assert_bad("2025-04-31T00:00:00Z");
    assert_bad("1900-02-29");
    assert_parse("2024-02-29", 1709164800000LL);
}

Test(timeutil, offsets_out_of_range)
{
    assert_bad("2025-01-10T10:30:00+24:00");
    assert_bad("2025-01-10T10:30:00+02:60");
    assert_bad("2025-01-10T10:30:00+99:99");
}

Test(timeutil, clocks)
{
    int64_t wall = time_now_ms();
    int64_t sys = (int64_t)time(NULL) * 1000;
    cr_assert(wall >= sys - 2000 && wall <= sys + 2000, "time_now_ms %lld vs time() %lld", (long long)wall,
              (long long)sys);
    int64_t m1 = time_mono_ms();
    usleep(20000);
    int64_t m2 = time_mono_ms();
    cr_assert_geq(m2 - m1, 19, "monotonic clock moved %lld ms over 20 ms", (long long)(m2 - m1));
    cr_assert_lt(m2 - m1, 5000);
}

Test(timeutil, deadline_adds_milliseconds_and_carries_into_seconds)
{
    struct timespec now, d;
    for (int64_t ms = 0; ms <= 2500; ms += 250) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        time_deadline(CLOCK_MONOTONIC, ms, &d);
        cr_assert(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L, "tv_nsec %ld out of range", d.tv_nsec);
        int64_t diff_ms = (int64_t)(d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
        cr_assert(diff_ms >= ms && diff_ms <= ms + 1000, "deadline %lld ms ahead, wanted %lld", (long long)diff_ms,
                  (long long)ms);
    }
}
