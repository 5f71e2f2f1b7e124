/* The explicit allocator in-process (issue 3): routing by threshold, the files behind blocks,
 * calloc/realloc/memalign semantics, usable sizes, stats, and misuse detection.
 *
 * Options are read once per process at the first mmv_* call, and Criterion runs every test in a
 * fresh process: each test sets its MMVEC_* variables first. Segments go to <tmp>/seg, where
 * <tmp> is the test's own mkdtemp directory, removed at the end. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)
#define G ((size_t)1 << 30)
#define THRESHOLD (64 * K)

static char tmp[64];     /* the test's directory */
static char segdir[128]; /* MMVEC_DIR: <tmp>/seg */

static void unset_all(void)
{
    static const char *const vars[] = {"MMVEC_THRESHOLD", "MMVEC_DIR", "MMVEC_STRICT",
                                       "MMVEC_UNLINK", "MMVEC_DISABLE", "MMVEC_STATS",
                                       "MMVEC_LOG", "MMVEC_FORK", "MMVEC_CACHE",
                                       "MMVEC_CACHE_DECAY_MS", "MMVEC_RESERVE", "MMVEC_ADVICE",
                                       "MMVEC_WRITEBACK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void setup(void)
{
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp/mmvec-atest-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tmp);
    /* A clean slate whatever the caller's environment holds; each test sets what it needs. */
    unset_all();
    setenv("MMVEC_DIR", segdir, 1);
    setenv("MMVEC_THRESHOLD", "64K", 1);
}

static void teardown(void)
{
    tu_rm_rf(tmp);
}

TestSuite(alloc, .init = setup, .fini = teardown);

/* ---- small tools ---- */

/* Index of the first byte that is not the pattern, or SIZE_MAX when all are. */
static size_t first_bad(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != tu_pat(seed, i))
            return i;
    return SIZE_MAX;
}

static size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return i;
    return SIZE_MAX;
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static mmv_stats stats(void)
{
    mmv_stats s;
    cr_assert_eq(mmv_stats_get(&s), 0);
    return s;
}

static const char *path_of(const void *p)
{
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    cr_assert_eq(mmv_block_path(p, b, 4096), 0, "no file behind %p", p);
    return b;
}

