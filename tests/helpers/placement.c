/* Where large blocks live (MMVEC_PLACEMENT=auto): RAM while the heap fits, files past the mark,
 * and RAM blocks moved into files ("spilled") when memory gets tight. Run by
 * tests/test_placement.c under LD_PRELOAD of libmmvec_preload with MMVEC_THRESHOLD=1M and a
 * private MMVEC_DIR; the limit (MMVEC_MEMORY_LIMIT or a real memory cgroup) and the mark come
 * from the test. Every large block below is a plain malloc/realloc; mmv_block_path and
 * mmv_stats_get resolve to the preload's copy (one allocator state).
 *
 *   placement place COUNT MIB          COUNT blocks of MIB MiB, each filled right after it is
 *                                      made: where each one went ("R" RAM, "F" file) when made
 *                                      and at the end; no heap folder in MMVEC_DIR before the
 *                                      first file
 *   placement fit COUNT MIB PASSES     a heap that fits: every block RAM, rewritten PASSES
 *                                      times, freed and made again; no folder, disk writes
 *   placement hook COUNT MIB SMALL_MIB [writer|sparse]
 *                                      COUNT RAM blocks filled, then SMALL_MIB MiB of 4000-byte
 *                                      mallocs (the small heap grows: the private jemalloc's
 *                                      mmap hook); with "writer", a second thread keeps writing
 *                                      the blocks meanwhile (memset and read(2) from a pipe),
 *                                      each page's last value remembered; "sparse": the blocks
 *                                      are left untouched and the thread writes random pages
 *   placement cached COUNT MIB SMALL_MIB  COUNT RAM blocks made, filled and freed (kept in the
 *                                      cache), then the small heap grows by SMALL_MIB MiB
 *   placement realloc [thread]         a RAM block grown by realloc below the mark stays RAM;
 *                                      grown past it, it becomes a file in that call
 *   placement fork MODE                blocks in RAM and spilled, then fork under pressure;
 *                                      child (and, for MODE private, a grandchild) read their
 *                                      parent's data and write their own; the parent says whose
 *                                      data each block holds after (MODE: MMVEC_FORK's value)
 *   placement file                     mmv_malloc_file: a file, whatever the pressure
 *   placement many TOTAL_MIB MIB       TOTAL_MIB MiB in blocks of MIB MiB, written then checked
 *   placement forklive TOTAL_MIB       (MMVEC_FORK=private, out of core) TOTAL_MIB MiB in 64 MiB
 *                                      blocks, then a fork: the parent rewrites every block while
 *                                      the child waits, then the child checks it reads the fork's
 *                                      instant; the parent, its own writes
 *
 * Output: "key=value" lines on stdout (the test reads them); a line on stderr and a non-zero
 * exit for every check that fails here (contents, paths, files). Exit 0: every check held;
 * 1 a check failed; 2 bad usage; 3 an allocation failed; 4 a hang (alarm). */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define M ((size_t)1 << 20)
#define PAGE ((size_t)4096)
#define SMALL 4000 /* bytes of each small allocation */

static int failures;

__attribute__((format(printf, 1, 2))) static void bad(const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "placement[%ld]: %s\n", (long)getpid(), buf);
    failures++;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "placement: no progress for the alarm's time (hang?)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(4);
}

/* Memory of our own for the books (pointer arrays, last values): outside the allocator. */
static void *raw(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        dprintf(STDERR_FILENO, "placement: mmap %zu: %s\n", n, strerror(errno));
        _exit(3);
    }
    return p;
}

static void *volatile sink; /* malloc'd pointers escape: the compiler keeps every call */

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        dprintf(STDERR_FILENO, "placement: malloc(%zu) failed: %s\n", n, strerror(errno));
        _exit(3);
    }
    sink = p;
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- what the process and mmvec see ---------------------------------------------------------- */

static mmv_stats stats(void)
{
    mmv_stats s;
    if (mmv_stats_get(&s) != 0)
        bad("mmv_stats_get failed");
    return s;
}

static void print_stats(const char *prefix)
{
    mmv_stats s = stats();
    printf("%sblocks_ram=%llu\n%sblocks_file_tight=%llu\n%sram_bytes_live=%llu\n"
           "%sspills=%llu\n%sspill_bytes=%llu\n%sspill_failed=%llu\n%sspill_held_off=%llu\n"
           "%sspill_max_us=%llu\n%smemory_limit=%llu\n%smemory_usage=%llu\n"
           "%sdisk_write_bytes=%llu\n%sfallbacks=%llu\n%sblocks_live=%llu\n",
           prefix, (unsigned long long)s.blocks_ram, prefix,
           (unsigned long long)s.blocks_file_tight, prefix, (unsigned long long)s.ram_bytes_live,
           prefix, (unsigned long long)s.spills, prefix, (unsigned long long)s.spill_bytes,
           prefix, (unsigned long long)s.spill_failed, prefix,
           (unsigned long long)s.spill_held_off, prefix, (unsigned long long)s.spill_max_us,
           prefix, (unsigned long long)s.memory_limit, prefix,
           (unsigned long long)s.memory_usage, prefix, (unsigned long long)s.disk_write_bytes,
           prefix, (unsigned long long)s.fallbacks, prefix, (unsigned long long)s.blocks_live);
}

/* A "Key:   N kB" line of /proc/self/status, in bytes (0 when absent). */
static unsigned long long status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            kb = strtoull(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb * 1024;
}

