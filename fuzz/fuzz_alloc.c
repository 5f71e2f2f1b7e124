/* Fuzz target: random sequences of explicit-API allocator operations (include/mmvec/alloc.h)
 * checked against a model.
 *
 * The allocator runs with a small threshold (MMVEC_THRESHOLD=8K) and a small cache of freed
 * segments (MMVEC_CACHE=512K), so that segment blocks, the cache, its eviction and the
 * crossings of the threshold by realloc are all hit within a few operations. Up to 16 slots;
 * each operation is an opcode byte followed by its arguments. The model keeps, per slot, the
 * requested size and a fill tag. After every operation each touched block must:
 *  - hold its pattern (realloc: the kept prefix), calloc blocks read as zeros;
 *  - be a segment block (mmv_owns) exactly when its size is at least the threshold, unless the
 *    allocator counted a fallback meanwhile; never be "owned" at an interior address;
 *  - have a usable size that covers the request (for segment blocks: whole pages, and not
 *    wildly more than asked, given realloc's hysteresis);
 *  - be aligned as asked;
 * and invalid requests (bad alignments, overflowing products, impossible sizes) must fail
 * cleanly, leaving existing blocks alone.
 * Placement: a memory limit of its own just above the fuzzer's memory at start
 * (MMVEC_MEMORY_LIMIT), so that blocks are RAM or files as the fuzzer's own
 * memory comes and goes, and RAM blocks move into files: a block must then be RAM (no path,
 * -ENODATA) or a file of at least its size in the fuzzer's directory.
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS 16

#define CHECK(c)                                                                                \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            fprintf(stderr, "fuzz_alloc: check failed at line %d: %s\n", __LINE__, #c);        \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static char dir[256];
static size_t threshold, page;

struct slot {
    unsigned char *p;
    size_t n;
    uint8_t tag;
    size_t align;
};

static struct slot slots[SLOTS];

struct input {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/* Sizes spread over the interesting ranges: tiny, around the threshold, up to 1 MiB. */
static size_t take_size(struct input *in)
{
    unsigned kind = take(in), lo = take(in), hi = take(in);
    size_t v = lo | (size_t)hi << 8;
    switch (kind % 8) {
    case 0: return v % 64;
    case 1: case 2: return v % 4096;
    case 3: case 4: return threshold - 256 + v % 512;   /* either side of the threshold */
    case 5: return threshold + v * 4;                    /* up to ~256K */
    case 6: return v * 16;                               /* up to 1 MiB */
    default: return (threshold + v) & ~(page - 1);       /* page multiples */
    }
}

/* ---- the pattern and the checks ---------------------------------------------------------------- */

static unsigned char pat(uint8_t tag, size_t i)
{
    return (unsigned char)(tag + i * 31 + (i >> 8) * 7);
}

static void fill(struct slot *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->p[i] = pat(s->tag, i);
}

static void check_pattern(const unsigned char *p, uint8_t tag, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == pat(tag, i));
}

static uint64_t fallbacks(void)
{
    mmv_stats st;
    CHECK(mmv_stats_get(&st) == 0);
    return st.fallbacks;
}

/* What must hold for a block just made or resized; fb0: the fallback count before the call. */
static void check_block(const struct slot *s, uint64_t fb0)
{
    size_t usable = mmv_usable_size(s->p);
    bool owned = mmv_owns(s->p);
    CHECK(usable >= s->n);
    CHECK((uintptr_t)s->p % s->align == 0);
    if (fallbacks() == fb0)
        CHECK(owned == (s->n >= threshold));
    if (!owned)
        return;
    CHECK(usable % page == 0);
    CHECK(usable <= s->n + s->n / 2 + 2 * page); /* realloc keeps at most ~1/3 slack */
    CHECK(!mmv_owns(s->p + 1) && !mmv_owns(s->p + usable - 1));
    CHECK(mmv_usable_size(s->p + 1) == 0); /* an interior pointer is no block */
    char path[4096];
    struct stat st;
    int rc = mmv_block_path(s->p, path, sizeof path);
    CHECK(rc == 0 || rc == -ENODATA);
    if (rc == -ENODATA)
        return; /* in RAM */
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size >= s->n);
    CHECK(strncmp(path, dir, strlen(dir)) == 0);
}

/* ---- operations ------------------------------------------------------------------------------ */

static void release(struct slot *s, int sized)
{
    check_pattern(s->p, s->tag, s->n);
    if (sized)
        mmv_free_sized(s->p, s->n);
    else
        mmv_free(s->p);
    memset(s, 0, sizeof *s);
}