/* Block files (*.seg) anywhere under the segment directory. */
static size_t count_seg_files(void)
{
    return (size_t)tu_count_segs(segdir);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Runs fn in a forked child whose stderr goes into err; returns the wait status. The child
 * leaves with _exit(fn()) so that none of Criterion's exit handlers run twice. */
static int in_child(int (*fn)(void), char *err, size_t errsize)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        _exit(fn());
    }
    close(pfd[1]);
    tu_read_fd(pfd[0], err, errsize);
    close(pfd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* ---- routing and files ---- */

Test(alloc, routes_by_threshold_and_backs_large_blocks_with_0600_files)
{
    cr_assert_eq(mmv_threshold(), THRESHOLD);
    void *small = mmv_malloc(THRESHOLD - 1);
    void *at = mmv_malloc(THRESHOLD);
    void *above = mmv_malloc(3 * M + 5);
    cr_assert(small && at && above);
    cr_assert(!mmv_owns(small));
    cr_assert(mmv_owns(at));
    cr_assert(mmv_owns(above));
    cr_assert(!mmv_owns((char *)above + 4096), "an interior pointer is not a block");
    char buf[4096];
    cr_assert_eq(mmv_block_path(small, buf, sizeof buf), -EINVAL);
    cr_assert_eq(mmv_block_path(at, buf, 8), -ENAMETOOLONG);
    void *blocks[] = {at, above};
    size_t sizes[] = {THRESHOLD, 3 * M + 5};
    for (int i = 0; i < 2; i++) {
        const char *path = path_of(blocks[i]);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s", path);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
        cr_assert_geq((size_t)st.st_size, sizes[i]);
        /* <segdir>/mmvec-heap-<uid>/<host>-<pid>-<hex>/<uuid>.seg */
        char want[700], pid[32];
        snprintf(want, sizeof want, "%s/", tu_heap_dir(segdir));
        snprintf(pid, sizeof pid, "-%ld-", (long)getpid());
        cr_assert_eq(strncmp(path, want, strlen(want)), 0, "%s not under %s", path, want);
        cr_assert(strstr(path + strlen(want), pid) == path + strlen(want) + 8, "%s: pid", path);
        tu_fill(blocks[i], sizes[i], 1);
        cr_assert_eq(first_bad(blocks[i], sizes[i], 1), SIZE_MAX);
    }
    struct stat st;
    cr_assert_eq(stat(segdir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "the directory is created 0700");
    mmv_free(small);
    mmv_free(at);
    mmv_free(above);
}

Test(alloc, threshold_range_min_max)
{
    setenv("MMVEC_THRESHOLD", "64K:1M", 1);
    size_t sizes[] = {32 * K, 64 * K - 1, 64 * K, 512 * K, 1 * M, 1 * M + 1, 8 * M};
    bool want[] = {false, false, true, true, true, false, false};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *p = mmv_malloc(sizes[i]);
        cr_assert_not_null(p);
        cr_assert_eq(mmv_owns(p), want[i], "size %zu", sizes[i]);
        tu_fill(p, sizes[i], 2);
        mmv_free(p);
    }
}

Test(alloc, threshold_suffixes)
{
    setenv("MMVEC_THRESHOLD", "2M", 1);
    cr_assert_eq(mmv_threshold(), 2 * M);
    void *p = mmv_malloc(2 * M - 1), *q = mmv_malloc(2 * M);
    cr_assert(!mmv_owns(p));
    cr_assert(mmv_owns(q));
    mmv_free(p);
    mmv_free(q);
}

Test(alloc, file_removed_at_free_when_not_cached)
{
    setenv("MMVEC_CACHE", "0", 1);
    void *p = mmv_malloc(2 * M);
    cr_assert(mmv_owns(p));
    char path[4096];
    strcpy(path, path_of(p));
    cr_assert(exists(path));
    mmv_free(p);
    cr_assert(!exists(path), "%s left after free", path);
    cr_assert_eq(count_seg_files(), 0);
    cr_assert_eq(stats().blocks_live, 0);
}

Test(alloc, cached_file_removed_after_decay)
{
    setenv("MMVEC_CACHE_DECAY_MS", "1", 1);
    void *p = mmv_malloc(2 * M);
    char path[4096];
    strcpy(path, path_of(p));
    mmv_free(p);
    usleep(50 * 1000); /* well past the 1 ms decay */
    void *q = mmv_malloc(8 * M); /* a large request releases what decayed */
    cr_assert(mmv_owns(q));
    cr_assert(!exists(path), "%s still there after its decay", path);
    mmv_free(q);
}

Test(alloc, disable_routes_everything_to_jemalloc)
{
    setenv("MMVEC_DISABLE", "1", 1);
    void *p = mmv_malloc(8 * M);
    void *q = mmv_calloc(1, 4 * M);
    void *r = NULL;
    cr_assert_eq(mmv_posix_memalign(&r, 2 * M, 4 * M), 0);
    cr_assert(p && q && r);
    cr_assert(!mmv_owns(p) && !mmv_owns(q) && !mmv_owns(r));
    cr_assert_eq((uintptr_t)r % (2 * M), 0);
    tu_fill(p, 8 * M, 3);
    cr_assert_eq(first_nonzero(q, 4 * M), SIZE_MAX);
    p = mmv_realloc(p, 16 * M);
    cr_assert_eq(first_bad(p, 8 * M, 3), SIZE_MAX);
    cr_assert(!mmv_owns(p));
    cr_assert(!exists(segdir), "no directory is made when disabled");
    mmv_stats s = stats();
    cr_assert_eq(s.blocks_made, 0);
    cr_assert_eq(s.fallbacks, 0);
    mmv_free(p);
    mmv_free(q);
    mmv_free(r);
}

Test(alloc, unlink_leaves_no_file_and_realloc_keeps_contents)
{
    setenv("MMVEC_UNLINK", "1", 1);
    size_t n = 3 * M;
    unsigned char *p = mmv_malloc(n);
    cr_assert(mmv_owns(p));
    tu_fill(p, n, 4);
    char buf[4096];
    cr_assert_eq(mmv_block_path(p, buf, sizeof buf), -ENOENT);
    cr_assert_eq(count_seg_files(), 0);
    p = mmv_realloc(p, 20 * M); /* no file to grow: must still work */
    cr_assert_not_null(p);
    cr_assert_eq(first_bad(p, n, 4), SIZE_MAX);
    tu_fill(p, 20 * M, 5);
    p = mmv_realloc(p, 2 * M); /* shrink */
    cr_assert_not_null(p);
    cr_assert_eq(first_bad(p, 2 * M, 5), SIZE_MAX);
    cr_assert_eq(count_seg_files(), 0);
    mmv_free(p);
}

/* ---- calloc ---- */

Test(alloc, calloc_large_reads_zeros_fresh_and_from_cache)
{
    size_t sizes[] = {THRESHOLD, 1 * M, 2 * M, 24 * M};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *z = mmv_calloc(n / 16, 16);
        cr_assert(mmv_owns(z));
        cr_assert_eq(first_nonzero(z, mmv_usable_size(z)), SIZE_MAX, "fresh %zu", n);
        /* Dirty it, free it (into the cache), and ask again for the same size. */
        memset(z, 0xA5, mmv_usable_size(z));
        mmv_free(z);
        uint64_t hits = stats().cache_hits;
        z = mmv_calloc(1, n);
        cr_assert(mmv_owns(z));
        cr_assert_eq(first_nonzero(z, mmv_usable_size(z)), SIZE_MAX, "reused %zu", n);
        if (n <= 2 * M) /* small enough to be recycled: make sure the cache path ran */
            cr_assert_eq(stats().cache_hits, hits + 1, "size %zu", n);
        mmv_free(z);
    }
}