/* write_bytes of /proc/self/io, or -1 when unreadable. */
static long long io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[256];
    long long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "write_bytes:", 12))
            v = strtoll(line + 12, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Is there a "mmvec-heap-*" entry in MMVEC_DIR (mmvec made its folder)? */
static bool heap_folder_exists(void)
{
    const char *dir = getenv("MMVEC_DIR");
    DIR *d = dir ? opendir(dir) : NULL;
    bool found = false;
    for (struct dirent *e; d && (e = readdir(d));)
        found |= !strncmp(e->d_name, "mmvec-heap-", 11);
    if (d)
        closedir(d);
    return found;
}

/* In a fork child (private mode), an inherited file block is the parent's file read
 * copy-on-write: mmv_block_path says -ENOENT, and that is right. */
static bool in_fork_child;

/* Where block p (of `size` bytes) lives: 'R' RAM, 'F' a file that exists, as long as the
 * block (at least `size` bytes), 'W' (in a fork child) an ancestor's file read privately;
 * anything else is a failed check ('?'). */
static char where(const void *p, size_t size, const char *what, size_t i)
{
    char path[4096];
    int rc = mmv_block_path(p, path, sizeof path);
    if (rc == -ENODATA)
        return 'R';
    if (rc == -ENOENT && in_fork_child)
        return 'W';
    struct stat st;
    if (rc != 0) {
        bad("%s %zu (%p): mmv_block_path = %d (%s), neither a file nor RAM", what, i, p, rc,
            strerror(-rc));
        return '?';
    }
    if (stat(path, &st) != 0) {
        bad("%s %zu: its file %s does not exist: %s", what, i, path, strerror(errno));
        return '?';
    }
    size_t usable = mmv_usable_size(p);
    if (usable < size || (size_t)st.st_size != usable) {
        bad("%s %zu: its file %s has %lld bytes, the block %zu (asked: %zu)", what, i, path,
            (long long)st.st_size, usable, size);
        return '?';
    }
    return 'F';
}

/* ---- contents: pages that carry a value ------------------------------------------------------ */

/* A page holding v: the 8 bytes of v, then bytes of (v's low byte ^ 0x5a). A lost memset, a
 * lost store or a lost read(2) each show. */
static unsigned char page_byte(uint64_t v)
{
    return (unsigned char)(v ^ (v >> 8) ^ 0x5a);
}

static void page_put(unsigned char *pg, uint64_t v)
{
    memset(pg + 8, page_byte(v), PAGE - 8);
    memcpy(pg, &v, 8);
}

static void page_image(unsigned char *buf, uint64_t v)
{
    memset(buf + 8, page_byte(v), PAGE - 8);
    memcpy(buf, &v, 8);
}

/* 0 when page pg holds v; else the offset of the first wrong byte + 1. */
static size_t page_check(const unsigned char *pg, uint64_t v)
{
    uint64_t got;
    memcpy(&got, pg, 8);
    if (got != v)
        return 1;
    unsigned char c = page_byte(v);
    for (size_t i = 8; i < PAGE; i++)
        if (pg[i] != c)
            return i + 1;
    return 0;
}

/* The value of page i of block b under `seed`, when no writer keeps its own books. */
static uint64_t seeded(unsigned seed, size_t b, size_t i)
{
    return ((uint64_t)seed << 48) | ((uint64_t)b << 28) | i;
}

static void fill_block(unsigned char *p, size_t size, size_t b, unsigned seed)
{
    for (size_t i = 0; i < size / PAGE; i++)
        page_put(p + i * PAGE, seeded(seed, b, i));
}

/* Every page of block b holds seed's value; reports the first bad page. */
static bool check_block(const unsigned char *p, size_t size, size_t b, unsigned seed,
                        const char *when)
{
    for (size_t i = 0; i < size / PAGE; i++) {
        size_t off = page_check(p + i * PAGE, seeded(seed, b, i));
        if (off) {
            uint64_t got;
            memcpy(&got, p + i * PAGE, 8);
            bad("%s: block %zu page %zu byte %zu: expected value %#llx (seed %u), page starts "
                "%#llx",
                when, b, i, off - 1, (unsigned long long)seeded(seed, b, i), seed,
                (unsigned long long)got);
            return false;
        }
    }
    return true;
}

/* Which seed block b holds (0: none of those asked, or mixed). */
static unsigned seed_of(const unsigned char *p, size_t size, size_t b, const unsigned *seeds,
                        int nseeds)
{
    for (int k = 0; k < nseeds; k++) {
        bool all = true;
        for (size_t i = 0; all && i < size / PAGE; i++)
            all = page_check(p + i * PAGE, seeded(seeds[k], b, i)) == 0;
        if (all)
            return seeds[k];
    }
    return 0;
}

/* ---- the small heap -------------------------------------------------------------------------- */

struct smalls {
    unsigned char **p;
    size_t n;
};

static unsigned char small_byte(size_t i, unsigned seed)
{
    return (unsigned char)(i * 131u + seed * 17u + 7u);
}

/* mib MiB of 4000-byte mallocs, each written whole right away. */
static struct smalls grow_small(size_t mib, unsigned seed)
{
    struct smalls s = {NULL, mib * M / SMALL};
    s.p = raw(s.n * sizeof *s.p);
    for (size_t i = 0; i < s.n; i++) {
        s.p[i] = xmalloc(SMALL);
        memset(s.p[i], small_byte(i, seed), SMALL);
        memcpy(s.p[i], &i, sizeof i);
    }
    return s;
}

static bool check_small(const struct smalls *s, unsigned seed, const char *when)
{
    for (size_t i = 0; i < s->n; i++) {
        size_t got;
        memcpy(&got, s->p[i], sizeof got);
        bool ok = got == i;
        for (size_t k = sizeof got; ok && k < SMALL; k++)
            ok = s->p[i][k] == small_byte(i, seed);
        if (!ok) {
            bad("%s: small allocation %zu of %zu (%p) read back wrong", when, i, s->n,
                (void *)s->p[i]);
            return false;
        }
    }
    return true;
}

static void free_small(struct smalls *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i]);
    munmap(s->p, s->n * sizeof *s->p);
    s->n = 0;
}

/* ---- placement against the mark -------------------------------------------------------------- */

static int cmd_place(size_t count, size_t mib)
{
    size_t size = mib * M;
    unsigned char **b = raw(count * sizeof *b);
    char *pattern = raw(count + 1);
    long first_file = -1;
    for (size_t i = 0; i < count; i++) {
        unsigned long long anon = status_bytes("RssAnon");
        b[i] = xmalloc(size);
        fill_block(b[i], size, i, 1);
        pattern[i] = where(b[i], size, "block", i);
        /* No file yet (none made, none moved): no folder either. */
        if (pattern[i] == 'R' && first_file < 0 && stats().spills == 0 && heap_folder_exists())
            bad("block %zu is RAM and no file was made yet, but MMVEC_DIR has a mmvec-heap-* "
                "folder", i);
        if (pattern[i] == 'F' && first_file < 0) {
            first_file = (long)i;
            printf("rss_anon_before_first_file=%llu\n", anon);
            if (!heap_folder_exists())
                bad("block %zu is a file, but MMVEC_DIR has no mmvec-heap-* folder", i);
        }
    }
    pattern[count] = '\0';
    char *final = raw(count + 1);
    for (size_t i = 0; i < count; i++) {
        check_block(b[i], size, i, 1, "after all were made");
        final[i] = where(b[i], size, "block", i);
    }
    final[count] = '\0';
    printf("pattern=%s\nfinal=%s\nfirst_file=%ld\n", pattern, final, first_file);
    print_stats("");
    for (size_t i = 0; i < count; i++)
        free(b[i]);
    return failures ? 1 : 0;
}

