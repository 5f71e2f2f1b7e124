/* The allocator stress program: threads hammer malloc & co and check every byte they get back.
 *
 *   stress [--threads N] [--ops N] [--seconds S] [--max-live SIZE] [--max-size SIZE]
 *          [--slots N] [--seed N] [--api] [--inject-corruption]
 *
 * Defaults: 8 threads, 1000000 operations, 60 s, 1G live at most, sizes up to 64M, 1024 slots
 * per thread, seed 1. SIZE takes K/M/G. The run stops at the operation count or the time
 * budget, whichever comes first, so it always ends by itself.
 *
 * By default it calls the standard names (malloc, calloc, realloc, free, posix_memalign,
 * malloc_usable_size): run it under LD_PRELOAD=libmmvec_preload.so with MMVEC_THRESHOLD set
 * low (e.g. 64K) so that both the jemalloc path and the segment path are hot. --api calls
 * mmv_malloc & co directly instead; that mode needs no preload, so it also runs in sanitizer
 * builds, where the interposer cannot be preloaded.
 *
 * Each thread owns an array of slots. An operation picks a random slot: an empty one gets a new
 * block (malloc, calloc or posix_memalign); a full one is freed, reallocated, or swapped with a
 * shared mailbox slot (so blocks are freed by threads other than the one that made them).
 * Sizes span 1 byte to --max-size around the allocator's threshold. Every block is filled with
 * a pattern derived from its address and size, and checked in full before it is freed or
 * reallocated (realloc: the kept prefix, then the whole block is refilled). calloc blocks must
 * read as zeros, posix_memalign blocks must be aligned, every block's usable size must cover
 * the request. Any of these failing is a corruption. --inject-corruption flips one byte of one
 * block before it is checked, to prove that the checker notices (the run must then fail).
 *
 * The last line on stdout is the summary, as key=value pairs:
 *   mmvec-stress: mode=... threads=... ops=... seconds=... allocs=... segment_blocks=...
 *   heap_blocks=... bytes_allocated=... bytes_moved=... corruptions=0 failures=0 result=OK
 * Exit 0 when nothing was corrupt and no allocation within the budget failed, 1 on corruption,
 * 3 on allocation failures, 2 for bad arguments.
 *
 * How scripts/sanitize.sh runs it in the TSan build (Criterion cannot start under TSan):
 * tsan-args: --api --threads 8 --ops 20000 --seconds 240 --max-live 512M
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAILBOXES 256
#define BATCH 64          /* operations claimed from the global budget at a time */
#define MAX_REPORTS 8     /* corruption messages printed per thread */
#define MAX_THREADS 256

/* ---- the allocator under test ---------------------------------------------------------- */

struct api {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    size_t (*usable)(void *);
};

static size_t libc_usable(void *p) { return malloc_usable_size(p); }
static size_t api_usable(void *p) { return mmv_usable_size(p); }

static const struct api libc_api = {malloc, calloc, realloc, free, posix_memalign, libc_usable};
static const struct api mmv_api = {mmv_malloc, mmv_calloc, mmv_realloc, mmv_free,
                                   mmv_posix_memalign, api_usable};

/* ---- settings and shared state ---------------------------------------------------------- */

struct config {
    unsigned threads;
    uint64_t ops;
    double seconds;
    size_t max_live, max_size, slots, threshold;
    uint64_t seed;
    int api;
    int inject; /* --inject-corruption: one byte is flipped on purpose (checks the checker) */
};

static struct config cfg = {8, 1000000, 60, (size_t)1 << 30, (size_t)64 << 20, 1024, 0, 1, 0, 0};
static const struct api *A = &libc_api;

struct block {
    void *p;
    size_t n;
};

/* Shared slots: a thread swaps one of its blocks with one of these, so another thread checks
 * and frees it later. One lock each keeps the swap atomic. */
static struct mailbox {
    pthread_mutex_t lock;
    struct block b;
} mailbox[MAILBOXES];

static uint64_t ops_claimed; /* operations handed out so far (atomic) */
static uint64_t live_bytes;  /* bytes requested and not freed, all threads (atomic) */
static uint64_t peak_live;
static struct timespec t0;

