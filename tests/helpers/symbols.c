/* Exercises every C allocation entry point the interposer replaces, with glibc's semantics.
 *
 *   symbols [--preloaded]
 *
 * Without arguments it checks only what any correct malloc must do (so it also passes under
 * glibc alone, which keeps the helper itself honest). With --preloaded it also checks that each
 * symbol really resolves into libmmvec_preload, that blocks of at least 1 MiB are segment blocks
 * (MMVEC_THRESHOLD must be <= 1M) whose files live in $MMVEC_DIR, and that malloc and the
 * explicit mmv_* API share one allocator.
 * Prints "symbols: N checks passed" and exits 0, or names the first failed check and exits 1.
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LARGE ((size_t)1 << 20)
#define SMALL ((size_t)100)

static int checks;
static int preloaded;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        checks++;                                                                        \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "symbols: FAIL line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* Called through volatile pointers: the compiler may neither elide an allocation nor fold a
 * result it believes it knows (e.g. calloc's overflow), so each call really reaches the
 * symbol the dynamic linker bound. */
static void *(*volatile p_malloc)(size_t) = malloc;
static void (*volatile p_free)(void *) = free;
static void *(*volatile p_calloc)(size_t, size_t) = calloc;
static void *(*volatile p_realloc)(void *, size_t) = realloc;
static void *(*volatile p_reallocarray)(void *, size_t, size_t) = reallocarray;
static int (*volatile p_posix_memalign)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile p_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile p_memalign)(size_t, size_t) = memalign;
static void *(*volatile p_valloc)(size_t) = valloc;
static void *(*volatile p_pvalloc)(size_t) = pvalloc;
static size_t (*volatile p_usable)(void *) = malloc_usable_size;

static const char *const c_symbols[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size", "__libc_malloc", "__libc_calloc",
    "__libc_realloc", "__libc_free", "__libc_memalign", "__libc_valloc", "__libc_pvalloc",
    "__posix_memalign", "cfree",
};

static int from_preload(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    Dl_info di;
    if (!f || !dladdr(f, &di) || !di.dli_fname)
        return 0;
    return strstr(di.dli_fname, "libmmvec_preload") != NULL;
}

static void check_resolution(void)
{
    for (size_t i = 0; i < sizeof c_symbols / sizeof c_symbols[0]; i++) {
        if (!from_preload(c_symbols[i]))
            fprintf(stderr, "symbols: %s does not resolve into libmmvec_preload\n", c_symbols[i]);
        CHECK(from_preload(c_symbols[i]));
    }
}

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }
static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* A large block must be a segment block with its file in $MMVEC_DIR (unless unlinked). */
static void check_large(void *p)
{
    if (!preloaded)
        return;
    CHECK(mmv_owns(p));
    char path[4096];
    int rc = mmv_block_path(p, path, sizeof path);
    CHECK(rc == 0 || rc == -ENOENT);
    const char *dir = getenv("MMVEC_DIR");
    struct stat st;
    if (rc == 0 && dir && *dir) {
        CHECK(strncmp(path, dir, strlen(dir)) == 0);
        CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
        CHECK((st.st_mode & 0777) == 0600);
    }
}

static void check_small(void *p)
{
    if (preloaded)
        CHECK(!mmv_owns(p));
}

/* Writes every usable byte (a lie in malloc_usable_size would crash or corrupt here). */
static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)(i * 31u + seed);
}

static int holds(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(i * 31u + seed))
            return 0;
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static void test_malloc(void)
{
    void *s = p_malloc(SMALL), *l = p_malloc(LARGE), *z = p_malloc(0);
    CHECK(s && l && z && s != z);
    check_small(s);
    check_large(l);
    size_t us = p_usable(l);
    CHECK(us >= LARGE && p_usable(l) == us);
    CHECK(p_usable(s) >= SMALL);
    fill(l, us, 1);
    fill(s, p_usable(s), 2);
    CHECK(holds(l, us, 1) && holds(s, p_usable(s), 2));
    CHECK(p_usable(NULL) == 0);
    p_free(s);
    p_free(l);
    p_free(z);
    p_free(NULL);
}

