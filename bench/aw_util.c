/* alloc_workloads: output lines, the clock, size strings, page touching. */
#define _GNU_SOURCE
#include "aw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double aw_now(void)
{
    struct timespec ts;
    /* MONOTONIC: immune to clock adjustments; process start-up is never inside a measurement. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void aw_result(const char *wl, const char *param, const char *metric, double v, const char *unit)
{
    printf("RESULT,%s,%s,%s,%.6g,%s\n", wl, param, metric, v, unit);
    /* Flushed at once: a crash later in the run must not lose what was already measured. */
    fflush(stdout);
}

static void line(const char *kind, const char *a, const char *b, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* The suite splits on commas; a reason must stay one field. */
    for (char *c = msg; *c; c++)
        if (*c == ',' || *c == '\n')
            *c = ';';
    if (b)
        printf("%s,%s,%s,%s\n", kind, a, b, msg);
    else
        printf("%s,%s,%s\n", kind, a, msg);
    fflush(stdout);
}

void aw_fail(const char *wl, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line("FAIL", wl, param, fmt, ap);
    va_end(ap);
}

void aw_skip(const char *wl, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line("SKIP", wl, param, fmt, ap);
    va_end(ap);
}

void aw_info(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line("INFO", key, NULL, fmt, ap);
    va_end(ap);
}

int aw_parse_size(const char *s, uint64_t *out)
{
    if (!s || !out || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    default: break;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

const char *aw_size_name(uint64_t bytes, char *buf, size_t size)
{
    static const char units[] = "KMG";
    int u = -1;
    while (u < 2 && bytes >= 1024 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, size, "%" PRIu64, bytes);
    else
        snprintf(buf, size, "%" PRIu64 "%c", bytes, units[u]);
    return buf;
}

void aw_touch_pages(char *p, size_t from, size_t to)
{
    /* One byte per page is what faults a page in; the value lets a later check see the data
     * survived a move (realloc). */
    for (size_t off = from; off < to; off = (off / AW_PAGE + 1) * AW_PAGE)
        p[off] = (char)((off / AW_PAGE) | 1);
}