/* ---- a heap that fits ------------------------------------------------------------------------ */

static int cmd_fit(size_t count, size_t mib, int passes)
{
    size_t size = mib * M;
    unsigned char **b = raw(count * sizeof *b);
    long long io0 = io_write_bytes();
    for (int round = 0; round < 2; round++) { /* made, rewritten, freed; then again */
        for (size_t i = 0; i < count; i++)
            b[i] = xmalloc(size);
        for (int pass = 0; pass < passes; pass++) {
            unsigned seed = (unsigned)(round * 16 + pass + 1);
            for (size_t i = 0; i < count; i++)
                fill_block(b[i], size, i, seed);
            for (size_t i = 0; i < count; i++)
                check_block(b[i], size, i, seed, "rewritten");
        }
        size_t ram = 0;
        for (size_t i = 0; i < count; i++)
            ram += where(b[i], size, "block", i) == 'R';
        printf("round%d_ram_blocks=%zu\n", round, ram);
        for (size_t i = 0; i < count; i++)
            free(b[i]);
    }
    long long io1 = io_write_bytes();
    printf("io_write_bytes=%lld\nheap_folder=%d\n", io0 < 0 || io1 < 0 ? -1 : io1 - io0,
           (int)heap_folder_exists());
    print_stats("");
    return failures ? 1 : 0;
}

/* ---- spill through the small heap, with or without a writer ---------------------------------- */

/* The writer: gives pages the next value of a counter and remembers it, with memset (even
 * pages) and read(2) from a pipe (odd pages). It sweeps every page of every block in order,
 * or (sparse) picks pages at random at a slower pace, in blocks nobody touched before: moves
 * then meet pages never faulted in as well as pages being written. */
struct writer {
    unsigned char **blocks;
    size_t count, size, pages; /* pages per block */
    uint64_t *last;            /* per page of all blocks: the value last written (0: none) */
    uint64_t counter;
    int pipe[2];
    int sparse;
    int stop;
    unsigned long long writes, reads, sweeps;
    int err;
};

