/* placement_workloads: the benchmarks of block placement (MMVEC_PLACEMENT=auto: large blocks in
 * RAM while the heap fits, moved into files when memory gets tight; =file: every large block a
 * file). Started by bench/suite.py, once per (round, allocator, workload), in the output format
 * of alloc_workloads (bench/aw.h: RESULT/FAIL/SKIP/INFO lines). Like alloc_workloads it links
 * no allocator: the one under test comes from LD_PRELOAD (glibc when none), and the suite puts
 * the process into a memory cgroup before exec when a workload needs one.
 *
 *   placement_workloads [--expect-sym=NAME] WORKLOAD ARGS...
 *     fits blocks TOTAL BLOCK         malloc TOTAL in BLOCK blocks; write every byte, rewrite
 *                                     twice (each a read-modify-write of every word), check
 *     fits realloc TOTAL START        one block from START, doubled by realloc up to TOTAL
 *                                     (each new tail written), then rewritten and checked
 *     ooc TOTAL OPS [BUDGET_S [SEED]] one TOTAL array: sequential fill, sequential scan
 *                                     (scan_first: written once, then read), OPS random 8-byte
 *                                     read-modify-writes (stopping early past BUDGET_S
 *                                     seconds; splitmix64 seeded with SEED, default 42),
 *                                     sequential scan and checksum
 *     ooc-threads TOTAL THREADS OPS [BUDGET_S [SEED]]
 *                                     one TOTAL array filled by the main thread, then THREADS
 *                                     threads each doing OPS random 8-byte reads (seed SEED +
 *                                     thread number), every word read checked; then THREADS
 *                                     threads each malloc, fill and scan TOTAL / THREADS;
 *                                     rates aggregated over the threads
 *     late BIG BLOCK SMALL SIZE MODE  BIG in BLOCK blocks first (memory plentiful), then the
 *                                     small heap grows by SMALL in SIZE mallocs, then every
 *                                     byte checked; MODE 1thread, or 2threads: meanwhile a
 *                                     second thread rewrites the blocks with memset and read(2)
 *                                     from a pipe
 *     many TOTAL BLOCK                malloc and write TOTAL in BLOCK blocks, check, free
 *     fork TOTAL BLOCK ROUNDS         TOTAL in BLOCK blocks written; ROUNDS times fork+exec of
 *                                     /bin/true and wait, then every word rewritten (medians);
 *                                     last a child that reads every word while the parent
 *                                     rewrites them all: it must read the fork's instant
 *
 * Every phase is timed with the monotonic clock; every workload ends with disk_write_MiB, the
 * write_bytes of /proc/self/io (bytes this process sent, or dirtied, for the disk) read at the
 * end, after the frees. Data are checked; a mismatch is a FAIL, never a result. */
#define _GNU_SOURCE
#include "aw.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define GOLD 0x9E3779B97F4A7C15ull
#define MiB (1024.0 * 1024.0)

/* ---- common -------------------------------------------------------------------------------- */

static long long proc_io(const char *key)
{
    FILE *f = fopen("/proc/self/io", "re");
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = atoll(line + kl + 1);
    if (f)
        fclose(f);
    return v;
}

static void report_io(const char *wl, const char *param)
{
    long long w = proc_io("write_bytes"), c = proc_io("cancelled_write_bytes");
    if (w >= 0)
        aw_result(wl, param, "disk_write_MiB", (double)w / MiB, "MiB");
    if (c >= 0)
        aw_result(wl, param, "disk_cancelled_MiB", (double)c / MiB, "MiB");
}

static bool (*owns_fn)(const void *);

/* How many of the blocks mmvec holds as files right now is not visible from outside; what is:
 * whether mmvec owns them at all (a missing preload would silently benchmark glibc). */
static void info_owned(void **p, size_t n)
{
    if (!owns_fn)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] && owns_fn(p[i]);
    aw_info("mmv_owned_blocks", "%zu/%zu", k, n);
}

static char *size_str(uint64_t v, char *buf)
{
    return (char *)aw_size_name(v, buf, 32);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += GOLD);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- fits: a heap that fits in RAM --------------------------------------------------------- */

static inline uint64_t word_of(uint64_t k)
{
    return k * GOLD;
}

/* Writes word_of(global index) into every word of [w + from, w + to). */
static void write_words(uint64_t *w, size_t from, size_t to, uint64_t base)
{
    for (size_t j = from; j < to; j++)
        w[j] = word_of(base + j);
}

static void rmw_words(uint64_t *w, size_t n)
{
    for (size_t j = 0; j < n; j++)
        w[j] += 1;
}