struct counters {
    uint64_t ops, mallocs, callocs, memaligns, reallocs, frees, handoffs;
    uint64_t seg_blocks, heap_blocks, bytes_allocated, bytes_written, bytes_checked;
    uint64_t corruptions, failures, reports;
};

struct worker {
    pthread_t tid;
    unsigned id;
    uint64_t rng;
    struct block *slots;
    struct counters c;
} __attribute__((aligned(64))); /* no false sharing between the threads' counters */

/* ---- random numbers and sizes ------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
    /* splitmix64: every thread gets an independent, reproducible stream from the seed. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t between(uint64_t *s, size_t lo, size_t hi) /* inclusive */
{
    return hi <= lo ? lo : lo + (size_t)(rnd(s) % (hi - lo + 1));
}

/* Log-uniform in [lo, hi]: small sizes are as likely per octave as large ones. */
static size_t log_between(uint64_t *s, size_t lo, size_t hi)
{
    if (lo < 1)
        lo = 1;
    if (hi <= lo)
        return lo;
    int a = 63 - __builtin_clzll(lo), b = 63 - __builtin_clzll(hi);
    int e = (int)between(s, (size_t)a, (size_t)b);
    size_t from = (size_t)1 << e, to = e >= 63 ? SIZE_MAX : ((size_t)2 << e) - 1;
    return between(s, from < lo ? lo : from, to > hi ? hi : to);
}

/* Most requests are small, many straddle the threshold (both routes, and realloc across it),
 * a few are large: that mix keeps both paths and their crossings hot without spending the
 * whole run filling 64 MiB blocks. */
static size_t pick_size(uint64_t *s)
{
    size_t t = cfg.threshold, m = cfg.max_size, r = rnd(s) % 1000;
    size_t half = t / 2 ? t / 2 : 1, twice = t * 2 < m ? t * 2 : m;
    size_t big = (size_t)4 << 20 < m ? (size_t)4 << 20 : m;
    if (r < 500) /* 50%: small, always jemalloc's */
        return log_between(s, 1, half);
    if (r < 900) /* 40%: either side of the threshold */
        return between(s, half, twice);
    if (r < 995) /* 9.5%: segment blocks up to 4 MiB */
        return log_between(s, twice, big);
    return log_between(s, big, m); /* 0.5%: up to --max-size (64 MiB) */
}

/* ---- the pattern ------------------------------------------------------------------------- */

static uint64_t pattern_seed(const void *p, size_t n)
{
    uint64_t z = (uint64_t)(uintptr_t)p ^ ((uint64_t)n * 0xd6e8feb86659fd93ull);
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ull;
    return z ^ (z >> 32);
}

/* Word i of a block's pattern: depends on the position, so a prefix can be checked alone and a
 * block moved to another address (or of another size) cannot pass as itself. */
static inline uint64_t word(uint64_t seed, size_t i)
{
    return seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
}

static void fill(struct worker *w, void *p, size_t n)
{
    uint64_t seed = pattern_seed(p, n), v;
    size_t words = n / 8;
    unsigned char *b = p;
    for (size_t i = 0; i < words; i++) {
        v = word(seed, i);
        memcpy(b + i * 8, &v, 8); /* memcpy: blocks of 1-7 bytes need not be 8-aligned */
    }
    v = word(seed, words);
    memcpy(b + words * 8, &v, n % 8);
    w->c.bytes_written += n;
}

static void report(struct worker *w, const char *what, const void *p, size_t n, size_t at)
{
    w->c.corruptions++;
    if (w->c.reports++ < MAX_REPORTS)
        fprintf(stderr, "mmvec-stress: thread %u: %s: block %p of %zu bytes (at/align %zu)\n",
                w->id, what, p, n, at);
}