/* Page i of block b gets the next value. false when read(2) failed. */
static bool write_page(struct writer *w, unsigned char *img, size_t b, size_t i)
{
    unsigned char *pg = w->blocks[b] + i * PAGE;
    uint64_t v = ++w->counter;
    if (i & 1) {
        page_image(img, v);
        if (write(w->pipe[1], img, PAGE) != (ssize_t)PAGE) {
            __atomic_store_n(&w->err, errno ? errno : EIO, __ATOMIC_RELAXED);
            return false;
        }
        ssize_t got = read(w->pipe[0], pg, PAGE);
        if (got != (ssize_t)PAGE) {
            /* EFAULT: the kernel's write into the block was refused (not held off) by a move */
            dprintf(STDERR_FILENO, "placement: read(2) into block %zu page %zu returned %zd: "
                    "%s\n", b, i, got, got < 0 ? strerror(errno) : "short");
            __atomic_store_n(&w->err, got < 0 ? errno : EIO, __ATOMIC_RELAXED);
            return false;
        }
        __atomic_fetch_add(&w->reads, 1, __ATOMIC_RELAXED);
    } else {
        page_put(pg, v);
        __atomic_fetch_add(&w->writes, 1, __ATOMIC_RELAXED);
    }
    w->last[b * w->pages + i] = v;
    return true;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    if (getenv("PLACEMENT_WRITER_BLOCKS_SIGPWR")) { /* a thread mmvec cannot stop */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPWR);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    unsigned char img[PAGE];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t total = w->count * w->pages;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        if (w->sparse) {
            for (int k = 0; k < 64; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t at = (size_t)(x % total);
                if (!write_page(w, img, at / w->pages, at % w->pages))
                    return NULL;
            }
            struct timespec ts = {0, 200 * 1000}; /* ~300k pages/s at most */
            nanosleep(&ts, NULL);
            continue;
        }
        for (size_t b = 0; b < w->count; b++)
            for (size_t i = 0; i < w->pages; i++)
                if (!write_page(w, img, b, i))
                    return NULL;
        __atomic_fetch_add(&w->sweeps, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static bool check_last(const struct writer *w, const char *when)
{
    size_t wrong = 0, untouched = 0;
    for (size_t b = 0; b < w->count; b++)
        for (size_t i = 0; i < w->pages; i++) {
            const unsigned char *pg = w->blocks[b] + i * PAGE;
            uint64_t want = w->last[b * w->pages + i];
            size_t off = 0;
            if (want == 0) { /* never written: zeros */
                untouched++;
                for (size_t k = 0; !off && k < PAGE; k++)
                    off = pg[k] ? k + 1 : 0;
            } else {
                off = page_check(pg, want);
            }
            if (off && wrong++ < 5) {
                uint64_t got;
                memcpy(&got, pg, 8);
                bad("%s: block %zu page %zu (%s) byte %zu: the last value written was %llu, "
                    "the page holds %llu (a lost write)",
                    when, b, i, i & 1 ? "read(2)" : "memset", off - 1,
                    (unsigned long long)want, (unsigned long long)got);
            }
        }
    printf("pages_never_written=%zu\n", untouched);
    if (wrong)
        bad("%s: %zu page(s) of %zu lost their last write", when, wrong, w->count * w->pages);
    return wrong == 0;
}

/* mode: 0 no writer, 1 a writer sweeping filled blocks, 2 a sparse writer in blocks nobody
 * touched before. */
static int cmd_hook(size_t count, size_t mib, size_t small_mib, int mode)
{
    size_t size = mib * M;
    struct writer w = {.count = count, .size = size, .pages = size / PAGE, .sparse = mode == 2};
    w.blocks = raw(count * sizeof *w.blocks);
    w.last = raw(count * w.pages * sizeof *w.last);
    char *before = raw(count + 1), *after = raw(count + 1);
    for (size_t b = 0; b < count; b++) {
        w.blocks[b] = xmalloc(size);
        for (size_t i = 0; mode != 2 && i < w.pages; i++) { /* the first values, written here */
            uint64_t v = ++w.counter;
            page_put(w.blocks[b] + i * PAGE, v);
            w.last[b * w.pages + i] = v;
        }
        before[b] = where(w.blocks[b], size, "block", b);
    }
    before[count] = '\0';
    printf("before=%s\n", before);
    print_stats("before_");
    mmv_stats s0 = stats();
    pthread_t t;
    double t0 = now_s();
    if (mode) {
        if (pipe(w.pipe) != 0 || pthread_create(&t, NULL, writer_main, &w) != 0) {
            bad("pipe or pthread_create: %s", strerror(errno));
            return 1;
        }
        /* Let it write a while first, so it is writing when the first moves happen. */
        while (__atomic_load_n(&w.writes, __ATOMIC_RELAXED) < 1000)
            usleep(1000);
    }
    unsigned long long w0 = __atomic_load_n(&w.writes, __ATOMIC_RELAXED) +
                            __atomic_load_n(&w.reads, __ATOMIC_RELAXED);
    struct smalls sm = grow_small(small_mib, 3);
    double t1 = now_s();
    unsigned long long w1 = __atomic_load_n(&w.writes, __ATOMIC_RELAXED) +
                            __atomic_load_n(&w.reads, __ATOMIC_RELAXED);
    if (mode) {
        /* Keep writing a little after the last move, then stop and look. */
        unsigned long long sw = __atomic_load_n(&w.sweeps, __ATOMIC_RELAXED);
        if (mode == 2)
            usleep(20000);
        while (mode == 1 && __atomic_load_n(&w.sweeps, __ATOMIC_RELAXED) < sw + 1 &&
               !__atomic_load_n(&w.err, __ATOMIC_RELAXED))
            usleep(1000);
        __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
        if (w.err)
            bad("the writer failed: %s", strerror(w.err));
        printf("writer_memsets=%llu\nwriter_reads=%llu\nwriter_sweeps=%llu\n"
               "writes_while_small_grew=%llu\n", w.writes, w.reads, w.sweeps, w1 - w0);
    }
    printf("small_seconds=%.3f\nrss_anon_end=%llu\n", t1 - t0, status_bytes("RssAnon"));
    mmv_stats s1 = stats();
    size_t files = 0;
    for (size_t b = 0; b < count; b++) {
        after[b] = where(w.blocks[b], size, "block", b);
        files += after[b] == 'F' && before[b] == 'R';
    }
    after[count] = '\0';
    printf("after=%s\nmoved_blocks=%zu\n", after, files);
    if (s1.spills - s0.spills != files)
        bad("stats count %llu spill(s), but %zu RAM block(s) became files",
            (unsigned long long)(s1.spills - s0.spills), files);
    if (s1.spill_bytes - s0.spill_bytes != files * size)
        bad("stats count %llu bytes spilled, the blocks that became files hold %zu",
            (unsigned long long)(s1.spill_bytes - s0.spill_bytes), files * size);
    check_last(&w, "after the small heap grew");
    check_small(&sm, 3, "after the small heap grew");
    print_stats("");
    free_small(&sm);
    for (size_t b = 0; b < count; b++)
        free(w.blocks[b]);
    return failures ? 1 : 0;
}

/* ---- freed RAM blocks, then pressure --------------------------------------------------------- */

/* COUNT RAM blocks made, filled and freed (the cache keeps freed blocks for reuse), then the
 * small heap grows by SMALL_MIB: memory held for freed blocks must not push the process past
 * its limit. */
static int cmd_cached(size_t count, size_t mib, size_t small_mib)
{
    size_t size = mib * M;
    unsigned char **b = raw(count * sizeof *b);
    char *w = raw(count + 1);
    for (size_t i = 0; i < count; i++) {
        b[i] = xmalloc(size);
        fill_block(b[i], size, i, 1);
        w[i] = where(b[i], size, "block", i);
    }
    w[count] = '\0';
    printf("made=%s\n", w);
    for (size_t i = 0; i < count; i++)
        free(b[i]);
    printf("rss_anon_after_free=%llu\n", status_bytes("RssAnon"));
    struct smalls sm = grow_small(small_mib, 3);
    printf("rss_anon_end=%llu\n", status_bytes("RssAnon"));
    check_small(&sm, 3, "after the small heap grew");
    print_stats("");
    free_small(&sm);
    return failures ? 1 : 0;
}

/* ---- realloc --------------------------------------------------------------------------------- */

static void *idle(void *arg)
{
    char c;
    ssize_t n = read(*(int *)arg, &c, 1); /* until the pipe is closed */
    (void)n;
    return NULL;
}

static int cmd_realloc(bool threaded)
{
    int fds[2];
    pthread_t t;
    if (threaded && (pipe(fds) != 0 || pthread_create(&t, NULL, idle, &fds[0]) != 0)) {
        bad("pipe or pthread_create: %s", strerror(errno));
        return 1;
    }
    size_t a = 40 * M, b = 60 * M, c = 160 * M;
    unsigned char *p = xmalloc(a);
    fill_block(p, a, 0, 1);
    printf("at40=%c\n", where(p, a, "block", 0));
    mmv_stats s0 = stats();
    p = realloc(p, b); /* 60 MiB: below the mark (60% of 256 MiB) */
    if (!p)
        return 3;
    sink = p;
    check_block(p, a, 0, 1, "after realloc to 60 MiB");
    fill_block(p, b, 0, 2);
    printf("at60=%c\n", where(p, b, "block", 0));
    mmv_stats s1 = stats();
    p = realloc(p, c); /* 160 MiB: past the mark, not past the mark and the slack */
    if (!p)
        return 3;
    sink = p;
    mmv_stats s2 = stats();
    printf("at160=%c\n", where(p, c, "block", 0));
    check_block(p, b, 0, 2, "after realloc to 160 MiB");
    fill_block(p, c, 0, 3);
    check_block(p, c, 0, 3, "160 MiB rewritten");
    printf("spills_to60=%llu\nspills_to160=%llu\nspill_bytes_to160=%llu\n",
           (unsigned long long)(s1.spills - s0.spills),
           (unsigned long long)(s2.spills - s1.spills),
           (unsigned long long)(s2.spill_bytes - s1.spill_bytes));
    print_stats("");
    free(p);
    if (threaded) {
        close(fds[1]);
        pthread_join(t, NULL);
    }
    return failures ? 1 : 0;
}

/* ---- fork ------------------------------------------------------------------------------------ */

#define FORK_BLOCKS 5
static const size_t fork_mib[FORK_BLOCKS] = {16, 32, 32, 32, 32};

struct forkset {
    unsigned char *b[FORK_BLOCKS + 1]; /* + one made under pressure */
    size_t size[FORK_BLOCKS + 1];
    int n;
};

static void fill_all(struct forkset *f, unsigned seed)
{
    for (int i = 0; i < f->n; i++)
        fill_block(f->b[i], f->size[i], (size_t)i, seed);
}

static bool check_all(const struct forkset *f, unsigned seed, const char *when)
{
    bool ok = true;
    for (int i = 0; i < f->n; i++)
        ok &= check_block(f->b[i], f->size[i], (size_t)i, seed, when);
    return ok;
}

static void where_all(const struct forkset *f, char *out)
{
    for (int i = 0; i < f->n; i++)
        out[i] = where(f->b[i], f->size[i], "block", (size_t)i);
    out[f->n] = '\0';
}

static int wait_child(pid_t pid, const char *who)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status)) {
        bad("%s killed by signal %d", who, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return 1;
    }
    if (WEXITSTATUS(status))
        bad("%s exited with %d", who, WEXITSTATUS(status));
    return WEXITSTATUS(status);
}

