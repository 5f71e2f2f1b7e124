/* bench_vec: the vector against an in-memory array grown by realloc doubling (issue 2 targets).
 *
 *   bench_vec [--quick] [--rounds N] [--count N]
 *
 * Per round, interleaved: push N uint64_t one by one into an empty vector (typed layer), then sum
 * them; the same with a realloc-doubled array. Reports medians (Mpush/s, GB/s) and the ratio,
 * then the median time to create a vector, push once and destroy it. The vector's files go to
 * $MMVEC_DIR, else to a private directory under /var/tmp (removed at the end).
 * --quick: 10 M pushes, 3 rounds.
 */
#define _GNU_SOURCE
#include <mmvec.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

MMV_VEC_DECLARE(u64s, uint64_t);

struct result {
    double push_s, sum_s;
};

static volatile uint64_t sink; /* keeps the sums alive */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t sum_u64(const uint64_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

static int check_sum(uint64_t got, size_t n)
{
    uint64_t want = (uint64_t)n * (n - 1) / 2;
    if (got == want)
        return 0;
    fprintf(stderr, "bench_vec: wrong sum %llu, expected %llu\n", (unsigned long long)got,
            (unsigned long long)want);
    return -1;
}

static int run_vec(size_t n, const mmv_namer *namer, struct result *r)
{
    u64s v;
    int rc = mmv_vec_init(&v.v, sizeof(uint64_t), namer);
    double t0 = now();
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = u64s_push(&v, i);
    double t1 = now();
    if (rc < 0) {
        fprintf(stderr, "bench_vec: push: %s\n", mmv_strerror(rc));
        return rc;
    }
    uint64_t s = sum_u64(u64s_data(&v), u64s_len(&v));
    double t2 = now();
    sink = s;
    u64s_destroy(&v);
    *r = (struct result){t1 - t0, t2 - t1};
    return check_sum(s, n);
}

static int run_array(size_t n, struct result *r)
{
    uint64_t *a = NULL;
    size_t cap = 0;
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        if (i == cap) {
            /* Doubling from one page worth, as the vector starts. */
            size_t ncap = cap ? cap * 2 : 4096 / sizeof *a;
            uint64_t *na = realloc(a, ncap * sizeof *a);
            if (!na) {
                free(a);
                return -ENOMEM;
            }
            a = na;
            cap = ncap;
        }
        a[i] = i;
    }
    double t1 = now();
    uint64_t s = sum_u64(a, n);
    double t2 = now();
    sink = s;
    free(a);
    *r = (struct result){t1 - t0, t2 - t1};
    return check_sum(s, n);
}

/* Median microseconds of create + push one + destroy. */
static int run_tiny(size_t iters, const mmv_namer *namer, double *us)
{
    double *t = malloc(iters * sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < iters && rc == 0; i++) {
        u64s v;
        double t0 = now();
        rc = mmv_vec_init(&v.v, sizeof(uint64_t), namer);
        if (rc == 0)
            rc = u64s_push(&v, 42);
        if (rc == 0)
            rc = u64s_destroy(&v);
        t[i] = (now() - t0) * 1e6;
    }
    *us = median(t, iters);
    free(t);
    return rc;
}

static int parse_args(int argc, char **argv, size_t *n, size_t *rounds)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            *n = 10000000;
            *rounds = 3;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            *rounds = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            *n = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--rounds N] [--count N]\n", argv[0]);
            return -1;
        }
    }
    return *n > 1 && *rounds > 0 && *rounds <= 100 ? 0 : -1;
}

static void report(const char *what, size_t n, double *push, double *sum, size_t rounds)
{
    double p = median(push, rounds), s = median(sum, rounds);
    printf("%-22s push %8.1f Mpush/s   sum %6.2f GB/s\n", what, (double)n / p / 1e6,
           (double)n * 8 / s / 1e9);
}

int main(int argc, char **argv)
{
    size_t n = 100000000, rounds = 5;
    if (parse_args(argc, argv, &n, &rounds) < 0)
        return 2;
    char dir[128] = "";
    const char *env = getenv("MMVEC_DIR");
    if (!env || !*env) {
        snprintf(dir, sizeof dir, "/var/tmp/mmvec-bench-%ld", (long)getpid());
        env = dir;
    }
    mmv_namer namer = mmv_namer_in_dir(env);
    printf("bench_vec: %zu uint64_t pushes, %zu rounds, files in %s\n", n, rounds, env);

    double vp[100], vs[100], ap[100], as[100];
    for (size_t r = 0; r < rounds; r++) {
        struct result rv, ra;
        if (run_vec(n, &namer, &rv) < 0 || run_array(n, &ra) < 0)
            return 1;
        vp[r] = rv.push_s, vs[r] = rv.sum_s, ap[r] = ra.push_s, as[r] = ra.sum_s;
        printf("  round %zu: vector %6.1f Mpush/s %5.2f GB/s | array %6.1f Mpush/s %5.2f GB/s\n",
               r + 1, (double)n / vp[r] / 1e6, (double)n * 8 / vs[r] / 1e9,
               (double)n / ap[r] / 1e6, (double)n * 8 / as[r] / 1e9);
    }
    printf("medians:\n");
    report("mmvec vector", n, vp, vs, rounds);
    report("realloc array (RAM)", n, ap, as, rounds);
    printf("push ratio vector/array: %.2f (target >= 0.80)\n",
           median(ap, rounds) / median(vp, rounds));

    double us;
    if (run_tiny(n >= 100000000 ? 20000 : 5000, &namer, &us) < 0)
        return 1;
    printf("create + push one + destroy: %.1f us (median)\n", us);
    if (dir[0])
        rmdir(dir);
    return 0;
}
