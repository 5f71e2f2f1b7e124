/* vec_workload: workload 7 of the allocator suite for mmvec's own vector, in the driver's output
 * format (aw.h), so that bench/suite.py can interleave it round by round with the realloc'd
 * arrays that alloc_workloads measures under each allocator.
 *
 *   vec_workload N      N pushes of uint64_t into a typed mmvec vector, then a sum
 *
 * The file goes to $MMVEC_DIR (the default namer's rule). bench/bench_vec.c is the vector
 * engineer's own, more detailed benchmark; this one only has to be comparable with the suite.
 */
#define _GNU_SOURCE
#include "aw.h"

#include <mmvec.h>

#include <stdio.h>
#include <stdlib.h>

MMV_VEC_DECLARE(u64vec, uint64_t);

static int fill(u64vec *v, uint64_t n)
{
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < n; i++)
        rc = u64vec_push(v, i);
    return rc;
}

static uint64_t sum(const uint64_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

int main(int argc, char **argv)
{
    uint64_t n = 0;
    char param[32];
    if (argc != 2 || aw_parse_size(argv[1], &n) || n < 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return AW_EXIT_USAGE;
    }
    snprintf(param, sizeof param, "%llu pushes", (unsigned long long)n);
    u64vec v;
    int rc = u64vec_init(&v);
    double t0 = aw_now();
    if (rc == 0)
        rc = fill(&v, n);
    double t1 = aw_now();
    uint64_t s = rc == 0 ? sum(u64vec_data(&v), u64vec_len(&v)) : 0;
    double t2 = aw_now();
    if (rc != 0 || s != n * (n - 1) / 2) {
        aw_fail("vec", param, "%s", rc ? mmv_strerror(rc) : "wrong sum");
        u64vec_destroy(&v);
        return AW_EXIT_FAIL;
    }
    rc = u64vec_destroy(&v);
    if (rc != 0) {
        aw_fail("vec", param, "destroy: %s", mmv_strerror(rc));
        return AW_EXIT_FAIL;
    }
    aw_result("vec", param, "push_ns", (t1 - t0) / (double)n * 1e9, "ns");
    aw_result("vec", param, "sum_ns", (t2 - t1) / (double)n * 1e9, "ns");
    return AW_EXIT_OK;
}