static int descend(struct forkset *f, struct smalls *sm, int level, unsigned seed, bool deeper);

/* Forks `who` (for the messages), which runs descend(f, sm, level, seed, deeper) and exits with
 * its answer, and waits for it: non-zero when the fork failed or `who` did not exit 0. */
static int run_descendant(struct forkset *f, struct smalls *sm, int level, unsigned seed,
                          bool deeper, const char *who)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        bad("fork: %s", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        in_fork_child = true;
        _exit(descend(f, sm, level, seed, deeper));
    }
    return wait_child(pid, who);
}

/* In the child (level 1) or grandchild (2): reads what its parent left (seed), writes its own
 * (seed + 1) under pressure, and for level 1 in private mode runs a grandchild. */
static int descend(struct forkset *f, struct smalls *sm, int level, unsigned seed, bool deeper)
{
    char w[FORK_BLOCKS + 2];
    if (!check_all(f, seed, level == 1 ? "child: the parent's data before the fork"
                                       : "grandchild: the child's data before its fork"))
        return 1;
    if (!check_small(sm, 3, "fork descendant: the small heap"))
        return 1;
    /* More pressure, in the child: the small heap grows (RAM blocks may move here). */
    struct smalls more = grow_small(48, 4 + (unsigned)level);
    fill_all(f, seed + 1);
    if (!check_all(f, seed + 1, level == 1 ? "child: its own writes" : "grandchild: its own"))
        return 1;
    where_all(f, w);
    dprintf(STDOUT_FILENO, "level%d_where=%s\n", level, w);
    if (deeper) {
        if (run_descendant(f, sm, level + 1, seed + 1, false, "the grandchild"))
            return 1;
        if (!check_all(f, seed + 1, "child: after its grandchild wrote (must not show)"))
            return 1;
    }
    check_small(&more, 4 + (unsigned)level, "fork descendant: its own small heap");
    return failures ? 1 : 0;
}

static int cmd_fork(const char *mode)
{
    struct forkset f = {.n = FORK_BLOCKS};
    char w0[FORK_BLOCKS + 2], w1[FORK_BLOCKS + 2], w2[FORK_BLOCKS + 2];
    for (int i = 0; i < FORK_BLOCKS; i++) {
        f.size[i] = fork_mib[i] * M;
        f.b[i] = xmalloc(f.size[i]);
        fill_block(f.b[i], f.size[i], (size_t)i, 1);
    }
    where_all(&f, w0);
    /* Pressure: the small heap grows past the mark; some RAM blocks move. */
    struct smalls sm = grow_small(110, 3);
    f.size[f.n] = 24 * M; /* a block made under pressure */
    f.b[f.n] = xmalloc(f.size[f.n]);
    fill_block(f.b[f.n], f.size[f.n], (size_t)f.n, 1);
    f.n++;
    where_all(&f, w1);
    printf("mode=%s\nmade=%s\nat_fork=%s\n", mode, w0, w1);
    if (!check_all(&f, 1, "parent, after the spill"))
        return 1;
    fill_all(&f, 10); /* A */
    print_stats("parent_");
    if (run_descendant(&f, &sm, 1, 10, !strcmp(mode, "private"), "the child"))
        return 1;
    /* Which blocks show the child's writes (11) and which kept ours (10)? */
    char seen[FORK_BLOCKS + 2];
    static const unsigned seeds[] = {10, 11};
    for (int i = 0; i < f.n; i++) {
        unsigned s = seed_of(f.b[i], f.size[i], (size_t)i, seeds, 2);
        seen[i] = s == 10 ? 'P' : s == 11 ? 'C' : '?';
        if (s == 0)
            bad("parent: block %d holds neither its own data nor wholly the child's", i);
    }
    seen[f.n] = '\0';
    printf("parent_sees=%s\n", seen); /* P: its own data, C: the child's */
    check_small(&sm, 3, "parent: the small heap after the child");
    where_all(&f, w2);
    printf("parent_after=%s\n", w2);
    for (int i = 0; i < f.n; i++)
        free(f.b[i]);
    free_small(&sm);
    return failures ? 1 : 0;
}

/* ---- mmv_malloc_file ------------------------------------------------------------------------- */

static int cmd_file(void)
{
    static const size_t sizes[] = {100, 64 * 1024, 8 * M, 64 * M};
    /* First a plain malloc: RAM, since memory is plentiful (freed: into the cache). */
    unsigned char *q = xmalloc(8 * M);
    memset(q, 9, 8 * M);
    printf("plain=%c\n", where(q, 8 * M, "plain block", 0));
    free(q);
    mmv_stats s0 = stats();
    char w[8];
    for (size_t i = 0; i < 4; i++) {
        unsigned char *p = mmv_malloc_file(sizes[i]);
        if (!p) {
            bad("mmv_malloc_file(%zu) failed: %s", sizes[i], strerror(errno));
            w[i] = '-';
            continue;
        }
        memset(p, (int)(i + 1), sizes[i]);
        w[i] = where(p, sizes[i], "mmv_malloc_file block", i);
        for (size_t k = 0; k < sizes[i]; k++)
            if (p[k] != (unsigned char)(i + 1)) {
                bad("mmv_malloc_file(%zu): byte %zu read back wrong", sizes[i], k);
                break;
            }
        mmv_free(p);
    }
    w[4] = '\0';
    mmv_stats s1 = stats();
    printf("file_blocks=%s\nfile_tight_delta=%llu\nram_delta=%llu\n", w,
           (unsigned long long)(s1.blocks_file_tight - s0.blocks_file_tight),
           (unsigned long long)(s1.blocks_ram - s0.blocks_ram));
    print_stats("");
    return failures ? 1 : 0;
}

