/* alloc_workloads: the large-block workloads (1 churn, 2 realloc growth, 3 sparse calloc,
 * 7 the realloc'd array) and the preload self-check. */
#define _GNU_SOURCE
#include "aw.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses argv[i] as a size, or keeps *out (the default) when absent. */
static int arg_size(int argc, char **argv, int i, uint64_t *out)
{
    if (i >= argc)
        return 0;
    return aw_parse_size(argv[i], out);
}

/* ---- 1. large churn: malloc(S), one byte per page, free ------------------------------------ */

static int churn_cycle(const struct aw_alloc *a, size_t size)
{
    char *p = a->malloc(size);
    if (!p)
        return -ENOMEM;
    aw_touch_pages(p, 0, size);
    aw_escape(p);
    a->free(p);
    return 0;
}

/* churn SIZE [MAX_CYCLES [BUDGET_MS]]: runs up to MAX_CYCLES cycles, stopping early (after at
 * least 3, or MAX_CYCLES when smaller) once BUDGET_MS has passed, so that the slow contenders do
 * not dominate the run time. */
int aw_wl_churn(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t size = 0, cycles = 100, budget_ms = 1000;
    char param[32];
    if (argc < 1 || aw_parse_size(argv[0], &size) || !size || arg_size(argc, argv, 1, &cycles) ||
        arg_size(argc, argv, 2, &budget_ms))
        return AW_EXIT_USAGE;
    aw_size_name(size, param, sizeof param);
    /* One untimed cycle: the steady state is what churn is about (glibc adapts its mmap
     * threshold, caches fill). */
    if (churn_cycle(a, size) != 0) {
        aw_fail("churn", param, "malloc(%llu) returned NULL", (unsigned long long)size);
        return AW_EXIT_FAIL;
    }
    double t0 = aw_now(), budget = (double)budget_ms / 1e3;
    uint64_t n = 0;
    while (n < cycles) {
        if (churn_cycle(a, size) != 0) {
            aw_fail("churn", param, "malloc returned NULL at cycle %llu", (unsigned long long)n);
            return AW_EXIT_FAIL;
        }
        n++;
        if (n >= 3 && n % 4 == 3 && aw_now() - t0 > budget)
            break;
    }
    aw_result("churn", param, "us_per_cycle", (aw_now() - t0) / (double)n * 1e6, "us");
    return AW_EXIT_OK;
}

/* ---- 2. realloc growth --------------------------------------------------------------------- */

/* Every page written during the growth still holds its value (the data moved, if it moved). */
static bool pages_intact(const char *p, size_t size)
{
    for (size_t off = 0; off < size; off += AW_PAGE)
        if (p[off] != (char)((off / AW_PAGE) | 1))
            return false;
    return true;
}

static size_t next_size(bool doubling, size_t size, size_t step, size_t max)
{
    size_t next = doubling ? size * 2 : size + step;
    return next > max ? max : next;
}

/* realloc steps|double START MAX [STEP [BUDGET_S]]: grows one block from START to MAX, writing
 * each new tail (one byte per page), and reports the whole growth's time. An allocator that
 * copies at every step is quadratic (mimalloc needs minutes for 1 GiB): past BUDGET_S seconds
 * the run gives up and says how far it got, with exit status AW_EXIT_TOO_SLOW. */
int aw_wl_realloc(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t start = 0, max = 0, step = 64 << 10, budget = 0;
    if (argc < 3 || aw_parse_size(argv[1], &start) || aw_parse_size(argv[2], &max) ||
        arg_size(argc, argv, 3, &step) || arg_size(argc, argv, 4, &budget) || !start ||
        max < start || !step)
        return AW_EXIT_USAGE;
    bool doubling = strcmp(argv[0], "double") == 0;
    char param[128], s1[32], s2[32], s3[32];
    aw_size_name(start, s1, sizeof s1);
    aw_size_name(max, s2, sizeof s2);
    aw_size_name(step, s3, sizeof s3);
    if (doubling)
        snprintf(param, sizeof param, "double %s-%s", s1, s2);
    else
        snprintf(param, sizeof param, "step %s %s-%s", s3, s1, s2);
    char *p = a->malloc(start);
    if (!p) {
        aw_fail("realloc", param, "malloc(%s) returned NULL", s1);
        return AW_EXIT_FAIL;
    }
    aw_touch_pages(p, 0, start);
    size_t size = start;
    double t0 = aw_now();
    while (size < max) {
        size_t next = next_size(doubling, size, step, max);
        char *q = a->realloc(p, next);
        if (!q) {
            aw_fail("realloc", param, "realloc to %zu returned NULL", next);
            a->free(p);
            return AW_EXIT_FAIL;
        }
        p = q;
        aw_touch_pages(p, size, next);
        size = next;
        if (budget && aw_now() - t0 > (double)budget && size < max) {
            aw_fail("realloc", param, "too slow: gave up after %llu s at %zu MiB",
                    (unsigned long long)budget, size >> 20);
            a->free(p);
            return AW_EXIT_TOO_SLOW;
        }
    }
    double dt = aw_now() - t0;
    if (!pages_intact(p, size)) {
        aw_fail("realloc", param, "data lost while growing");
        return AW_EXIT_FAIL;
    }
    a->free(p);
    aw_result("realloc", param, "seconds", dt, "s");
    return AW_EXIT_OK;
}