/* Checks the first `len` bytes of a block that was filled as (orig, n) and now lives at p. */
static void check(struct worker *w, const void *p, const void *orig, size_t n, size_t len)
{
    uint64_t seed = pattern_seed(orig, n), v;
    const unsigned char *b = p;
    size_t words = len / 8;
    for (size_t i = 0; i < words; i++) {
        memcpy(&v, b + i * 8, 8);
        if (v != word(seed, i)) {
            report(w, "pattern mismatch", p, n, i * 8);
            return;
        }
    }
    v = word(seed, words);
    if (len % 8 && memcmp(b + words * 8, &v, len % 8) != 0)
        report(w, "pattern mismatch", p, n, words * 8);
    w->c.bytes_checked += len;
}

static void check_zero(struct worker *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) {
            report(w, "calloc block not zero", p, n, i);
            return;
        }
    w->c.bytes_checked += n;
}

/* ---- live-bytes budget --------------------------------------------------------------------- */

static int reserve_live(size_t n)
{
    uint64_t now = __atomic_add_fetch(&live_bytes, n, __ATOMIC_RELAXED);
    if (now > cfg.max_live) {
        __atomic_sub_fetch(&live_bytes, n, __ATOMIC_RELAXED);
        return 0;
    }
    uint64_t peak = __atomic_load_n(&peak_live, __ATOMIC_RELAXED);
    while (now > peak &&
           !__atomic_compare_exchange_n(&peak_live, &peak, now, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
    return 1;
}

static void release_live(size_t n)
{
    __atomic_sub_fetch(&live_bytes, n, __ATOMIC_RELAXED);
}

/* ---- operations ------------------------------------------------------------------------------ */

/* Records where a new block lives and checks what every block must satisfy. */
static void got(struct worker *w, struct block *b, void *p, size_t n)
{
    b->p = p;
    b->n = n;
    w->c.bytes_allocated += n;
    if (mmv_owns(p))
        w->c.seg_blocks++;
    else
        w->c.heap_blocks++;
    size_t usable = A->usable(p);
    if (usable < n)
        report(w, "usable size below the request", p, n, usable);
}

static void failed(struct worker *w, size_t n)
{
    w->c.failures++;
    if (w->c.reports++ < MAX_REPORTS)
        fprintf(stderr, "mmvec-stress: thread %u: allocation of %zu bytes failed: %s\n", w->id, n,
                strerror(errno));
}

static void drop(struct worker *w, struct block *b)
{
    if (__atomic_load_n(&cfg.inject, __ATOMIC_RELAXED) &&
        __atomic_exchange_n(&cfg.inject, 0, __ATOMIC_RELAXED))
        ((unsigned char *)b->p)[b->n / 2] ^= 0x40;
    check(w, b->p, b->p, b->n, b->n);
    A->free(b->p);
    release_live(b->n);
    b->p = NULL;
    b->n = 0;
    w->c.frees++;
}

/* Frees this thread's blocks from slot `from` on until n more bytes fit in the budget. */
static int make_room(struct worker *w, size_t from, size_t n)
{
    for (size_t k = 0; k < cfg.slots; k++) {
        if (reserve_live(n))
            return 1;
        struct block *b = &w->slots[(from + k) % cfg.slots];
        if (b->p)
            drop(w, b);
    }
    return reserve_live(n);
}

static size_t pick_align(uint64_t *s)
{
    /* posix_memalign wants a power of two and a multiple of sizeof(void *): 8 B to 1 MiB. */
    return (size_t)1 << between(s, 3, 20);
}

static void do_alloc(struct worker *w, size_t slot)
{
    struct block *b = &w->slots[slot];
    size_t n = pick_size(&w->rng), r = rnd(&w->rng) % 10;
    if (!reserve_live(n) && !make_room(w, slot + 1, n))
        return;
    void *p = NULL;
    if (r < 5) {
        w->c.mallocs++;
        p = A->malloc(n);
    } else if (r < 7) {
        w->c.callocs++;
        size_t each = n % 3 == 0 ? 3 : 1; /* calloc(n/3, 3) too: the product is what counts */
        p = A->calloc(n / each, each);
        if (p)
            check_zero(w, p, n);
    } else {
        w->c.memaligns++;
        size_t align = pick_align(&w->rng);
        if (A->posix_memalign(&p, align, n) != 0)
            p = NULL;
        else if ((uintptr_t)p % align)
            report(w, "posix_memalign block misaligned", p, n, align);
    }
    if (!p) {
        release_live(n);
        failed(w, n);
        return;
    }
    got(w, b, p, n);
    fill(w, p, n);
}

static void do_realloc(struct worker *w, struct block *b)
{
    size_t n = pick_size(&w->rng);
    w->c.reallocs++;
    if (n > b->n && !reserve_live(n - b->n)) {
        drop(w, b); /* over budget: the realloc becomes a free */
        return;
    }
    check(w, b->p, b->p, b->n, b->n);
    void *q = A->realloc(b->p, n);
    if (!q) {
        if (n > b->n)
            release_live(n - b->n);
        failed(w, n); /* the old block is still valid and still ours */
        return;
    }
    check(w, q, b->p, b->n, n < b->n ? n : b->n);
    if (n < b->n)
        release_live(b->n - n);
    got(w, b, q, n);
    fill(w, q, n);
}

static void do_handoff(struct worker *w, struct block *b)
{
    struct mailbox *m = &mailbox[rnd(&w->rng) % MAILBOXES];
    pthread_mutex_lock(&m->lock);
    struct block t = m->b;
    m->b = *b;
    *b = t;
    pthread_mutex_unlock(&m->lock);
    w->c.handoffs++;
}

static void one_op(struct worker *w)
{
    size_t slot = rnd(&w->rng) % cfg.slots;
    struct block *b = &w->slots[slot];
    w->c.ops++;
    if (!b->p) {
        do_alloc(w, slot);
        return;
    }
    unsigned r = (unsigned)(rnd(&w->rng) % 100);
    if (r < 40)
        drop(w, b);
    else if (r < 85)
        do_realloc(w, b);
    else
        do_handoff(w, b);
}

/* ---- threads -------------------------------------------------------------------------------- */

static double elapsed(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Claims BATCH operations at a time from the shared budget; false when it is spent. */
static int claim(unsigned *n)
{
    uint64_t from = __atomic_fetch_add(&ops_claimed, BATCH, __ATOMIC_RELAXED);
    if (from >= cfg.ops || elapsed() >= cfg.seconds)
        return 0;
    *n = cfg.ops - from < BATCH ? (unsigned)(cfg.ops - from) : BATCH;
    return 1;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned n;
    while (claim(&n))
        for (unsigned i = 0; i < n; i++)
            one_op(w);
    for (size_t i = 0; i < cfg.slots; i++)
        if (w->slots[i].p)
            drop(w, &w->slots[i]);
    return NULL;
}

/* ---- arguments and the summary ------------------------------------------------------------- */

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10, end++;
    else if (*end == 'M' || *end == 'm')
        shift = 20, end++;
    else if (*end == 'G' || *end == 'g')
        shift = 30, end++;
    if (errno || end == s || *end || v > (SIZE_MAX >> shift))
        return -1;
    *out = (size_t)v << shift;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: stress [--threads N] [--ops N] [--seconds S] [--max-live SIZE] "
                    "[--max-size SIZE] [--slots N] [--seed N] [--api] [--inject-corruption]\n");
    return 2;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t x = 0;
        if (!strcmp(a, "--api")) {
            cfg.api = 1;
            continue;
        }
        if (!strcmp(a, "--inject-corruption")) {
            cfg.inject = 1;
            continue;
        }
        if (!v || parse_size(v, &x) < 0)
            return -1;
        i++;
        if (!strcmp(a, "--threads") && x >= 1 && x <= MAX_THREADS)
            cfg.threads = (unsigned)x;
        else if (!strcmp(a, "--ops"))
            cfg.ops = x;
        else if (!strcmp(a, "--seconds") && x >= 1)
            cfg.seconds = (double)x;
        else if (!strcmp(a, "--max-live") && x >= 1)
            cfg.max_live = x;
        else if (!strcmp(a, "--max-size") && x >= 1)
            cfg.max_size = x;
        else if (!strcmp(a, "--slots") && x >= 1)
            cfg.slots = x;
        else if (!strcmp(a, "--seed"))
            cfg.seed = x;
        else
            return -1;
    }
    return 0;
}

