/* Fuzz target: the parsers of MMVEC_THRESHOLD, MMVEC_CACHE, MMVEC_RESERVE... (mmvi_parse_size
 * and mmvi_parse_range, src/base/options.c), checked against an independent model of the grammar
 * documented in src/options.h:
 *
 *   size  := ' '* digits [unit ['i'|'I']] ['b'|'B'] ' '*     unit: K M G T (any case, 1024^n)
 *   range := size | size ':' size                              (min <= max)
 *
 * -EINVAL for anything else, -ERANGE when the value does not fit in a size_t. A range's first
 * part is copied into a 64-byte buffer by the implementation, so a first part of 64 bytes or
 * more is -EINVAL (an implementation limit, modelled here so it is pinned down).
 * The input is taken as a string (cut at its first NUL, at most 256 bytes).
 */
#include "options.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT 256
#define RANGE_PART_MAX 63 /* bytes of a range's first part (the implementation's buffer - 1) */

/* ---- the model ------------------------------------------------------------------------------- */

static unsigned unit_shift(char c)
{
    switch (c) {
    case 'k': case 'K': return 10;
    case 'm': case 'M': return 20;
    case 'g': case 'G': return 30;
    case 't': case 'T': return 40;
    default: return 0;
    }
}

/* Parses s[0..len) as a size. Exact overflow rule: the value must be <= SIZE_MAX, computed
 * with 128-bit arithmetic so that no intermediate step can wrap. */
static int model_size(const char *s, size_t len, size_t *out)
{
    size_t i = 0;
    while (i < len && s[i] == ' ')
        i++;
    if (i == len || s[i] < '0' || s[i] > '9')
        return -EINVAL;
    unsigned __int128 v = 0;
    int big = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > SIZE_MAX)
            big = 1, v = (unsigned __int128)SIZE_MAX + 1; /* saturate: stays "too big" */
    }
    unsigned shift = i < len ? unit_shift(s[i]) : 0;
    if (shift) {
        i++;
        if (i < len && (s[i] == 'i' || s[i] == 'I'))
            i++;
    }
    if (i < len && (s[i] == 'b' || s[i] == 'B'))
        i++;
    while (i < len && s[i] == ' ')
        i++;
    if (i != len)
        return -EINVAL;
    if (big || (v << shift) > SIZE_MAX)
        return -ERANGE;
    *out = (size_t)(v << shift);
    return 0;
}

static int model_range(const char *s, size_t len, size_t *min, size_t *max)
{
    const char *colon = memchr(s, ':', len);
    if (!colon) {
        *max = SIZE_MAX;
        return model_size(s, len, min);
    }
    size_t lo_len = (size_t)(colon - s), a, b;
    if (lo_len > RANGE_PART_MAX)
        return -EINVAL;
    int rc = model_size(s, lo_len, &a);
    if (rc == 0)
        rc = model_size(colon + 1, len - lo_len - 1, &b);
    if (rc < 0)
        return rc;
    if (a > b)
        return -EINVAL;
    *min = a;
    *max = b;
    return 0;
}

/* ---- the checks -------------------------------------------------------------------------------- */

/* Prints the disagreement (the input that got here is the counterexample) and stops. */
static void fail(const char *what, const char *s, int rc, int model)
{
    fprintf(stderr, "fuzz_parse: %s(\"%s\"): returned %d, the grammar says %d\n", what, s, rc,
            model);
    abort();
}

static void check_size(const char *s, size_t len)
{
    size_t got = 12345, want = 12345;
    int rc = mmvi_parse_size(s, &got), model = model_size(s, len, &want);
    if (rc != model || got != want)
        fail("mmvi_parse_size", s, rc, model);
    if (rc < 0 && got != 12345)
        fail("mmvi_parse_size (output written on error)", s, rc, model);
}

static void check_range(const char *s, size_t len)
{
    size_t lo = 1, hi = 2, mlo = 1, mhi = 2;
    int rc = mmvi_parse_range(s, &lo, &hi), model = model_range(s, len, &mlo, &mhi);
    if (rc != model)
        fail("mmvi_parse_range", s, rc, model);
    if (rc == 0 && (lo != mlo || hi != mhi || lo > hi))
        fail("mmvi_parse_range (values)", s, rc, model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[MAX_INPUT + 1];
    size_t len = size < MAX_INPUT ? size : MAX_INPUT;
    memcpy(s, data, len);
    s[len] = '\0';
    len = strlen(s);
    check_size(s, len);
    check_range(s, len);
    /* NULL arguments are errors, never crashes. */
    size_t x;
    if (mmvi_parse_size(NULL, &x) != -EINVAL || mmvi_parse_size(s, NULL) != -EINVAL ||
        mmvi_parse_range(s, NULL, &x) != -EINVAL || mmvi_parse_range(NULL, &x, &x) != -EINVAL)
        fail("NULL argument", s, 0, -EINVAL);
    return 0;
}