static void test_calloc(void)
{
    unsigned char *l = p_calloc(LARGE / 16, 16), *s = p_calloc(10, 10);
    CHECK(l && s && all_zero(l, LARGE) && all_zero(s, 100));
    check_large(l); /* routed on the product, not on either factor */
    check_small(s);
    errno = 0;
    CHECK(p_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(p_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL && errno == ENOMEM);
    void *z = p_calloc(0, 16);
    CHECK(z != NULL);
    p_free(z);
    p_free(l);
    p_free(s);
}

/* small -> large -> larger -> smaller -> small, contents kept across every step. */
static void test_realloc_chain(void)
{
    unsigned char *p = p_realloc(NULL, SMALL);
    CHECK(p);
    fill(p, SMALL, 3);
    p = p_realloc(p, LARGE);
    CHECK(p && holds(p, SMALL, 3));
    check_large(p);
    fill(p, LARGE, 4);
    p = p_realloc(p, 8 * LARGE);
    CHECK(p && holds(p, LARGE, 4));
    check_large(p);
    fill(p, 8 * LARGE, 5);
    p = p_realloc(p, 2 * LARGE);
    CHECK(p && holds(p, 2 * LARGE, 5));
    check_large(p);
    p = p_realloc(p, SMALL);
    CHECK(p && holds(p, SMALL, 5));
    check_small(p);
    p_free(p);
}

static void test_realloc_edges(void)
{
    unsigned char *p = p_malloc(LARGE);
    CHECK(p);
    fill(p, LARGE, 6);
    errno = 0;
    CHECK(p_realloc(p, SIZE_MAX - 4096) == NULL && errno == ENOMEM);
    CHECK(holds(p, LARGE, 6)); /* a failed realloc leaves the block alone */
    check_large(p);
    CHECK(p_realloc(p, 0) == NULL); /* glibc: realloc(p, 0) frees p */
    p = p_reallocarray(NULL, LARGE / 64, 64);
    CHECK(p);
    check_large(p);
    fill(p, LARGE, 7);
    errno = 0;
    CHECK(p_reallocarray(p, SIZE_MAX / 4, 8) == NULL && errno == ENOMEM);
    CHECK(holds(p, LARGE, 7));
    p = p_reallocarray(p, LARGE / 32, 64);
    CHECK(p && holds(p, LARGE, 7));
    p_free(p);
}

static void test_posix_memalign_ok(void)
{
    static const size_t aligns[] = {sizeof(void *), 16, 4096, 65536, (size_t)2 << 20,
                                    (size_t)64 << 20, (size_t)1 << 30};
    static const size_t sizes[] = {SMALL, LARGE};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (size_t s = 0; s < 2; s++) {
            void *p = NULL;
            CHECK(p_posix_memalign(&p, aligns[a], sizes[s]) == 0);
            CHECK(p && aligned(p, aligns[a]) && p_usable(p) >= sizes[s]);
            fill(p, sizes[s], 8);
            if (sizes[s] == LARGE)
                check_large(p);
            p_free(p);
        }
    }
}

static void test_posix_memalign_bad(void)
{
    static const size_t bad[] = {0, 1, 4, 24, 3 * 4096, (size_t)1 << 63 | 8};
    void *sentinel = (void *)&checks, *p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = sentinel;
        CHECK(p_posix_memalign(&p, bad[i], LARGE) == EINVAL && p == sentinel);
        p = sentinel;
        CHECK(p_posix_memalign(&p, bad[i], SMALL) == EINVAL && p == sentinel);
    }
    p = sentinel;
    CHECK(p_posix_memalign(&p, 4096, SIZE_MAX - 4096) == ENOMEM && p == sentinel);
}

static void test_other_aligned(void)
{
    void *a = p_aligned_alloc(64, LARGE), *b = p_aligned_alloc((size_t)2 << 20, LARGE);
    void *c = p_memalign(65536, LARGE), *d = p_memalign(64, SMALL);
    CHECK(a && aligned(a, 64) && b && aligned(b, (size_t)2 << 20));
    CHECK(c && aligned(c, 65536) && d && aligned(d, 64));
    check_large(a);
    check_large(b);
    check_large(c);
    void *v = p_valloc(LARGE), *w = p_valloc(SMALL), *x = p_pvalloc(LARGE + 1);
    CHECK(v && w && x && aligned(v, page()) && aligned(w, page()) && aligned(x, page()));
    check_large(v);
    check_large(x);
    size_t want = (LARGE + 1 + page() - 1) & ~(page() - 1);
    CHECK(p_usable(x) >= want); /* pvalloc rounds the size up to whole pages */
    fill(x, want, 9);
    fill(v, LARGE, 10);
    void *blocks[] = {a, b, c, d, v, w, x};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        p_free(blocks[i]);
}