/* ---- many blocks ----------------------------------------------------------------------------- */

static int cmd_many(size_t total_mib, size_t mib)
{
    size_t count = total_mib / mib, size = mib * M, ram = 0, files = 0;
    unsigned char **b = raw(count * sizeof *b);
    double t0 = now_s();
    for (size_t i = 0; i < count; i++) {
        b[i] = xmalloc(size);
        fill_block(b[i], size, i, 5);
    }
    double t1 = now_s();
    for (size_t i = 0; i < count; i++) {
        check_block(b[i], size, i, 5, "read back");
        char c = where(b[i], size, "block", i);
        ram += c == 'R';
        files += c == 'F';
        if (failures > 5)
            break;
    }
    double t2 = now_s();
    printf("blocks=%zu\nram_blocks=%zu\nfile_blocks=%zu\nwrite_seconds=%.2f\n"
           "check_seconds=%.2f\n", count, ram, files, t1 - t0, t2 - t1);
    print_stats("");
    for (size_t i = 0; i < count; i++)
        free(b[i]);
    return failures ? 1 : 0;
}

/* ---- untouched: blocks asked for at once, their pages not touched yet ------------------------ */

/* COUNT blocks of MIB, 30 ms apart (more than the 10 ms after which mmvec reads the memory
 * figures again), none touched until all are made: as when threads each malloc a buffer at the
 * same moment. Usage does not show a block until its pages are touched, so placement must keep
 * counting what it placed. Then every block is filled and checked. */
static int cmd_untouched(size_t count, size_t mib)
{
    size_t size = mib * M;
    unsigned char **b = raw(count * sizeof *b);
    char *pattern = raw(count + 1);
    for (size_t i = 0; i < count; i++) {
        b[i] = xmalloc(size);
        pattern[i] = where(b[i], size, "block", i);
        usleep(30000);
    }
    pattern[count] = '\0';
    for (size_t i = 0; i < count; i++)
        fill_block(b[i], size, i, 1);
    for (size_t i = 0; i < count; i++)
        check_block(b[i], size, i, 1, "after all were filled");
    printf("pattern=%s\n", pattern);
    print_stats("");
    for (size_t i = 0; i < count; i++)
        free(b[i]);
    return 0;
}

/* ---- budget: blocks past the disk budget ----------------------------------------------------- */

/* COUNT blocks of MIB, each written and checked: F a file, R a RAM block, J served by the
 * private jemalloc (a file was refused: the disk budget or reserve, or a full disk); NULL under
 * MMVEC_STRICT is N. */
/* Which directory of MMVEC_DIR ("A:B:...") holds file block p: '0', '1'..., '?' if none. */
static char dir_index(void *p)
{
    char path[4096];
    const char *list = getenv("MMVEC_DIR");
    if (!list || mmv_block_path(p, path, sizeof path) != 0)
        return '?';
    char i = '0';
    for (const char *d = list; *d; i++) {
        size_t n = strcspn(d, ":");
        if (!strncmp(path, d, n) && path[n] == '/')
            return i;
        d += n + (d[n] == ':');
    }
    return '?';
}

static int cmd_budget(size_t count, size_t mib)
{
    size_t size = mib * M;
    unsigned char **b = raw(count * sizeof *b);
    char *pattern = raw(count + 1);
    for (size_t i = 0; i < count; i++) {
        b[i] = malloc(size);
        if (!b[i]) {
            pattern[i] = 'N';
            continue;
        }
        fill_block(b[i], size, i, 1);
        char path[4096];
        int rc = mmv_block_path(b[i], path, sizeof path);
        pattern[i] = rc == 0 ? 'F' : rc == -ENODATA ? 'R' : !mmv_owns(b[i]) ? 'J' : '?';
    }
    pattern[count] = '\0';
    char *dirs = raw(count + 1);
    for (size_t i = 0; i < count; i++)
        dirs[i] = pattern[i] == 'F' ? dir_index(b[i]) : '-';
    dirs[count] = '\0';
    for (size_t i = 0; i < count; i++)
        if (b[i])
            check_block(b[i], size, i, 1, "after all were made");
    printf("pattern=%s\ndirs=%s\ndisk_refused=%llu\n", pattern, dirs,
           (unsigned long long)stats().disk_refused);
    print_stats("");
    for (size_t i = 0; i < count; i++)
        free(b[i]);
    return 0;
}

/* Two blocks of MIB made and freed (kept in mmvec's cache, files and all), then one of MIB2:
 * F when it is a file, J when the private jemalloc serves it. */
static int cmd_budget_reuse(size_t mib, size_t mib2)
{
    void *a = xmalloc(mib * M), *b = xmalloc(mib * M);
    fill_block(a, mib * M, 0, 1);
    fill_block(b, mib * M, 1, 1);
    if (where(a, mib * M, "block", 0) != 'F' || where(b, mib * M, "block", 1) != 'F')
        bad("the first two blocks are not files");
    free(a);
    free(b);
    unsigned char *c = malloc(mib2 * M);
    if (!c)
        bad("malloc(%zu MiB) failed", mib2);
    fill_block(c, mib2 * M, 2, 1);
    check_block(c, mib2 * M, 2, 1, "after it was made");
    char path[4096];
    int rc = mmv_block_path(c, path, sizeof path);
    char kind = rc == 0 ? 'F' : !mmv_owns(c) ? 'J' : '?';
    printf("last=%c\nlast_path_rc=%d\ndisk_refused=%llu\n", kind, rc,
           (unsigned long long)stats().disk_refused);
    free(c);
    return 0;
}

/* ---- readaround: random reads of a file block larger than memory ------------------------------ */