static void add(struct counters *t, const struct counters *c)
{
    const uint64_t *src = (const uint64_t *)c;
    uint64_t *dst = (uint64_t *)t;
    for (size_t i = 0; i < sizeof *c / sizeof(uint64_t); i++)
        dst[i] += src[i];
}

static void summary(const struct counters *t, double secs)
{
    mmv_stats s = {0};
    mmv_stats_get(&s);
    printf("mmvec-stress: mode=%s threads=%u threshold=%zu max_size=%zu max_live=%zu seed=%llu "
           "ops=%llu seconds=%.1f allocs=%llu mallocs=%llu callocs=%llu memaligns=%llu "
           "reallocs=%llu frees=%llu handoffs=%llu segment_blocks=%llu heap_blocks=%llu "
           "bytes_allocated=%llu bytes_written=%llu bytes_checked=%llu bytes_moved=%llu "
           "peak_live=%llu lib_blocks_made=%llu lib_cache_hits=%llu lib_fallbacks=%llu "
           "corruptions=%llu failures=%llu result=%s\n",
           cfg.api ? "api" : "libc", cfg.threads, cfg.threshold, cfg.max_size, cfg.max_live,
           (unsigned long long)cfg.seed, (unsigned long long)t->ops, secs,
           (unsigned long long)(t->mallocs + t->callocs + t->memaligns),
           (unsigned long long)t->mallocs, (unsigned long long)t->callocs,
           (unsigned long long)t->memaligns, (unsigned long long)t->reallocs,
           (unsigned long long)t->frees, (unsigned long long)t->handoffs,
           (unsigned long long)t->seg_blocks, (unsigned long long)t->heap_blocks,
           (unsigned long long)t->bytes_allocated, (unsigned long long)t->bytes_written,
           (unsigned long long)t->bytes_checked,
           (unsigned long long)(t->bytes_written + t->bytes_checked),
           (unsigned long long)peak_live, (unsigned long long)s.blocks_made,
           (unsigned long long)s.cache_hits, (unsigned long long)s.fallbacks,
           (unsigned long long)t->corruptions, (unsigned long long)t->failures,
           t->corruptions ? "CORRUPTION" : t->failures ? "FAILURES" : "OK");
    fflush(stdout);
}