/* The first bad word index, or n. */
static size_t check_words(const uint64_t *w, size_t n, uint64_t base, uint64_t plus)
{
    for (size_t j = 0; j < n; j++)
        if (w[j] != word_of(base + j) + plus)
            return j;
    return n;
}

/* Block i of the n in p: malloc(block), then (when `write`) word_of(i * words + j) in its word
 * j, block by block. -1 and a FAIL line of workload wl when malloc returns NULL. */
static int malloc_blocks(const char *wl, const char *param, uint64_t **p, size_t n,
                         uint64_t block, bool write)
{
    size_t words = (size_t)(block / 8);
    for (size_t i = 0; i < n; i++) {
        if (!(p[i] = malloc(block))) {
            aw_fail(wl, param, "malloc returned NULL at block %zu", i);
            return -1;
        }
        if (write)
            write_words(p[i], 0, words, (uint64_t)i * words);
    }
    return 0;
}

/* Whether each of the n blocks of p still holds what malloc_blocks wrote, plus `plus` in every
 * word: 0, or -1 and a FAIL line of workload wl for the first bad word. */
static int check_blocks(const char *wl, const char *param, uint64_t *const *p, size_t n,
                        size_t words, uint64_t plus)
{
    for (size_t i = 0; i < n; i++) {
        size_t bad = check_words(p[i], words, (uint64_t)i * words, plus);
        if (bad != words) {
            aw_fail(wl, param, "data mismatch in block %zu at byte %zu", i, bad * 8);
            return -1;
        }
    }
    return 0;
}

/* info_owned on the n blocks of p, then frees them (not p). */
static void free_blocks(uint64_t **p, size_t n)
{
    info_owned((void **)p, n);
    for (size_t i = 0; i < n; i++)
        free(p[i]);
}

/* The timed phases of a workload: phases_start, then phase_end(name) as each one ends; at the
 * end report_phases writes a RESULT line of seconds for each, then total_s and report_io. */
struct phases {
    const char *name[8];
    double t[9]; /* t[i]: when phase i began; t[n]: when the last ended */
    int n;
};

static void phases_start(struct phases *ph)
{
    ph->n = 0;
    ph->t[0] = aw_now();
}

static void phase_end(struct phases *ph, const char *name)
{
    ph->name[ph->n++] = name;
    ph->t[ph->n] = aw_now();
}

static void report_phases(const char *wl, const char *param, const struct phases *ph)
{
    for (int i = 0; i < ph->n; i++)
        aw_result(wl, param, ph->name[i], ph->t[i + 1] - ph->t[i], "s");
    aw_result(wl, param, "total_s", ph->t[ph->n] - ph->t[0], "s");
    report_io(wl, param);
}

static int fits_blocks(uint64_t total, uint64_t block)
{
    char param[96], s1[32], s2[32];
    snprintf(param, sizeof param, "%s in %s blocks", size_str(total, s1), size_str(block, s2));
    size_t n = (size_t)(total / block), words = (size_t)(block / 8);
    uint64_t **p = calloc(n, sizeof *p);
    if (!p)
        return AW_EXIT_FAIL;
    struct phases ph;
    phases_start(&ph);
    if (malloc_blocks("fits", param, p, n, block, false))
        return AW_EXIT_FAIL;
    phase_end(&ph, "malloc_s");
    for (size_t i = 0; i < n; i++)
        write_words(p[i], 0, words, (uint64_t)i * words);
    phase_end(&ph, "write_s");
    for (size_t i = 0; i < n; i++)
        rmw_words(p[i], words);
    phase_end(&ph, "rewrite1_s");
    for (size_t i = 0; i < n; i++)
        rmw_words(p[i], words);
    phase_end(&ph, "rewrite2_s");
    if (check_blocks("fits", param, p, n, words, 2))
        return AW_EXIT_FAIL;
    phase_end(&ph, "check_s");
    free_blocks(p, n);
    phase_end(&ph, "free_s");
    free(p);
    report_phases("fits", param, &ph);
    return AW_EXIT_OK;
}