/* One MIB block, filled (word k holds k), then `reads` 8-byte reads at random pages, each
 * checked. Prints what the random phase read from disk and its major faults: the kernel's
 * read-around reads up to read_ahead_kb around each miss; mmvec's advisor turns it off for a
 * block that wastes it (src/heap/advise.c). */
static int cmd_readaround(size_t mib, size_t reads)
{
    size_t size = mib << 20, n = size / 8;
    uint64_t *a = malloc(size);
    if (!a)
        bad("malloc(%zu MiB) failed", mib);
    char path[4096];
    if (mmv_block_path(a, path, sizeof path) != 0)
        bad("the block is not a file: memory is not tight?");
    for (size_t k = 0; k < n; k++)
        a[k] = k;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    uint64_t seed = 12345, wrong = 0;
    for (size_t i = 0; i < reads; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)((seed >> 17) % n);
        wrong += a[k] != k;
    }
    double t1 = now_s();
    getrusage(RUSAGE_SELF, &r1);
    if (wrong)
        bad("%llu of %zu reads saw the wrong value", (unsigned long long)wrong, reads);
    mmv_stats s = stats();
    printf("random_read_bytes=%llu\nrandom_majflt=%llu\nrandom_s=%.3f\n"
           "readaround_off=%llu\nadvisor_samples=%llu\n",
           (unsigned long long)(r1.ru_inblock - r0.ru_inblock) * 512,
           (unsigned long long)(r1.ru_majflt - r0.ru_majflt), t1 - t0,
           (unsigned long long)s.readaround_off, (unsigned long long)s.advisor_samples);
    print_stats("");
    free(a);
    return 0;
}

/* Whether block a is a file, and what the advisor did around its fronts (MMVEC_BEHIND), then the
 * stats. */
static void print_fronts(const void *a)
{
    char path[4096];
    mmv_stats s = stats();
    printf("file=%d\nbehind_written=%llu\nbehind_dropped=%llu\nahead_cleared=%llu\n",
           mmv_block_path(a, path, sizeof path) == 0, (unsigned long long)s.behind_written,
           (unsigned long long)s.behind_dropped, (unsigned long long)s.ahead_cleared);
    print_stats("");
}

/* One block of MIB filled in order then read back in order PASSES times, every word checked:
 * what the advisor pushed out behind the fronts (MMVEC_BEHIND). */
static int cmd_sequential(size_t mib, size_t passes)
{
    size_t size = mib << 20, n = size / 8;
    uint64_t *a = malloc(size);
    if (!a)
        bad("malloc(%zu MiB) failed", mib);
    for (size_t k = 0; k < n; k++)
        a[k] = k * 2654435761u;
    uint64_t wrong = 0;
    for (size_t p = 0; p < passes; p++)
        for (size_t k = 0; k < n; k++)
            wrong += a[k] != k * 2654435761u;
    if (wrong)
        bad("%llu words read back wrong", (unsigned long long)wrong);
    print_fronts(a);
    free(a);
    return 0;
}

/* One block of MIB filled in order, then UPDATES random pages rewritten (left cached here and
 * there, many of them dirty), then read in order at most 400 MB/s (a pause of 10 ms every
 * 4 MiB: the advisor gets its rounds), every word checked: what the advisor cleared ahead of
 * the scan's front (MMVEC_BEHIND) must not lose a rewritten page. scatter-fork: meanwhile
 * another thread forks children one after the other, each looking for a descriptor of mmvec's
 * left open into the block's folder (the advisor drops the cleared chunks' pages through one
 * after its lock). */
static uint64_t scatter_word(size_t k, int rewritten)
{
    return rewritten ? ~(k * 2654435761u) : k * 2654435761u;
}

/* In a fork child: descriptors open on files in dir (the block's folder; the folder's own
 * descriptor is ours to keep), each one a file our parent's mmvec left open across the fork. */
static int files_open_in(const char *dir)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    size_t n = strlen(dir);
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char link[4096];
        ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        found += !strncmp(link, dir, n) && link[n] == '/';
    }
    closedir(d);
    return found;
}

/* A thread that forks children until told to stop, each looking for descriptors left open into
 * dir and exiting: how many forks, and how many children found any. */
struct forker {
    char dir[4096];
    int stop; /* relaxed atomic */
    size_t forks, leaky;
    pthread_t th;
};

static void *fork_children(void *arg)
{
    struct forker *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(files_open_in(f->dir) ? 1 : 0);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
            bad("fork child during the scan: %s", pid < 0 ? strerror(errno) : "did not exit");
        f->forks++;
        f->leaky += WEXITSTATUS(st) != 0;
    }
    return NULL;
}

static int cmd_scatter(size_t mib, size_t updates, bool forking)
{
    size_t size = mib << 20, n = size / 8, pages = size / PAGE, per = PAGE / 8;
    uint64_t *a = malloc(size);
    unsigned char *hit = calloc(pages, 1);
    if (!a || !hit)
        bad("malloc(%zu MiB) failed", mib);
    for (size_t k = 0; k < n; k++)
        a[k] = scatter_word(k, 0);
    uint64_t seed = 99;
    for (size_t i = 0; i < updates; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t p = (size_t)((seed >> 17) % pages);
        if (!hit[p])
            for (size_t k = p * per; k < (p + 1) * per; k++)
                a[k] = scatter_word(k, 1);
        hit[p] = 1;
    }
    static struct forker f;
    if (forking) { /* while the advisor drops what it cleared ahead of the scan's front */
        if (mmv_block_path(a, f.dir, sizeof f.dir) != 0 || !strrchr(f.dir, '/'))
            bad("the block of %zu MiB is not a file", mib);
        *strrchr(f.dir, '/') = '\0';
        if (pthread_create(&f.th, NULL, fork_children, &f) != 0)
            bad("pthread_create failed");
    }
    uint64_t wrong = 0;
    for (size_t k = 0; k < n; k++) {
        wrong += a[k] != scatter_word(k, hit[k / per]);
        if (k % (4 * M / 8) == 4 * M / 8 - 1)
            usleep(10000);
    }
    if (forking) {
        __atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
        pthread_join(f.th, NULL);
        printf("forks=%zu\nleaky_children=%zu\n", f.forks, f.leaky);
    }
    if (wrong)
        bad("%llu words read back wrong after the scattered rewrites", (unsigned long long)wrong);
    print_fronts(a);
    free(hit);
    free(a);
    return 0;
}

/* ---- forks while another thread makes, grows, cuts and frees blocks ------------------------ */