/* ---- 3. calloc of a big block, sparse touching --------------------------------------------- */

struct calloc_times {
    double alloc, touch, free;
};

/* Reads (must be zero) then writes one page in every `stride`. */
static bool touch_sparse(char *p, size_t size, size_t stride)
{
    for (size_t off = 0; off < size; off += stride * AW_PAGE) {
        if (p[off] != 0 || p[off + AW_PAGE - 1] != 0)
            return false;
        p[off] = 1;
    }
    return true;
}

static int calloc_once(const struct aw_alloc *a, size_t size, size_t stride, struct calloc_times *t)
{
    double t0 = aw_now();
    char *p = a->calloc(1, size);
    double t1 = aw_now();
    if (!p)
        return -ENOMEM;
    bool zero = touch_sparse(p, size, stride);
    double t2 = aw_now();
    aw_escape(p);
    a->free(p);
    double t3 = aw_now();
    t->alloc += t1 - t0;
    t->touch += t2 - t1;
    t->free += t3 - t2;
    return zero ? 0 : -EILSEQ;
}

/* calloc SIZE [REPS [STRIDE_PAGES]]: calloc, touch 1 page in STRIDE, free; means over REPS. */
int aw_wl_calloc(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t size = 0, reps = 5, stride = 1000;
    char param[64], s[32];
    if (argc < 1 || aw_parse_size(argv[0], &size) || size < AW_PAGE ||
        arg_size(argc, argv, 1, &reps) || arg_size(argc, argv, 2, &stride) || !reps || !stride)
        return AW_EXIT_USAGE;
    snprintf(param, sizeof param, "%s 1/%llu pages", aw_size_name(size, s, sizeof s),
             (unsigned long long)stride);
    size = size / AW_PAGE * AW_PAGE;
    struct calloc_times t = {0, 0, 0};
    for (uint64_t i = 0; i < reps; i++) {
        int rc = calloc_once(a, size, stride, &t);
        if (rc) {
            aw_fail("calloc", param, rc == -ENOMEM ? "calloc returned NULL"
                                                     : "calloc returned non-zero memory");
            return AW_EXIT_FAIL;
        }
    }
    double n = (double)reps;
    aw_result("calloc", param, "calloc_us", t.alloc / n * 1e6, "us");
    aw_result("calloc", param, "touch_us", t.touch / n * 1e6, "us");
    aw_result("calloc", param, "free_us", t.free / n * 1e6, "us");
    aw_result("calloc", param, "total_us", (t.alloc + t.touch + t.free) / n * 1e6, "us");
    return AW_EXIT_OK;
}

/* ---- 7. the in-memory realloc array: N pushes of uint64_t, then a sum ---------------------- */

static uint64_t *vec_fill(const struct aw_alloc *a, uint64_t n)
{
    uint64_t *v = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i == cap) {
            /* Doubling from one page, the growth rule of a typical vector. */
            size_t ncap = cap ? cap * 2 : AW_PAGE / sizeof *v;
            uint64_t *nv = a->realloc(v, ncap * sizeof *v);
            if (!nv) {
                a->free(v);
                return NULL;
            }
            v = nv;
            cap = ncap;
        }
        v[i] = i;
    }
    return v;
}

/* vec N: N pushes into a realloc-grown array, then a sum over it. */
int aw_wl_vec(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t n = 0;
    char param[32];
    if (argc < 1 || aw_parse_size(argv[0], &n) || !n)
        return AW_EXIT_USAGE;
    snprintf(param, sizeof param, "%llu pushes", (unsigned long long)n);
    double t0 = aw_now();
    uint64_t *v = vec_fill(a, n);
    double t1 = aw_now();
    if (!v) {
        aw_fail("vec", param, "realloc returned NULL");
        return AW_EXIT_FAIL;
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += v[i];
    double t2 = aw_now();
    a->free(v);
    if (sum != n * (n - 1) / 2) {
        aw_fail("vec", param, "wrong sum");
        return AW_EXIT_FAIL;
    }
    aw_result("vec", param, "push_ns", (t1 - t0) / (double)n * 1e9, "ns");
    aw_result("vec", param, "sum_ns", (t2 - t1) / (double)n * 1e9, "ns");
    return AW_EXIT_OK;
}

/* ---- check: is the mmvec interposer really in charge? -------------------------------------- */

/* check SIZE: malloc(SIZE), write it, and report whether mmvec owns it. Without this, a missing
 * LD_PRELOAD library (ld.so only warns) would silently benchmark glibc under mmvec's name. */
int aw_wl_check(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t size = 16 << 20;
    if (arg_size(argc, argv, 0, &size) || !size)
        return AW_EXIT_USAGE;
    bool (*owns)(const void *) = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "mmv_owns");
    size_t (*threshold)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "mmv_threshold");
    char *p = a->malloc(size);
    if (!p) {
        aw_fail("check", "-", "malloc(%llu) returned NULL", (unsigned long long)size);
        return AW_EXIT_FAIL;
    }
    memset(p, 0x5a, size);
    aw_info("mmv_owns", "%s", owns ? (owns(p) ? "1" : "0") : "missing");
    if (threshold)
        aw_info("mmv_threshold", "%zu", threshold());
    bool ok = owns && owns(p);
    a->free(p);
    return ok ? AW_EXIT_OK : AW_EXIT_NOT_ACTIVE;
}