static int fits_realloc(uint64_t total, uint64_t start)
{
    char param[96], s1[32], s2[32];
    snprintf(param, sizeof param, "realloc doubling %s to %s", size_str(start, s1),
             size_str(total, s2));
    total &= ~7ull;
    size_t size = (size_t)start & ~(size_t)7;
    struct phases ph;
    phases_start(&ph);
    uint64_t *p = malloc(size);
    if (!p) {
        aw_fail("fits", param, "malloc returned NULL");
        return AW_EXIT_FAIL;
    }
    write_words(p, 0, size / 8, 0);
    while (size < total) {
        size_t next = size * 2 > total ? total : size * 2;
        uint64_t *q = realloc(p, next);
        if (!q) {
            aw_fail("fits", param, "realloc to %zu returned NULL", next);
            return AW_EXIT_FAIL;
        }
        p = q;
        write_words(p, size / 8, next / 8, 0);
        size = next;
    }
    phase_end(&ph, "grow_s");
    rmw_words(p, size / 8);
    phase_end(&ph, "rewrite1_s");
    size_t bad = check_words(p, size / 8, 0, 1);
    if (bad != size / 8) {
        aw_fail("fits", param, "data mismatch at byte %zu", bad * 8);
        return AW_EXIT_FAIL;
    }
    phase_end(&ph, "check_s");
    free_blocks(&p, 1);
    phase_end(&ph, "free_s");
    report_phases("fits", param, &ph);
    return AW_EXIT_OK;
}

static int wl_fits(int argc, char **argv)
{
    uint64_t total, b;
    if (argc != 3 || aw_parse_size(argv[1], &total) || aw_parse_size(argv[2], &b) || b < 8 ||
        total < b)
        return AW_EXIT_USAGE;
    if (strcmp(argv[0], "blocks") == 0)
        return fits_blocks(total, b);
    if (strcmp(argv[0], "realloc") == 0)
        return fits_realloc(total, b);
    return AW_EXIT_USAGE;
}

/* ---- ooc: one array larger than the memory limit ------------------------------------------- */

/* A decimal (or 0x hex) count, the whole string; 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return -1;
    *out = v;
    return 0;
}

/* The sum of word_of(k) for base <= k < base + n, modulo 2^64: GOLD times the sum of the
 * indices, n * base + n(n-1)/2. */
static uint64_t sum_words(uint64_t base, uint64_t n)
{
    uint64_t tri = n == 0 ? 0 : (n % 2 == 0) ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
    return (n * base + tri) * GOLD;
}

static int wl_ooc(int argc, char **argv)
{
    uint64_t total, ops, budget = 0, seed0 = 42;
    if (argc < 2 || argc > 4 || aw_parse_size(argv[0], &total) ||
        aw_parse_size(argv[1], &ops) || total < 4096 ||
        (argc > 2 && aw_parse_size(argv[2], &budget)) || (argc > 3 && parse_u64(argv[3], &seed0)))
        return AW_EXIT_USAGE;
    char param[96], s1[32];
    snprintf(param, sizeof param, "%s array seed %llu", size_str(total, s1),
             (unsigned long long)seed0);
    size_t n = (size_t)(total / 8);
    long long w[5]; /* write_bytes at each phase's end: what each phase dirtied for the disk */
    w[0] = proc_io("write_bytes");
    double t0 = aw_now();
    uint64_t *a = malloc(n * 8);
    if (!a) {
        aw_fail("ooc", param, "malloc(%s) returned NULL", s1);
        return AW_EXIT_FAIL;
    }
    info_owned((void **)&a, 1);
    write_words(a, 0, n, 0);
    double t0b = aw_now();
    w[1] = proc_io("write_bytes");
    /* The block written once, then read in order: the sequential case. */
    uint64_t first = 0;
    for (size_t k = 0; k < n; k++)
        first += a[k];
    double t1 = aw_now();
    w[2] = proc_io("write_bytes");
    if (first != sum_words(0, n)) {
        aw_fail("ooc", param, "checksum mismatch after the fill: the array lost data");
        return AW_EXIT_FAIL;
    }
    /* Random read-modify-writes: a seeded PRNG (SEED, 42 by default) picks the word and the
     * value added. The expected checksum follows without the array: sum of word_of(k) plus
     * every addend. */
    uint64_t seed = seed0, added = 0, done = 0;
    for (; done < ops; done++) {
        uint64_t r = splitmix(&seed);
        uint64_t k = r % n, v = (r >> 17) | 1;
        a[k] += v;
        added += v;
        if ((done & 1023) == 1023 && budget && aw_now() - t1 > (double)budget) {
            done++;
            break;
        }
    }
    double t2 = aw_now();
    w[3] = proc_io("write_bytes");
    uint64_t sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += a[k];
    double t3 = aw_now();
    w[4] = proc_io("write_bytes");
    free(a);
    double t4 = aw_now();
    if (sum != sum_words(0, n) + added) {
        aw_fail("ooc", param, "checksum mismatch: the array lost data");
        return AW_EXIT_FAIL;
    }
    double bytes = (double)n * 8;
    aw_result("ooc", param, "fill_GBps", bytes / (t0b - t0) / 1e9, "GB/s");
    aw_result("ooc", param, "scan_first_GBps", bytes / (t1 - t0b) / 1e9, "GB/s");
    aw_result("ooc", param, "rmw_per_s", (double)done / (t2 - t1), "ops/s");
    aw_result("ooc", param, "rmw_done", (double)done, "ops");
    aw_result("ooc", param, "scan_GBps", bytes / (t3 - t2) / 1e9, "GB/s");
    aw_result("ooc", param, "free_s", t4 - t3, "s");
    static const char *const phase[] = {"fill", "scan_first", "rmw", "scan"};
    for (int i = 0; i < 4 && w[0] >= 0; i++) {
        char metric[40];
        snprintf(metric, sizeof metric, "%s_write_MiB", phase[i]);
        aw_result("ooc", param, metric, (double)(w[i + 1] - w[i]) / MiB, "MiB");
    }
    aw_result("ooc", param, "total_s", t4 - t0, "s");
    if (done < ops)
        aw_info("ooc_rmw_stopped", "after %llu of %llu operations (budget %llu s)",
                (unsigned long long)done, (unsigned long long)ops, (unsigned long long)budget);
    report_io("ooc", param);
    return AW_EXIT_OK;
}