Test(alloc, calloc_and_reallocarray_overflow_give_enomem)
{
    errno = 0;
    cr_assert_null(mmv_calloc(SIZE_MAX / 2, 3));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(mmv_calloc(SIZE_MAX, SIZE_MAX));
    cr_assert_eq(errno, ENOMEM);
    unsigned char *p = mmv_malloc(2 * M);
    tu_fill(p, 2 * M, 6);
    errno = 0;
    cr_assert_null(mmv_reallocarray(p, SIZE_MAX / 4, 8));
    cr_assert_eq(errno, ENOMEM);
    cr_assert(mmv_owns(p), "the block survives a failed reallocarray");
    cr_assert_eq(first_bad(p, 2 * M, 6), SIZE_MAX);
    p = mmv_reallocarray(p, 4 * K, K); /* 4 MiB */
    cr_assert(mmv_owns(p));
    cr_assert_eq(first_bad(p, 2 * M, 6), SIZE_MAX);
    mmv_free(p);
    void *z = mmv_calloc(0, 5);
    cr_assert_not_null(z, "calloc(0, n) is a unique pointer, as glibc");
    mmv_free(z);
}

Test(alloc, impossible_sizes_give_enomem)
{
    /* Quiet: the allocator may warn that this "large block" fell back to RAM. */
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    errno = 0;
    cr_assert_null(mmv_malloc(SIZE_MAX - 4096));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(mmv_pvalloc(SIZE_MAX - 10));
    cr_assert_eq(errno, ENOMEM);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(null);
    void *z = mmv_malloc(0);
    cr_assert_not_null(z);
    mmv_free(z);
}

/* ---- realloc ---- */

Test(alloc, realloc_grows_in_place_without_copying)
{
    size_t n = 1 * M;
    unsigned char *p = mmv_malloc(n);
    tu_fill(p, n, 7);
    char path[4096];
    strcpy(path, path_of(p));
    for (size_t to = 2 * M; to <= 64 * M; to *= 2) {
        p = mmv_realloc(p, to);
        cr_assert(mmv_owns(p));
        cr_assert_geq(mmv_usable_size(p), to);
        cr_assert_eq(first_bad(p, n, 7), SIZE_MAX, "grown to %zu", to);
        cr_assert_str_eq(path_of(p), path, "the same file, grown");
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_geq((size_t)st.st_size, to);
        tu_fill(p, to, 7);
        n = to;
    }
    mmv_stats s = stats();
    cr_assert_eq(s.reallocs_copied, 0);
    cr_assert_gt(s.reallocs_in_place + s.reallocs_moved, 0);
    cr_assert_eq(s.blocks_made, 1);
    mmv_free(p);
}

Test(alloc, realloc_moves_by_remapping_when_blocked)
{
    /* b is made right after a (or somewhere): growing a past b's space must move a, by mremap. */
    unsigned char *a = mmv_malloc(1 * M), *b = mmv_malloc(1 * M);
    tu_fill(a, M, 8);
    tu_fill(b, M, 9);
    char path[4096];
    strcpy(path, path_of(a));
    bool adjacent = (uintptr_t)b == (uintptr_t)a + M;
    unsigned char *a2 = mmv_realloc(a, 32 * M);
    cr_assert(mmv_owns(a2));
    cr_assert_eq(first_bad(a2, M, 8), SIZE_MAX);
    cr_assert_eq(first_bad(b, M, 9), SIZE_MAX, "the neighbour is untouched");
    cr_assert_str_eq(path_of(a2), path);
    tu_fill(a2, 32 * M, 10);
    mmv_stats s = stats();
    cr_assert_eq(s.reallocs_copied, 0);
    if (adjacent) {
        cr_assert_eq(s.reallocs_moved, 1);
        cr_assert_neq(a2, a);
        cr_assert(!mmv_owns(a), "the old address is no block any more");
    }
    mmv_free(a2);
    mmv_free(b);
}