/* glibc's internal names: looked up at run time, as some are absent from glibc's headers
 * and cfree/__posix_memalign only exist in the interposer. */
static void test_libc_names(void)
{
    void *(*lm)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
    void *(*lc)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
    void *(*lr)(void *, size_t) = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
    void (*lf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
    void *(*lma)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
    void *(*lv)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_valloc");
    void *(*lpv)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_pvalloc");
    CHECK(lm && lc && lr && lf && lma && lv && lpv);
    unsigned char *p = lm(LARGE);
    CHECK(p);
    check_large(p);
    fill(p, LARGE, 11);
    p = lr(p, 4 * LARGE);
    CHECK(p && holds(p, LARGE, 11));
    check_large(p);
    p_free(p); /* a block of one name is freed by another */
    p = lc(LARGE / 8, 8);
    CHECK(p && all_zero(p, LARGE));
    check_large(p);
    lf(p);
    p = p_malloc(LARGE);
    CHECK(p);
    lf(p);
    void *a = lma(1 << 16, LARGE), *v = lv(LARGE), *pv = lpv(LARGE);
    CHECK(a && aligned(a, 1 << 16) && v && aligned(v, page()) && pv && aligned(pv, page()));
    check_large(a);
    lf(a);
    lf(v);
    lf(pv);
}

static void test_preload_only_names(void)
{
    int (*pm)(void **, size_t, size_t) =
        (int (*)(void **, size_t, size_t))dlsym(RTLD_DEFAULT, "__posix_memalign");
    void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    CHECK(pm && cf);
    void *p = (void *)&checks;
    CHECK(pm(&p, 3, LARGE) == EINVAL && p == (void *)&checks);
    CHECK(pm(&p, 4096, LARGE) == 0 && aligned(p, 4096));
    check_large(p);
    cf(p);
    p = p_malloc(SMALL);
    CHECK(p);
    cf(p);
}

/* One allocator per process: the explicit API and malloc see the same blocks. */
static void test_one_registry(void)
{
    void *a = mmv_malloc(LARGE), *b = p_malloc(LARGE);
    CHECK(a && b && mmv_owns(a) && mmv_owns(b));
    CHECK(mmv_usable_size(b) == p_usable(b));
    p_free(a);
    mmv_free(b);
    mmv_stats st;
    CHECK(mmv_stats_get(&st) == 0 && st.blocks_made > 0);
}

/* Many live blocks at once, written, checked, freed in a scrambled order. */
static void test_many(void)
{
    enum { N = 64 };
    unsigned char *b[N];
    for (unsigned i = 0; i < N; i++) {
        size_t n = LARGE + i * 4096 + i;
        b[i] = p_malloc(n);
        CHECK(b[i]);
        check_large(b[i]);
        fill(b[i], n, i);
    }
    for (unsigned k = 0; k < N; k++) {
        unsigned i = (k * 37) % N;
        CHECK(holds(b[i], LARGE + i * 4096 + i, i));
        p_free(b[i]);
    }
}

int main(int argc, char **argv)
{
    preloaded = argc > 1 && !strcmp(argv[1], "--preloaded");
    if (preloaded) {
        check_resolution();
        CHECK(mmv_threshold() <= LARGE);
    }
    test_malloc();
    test_calloc();
    test_realloc_chain();
    test_realloc_edges();
    test_posix_memalign_ok();
    test_posix_memalign_bad();
    test_other_aligned();
    test_libc_names();
    if (preloaded) {
        test_preload_only_names();
        test_one_registry();
    }
    test_many();
    printf("symbols: %d checks passed%s\n", checks, preloaded ? " (preloaded)" : "");
    return 0;
}