/* ---- ooc-threads: the out-of-core array with threads ----------------------------------------
 *
 * (a) One TOTAL array, filled sequentially by the main thread with word_of(k) in word k; then
 * THREADS threads each read OPS random words (thread i's splitmix64 seeded with SEED + i),
 * checking every word read against word_of(k) and summing both: the sums must agree too.
 * (b) The array freed, THREADS threads each malloc their own TOTAL / THREADS block, fill it
 * (word_of of its global word index), and, once every thread has filled, scan it and check the
 * sum. Every phase starts and ends at a barrier of all the threads and the main thread, so the
 * rates are aggregates: all the bytes (or reads) over the time from first start to last end. */

struct oocth {
    pthread_barrier_t bar;
    int nthreads;
    uint64_t *a;        /* (a): the shared array */
    size_t n;           /* (a): its words */
    uint64_t ops, seed, budget;
    double t_start;     /* (a): when the reads began (set before the start barrier) */
    size_t words;       /* (b): words of each thread's block */
};

struct oocth_one {
    struct oocth *S;
    int i;
    uint64_t done, bad, first_bad, sum, expect; /* (a) */
    uint64_t *block;                            /* (b) */
    bool nomem;
    uint64_t scan_sum;
};

static void *oocth_reader(void *arg)
{
    struct oocth_one *T = arg;
    struct oocth *S = T->S;
    uint64_t seed = S->seed + (uint64_t)T->i, sum = 0, expect = 0, bad = 0, done = 0;
    const volatile uint64_t *a = S->a;
    pthread_barrier_wait(&S->bar);
    for (; done < S->ops; done++) {
        uint64_t k = splitmix(&seed) % S->n;
        uint64_t v = a[k];
        if (v != word_of(k) && bad++ == 0)
            T->first_bad = k;
        sum += v;
        expect += word_of(k);
        if ((done & 255) == 255 && S->budget && aw_now() - S->t_start > (double)S->budget) {
            done++;
            break;
        }
    }
    T->done = done;
    T->bad = bad;
    T->sum = sum;
    T->expect = expect;
    pthread_barrier_wait(&S->bar);
    return NULL;
}

static void *oocth_block(void *arg)
{
    struct oocth_one *T = arg;
    struct oocth *S = T->S;
    uint64_t base = (uint64_t)T->i * S->words;
    pthread_barrier_wait(&S->bar);
    T->block = malloc(S->words * 8);
    if (T->block)
        write_words(T->block, 0, S->words, base);
    else
        T->nomem = true;
    pthread_barrier_wait(&S->bar); /* every block filled */
    uint64_t sum = 0;
    const volatile uint64_t *b = T->block;
    for (size_t j = 0; b && j < S->words; j++)
        sum += b[j];
    T->scan_sum = sum;
    pthread_barrier_wait(&S->bar); /* every block scanned */
    return NULL;
}