/* A new block in an empty slot, by one of the allocation functions. */
static void op_alloc(struct slot *s, struct input *in)
{
    unsigned how = take(in) % 8, shift = 3 + take(in) % 15; /* alignments 8 B .. 128 KiB */
    size_t n = take_size(in), align = (size_t)1 << shift;
    uint64_t fb0 = fallbacks();
    void *p = NULL;
    s->align = 1;
    switch (how) {
    case 0: case 1: p = mmv_malloc(n); break;
    case 2: p = mmv_calloc(n / 4, 4); n = n / 4 * 4; break;
    case 3: p = mmv_calloc(n, 1); break;
    case 4: CHECK(mmv_posix_memalign(&p, align, n) == 0); s->align = align; break;
    case 5: p = mmv_aligned_alloc(align, n); s->align = align; break;
    case 6: p = mmv_memalign(align, n); s->align = align; break;
    default: p = mmv_valloc(n); s->align = page; break;
    }
    CHECK(p != NULL);
    s->p = p;
    s->n = n;
    s->tag = (uint8_t)take(in);
    if (how == 2 || how == 3)
        for (size_t i = 0; i < n; i++)
            CHECK(s->p[i] == 0);
    check_block(s, fb0);
    fill(s);
}

static void op_realloc(struct slot *s, struct input *in)
{
    size_t n = take_size(in);
    uint64_t fb0 = fallbacks();
    check_pattern(s->p, s->tag, s->n);
    if (n == 0) { /* glibc's rule: frees, returns NULL */
        CHECK(mmv_realloc(s->p, 0) == NULL);
        memset(s, 0, sizeof *s);
        return;
    }
    unsigned char *q = take(in) & 1 ? mmv_realloc(s->p, n) : mmv_reallocarray(s->p, n, 1);
    CHECK(q != NULL);
    check_pattern(q, s->tag, n < s->n ? n : s->n);
    s->p = q;
    s->n = n;
    s->align = 1;
    s->tag = (uint8_t)take(in);
    check_block(s, fb0);
    fill(s);
}

/* Requests that must fail, and must leave every existing block as it was. */
static void op_invalid(struct input *in)
{
    void *p = (void *)1;
    switch (take(in) % 6) {
    case 0: CHECK(mmv_posix_memalign(&p, 24, 100) == EINVAL && p == (void *)1); break;
    case 1: CHECK(mmv_posix_memalign(&p, 4, 100) == EINVAL && p == (void *)1); break;
    case 2: CHECK(mmv_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM); break;
    case 3: CHECK(mmv_malloc(SIZE_MAX - page) == NULL && errno == ENOMEM); break;
    case 4: CHECK(mmv_aligned_alloc(3 * page, 100) == NULL); break;
    default:
        for (int i = 0; i < SLOTS; i++)
            if (slots[i].p) { /* the block stays valid after a failed resize */
                CHECK(mmv_reallocarray(slots[i].p, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
                break;
            }
    }
    CHECK(mmv_usable_size(NULL) == 0 && !mmv_owns(NULL));
    mmv_free(NULL);
}

static void one_op(struct input *in)
{
    unsigned op = take(in);
    struct slot *s = &slots[take(in) % SLOTS];
    if (op % 16 == 15) {
        op_invalid(in);
        return;
    }
    if (!s->p)
        op_alloc(s, in);
    else if (op % 3 == 0)
        release(s, op & 16);
    else
        op_realloc(s, in);
}

/* ---- the target ------------------------------------------------------------------------------- */

/* A limit 48 MiB above the fuzzer's anonymous memory at start (it grows by some 30 MiB as it
 * runs): blocks are RAM below 60% of it, files above, and RAM blocks move into files when the
 * fuzzer's memory grows. */
static void set_memory_limit(void)
{
    char buf[4096], value[32];
    unsigned long long rss_kb = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strstr(buf, "RssAnon:");
    if (p)
        rss_kb = strtoull(p + 8, NULL, 10);
    snprintf(value, sizeof value, "%lluK", rss_kb + 48 * 1024);
    setenv("MMVEC_MEMORY_LIMIT", value, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Under scripts/fuzz.sh, inside its own directory, which it checks for leaked files. */
    const char *base = getenv("MMVEC_FUZZ_TMP");
    if (!base || snprintf(dir, sizeof dir, "%s/alloc-XXXXXX", base) >= (int)sizeof dir)
        strcpy(dir, "/tmp/mmvec-fuzz-alloc-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    /* Read once, at the first call: set before any. */
    setenv("MMVEC_DIR", dir, 1);
    setenv("MMVEC_THRESHOLD", "8K", 1);
    setenv("MMVEC_CACHE", "512K", 1);
    setenv("MMVEC_LOG", "0", 1); /* the one-time fallback warnings of the invalid requests */
    set_memory_limit();
    threshold = mmv_threshold();
    page = (size_t)sysconf(_SC_PAGESIZE);
    CHECK(threshold == 8192);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    while (in.n)
        one_op(&in);
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p)
            release(&slots[i], 0);
    return 0;
}