/* A regression test: growing in place once mapped the new part with a second mmap (another
 * open file, so the kernel kept two VMAs); a later growth that had to move called mremap over
 * both, which fails with EFAULT, and the block silently fell back to RAM. */
Test(alloc, realloc_moves_after_growing_in_place)
{
    unsigned char *a = mmv_malloc(1 * M);
    tu_fill(a, M, 16);
    char path[4096];
    strcpy(path, path_of(a));
    a = mmv_realloc(a, 3 * M); /* in place: nothing after it yet */
    cr_assert(mmv_owns(a));
    tu_fill(a, 3 * M, 17);
    unsigned char *b = mmv_malloc(1 * M); /* likely right after a's space: a must move next */
    tu_fill(b, M, 18);
    unsigned char *a2 = mmv_realloc(a, 64 * M);
    cr_assert_not_null(a2);
    cr_assert_eq(first_bad(a2, 3 * M, 17), SIZE_MAX);
    cr_assert_eq(first_bad(b, M, 18), SIZE_MAX);
    mmv_stats s = stats();
    cr_assert(mmv_owns(a2), "the block fell back to RAM (fallbacks %llu, moved %llu)",
              (unsigned long long)s.fallbacks, (unsigned long long)s.reallocs_moved);
    cr_assert_str_eq(path_of(a2), path);
    cr_assert_eq(s.fallbacks, 0);
    cr_assert_eq(s.reallocs_copied, 0);
    mmv_free(a2);
    mmv_free(b);
}

Test(alloc, realloc_shrinks_keeping_the_prefix)
{
    setenv("MMVEC_CACHE", "0", 1);
    unsigned char *p = mmv_malloc(16 * M);
    tu_fill(p, 16 * M, 11);
    char path[4096];
    strcpy(path, path_of(p));
    unsigned char *q = mmv_realloc(p, 1 * M + 100);
    cr_assert(mmv_owns(q));
    cr_assert_eq(first_bad(q, M + 100, 11), SIZE_MAX);
    size_t use = mmv_usable_size(q);
    cr_assert_geq(use, M + 100);
    cr_assert_lt(use, 16 * M, "a shrink by 15/16 gives memory back");
    struct stat st;
    cr_assert_eq(stat(path_of(q), &st), 0);
    cr_assert_lt((size_t)st.st_size, 16 * M, "the file is cut too");
    tu_fill(q, use, 12); /* every usable byte is still mapped */
    cr_assert_eq(first_bad(q, use, 12), SIZE_MAX);
    cr_assert_eq(stats().reallocs_copied, 0);
    /* A small shrink may keep the block as it is, but never loses contents. */
    q = mmv_realloc(q, use - 4096);
    cr_assert_eq(first_bad(q, use - 4096, 12), SIZE_MAX);
    mmv_free(q);
}

Test(alloc, realloc_crosses_the_threshold_both_ways)
{
    setenv("MMVEC_CACHE", "0", 1);
    unsigned char *p = mmv_malloc(1000);
    cr_assert(!mmv_owns(p));
    tu_fill(p, 1000, 13);
    p = mmv_realloc(p, 4 * M); /* up: into a segment */
    cr_assert(mmv_owns(p));
    cr_assert_eq(first_bad(p, 1000, 13), SIZE_MAX);
    tu_fill(p, 4 * M, 14);
    char path[4096];
    strcpy(path, path_of(p));
    p = mmv_realloc(p, 5000); /* down: back to jemalloc */
    cr_assert(!mmv_owns(p));
    cr_assert_eq(first_bad(p, 5000, 14), SIZE_MAX);
    cr_assert(!exists(path), "the segment's file goes when the data leaves it");
    cr_assert_eq(stats().blocks_live, 0);
    cr_assert_eq(stats().reallocs_copied, 2);
    mmv_free(p);
}