/* Starts S->nthreads threads of fn on T; -1 and a FAIL line when one cannot start. */
static int oocth_start(const char *param, struct oocth *S, struct oocth_one *T, pthread_t *tid,
                       void *(*fn)(void *))
{
    for (int i = 0; i < S->nthreads; i++) {
        T[i] = (struct oocth_one){.S = S, .i = i};
        int rc = pthread_create(&tid[i], NULL, fn, &T[i]);
        if (rc) {
            aw_fail("ooc-threads", param, "pthread_create: %s", strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int wl_ooc_threads(int argc, char **argv)
{
    uint64_t total, nth, ops, budget = 0, seed0 = 42;
    if (argc < 3 || argc > 5 || aw_parse_size(argv[0], &total) || parse_u64(argv[1], &nth) ||
        parse_u64(argv[2], &ops) || nth < 1 || nth > 256 || total < 4096 * nth ||
        (argc > 3 && aw_parse_size(argv[3], &budget)) || (argc > 4 && parse_u64(argv[4], &seed0)))
        return AW_EXIT_USAGE;
    char param[128], s1[32];
    snprintf(param, sizeof param, "%s array %llu threads seed %llu", size_str(total, s1),
             (unsigned long long)nth, (unsigned long long)seed0);
    struct oocth S = {.nthreads = (int)nth, .n = (size_t)(total / 8), .ops = ops,
                      .seed = seed0, .budget = budget};
    struct oocth_one *T = calloc(nth, sizeof *T);
    pthread_t *tid = calloc(nth, sizeof *tid);
    if (!T || !tid || pthread_barrier_init(&S.bar, NULL, (unsigned)nth + 1))
        return AW_EXIT_FAIL;

    /* (a) */
    double t0 = aw_now();
    S.a = malloc(S.n * 8);
    if (!S.a) {
        aw_fail("ooc-threads", param, "malloc(%s) returned NULL", s1);
        return AW_EXIT_FAIL;
    }
    info_owned((void **)&S.a, 1);
    write_words(S.a, 0, S.n, 0);
    double t1 = aw_now();
    if (oocth_start(param, &S, T, tid, oocth_reader))
        return AW_EXIT_FAIL;
    S.t_start = aw_now();
    pthread_barrier_wait(&S.bar);
    pthread_barrier_wait(&S.bar);
    double t2 = aw_now();
    uint64_t done = 0;
    for (int i = 0; i < S.nthreads; i++) {
        pthread_join(tid[i], NULL);
        done += T[i].done;
    }
    for (int i = 0; i < S.nthreads; i++) {
        if (T[i].bad) {
            aw_fail("ooc-threads", param, "thread %d read %llu wrong words (first: word %llu)",
                    i, (unsigned long long)T[i].bad, (unsigned long long)T[i].first_bad);
            return AW_EXIT_FAIL;
        }
        if (T[i].sum != T[i].expect) {
            aw_fail("ooc-threads", param, "thread %d: checksum of its reads mismatches", i);
            return AW_EXIT_FAIL;
        }
    }
    uint64_t done_min = T[0].done;
    for (int i = 1; i < S.nthreads; i++)
        done_min = T[i].done < done_min ? T[i].done : done_min;
    free(S.a);
    double t3 = aw_now();
    /* (a)'s figures at once: a run killed in (b) keeps them. */
    double bytes = (double)S.n * 8;
    aw_result("ooc-threads", param, "fill_GBps", bytes / (t1 - t0) / 1e9, "GB/s");
    aw_result("ooc-threads", param, "reads_per_s", (double)done / (t2 - S.t_start), "ops/s");
    aw_result("ooc-threads", param, "reads_done", (double)done, "ops");
    aw_result("ooc-threads", param, "free_s", t3 - t2, "s");
    if (done_min < ops)
        aw_info("ooc_reads_stopped", "after %llu to %llu of %llu reads per thread (budget %llu s)",
                (unsigned long long)done_min, (unsigned long long)(done / nth),
                (unsigned long long)ops, (unsigned long long)budget);

    /* (b) */
    S.words = S.n / (size_t)nth;
    if (oocth_start(param, &S, T, tid, oocth_block))
        return AW_EXIT_FAIL;
    pthread_barrier_wait(&S.bar);
    double t4 = aw_now();
    pthread_barrier_wait(&S.bar);
    double t5 = aw_now();
    pthread_barrier_wait(&S.bar);
    double t6 = aw_now();
    for (int i = 0; i < S.nthreads; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < S.nthreads; i++) {
        if (T[i].nomem) {
            aw_fail("ooc-threads", param, "thread %d: malloc of its block returned NULL", i);
            return AW_EXIT_FAIL;
        }
        if (T[i].scan_sum != sum_words((uint64_t)i * S.words, S.words)) {
            aw_fail("ooc-threads", param, "thread %d: checksum mismatch: its block lost data", i);
            return AW_EXIT_FAIL;
        }
    }
    void **blocks = calloc(nth, sizeof *blocks);
    for (int i = 0; blocks && i < S.nthreads; i++)
        blocks[i] = T[i].block;
    if (blocks)
        info_owned(blocks, nth);
    for (int i = 0; i < S.nthreads; i++)
        free(T[i].block);
    double t7 = aw_now();
    free(blocks);
    pthread_barrier_destroy(&S.bar);

    double tbytes = (double)S.words * 8 * (double)nth;
    aw_result("ooc-threads", param, "tfill_GBps", tbytes / (t5 - t4) / 1e9, "GB/s");
    aw_result("ooc-threads", param, "tscan_GBps", tbytes / (t6 - t5) / 1e9, "GB/s");
    aw_result("ooc-threads", param, "tfree_s", t7 - t6, "s");
    aw_result("ooc-threads", param, "total_s", t7 - t0, "s");
    report_io("ooc-threads", param);
    free(T);
    free(tid);
    return AW_EXIT_OK;
}

/* ---- late: pressure arriving after the blocks were placed ---------------------------------- */

/* The byte at position pos of the pipe's stream. */
static inline unsigned char stream_byte(uint64_t pos)
{
    return (unsigned char)((pos % 251) ^ (pos >> 13));
}

static inline unsigned char memset_byte(unsigned round, size_t block)
{
    return (unsigned char)(round * 31 + block * 7 + 1);
}

struct late {
    uint64_t **big;
    size_t nbig, bsize;
    int pipe_rd, pipe_wr;
    volatile int stop;        /* set by main once the small heap is grown */
    unsigned rounds;          /* rounds the writer completed */
    uint64_t *stream_at;      /* per block: the stream position of its second half */
    int error;                /* errno of a failed read(2), or -1 for a short stream */
};

static void *feeder(void *arg)
{
    struct late *L = arg;
    unsigned char buf[65536];
    uint64_t pos = 0;
    for (;;) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = stream_byte(pos + i);
        size_t off = 0;
        while (off < sizeof buf) {
            ssize_t w = write(L->pipe_wr, buf + off, sizeof buf - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return NULL; /* EPIPE: the writer thread closed its end */
            off += (size_t)w;
        }
        pos += sizeof buf;
    }
}

/* Reads exactly len bytes of the pipe into dst. */
static int read_full(int fd, unsigned char *dst, size_t len)
{
    while (len) {
        ssize_t r = read(fd, dst, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return -1;
        dst += r;
        len -= (size_t)r;
    }
    return 0;
}

/* The second thread: whole rounds over every block, each a memset of the block and a read(2)
 * of the pipe into its second half, until main says stop (after at least one round). */
static void *writer(void *arg)
{
    struct late *L = arg;
    uint64_t pos = 0;
    size_t half = L->bsize / 2;
    for (unsigned r = 0;; r++) {
        for (size_t b = 0; b < L->nbig; b++) {
            unsigned char *p = (unsigned char *)L->big[b];
            memset(p, memset_byte(r, b), L->bsize);
            int rc = read_full(L->pipe_rd, p + half, L->bsize - half);
            if (rc) {
                L->error = rc;
                return NULL;
            }
            L->stream_at[b] = pos;
            pos += L->bsize - half;
        }
        L->rounds = r + 1;
        if (__atomic_load_n(&L->stop, __ATOMIC_ACQUIRE))
            return NULL;
    }
}

static int check_big_threaded(const struct late *L, const char *param)
{
    size_t half = L->bsize / 2;
    unsigned r = L->rounds - 1;
    for (size_t b = 0; b < L->nbig; b++) {
        const unsigned char *p = (const unsigned char *)L->big[b];
        unsigned char v = memset_byte(r, b);
        for (size_t i = 0; i < half; i++)
            if (p[i] != v) {
                aw_fail("late", param, "block %zu byte %zu: %u, memset wrote %u", b, i, p[i], v);
                return -1;
            }
        for (size_t i = half; i < L->bsize; i++)
            if (p[i] != stream_byte(L->stream_at[b] + i - half)) {
                aw_fail("late", param, "block %zu byte %zu: not what read(2) put there", b, i);
                return -1;
            }
    }
    return 0;
}

static int check_small(unsigned char **s, size_t n, size_t size, const char *param)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char v = (unsigned char)(i * 13 + 5);
        for (size_t j = 0; j < size; j++)
            if (s[i][j] != v) {
                aw_fail("late", param, "small object %zu byte %zu: %u, expected %u", i, j,
                        s[i][j], v);
                return -1;
            }
    }
    return 0;
}

static int start_writer(struct late *L, pthread_t *tw, pthread_t *tf)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    L->pipe_rd = fds[0];
    L->pipe_wr = fds[1];
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(tf, NULL, feeder, L) != 0 || pthread_create(tw, NULL, writer, L) != 0)
        return -1;
    return 0;
}

static int wl_late(int argc, char **argv)
{
    uint64_t big, bsize, small, ssize;
    if (argc != 5 || aw_parse_size(argv[0], &big) || aw_parse_size(argv[1], &bsize) ||
        aw_parse_size(argv[2], &small) || aw_parse_size(argv[3], &ssize) || bsize < 16 ||
        big < bsize || !ssize || small < ssize)
        return AW_EXIT_USAGE;
    bool threaded = strcmp(argv[4], "2threads") == 0;
    if (!threaded && strcmp(argv[4], "1thread") != 0)
        return AW_EXIT_USAGE;
    char param[160], s1[32], s2[32], s3[32];
    snprintf(param, sizeof param, "%s in %s blocks + %s in %llu B; %s", size_str(big, s1),
             size_str(bsize, s2), size_str(small, s3), (unsigned long long)ssize,
             threaded ? "2 threads" : "1 thread");
    struct late L = {.nbig = (size_t)(big / bsize), .bsize = (size_t)bsize & ~(size_t)15};
    size_t nsmall = (size_t)(small / ssize), words = L.bsize / 8;
    L.big = calloc(L.nbig, sizeof *L.big);
    L.stream_at = calloc(L.nbig, sizeof *L.stream_at);
    unsigned char **s = calloc(nsmall, sizeof *s);
    if (!L.big || !L.stream_at || !s)
        return AW_EXIT_FAIL;
    double t0 = aw_now();
    if (malloc_blocks("late", param, L.big, L.nbig, L.bsize, true))
        return AW_EXIT_FAIL;
    double t1 = aw_now();
    pthread_t tw, tf;
    if (threaded && start_writer(&L, &tw, &tf) != 0) {
        aw_fail("late", param, "cannot start the writer: %s", strerror(errno));
        return AW_EXIT_FAIL;
    }
    for (size_t i = 0; i < nsmall; i++) {
        if (!(s[i] = malloc(ssize))) {
            aw_fail("late", param, "malloc returned NULL at small object %zu", i);
            return AW_EXIT_FAIL;
        }
        memset(s[i], (unsigned char)(i * 13 + 5), ssize);
    }
    double t2 = aw_now();
    if (threaded) {
        __atomic_store_n(&L.stop, 1, __ATOMIC_RELEASE);
        pthread_join(tw, NULL);
        close(L.pipe_rd); /* the feeder's next write fails: it ends */
        pthread_join(tf, NULL);
        close(L.pipe_wr);
        if (L.error) {
            aw_fail("late", param, "the writer's read(2) into a block failed: %s",
                    L.error > 0 ? strerror(L.error) : "end of stream");
            return AW_EXIT_FAIL;
        }
    }
    double t3 = aw_now();
    if (!threaded && check_blocks("late", param, L.big, L.nbig, words, 0))
        return AW_EXIT_FAIL;
    if ((threaded && check_big_threaded(&L, param)) || check_small(s, nsmall, ssize, param))
        return AW_EXIT_FAIL;
    double t4 = aw_now();
    info_owned((void **)L.big, L.nbig);
    for (size_t i = 0; i < nsmall; i++)
        free(s[i]);
    for (size_t b = 0; b < L.nbig; b++)
        free(L.big[b]);
    double t5 = aw_now();
    aw_result("late", param, "place_s", t1 - t0, "s");
    aw_result("late", param, "grow_small_s", t2 - t1, "s");
    if (threaded) {
        aw_result("late", param, "writer_rounds", L.rounds, "rounds");
        aw_result("late", param, "join_s", t3 - t2, "s");
    }
    aw_result("late", param, "check_s", t4 - t3, "s");
    aw_result("late", param, "free_s", t5 - t4, "s");
    aw_result("late", param, "total_s", t5 - t0, "s");
    report_io("late", param);
    return AW_EXIT_OK;
}

/* ---- many: a heap larger than the limit in many blocks ------------------------------------- */

static int wl_many(int argc, char **argv)
{
    uint64_t total, block;
    if (argc != 2 || aw_parse_size(argv[0], &total) || aw_parse_size(argv[1], &block) ||
        block < 8 || total < block)
        return AW_EXIT_USAGE;
    char param[96], s2[32];
    size_t n = (size_t)(total / block), words = (size_t)(block / 8);
    snprintf(param, sizeof param, "%zu x %s", n, size_str(block, s2));
    uint64_t **p = calloc(n, sizeof *p);
    if (!p)
        return AW_EXIT_FAIL;
    struct phases ph;
    phases_start(&ph);
    if (malloc_blocks("many", param, p, n, block, true))
        return AW_EXIT_FAIL;
    phase_end(&ph, "write_s");
    if (check_blocks("many", param, p, n, words, 0))
        return AW_EXIT_FAIL;
    phase_end(&ph, "check_s");
    free_blocks(p, n);
    phase_end(&ph, "free_s");
    free(p);
    report_phases("many", param, &ph);
    return AW_EXIT_OK;
}

/* ---- fork: fork+exec in a loop, and a child reading while the parent writes ---------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* fork+exec of /bin/true, waited for: its seconds, or -1. */
static double fork_exec(void)
{
    double t0 = aw_now();
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        return -1;
    return aw_now() - t0;
}

/* A child that waits until its parent rewrote every word, then checks it reads the fork's
 * instant (every word plus `plus`). 0, or -1 and a FAIL line. */
static int fork_reader(const char *param, uint64_t **p, size_t n, size_t words, uint64_t plus)
{
    int go[2];
    if (pipe(go) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        _exit(read(go[0], &c, 1) == 1 &&
                      check_blocks("fork", param, p, n, words, plus) == 0 ? 0 : 1);
    }
    close(go[0]);
    for (size_t i = 0; i < n; i++)
        rmw_words(p[i], words);
    int st = 0, ok = pid > 0 && write(go[1], "g", 1) == 1;
    close(go[1]);
    ok = ok && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok)
        aw_fail("fork", param, "the child did not read its parent's memory at the fork");
    return ok ? 0 : -1;
}

