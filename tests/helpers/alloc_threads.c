/* The threads workload of the allocator tests, as a program of its own so that it also runs in
 * a ThreadSanitizer build (Criterion itself cannot start under TSan: its inheritable arena is
 * mapped where TSan keeps its shadow, Criterion issue #274).
 *
 *   alloc_threads mixed|large|first|all [OPS]
 *
 * mixed: 8 threads mix small and large malloc/calloc/realloc/posix_memalign/free (1 B..2 MiB)
 * and hand blocks to each other; large: the same with only segment blocks (64 KiB..4 MiB);
 * first: 8 threads make their first large block at once (the lazy set-up races).
 * Every block is checked before it is freed or reallocated. Expects MMVEC_THRESHOLD=64K (the
 * test sets it) and a private MMVEC_DIR. Prints one summary line per workload; exits 0 when
 * every check held, 1 otherwise (the first failure of each thread on stderr), 2 on bad usage.
 * A short run for scripts/sanitize.sh (TSan: about 20 s):
 * tsan-args: all 400
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)
#define THRESHOLD (64 * K)
#define THREADS 8
#define SLOTS 24
#define SHARED_SLOTS 16

/* A block under test: its contents are a function of `seed`, which is derived from the address
 * and size it was filled at, so a block that moved, shrank or got swapped is caught. */
struct blk {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Fills whole 8-byte words (and the tail bytewise): cheap enough for TSan. */
static void fill(struct blk *b)
{
    b->seed = mix((uintptr_t)b->p ^ ((uint64_t)b->n << 40));
    size_t words = b->n / 8;
    uint64_t *w = (uint64_t *)b->p;
    for (size_t i = 0; i < words; i++)
        w[i] = b->seed + i;
    for (size_t i = words * 8; i < b->n; i++)
        b->p[i] = (unsigned char)(b->seed + i);
}

/* Bytes [0, n) are as fill() left them (n is b->n or a multiple of 8). */
static bool intact(const struct blk *b, size_t n)
{
    size_t words = n / 8;
    const uint64_t *w = (const uint64_t *)b->p;
    for (size_t i = 0; i < words; i++)
        if (w[i] != b->seed + i)
            return false;
    for (size_t i = words * 8; i < n; i++)
        if (b->p[i] != (unsigned char)(b->seed + i))
            return false;
    return true;
}

struct worker {
    pthread_t tid;
    unsigned seed;
    int ops;
    size_t min, max; /* requests are in [min, max] */
    int failures;
    char why[160];
    uint64_t large_ops;
};

/* Blocks in transit between threads (freed by another thread than the one that made them). */
static struct blk shared_slot[SHARED_SLOTS];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(struct worker *w, const char *what, const struct blk *b)
{
    if (!w->failures++)
        snprintf(w->why, sizeof w->why, "%s: %p, %zu bytes", what, (void *)b->p, b->n);
}

/* Log-uniform sizes in [min, max], so that small and large requests are both frequent. */
static size_t pick_size(struct worker *w)
{
    unsigned lo = 63 - (unsigned)__builtin_clzll(w->min);
    unsigned hi = 63 - (unsigned)__builtin_clzll(w->max);
    unsigned bits = lo + (unsigned)rand_r(&w->seed) % (hi - lo + 1);
    size_t n = ((size_t)1 << bits) + (size_t)rand_r(&w->seed) % ((size_t)1 << bits);
    return n < w->min ? w->min : n > w->max ? w->max : n;
}

static void check_route(struct worker *w, const struct blk *b)
{
    if (mmv_owns(b->p) != (b->n >= THRESHOLD))
        fail(w, "routed to the wrong side", b);
    if (mmv_usable_size(b->p) < b->n)
        fail(w, "usable size below the request", b);
    if (b->n >= THRESHOLD)
        w->large_ops++;
}

static void make(struct worker *w, struct blk *b, size_t n)
{
    b->n = n;
    switch (rand_r(&w->seed) % 3) {
    case 0:
        b->p = mmv_malloc(n);
        break;
    case 1:
        b->p = mmv_calloc(1, n);
        for (size_t i = 0; b->p && i < n; i += 997)
            if (b->p[i])
                fail(w, "calloc not zero", b);
        break;
    default:
        if (mmv_posix_memalign((void **)&b->p, 4096, n) != 0 || ((uintptr_t)b->p & 4095))
            fail(w, "posix_memalign", b);
        break;
    }
    if (!b->p) {
        fail(w, "allocation failed", b);
        return;
    }
    check_route(w, b);
    fill(b);
}

static void drop(struct worker *w, struct blk *b)
{
    if (!intact(b, b->n))
        fail(w, "corrupt before free", b);
    mmv_free(b->p);
    b->p = NULL;
}

static void resize(struct worker *w, struct blk *b)
{
    if (!intact(b, b->n))
        fail(w, "corrupt before realloc", b);
    size_t n = pick_size(w), keep = n < b->n ? n : b->n;
    unsigned char *q = mmv_realloc(b->p, n);
    if (!q) {
        fail(w, "realloc failed", b);
        return;
    }
    struct blk old = *b;
    b->p = q;
    /* The kept prefix still holds the old pattern (seeded from the old address). */
    old.p = q;
    if (!intact(&old, keep / 8 * 8))
        fail(w, "realloc lost contents", b);
    b->n = n;
    check_route(w, b);
    fill(b);
}

/* Swaps one of ours with a block another thread left: frees cross threads. */
static void trade(struct worker *w, struct blk *b)
{
    size_t i = (size_t)rand_r(&w->seed) % SHARED_SLOTS;
    pthread_mutex_lock(&shared_lock);
    struct blk theirs = shared_slot[i];
    shared_slot[i] = *b;
    pthread_mutex_unlock(&shared_lock);
    *b = theirs;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct blk slot[SLOTS] = {{0}};
    for (int op = 0; op < w->ops; op++) {
        struct blk *b = &slot[rand_r(&w->seed) % SLOTS];
        int what = rand_r(&w->seed) % 8;
        if (!b->p)
            make(w, b, pick_size(w));
        else if (what < 3)
            drop(w, b);
        else if (what < 6)
            resize(w, b);
        else
            trade(w, b);
    }
    for (int i = 0; i < SLOTS; i++)
        if (slot[i].p)
            drop(w, &slot[i]);
    return NULL;
}

/* Runs the workload; returns the number of failed checks. */
static int run_workers(const char *name, int ops, size_t min, size_t max)
{
    struct worker w[THREADS];
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.seed = 12345u + (unsigned)i * 7919u, .ops = ops, .min = min,
                              .max = max};
        if (pthread_create(&w[i].tid, NULL, run, &w[i]) != 0) {
            fprintf(stderr, "%s: pthread_create failed\n", name);
            return 1;
        }
    }
    uint64_t large = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].tid, NULL);
        if (w[i].failures)
            fprintf(stderr, "%s: thread %d: %d failures, first: %s\n", name, i, w[i].failures,
                    w[i].why);
        failures += w[i].failures;
        large += w[i].large_ops;
    }
    struct worker last = {.seed = 1, .min = min, .max = max};
    for (int i = 0; i < SHARED_SLOTS; i++)
        if (shared_slot[i].p)
            drop(&last, &shared_slot[i]);
    if (last.failures)
        fprintf(stderr, "%s: a traded block: %s\n", name, last.why);
    failures += last.failures;
    mmv_stats s;
    mmv_stats_get(&s);
    /* Every block freed; none fell back to RAM (the directory is fine, nothing is full). */
    if (s.blocks_live || s.block_bytes_live || s.fallbacks || !large) {
        fprintf(stderr, "%s: after the run: blocks_live %llu, bytes live %llu, fallbacks %llu, "
                        "large ops %llu\n", name, (unsigned long long)s.blocks_live,
                (unsigned long long)s.block_bytes_live, (unsigned long long)s.fallbacks,
                (unsigned long long)large);
        failures++;
    }
    printf("%s: %d threads x %d ops: %llu large ops, %llu blocks made, %llu cache hits, "
           "%llu reallocs in place, %llu moved, %llu copied, %d failures\n",
           name, THREADS, ops, (unsigned long long)large, (unsigned long long)s.blocks_made,
           (unsigned long long)s.cache_hits, (unsigned long long)s.reallocs_in_place,
           (unsigned long long)s.reallocs_moved, (unsigned long long)s.reallocs_copied, failures);
    return failures;
}

