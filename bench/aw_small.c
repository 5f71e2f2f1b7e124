/* alloc_workloads: workload 4, small objects. T threads, each holding LIVE/T objects and
 * replacing a random one per step (free + malloc of 16 B..4 KiB, log-uniform sizes). */
#define _GNU_SOURCE
#include "aw.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct small_job {
    const struct aw_alloc *a;
    pthread_barrier_t *start, *stop;
    uint64_t pairs, seed;
    size_t live;
    int failed;
};

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Log-uniform over (16, 4096]: a power-of-two band, then a uniform size within it. */
static size_t small_size(uint64_t r)
{
    size_t lo = (size_t)16 << (r % 8);
    return lo + 1 + (size_t)((r >> 8) % lo);
}

static char *small_new(const struct aw_alloc *a, uint64_t r)
{
    size_t n = small_size(r);
    char *p = a->malloc(n);
    if (p) {
        /* Touch both ends: the object is used, not just handed out. */
        p[0] = (char)r;
        p[n - 1] = (char)n;
    }
    return p;
}

static int small_churn(struct small_job *j, char **slots)
{
    uint64_t s = j->seed;
    for (uint64_t i = 0; i < j->pairs; i++) {
        uint64_t r = xorshift(&s);
        size_t k = (size_t)(r >> 40) % j->live;
        j->a->free(slots[k]);
        slots[k] = small_new(j->a, r);
        if (!slots[k])
            return -ENOMEM;
    }
    return 0;
}

static void *small_thread(void *arg)
{
    struct small_job *j = arg;
    char **slots = calloc(j->live, sizeof *slots);
    uint64_t s = j->seed ^ 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; slots && k < j->live; k++)
        slots[k] = small_new(j->a, xorshift(&s));
    /* Filling is set-up; the clock runs only between the two barriers. */
    pthread_barrier_wait(j->start);
    j->failed = slots ? small_churn(j, slots) : -ENOMEM;
    pthread_barrier_wait(j->stop);
    for (size_t k = 0; slots && k < j->live; k++)
        j->a->free(slots[k]);
    free(slots);
    return NULL;
}

static int small_run(const struct aw_alloc *a, int threads, uint64_t pairs, size_t live,
                     double *seconds)
{
    pthread_barrier_t start, stop;
    pthread_t tid[64];
    struct small_job job[64];
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        job[t] = (struct small_job){a, &start, &stop, pairs / (uint64_t)threads,
                                    0x1234567ull * (uint64_t)(t + 1), live / (size_t)threads, 0};
        if (pthread_create(&tid[t], NULL, small_thread, &job[t]) != 0)
            abort(); /* cannot reach the barrier count: no way to carry on */
    }
    pthread_barrier_wait(&start);
    double t0 = aw_now();
    pthread_barrier_wait(&stop);
    *seconds = aw_now() - t0;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        failed |= job[t].failed;
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    return failed ? -ENOMEM : 0;
}

/* small THREADS PAIRS LIVE: PAIRS malloc/free pairs in all, split over THREADS. */
int aw_wl_small(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t threads = 2, pairs = 10000000, live = 10000;
    if (argc < 3 || aw_parse_size(argv[0], &threads) || aw_parse_size(argv[1], &pairs) ||
        aw_parse_size(argv[2], &live) || threads < 1 || threads > 64 || live < threads ||
        pairs < threads)
        return AW_EXIT_USAGE;
    char param[96];
    snprintf(param, sizeof param, "%llu thr %llu pairs %llu live", (unsigned long long)threads,
             (unsigned long long)pairs, (unsigned long long)live);
    double dt = 0;
    if (small_run(a, (int)threads, pairs, (size_t)live, &dt) != 0) {
        aw_fail("small", param, "malloc returned NULL");
        return AW_EXIT_FAIL;
    }
    uint64_t done = pairs / threads * threads; /* each thread runs an equal share */
    aw_result("small", param, "Mpairs_per_s", (double)done / dt / 1e6, "M/s");
    return AW_EXIT_OK;
}