static int wl_fork(int argc, char **argv)
{
    uint64_t total, block;
    int rounds = argc == 3 ? atoi(argv[2]) : 0;
    if (argc != 3 || aw_parse_size(argv[0], &total) || aw_parse_size(argv[1], &block) ||
        block < 8 || total < block || rounds < 1 || rounds > 64)
        return AW_EXIT_USAGE;
    char param[96], s1[32], s2[32];
    snprintf(param, sizeof param, "%s in %s blocks; %d fork+exec", size_str(total, s1),
             size_str(block, s2), rounds);
    size_t n = (size_t)(total / block), words = (size_t)(block / 8);
    uint64_t **p = calloc(n, sizeof *p);
    double fe[64], rw[64];
    if (!p || malloc_blocks("fork", param, p, n, block, true))
        return AW_EXIT_FAIL;
    fflush(stdout);
    for (int r = 0; r < rounds; r++) {
        if ((fe[r] = fork_exec()) < 0) {
            aw_fail("fork", param, "fork+exec of /bin/true failed");
            return AW_EXIT_FAIL;
        }
        double t0 = aw_now();
        for (size_t i = 0; i < n; i++)
            rmw_words(p[i], words);
        rw[r] = aw_now() - t0;
    }
    if (fork_reader(param, p, n, words, (uint64_t)rounds))
        return AW_EXIT_FAIL;
    if (check_blocks("fork", param, p, n, words, (uint64_t)rounds + 1))
        return AW_EXIT_FAIL;
    free_blocks(p, n);
    free(p);
    qsort(fe, (size_t)rounds, sizeof *fe, cmp_double);
    qsort(rw, (size_t)rounds, sizeof *rw, cmp_double);
    aw_result("fork", param, "fork_exec_ms", fe[rounds / 2] * 1e3, "ms");
    aw_result("fork", param, "rewrite_after_ms", rw[rounds / 2] * 1e3, "ms");
    report_io("fork", param);
    return AW_EXIT_OK;
}