Test(alloc, realloc_zero_frees_and_null_mallocs)
{
    setenv("MMVEC_CACHE", "0", 1);
    unsigned char *p = mmv_realloc(NULL, 2 * M);
    cr_assert(mmv_owns(p), "realloc(NULL, n) is malloc(n)");
    tu_fill(p, 2 * M, 15);
    char path[4096];
    strcpy(path, path_of(p));
    cr_assert_null(mmv_realloc(p, 0));
    cr_assert(!mmv_owns(p));
    cr_assert(!exists(path));
    cr_assert_eq(stats().blocks_live, 0);
    void *s = mmv_realloc(NULL, 10);
    cr_assert_not_null(s);
    cr_assert_null(mmv_realloc(s, 0));
}

/* ---- alignment ---- */

Test(alloc, posix_memalign_rejects_bad_alignments_untouched)
{
    size_t bad[] = {0, 3, 24, 4, 2, 1, 12 * K, (size_t)1 << 63 | 8};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *out = (void *)0x1234;
        cr_assert_eq(mmv_posix_memalign(&out, bad[i], 4 * M), EINVAL, "align %zu", bad[i]);
        cr_assert_eq(out, (void *)0x1234, "*out untouched for align %zu", bad[i]);
        cr_assert_eq(mmv_posix_memalign(&out, bad[i], 10), EINVAL);
    }
    cr_assert_eq(mmv_posix_memalign(NULL, 4096, 4 * M), EINVAL);
    cr_assert_eq(stats().blocks_made, 0);
}

Test(alloc, large_blocks_honour_alignments_up_to_1g)
{
    size_t aligns[] = {8, 64, 4 * K, 64 * K, 2 * M, 64 * M, 1 * G};
    void *p[sizeof aligns / sizeof *aligns];
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        int saved = errno = 4242;
        cr_assert_eq(mmv_posix_memalign(&p[i], aligns[i], 1 * M + 7), 0, "align %zu", aligns[i]);
        cr_assert_eq(errno, saved, "errno unchanged on success");
        cr_assert(mmv_owns(p[i]), "align %zu", aligns[i]);
        cr_assert_eq((uintptr_t)p[i] % aligns[i], 0, "%p not aligned to %zu", p[i], aligns[i]);
        tu_fill(p[i], mmv_usable_size(p[i]), (unsigned)i);
    }
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        cr_assert_eq(first_bad(p[i], mmv_usable_size(p[i]), (unsigned)i), SIZE_MAX);
        mmv_free(p[i]);
    }
    /* Small requests with a big alignment come from jemalloc, aligned as well. */
    void *s = NULL;
    cr_assert_eq(mmv_posix_memalign(&s, 2 * M, 100), 0);
    cr_assert(!mmv_owns(s));
    cr_assert_eq((uintptr_t)s % (2 * M), 0);
    mmv_free(s);
}

Test(alloc, aligned_alloc_memalign_valloc_pvalloc)
{
    long page = sysconf(_SC_PAGESIZE);
    void *a = mmv_aligned_alloc(64 * K, 2 * M);
    cr_assert(mmv_owns(a));
    cr_assert_eq((uintptr_t)a % (64 * K), 0);
    errno = 0;
    cr_assert_null(mmv_aligned_alloc(3, 2 * M));
    cr_assert_eq(errno, EINVAL);
    /* memalign rounds an alignment that is not a power of two up to the next one. */
    void *m = mmv_memalign(3000, 2 * M);
    cr_assert(mmv_owns(m));
    cr_assert_eq((uintptr_t)m % 4096, 0);
    void *m2 = mmv_memalign(2 * M, 1 * M);
    cr_assert(mmv_owns(m2));
    cr_assert_eq((uintptr_t)m2 % (2 * M), 0);
    void *ms = mmv_memalign(48, 100); /* small: rounds to 64 */
    cr_assert_eq((uintptr_t)ms % 64, 0);
    void *v = mmv_valloc(THRESHOLD);
    cr_assert(mmv_owns(v));
    cr_assert_eq((uintptr_t)v % (uintptr_t)page, 0);
    void *vs = mmv_valloc(100);
    cr_assert_eq((uintptr_t)vs % (uintptr_t)page, 0);
    /* pvalloc rounds the size up to whole pages: THRESHOLD - 100 becomes THRESHOLD, a block. */
    void *pv = mmv_pvalloc(THRESHOLD - 100);
    cr_assert(mmv_owns(pv));
    cr_assert_eq((uintptr_t)pv % (uintptr_t)page, 0);
    void *pvs = mmv_pvalloc(5000);
    cr_assert_eq((uintptr_t)pvs % (uintptr_t)page, 0);
    cr_assert_geq(mmv_usable_size(pvs), 2 * (size_t)page);
    void *all[] = {a, m, m2, ms, v, vs, pv, pvs};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        tu_fill(all[i], mmv_usable_size(all[i]), 20);
        cr_assert_eq(first_bad(all[i], mmv_usable_size(all[i]), 20), SIZE_MAX);
        mmv_free(all[i]);
    }
}