/* Frees what was left in the mailboxes (checked like everything else), counted for worker 0. */
static void empty_mailboxes(struct worker *w)
{
    for (int i = 0; i < MAILBOXES; i++)
        if (mailbox[i].b.p)
            drop(w, &mailbox[i].b);
}

static int start(struct worker *ws)
{
    for (unsigned i = 0; i < cfg.threads; i++) {
        ws[i].id = i;
        ws[i].rng = cfg.seed * 0x2545f4914f6cdd1dull + i + 1;
        ws[i].slots = calloc(cfg.slots, sizeof *ws[i].slots);
        if (!ws[i].slots || pthread_create(&ws[i].tid, NULL, run, &ws[i]) != 0) {
            fprintf(stderr, "mmvec-stress: cannot start thread %u\n", i);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) < 0)
        return usage();
    A = cfg.api ? &mmv_api : &libc_api;
    cfg.threshold = mmv_threshold(); /* the preloaded library is this same libmmvec */
    for (int i = 0; i < MAILBOXES; i++)
        pthread_mutex_init(&mailbox[i].lock, NULL);
    struct worker *ws = calloc(cfg.threads, sizeof *ws);
    if (!ws)
        return 3;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (start(ws) < 0)
        exit(3); /* threads already started keep running: no clean way back, so just stop */
    struct counters total = {0};
    for (unsigned i = 0; i < cfg.threads; i++)
        pthread_join(ws[i].tid, NULL);
    empty_mailboxes(&ws[0]); /* only now: until every thread is done, they still swap */
    for (unsigned i = 0; i < cfg.threads; i++) {
        add(&total, &ws[i].c);
        free(ws[i].slots);
    }
    free(ws);
    summary(&total, elapsed());
    return total.corruptions ? 1 : total.failures ? 3 : 0;
}