/* ---- entry --------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: placement_workloads [--expect-sym=NAME] "
                    "fits|ooc|ooc-threads|late|many|fork ARGS "
                    "(see the head of bench/placement_workloads.c)\n");
    return AW_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    int i = 1;
    const char *expect = NULL;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strncmp(argv[i], "--expect-sym=", 13) == 0)
            expect = argv[i] + 13;
        else
            return usage();
    }
    if (i >= argc)
        return usage();
    owns_fn = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "mmv_owns");
    if (expect && !dlsym(RTLD_DEFAULT, expect)) {
        aw_fail(argv[i], "-", "%s not found: the allocator under test is not loaded", expect);
        return AW_EXIT_NOT_ACTIVE;
    }
    const char *wl = argv[i];
    int n = argc - i - 1;
    char **a = argv + i + 1;
    int rc = strcmp(wl, "fits") == 0   ? wl_fits(n, a)
             : strcmp(wl, "ooc") == 0  ? wl_ooc(n, a)
             : strcmp(wl, "ooc-threads") == 0 ? wl_ooc_threads(n, a)
             : strcmp(wl, "late") == 0 ? wl_late(n, a)
             : strcmp(wl, "many") == 0 ? wl_many(n, a)
             : strcmp(wl, "fork") == 0 ? wl_fork(n, a)
                                       : AW_EXIT_USAGE;
    return rc == AW_EXIT_USAGE ? usage() : rc;
}