/* ---- usable size ---- */

Test(alloc, usable_size_is_at_least_the_request_and_writable)
{
    size_t sizes[] = {1, 100, 4000, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, M + 123, 3 * M};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = mmv_malloc(sizes[i]);
        size_t use = mmv_usable_size(p);
        cr_assert_geq(use, sizes[i]);
        cr_assert_eq(mmv_usable_size(p), use, "stable");
        unsigned char *ref = malloc(use);
        tu_fill(ref, use, (unsigned)i);
        memcpy(p, ref, use);
        cr_assert_eq(memcmp(p, ref, use), 0, "size %zu, usable %zu", sizes[i], use);
        free(ref);
        mmv_free(p);
    }
    cr_assert_eq(mmv_usable_size(NULL), 0);
}

/* ---- stats ---- */

Test(alloc, stats_follow_blocks)
{
    mmv_stats s0 = stats();
    cr_assert_eq(s0.blocks_live, 0);
    void *a = mmv_malloc(2 * M), *b = mmv_malloc(5 * M), *c = mmv_malloc(100);
    size_t ua = mmv_usable_size(a), ub = mmv_usable_size(b);
    mmv_stats s = stats();
    cr_assert_eq(s.blocks_live, 2);
    cr_assert_eq(s.blocks_made, 2);
    cr_assert_eq(s.block_bytes_live, ua + ub);
    cr_assert_geq(s.block_bytes_peak, ua + ub);
    cr_assert_geq(s.largest_block, ub);
    cr_assert_eq(s.cache_hits, 0);
    mmv_free(b);
    s = stats();
    cr_assert_eq(s.blocks_live, 1);
    cr_assert_eq(s.block_bytes_live, ua);
    cr_assert_geq(s.block_bytes_peak, ua + ub, "the peak stays");
    void *b2 = mmv_malloc(5 * M); /* the same size again: from the cache */
    s = stats();
    cr_assert_eq(s.cache_hits, 1);
    cr_assert_eq(s.blocks_live, 2);
    cr_assert_eq(s.blocks_made, 3);
    mmv_free(a);
    mmv_free(b2);
    mmv_free(c);
    s = stats();
    cr_assert_eq(s.blocks_live, 0);
    cr_assert_eq(s.block_bytes_live, 0);
    cr_assert_eq(s.fallbacks, 0);
    cr_assert_eq(mmv_stats_get(NULL), -EINVAL);
}