/* The first large requests of all threads at once race on the lazy set-up. */
static void *first_touch(void *arg)
{
    unsigned char *p = mmv_malloc(256 * K);
    if (p)
        memset(p, 1, 256 * K);
    *(int *)arg = p && mmv_owns(p);
    mmv_free(p);
    return NULL;
}

static int first_calls(void)
{
    pthread_t t[THREADS];
    int owned[THREADS] = {0}, failures = 0;
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, first_touch, &owned[i]) != 0)
            return 1;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (!owned[i]) {
            fprintf(stderr, "first: thread %d got no segment block\n", i);
            failures++;
        }
    }
    printf("first: %d threads, %d failures\n", THREADS, failures);
    return failures;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int ops = argc > 2 ? atoi(argv[2]) : 0, failures = 0;
    bool all = strcmp(mode, "all") == 0;
    if (argc > 3 || (argc == 3 && ops <= 0) || (!all && strcmp(mode, "mixed") &&
                                                strcmp(mode, "large") && strcmp(mode, "first"))) {
        fprintf(stderr, "usage: alloc_threads mixed|large|first|all [OPS]\n");
        return 2;
    }
    /* first must come first: it races on the set-up, which only happens once per process. */
    if (all || strcmp(mode, "first") == 0)
        failures += first_calls();
    if (all || strcmp(mode, "mixed") == 0)
        failures += run_workers("mixed", ops ? ops : 1500, 1, 2 * M);
    if (all || strcmp(mode, "large") == 0)
        failures += run_workers("large", ops ? ops : 600, THRESHOLD, 4 * M);
    return failures ? 1 : 0;
}