/* ROUNDS times a block of MIB made, written, grown to twice that, cut to half and freed, while
 * another thread forks children one after the other, each looking for a descriptor of mmvec's
 * left open into the blocks' folder (mmvec opens a block's file without the heap lock for
 * each of those steps). A block kept for the whole run names the folder. */
static int cmd_churnfork(size_t mib, size_t rounds)
{
    size_t size = mib << 20;
    char *keep = xmalloc(size);
    static struct forker f;
    if (mmv_block_path(keep, f.dir, sizeof f.dir) != 0 || !strrchr(f.dir, '/'))
        bad("the block of %zu MiB is not a file (MMVEC_PLACEMENT=file)", mib);
    *strrchr(f.dir, '/') = '\0';
    if (pthread_create(&f.th, NULL, fork_children, &f) != 0)
        bad("pthread_create failed");
    for (size_t i = 0; i < rounds; i++) {
        char *p = xmalloc(size), *q;
        memset(p, (int)i, size / 2);
        if (!(q = realloc(p, 2 * size)))
            bad("realloc to %zu MiB failed", 2 * mib);
        if (!(p = realloc(q, size / 2)))
            bad("realloc to %zu MiB failed", mib / 2);
        if (p[size / 2 - 1] != (char)i)
            bad("round %zu: the block lost its bytes", i);
        free(p);
    }
    __atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
    pthread_join(f.th, NULL);
    printf("forks=%zu\nleaky_children=%zu\n", f.forks, f.leaky);
    free(keep);
    print_stats("");
    return 0;
}

/* ---- a living fork child while the parent rewrites its heap out of core -------------------- */

#define LIVE_BLOCK (64 * M)

/* Every page of the blocks (its first and last byte) holds c. */
static bool pages_hold(unsigned char **b, size_t n, int c)
{
    for (size_t i = 0; i < n; i++)
        for (size_t off = 0; off < LIVE_BLOCK; off += PAGE)
            if (b[i][off] != c || b[i][off + PAGE - 1] != c)
                return false;
    return true;
}

static int cmd_forklive(size_t total_mib)
{
    size_t n = total_mib * M / LIVE_BLOCK;
    unsigned char *b[64];
    if (n == 0 || n > 64)
        bad("forklive: 64 to 4096 MiB");
    for (size_t i = 0; i < n; i++) {
        b[i] = xmalloc(LIVE_BLOCK);
        memset(b[i], 'A', LIVE_BLOCK);
    }
    int go[2];
    if (pipe(go) < 0)
        bad("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        _exit(pages_hold(b, n, 'A') ? 0 : 1);
    }
    close(go[0]);
    for (size_t i = 0; i < n; i++) /* after the fork, while the child lives */
        memset(b[i], 'a', LIVE_BLOCK);
    if (write(go[1], "g", 1) != 1)
        bad("write: %s", strerror(errno));
    close(go[1]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    printf("child_exit=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    if (!pages_hold(b, n, 'a'))
        bad("parent: its blocks lost its writes after the fork");
    mmv_stats s = stats();
    printf("fork_thaws=%llu\nfork_folds=%llu\n", (unsigned long long)s.fork_thaws,
           (unsigned long long)s.fork_folds);
    print_stats("");
    for (size_t i = 0; i < n; i++)
        free(b[i]);
    return failures ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

static size_t num(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *s && !*end ? (size_t)v : 0;
}

static int hook_mode(const char *s)
{
    return !strcmp(s, "writer") ? 1 : !strcmp(s, "sparse") ? 2 : -1;
}

static void own_sigpwr(int sig)
{
    (void)sig;
}

int main(int argc, char **argv)
{
    if (getenv("PLACEMENT_TAKES_SIGPWR")) /* the program's own use of the signal */
        signal(SIGPWR, own_sigpwr);
    signal(SIGALRM, on_alarm);
    alarm(90);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (!strcmp(cmd, "place") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_place(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "fit") && argc == 5 && num(argv[2]) && num(argv[3]) && num(argv[4]))
        rc = cmd_fit(num(argv[2]), num(argv[3]), (int)num(argv[4]));
    else if (!strcmp(cmd, "hook") && (argc == 5 || argc == 6) && num(argv[2]) &&
             num(argv[3]) && num(argv[4]) && (argc == 5 || hook_mode(argv[5]) > 0))
        rc = cmd_hook(num(argv[2]), num(argv[3]), num(argv[4]), argc == 6 ? hook_mode(argv[5]) : 0);
    else if (!strcmp(cmd, "cached") && argc == 5 && num(argv[2]) && num(argv[3]) && num(argv[4]))
        rc = cmd_cached(num(argv[2]), num(argv[3]), num(argv[4]));
    else if (!strcmp(cmd, "realloc") && (argc == 2 || (argc == 3 && !strcmp(argv[2], "thread"))))
        rc = cmd_realloc(argc == 3);
    else if (!strcmp(cmd, "fork") && argc == 3)
        rc = cmd_fork(argv[2]);
    else if (!strcmp(cmd, "file") && argc == 2)
        rc = cmd_file();
    else if (!strcmp(cmd, "many") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_many(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "budget-reuse") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_budget_reuse(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "budget") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_budget(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "untouched") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_untouched(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "readaround") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_readaround(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "forklive") && argc == 3 && num(argv[2]))
        rc = cmd_forklive(num(argv[2]));
    else if (!strcmp(cmd, "sequential") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_sequential(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "scatter") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_scatter(num(argv[2]), num(argv[3]), false);
    else if (!strcmp(cmd, "churn-fork") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_churnfork(num(argv[2]), num(argv[3]));
    else if (!strcmp(cmd, "scatter-fork") && argc == 4 && num(argv[2]) && num(argv[3]))
        rc = cmd_scatter(num(argv[2]), num(argv[3]), true);
    else
        dprintf(STDERR_FILENO, "usage: placement place COUNT MIB | fit COUNT MIB PASSES | hook "
                "COUNT MIB SMALL_MIB [writer|sparse] | cached COUNT MIB SMALL_MIB | realloc "
                "[thread] | fork MODE | file | many TOTAL_MIB MIB | budget COUNT MIB | budget-reuse MIB MIB2 | untouched COUNT MIB | readaround MIB READS | "
                "sequential MIB PASSES | scatter[-fork] MIB UPDATES | churn-fork MIB ROUNDS | forklive TOTAL_MIB\n");
    return rc;
}