/* Runs the helper with MMVEC_STATS=1; it exits holding blocks. */
Test(alloc, stats_table_at_exit_and_files_removed_at_exit)
{
    int out[2], err[2];
    cr_assert_eq(pipe(out), 0);
    cr_assert_eq(pipe(err), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        setenv("MMVEC_STATS", "1", 1);
        execl(MMVEC_HELPER_DIR "/alloc_child", "alloc_child", "leave", "3", "2M", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    char obuf[8192], ebuf[8192];
    tu_read_fd(out[0], obuf, sizeof obuf);
    tu_read_fd(err[0], ebuf, sizeof ebuf);
    close(out[0]);
    close(err[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s", status, ebuf);
    cr_assert_not_null(strstr(ebuf, "mmvec stats"), "no table: '%s'", ebuf);
    cr_assert_not_null(strstr(ebuf, "blocks made"), "'%s'", ebuf);
    cr_assert_not_null(strstr(ebuf, "3   cache hits"), "3 blocks made: '%s'", ebuf);
    /* Its three files, and its folder and lock, are gone with it. */
    int paths = 0;
    for (char *line = strtok(obuf, "\n"); line; line = strtok(NULL, "\n")) {
        cr_assert_eq(strncmp(line, "path ", 5), 0, "%s", line);
        cr_assert(!exists(line + 5), "%s left behind at exit", line + 5);
        paths++;
    }
    cr_assert_eq(paths, 3);
    int left = 0;
    DIR *d = opendir(tu_heap_dir(segdir));
    for (struct dirent *e; d && (e = readdir(d));)
        left += e->d_name[0] != '.';
    if (d)
        closedir(d);
    cr_assert_eq(left, 0, "the helper's folder and lock remain");
}

/* ---- MMVEC_LOG ---- */

static int log2_block(void)
{
    setenv("MMVEC_LOG", "2", 1);
    setenv("MMVEC_CACHE", "0", 1);
    void *p = mmv_malloc(2 * M);
    char path[4096];
    if (mmv_block_path(p, path, sizeof path) != 0)
        return 1;
    mmv_free(p);
    return 0;
}

static int log0_bad_dir(void)
{
    setenv("MMVEC_LOG", "0", 1);
    setenv("MMVEC_DIR", "/proc/self/nope", 1);
    setenv("MMVEC_THRESHOLD", "bad", 1);
    void *p = mmv_malloc(2 * M);
    mmv_free(p);
    return p && !mmv_owns(p) ? 0 : 1;
}

Test(alloc, log_2_says_one_line_per_block_made_and_freed)
{
    char err[4096];
    int status = in_child(log2_block, err, sizeof err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", err);
    cr_assert_eq(count_lines(err), 2, "made + freed, got '%s'", err);
    cr_assert_not_null(strstr(err, ".seg"), "the file is named: '%s'", err);
}

Test(alloc, log_0_is_silent_even_when_falling_back)
{
    char err[4096];
    int status = in_child(log0_bad_dir, err, sizeof err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", err);
    cr_assert_str_eq(err, "", "MMVEC_LOG=0 printed '%s'", err);
}

/* ---- setuid programs (AT_SECURE): the variables are ignored, nothing goes to files ---- */

Test(alloc, setuid_program_ignores_variables_and_makes_no_file)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to make a setuid program and drop to another user");
    /* A setuid-root copy of the helper, run by uid 65534: the kernel sets AT_SECURE. */
    char prog[160];
    snprintf(prog, sizeof prog, "%s/alloc_child", tmp);
    int in = open(MMVEC_HELPER_DIR "/alloc_child", O_RDONLY);
    int out = open(prog, O_WRONLY | O_CREAT, 0700);
    cr_assert(in >= 0 && out >= 0);
    char buf[65536];
    for (ssize_t n; (n = read(in, buf, sizeof buf)) > 0;)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    cr_assert_eq(chmod(prog, 04755), 0);
    cr_assert_eq(chmod(tmp, 0755), 0);
    int o[2];
    cr_assert_eq(pipe(o), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(o[1], STDOUT_FILENO);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(126);
        execl(prog, "alloc_child", "leave", "2", "2M", (char *)NULL);
        _exit(127);
    }
    close(o[1]);
    char text[4096];
    tu_read_fd(o[0], text, sizeof text);
    close(o[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        TU_SKIP(teardown, "cannot exec a setuid program from %s (nosuid mount?)", tmp);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s", status, text);
    cr_assert_null(strstr(text, "path "), "a setuid program made files: %s", text);
    cr_assert_not_null(strstr(text, "nofile"), "%s", text);
    cr_assert(!exists(segdir), "MMVEC_DIR was obeyed in a setuid program");
}

/* ---- NULL and bad input ---- */

Test(alloc, null_and_foreign_pointers_are_harmless)
{
    mmv_free(NULL);
    mmv_free_sized(NULL, 10);
    cr_assert(!mmv_owns(NULL));
    char buf[64];
    cr_assert_eq(mmv_block_path(NULL, buf, sizeof buf), -EINVAL);
    int local;
    cr_assert(!mmv_owns(&local));
    cr_assert_eq(mmv_block_path(&local, buf, sizeof buf), -EINVAL);
    void *p = mmv_malloc(2 * M);
    cr_assert_eq(mmv_block_path(p, NULL, 10), -EINVAL);
    mmv_free_sized(p, 2 * M);
    uint64_t files = 7, bytes = 7;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope", tmp);
    cr_assert_lt(mmv_clean(missing, &files, &bytes), 0);
    cr_assert_eq(mmv_clean(segdir, NULL, NULL), 0);
}

/* ---- misuse: abort with one line naming mmvec ---- */

static int misuse_interior_free(void)
{
    char *p = mmv_malloc(2 * M);
    mmv_free(p + 4096);
    return 0; /* not reached when detected */
}

static int misuse_interior_realloc(void)
{
    char *p = mmv_malloc(2 * M);
    (void)mmv_realloc(p + 8192, 4 * M);
    return 0;
}

static int misuse_double_free(void)
{
    void *p = mmv_malloc(2 * M);
    mmv_free(p); /* into the cache */
    mmv_free(p);
    return 0;
}

static int misuse_double_free_uncached(void)
{
    setenv("MMVEC_CACHE", "0", 1);
    void *p = mmv_malloc(2 * M);
    mmv_free(p); /* gone for good */
    mmv_free(p);
    return 0;
}

static int misuse_realloc_after_free(void)
{
    void *p = mmv_malloc(2 * M);
    mmv_free(p);
    (void)mmv_realloc(p, 3 * M);
    return 0;
}

static void expect_abort(int (*fn)(void), const char *what)
{
    char err[4096];
    int status = in_child(fn, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "%s: not aborted (status %#x), stderr '%s'", what, status, err);
    cr_assert_not_null(strstr(err, "mmvec"), "%s: '%s'", what, err);
    cr_assert_eq(count_lines(err), 1, "%s: one line, got '%s'", what, err);
    cr_assert_not_null(strstr(err, "0x"), "%s: the pointer is named: '%s'", what, err);
}

Test(alloc, misuse_free_of_interior_pointer_aborts)
{
    expect_abort(misuse_interior_free, "free(p + 4096)");
}

Test(alloc, misuse_realloc_of_interior_pointer_aborts)
{
    expect_abort(misuse_interior_realloc, "realloc(p + 8192)");
}

Test(alloc, misuse_double_free_aborts)
{
    expect_abort(misuse_double_free, "double free (cached)");
}

Test(alloc, misuse_double_free_of_an_uncached_block_aborts)
{
    expect_abort(misuse_double_free_uncached, "double free (released)");
}

Test(alloc, misuse_realloc_after_free_aborts)
{
    expect_abort(misuse_realloc_after_free, "realloc after free");
}

/* ---- early writeback (MMVEC_WRITEBACK) ---- */

/* Fills three 4 MiB blocks one after the other; returns the writebacks started. */
static uint64_t writebacks_for_three_blocks(void)
{
    void *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = mmv_malloc(4 * M);
        cr_assert(mmv_owns(b[i]));
        memset(b[i], i + 1, 4 * M);
    }
    mmv_stats s;
    mmv_stats_get(&s);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(((unsigned char *)b[i])[4 * M - 1], i + 1);
        mmv_free(b[i]);
    }
    return s.writebacks;
}

Test(alloc, writeback_on_starts_it_for_each_finished_block)
{
    setenv("MMVEC_WRITEBACK", "on", 1);
    /* Blocks 1 and 2 are each written back when the next one is made. */
    cr_assert_eq(writebacks_for_three_blocks(), 2);
}

Test(alloc, writeback_off_never_starts_it)
{
    setenv("MMVEC_WRITEBACK", "off", 1);
    cr_assert_eq(writebacks_for_three_blocks(), 0);
}

Test(alloc, writeback_auto_waits_for_memory_pressure)
{
    /* 12 MiB of blocks is far below a quarter of this machine's memory (and of any sane
     * cgroup limit the tests run in): nothing is written early. */
    cr_assert_eq(writebacks_for_three_blocks(), 0);
}

Test(alloc, writeback_on_covers_a_growing_block)
{
    setenv("MMVEC_WRITEBACK", "on", 1);
    char *p = mmv_malloc(2 * M);
    memset(p, 7, 2 * M);
    p = mmv_realloc(p, 16 * M);
    cr_assert_not_null(p);
    cr_assert_eq(p[2 * M - 1], 7);
    mmv_stats s;
    mmv_stats_get(&s);
    cr_assert_geq(s.writebacks, 1, "the grown block's old part was not written back");
    mmv_free(p);
}

/* mmv_free_sized of an aligned allocation: the size alone does not give its size class, and
 * trusting it corrupted jemalloc's heap (found by fuzz_alloc; a SIGSEGV within a few thousand
 * rounds before the fix). */
Test(alloc, free_sized_of_aligned_memory_keeps_the_heap_sound)
{
    for (int r = 0; r < 20000; r++) {
        void *p, *q[8];
        size_t align = (size_t)1 << (3 + r % 15), n = 1 + (size_t)(r * 37) % 4000;
        cr_assert_eq(mmv_posix_memalign(&p, align, n), 0);
        for (int i = 0; i < 8; i++) {
            q[i] = mmv_malloc(n);
            cr_assert_not_null(q[i]);
            memset(q[i], i, n);
        }
        mmv_free_sized(p, n);
        for (int i = 0; i < 8; i++) {
            cr_assert_eq(((unsigned char *)q[i])[n - 1], i, "round %d: a block changed", r);
            mmv_free_sized(q[i], n);
        }
    }
}
