/* Routing and C semantics: small requests to jemalloc, large ones to blocks; the realloc,
 * calloc and memalign rules, errno, fallback to RAM, strict mode. The small path is a compare
 * and a call into jemalloc; everything else lives behind the `large_*` functions, which keep
 * the heap's books (heap.c) and leave each block's mechanics to block.c. */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include "advise.h"
#include "alloc_fast.h"
#include "block_ops.h"
#include "cache.h"
#include "heap.h"
#include "log.h"
#include "options.h"
#include "pressure.h"
#include "publish.h"
#include "registry.h"
#include "small.h"
#include "spill.h"
#include "stats_internal.h"
#include "writeback.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct mmvi_route mmvi_route;

/* In the static archive, libmmvec.a comes before the private jemalloc on the link line: this
 * reference makes the linker take small.c, which jemalloc calls, along with this file. */
__attribute__((used)) static void *const jemalloc_env[] = {(void *)mmvi_je_os_mmap,
                                                           (void *)mmvi_je_conf_getenv,
                                                           (void *)mmvi_je_conf_readlink};

/* Set while this thread is inside the large path: anything it allocates meanwhile (libuuid,
 * stdio, the loader for backtraces) goes to jemalloc, so nothing can recurse or deadlock. */
static __thread int in_large __attribute__((tls_model("initial-exec")));

/* ---- routing ------------------------------------------------------------------------------ */

static void route_init(void)
{
    mmvi_options_init();
    size_t min = mmvi_opt.disable ? SIZE_MAX : mmvi_opt.threshold_min;
    __atomic_store_n(&mmvi_route.min, min ? min : 1, __ATOMIC_RELEASE);
    /* jemalloc registers its fork handlers when it starts: make that happen before ours, so that
     * at fork our lock is taken before its arena locks (we call jemalloc under our lock). */
    mmvi_je_free(mmvi_je_malloc(1));
    mmvi_fork_register();
}

/* Is a request of n bytes a segment block? Reads the options on the first call. */
static int routed(size_t n)
{
    size_t min = __atomic_load_n(&mmvi_route.min, __ATOMIC_ACQUIRE);
    if (unlikely(min == 0)) {
        route_init();
        min = __atomic_load_n(&mmvi_route.min, __ATOMIC_ACQUIRE);
    }
    return n >= min && n <= mmvi_opt.threshold_max && !in_large;
}

size_t mmv_threshold(void)
{
    if (__atomic_load_n(&mmvi_route.min, __ATOMIC_ACQUIRE) == 0)
        route_init();
    return __atomic_load_n(&mmvi_route.min, __ATOMIC_ACQUIRE);
}

/* ---- jemalloc, for everything small and for fallbacks ------------------------------------- */

static void *small_alloc(size_t n, size_t align, int zero)
{
    void *p = NULL;
    if (align > 8) {
        if (mmvi_je_posix_memalign(&p, align, n) != 0)
            p = NULL;
    } else {
        p = zero ? mmvi_je_calloc(1, n) : mmvi_je_malloc(n);
    }
    if (unlikely(!p))
        errno = ENOMEM;
    return p;
}

/* ---- the large path ------------------------------------------------------------------------ */

/* Serves a large request from RAM after the file path failed with err (positive errno). */
static void *fallback(size_t n, size_t align, int zero, int err)
{
    enum mmvi_stat why = MMVI_STAT_FALLBACK_OTHER;
    if (err == ENOSPC || err == EDQUOT || err == EFBIG)
        why = MMVI_STAT_FALLBACK_SPACE;
    else if (err == EMFILE || err == ENFILE)
        why = MMVI_STAT_FALLBACK_FILES;
    else if (err == ENOMEM)
        why = MMVI_STAT_FALLBACK_MAPS;
    else if (err == EACCES || err == EPERM || err == ENOENT || err == ENOTDIR || err == EROFS)
        why = MMVI_STAT_FALLBACK_DIR;
    mmvi_stat_inc(MMVI_STAT_FALLBACKS);
    mmvi_stat_inc(why);
    if (mmvi_opt.strict) {
        errno = ENOMEM;
        return NULL;
    }
    __atomic_store_n(&mmvi_heap.files_failing, 1, __ATOMIC_RELAXED);
    if (err != EDQUOT || !mmvi_stat_get(MMVI_STAT_DISK_REFUSED)) /* the budget said it (disk.c) */
        mmvi_warn_once(MMVI_WARN_FALLBACK, "cannot make a segment file (%s); serving large "
                       "blocks from RAM (counted in MMVEC_STATS)", strerror(err));
    return small_alloc(n, align, zero);
}

/* RAM blocks live: their count (read by the small heap's hook, spill.c) and bytes. */
static void count_ram(const struct mmvi_block *b, int sign)
{
    if (b->backing != MMVI_BACK_ANON)
        return;
    if (sign > 0) {
        mmvi_stat_inc(MMVI_STAT_RAM_BLOCKS_LIVE);
        uint64_t live = __atomic_add_fetch(&mmvi_stat_table[MMVI_STAT_RAM_BYTES_LIVE], b->size,
                                           __ATOMIC_RELAXED);
        mmvi_stat_max(MMVI_STAT_RAM_BYTES_PEAK, live);
    } else {
        mmvi_stat_sub(MMVI_STAT_RAM_BLOCKS_LIVE, 1);
        mmvi_stat_sub(MMVI_STAT_RAM_BYTES_LIVE, b->size);
    }
}

static void count_made(const struct mmvi_block *b, int from_cache)
{
    mmvi_stat_inc(MMVI_STAT_BLOCKS_MADE);
    mmvi_stat_inc(MMVI_STAT_BLOCKS_LIVE);
    if (from_cache)
        mmvi_stat_inc(MMVI_STAT_CACHE_HITS);
    else if (b->backing == MMVI_BACK_ANON)
        mmvi_stat_inc(MMVI_STAT_BLOCKS_RAM);
    else if (mmvi_opt.placement == MMVI_PLACE_AUTO && !b->pinned)
        mmvi_stat_inc(MMVI_STAT_BLOCKS_FILE_TIGHT);
    count_ram(b, 1);
    uint64_t live = __atomic_add_fetch(&mmvi_stat_table[MMVI_STAT_BLOCK_BYTES_LIVE], b->size,
                                       __ATOMIC_RELAXED);
    mmvi_stat_max(MMVI_STAT_BLOCK_BYTES_PEAK, live);
    mmvi_stat_max(MMVI_STAT_LARGEST_BLOCK, b->size);
}

static void count_gone(const struct mmvi_block *b)
{
    count_ram(b, -1);
    mmvi_stat_sub(MMVI_STAT_BLOCKS_LIVE, 1);
    mmvi_stat_sub(MMVI_STAT_BLOCK_BYTES_LIVE, b->size);
}

/* Read-ahead advice for calloc'd blocks (MMVEC_ADVICE=auto). A sparse first touch of a fresh
 * file makes the kernel zero-fill its whole read-around window (8 MiB per fault on a disk with
 * read_ahead_kb=8192): 300 ms to touch one page in 1000 of 1 GiB. MADV_RANDOM avoids that, and
 * costs nothing more than anonymous memory's one-page faults, until pages get evicted: re-reading
 * them one page per fault is up to 20x slower. So calloc'd blocks are advised random only while
 * memory is plentiful, and every such block goes back to normal as soon as it gets tight, before
 * anything is evicted. Under the lock. */
static void advise_sparse(struct mmvi_block *b, int zero)
{
    if (!zero || mmvi_opt.advice != MMVI_ADVICE_AUTO || mmvi_memory_tight(b->size))
        return;
    mmvi_os_advise((void *)b->addr, b->size, MADV_RANDOM);
    b->sparse = 1;
    mmvi_heap.sparse_blocks++;
}

static void unadvise(struct mmvi_block *b)
{
    if (!b->sparse)
        return;
    mmvi_os_advise((void *)b->addr, b->size, MADV_NORMAL);
    b->sparse = 0;
    mmvi_heap.sparse_blocks--;
}

static void unadvise_all_if_tight(size_t extra)
{
    if (!mmvi_heap.sparse_blocks || !mmvi_memory_tight(extra))
        return;
    for (struct mmvi_block *b = mmvi_heap.blocks; b && mmvi_heap.sparse_blocks; b = b->next)
        unadvise(b);
}

/* The block made before the newest one: when a program fills blocks one after the other, the
 * one it has most likely finished writing. A copy of its name, not a pointer: it may be gone. */
static struct mmvi_block last_made;

/* Under the lock, as b is published: remembers b and returns (in path) the block to write
 * back early, if memory is tight enough to want it. */
static int rotate_last_made(const struct mmvi_block *b, struct mmvi_block *prev)
{
    int want = last_made.uuid[0] && mmvi_writeback_wanted();
    *prev = last_made;
    last_made = *b;
    return want;
}

static void log_block(const char *what, const struct mmvi_block *b)
{
    if (mmvi_opt.log < 2)
        return;
    char path[4200];
    if (mmvi_block_path_of(b, path, sizeof path) < 0)
        path[0] = '\0';
    mmvi_log(2, "%s %p %zu B %s", what, (void *)b->addr, b->size, path);
    if (mmvi_opt.log >= 3)
        mmvi_log_backtrace();
}

/* Under the lock, for a new block of `size` bytes: RAM or a file? Moves RAM blocks to files
 * first if memory is tight. 0 with *ram set, or the errno that keeps files off. */
static int place(size_t size, int file_only, int *ram, struct mmvi_evicted *ev)
{
    mmvi_pressure_refresh(0);
    mmvi_spill_relieve(size, ev);
    *ram = !file_only && mmvi_pressure_place_ram(size);
    return *ram ? 0 : -mmvi_heap_folder();
}

/* Under the lock, which it releases: a new RAM block made of a smaller cached one, grown in
 * place or moved by mremap (its pages are reused; only the new tail is faulted in), or NULL
 * with the lock still held. A program that frees and allocates blocks of varying sizes (5 to
 * 25 MiB in mimalloc-bench's malloc-large) then seldom touches fresh memory. */
static void *grow_cached(size_t size, size_t align, int zero, struct mmvi_evicted *ev)
{
    if (mmvi_opt.placement != MMVI_PLACE_AUTO)
        return NULL;
    mmvi_pressure_refresh(0);
    struct mmvi_block *b = mmvi_cache_take_smaller(size, align);
    if (!b)
        return NULL;
    if (!mmvi_pressure_place_ram(size - b->size)) { /* no room to grow it: it goes */
        b->state = MMVI_BLOCK_DYING;
        b->cache_next = ev->head;
        ev->head = b;
        return NULL;
    }
    b->state = MMVI_BLOCK_LIVE;
    pthread_mutex_unlock(&mmvi_heap.lock);
    size_t had = b->size;
    if (mmvi_block_grow(b, size) < 0) {
        pthread_mutex_lock(&mmvi_heap.lock);
        b->state = MMVI_BLOCK_DYING;
        b->cache_next = ev->head;
        ev->head = b;
        return NULL;
    }
    if (zero)
        memset((void *)b->addr, 0, had); /* the grown tail is fresh zero pages */
    count_made(b, 1);
    return (void *)b->addr;
}

/* The disk budget refused a file (disk.c): freed blocks kept in the cache still hold theirs.
 * They go now, files and all, so that live data gets the room. True when any went. */
static int give_back_cached_files(struct mmvi_evicted *pending)
{
    int any = pending->head != NULL; /* decayed already, waiting for this call's end */
    mmvi_heap_teardown(pending);
    pending->head = NULL;
    struct mmvi_evicted ev = {NULL};
    pthread_mutex_lock(&mmvi_heap.lock);
    mmvi_cache_drain(&ev);
    pthread_mutex_unlock(&mmvi_heap.lock);
    if (!ev.head)
        return any;
    mmvi_heap_teardown(&ev);
    return 1;
}

/* Under the lock, which it releases: a record placed (RAM or file) and made. The record (its
 * make's outcome in *err), or NULL with *err set. */
static struct mmvi_block *place_and_make(size_t size, size_t align, int file_only, int *ram,
                                         int *err, struct mmvi_evicted *ev)
{
    *err = place(size, file_only, ram, ev);
    struct mmvi_block *b = *err ? NULL : mmvi_heap_new_record(size, align, err);
    if (b)
        b->pinned = (uint8_t)file_only;
    pthread_mutex_unlock(&mmvi_heap.lock);
    if (b)
        *err = -mmvi_block_make(b, *ram);
    return b;
}

/* Under the lock: the record of a block whose make failed goes. */
static void drop_record(struct mmvi_block *b, int ram)
{
    if (ram)
        mmvi_pressure_relieved(b->size);
    mmvi_block_forget(b);
    mmvi_heap.nblocks--;
}

/* After the disk budget refused b's file: b's record goes (a failed make may have given its
 * space up), the cache gives its files back, and a new record is placed and made once more.
 * As place_and_make, or NULL with *err still EDQUOT when nothing was given back. Unlocked. */
static struct mmvi_block *remake(struct mmvi_block *b, size_t size, size_t align, int file_only,
                                 int *ram, int *err, struct mmvi_evicted *ev)
{
    pthread_mutex_lock(&mmvi_heap.lock);
    drop_record(b, *ram);
    pthread_mutex_unlock(&mmvi_heap.lock);
    if (!give_back_cached_files(ev))
        return NULL;
    pthread_mutex_lock(&mmvi_heap.lock);
    return place_and_make(size, align, file_only, ram, err, ev);
}

/* A new block (file_only: a file whatever the pressure, and no fallback). */
/* The end of every large request, without the lock: the advisor may be needed now (the first
 * file block), and the live page shows what changed. */
static void after_large(void)
{
    mmvi_advise_kick();
    mmvi_live_publish();
}

static void *large_alloc_nc(size_t n, size_t align, int zero, int file_only)
{
    size_t size = mmvi_page_round(n);
    struct mmvi_evicted ev = {NULL};
    if (!size) { /* no memory of any kind can hold it */
        errno = ENOMEM;
        return NULL;
    }
    in_large = 1;
    int err = mmvi_heap_enter(&ev);
    void *p = NULL;
    if (!err) {
        /* Recycling dirty pages is only cheaper than a fresh (zero) block up to a point. */
        int may_reuse = !file_only && (!zero || size <= 2 * MMVI_GRANULE);
        struct mmvi_block *b = may_reuse ? mmvi_cache_take(size, align) : NULL;
        if (b) {
            b->state = MMVI_BLOCK_LIVE;
            pthread_mutex_unlock(&mmvi_heap.lock);
            if (zero)
                memset((void *)b->addr, 0, b->size);
            count_made(b, 1);
            p = (void *)b->addr;
        } else if (!file_only && (p = grow_cached(size, align, zero, &ev)) != NULL) {
            /* a smaller cached RAM block, grown */
        } else {
            int ram = 0;
            b = place_and_make(size, align, file_only, &ram, &err, &ev);
            if (b && err == EDQUOT) /* the disk budget: freed blocks' files may make room */
                b = remake(b, size, align, file_only, &ram, &err, &ev);
            struct mmvi_block prev;
            int kick = 0;
            pthread_mutex_lock(&mmvi_heap.lock);
            if (b && !err) {
                mmvi_heap_publish(b);
                unadvise_all_if_tight(b->size);
                if (!ram) { /* read-ahead and writeback concern files only */
                    advise_sparse(b, zero);
                    kick = rotate_last_made(b, &prev);
                }
                p = (void *)b->addr;
            } else if (b) {
                drop_record(b, ram);
            }
            pthread_mutex_unlock(&mmvi_heap.lock);
            if (p) {
                if (!ram && __atomic_load_n(&mmvi_heap.files_failing, __ATOMIC_RELAXED))
                    __atomic_store_n(&mmvi_heap.files_failing, 0, __ATOMIC_RELAXED);
                count_made(b, 0);
                log_block(ram ? "made (RAM)" : "made", b);
            }
            if (kick)
                mmvi_block_writeback(&prev, 0);
        }
    }
    mmvi_heap_teardown(&ev);
    in_large = 0;
    after_large();
    if (!p && (err == E2BIG || file_only)) { /* E2BIG: no fallback could hold it either */
        errno = err == E2BIG || !err ? ENOMEM : err;
        return NULL;
    }
    return p ? p : fallback(n, align, zero, err);
}

/* The block that starts at p, which must be a live block: anything else in our range is a
 * misuse that would corrupt the registry, so it stops the program as glibc does. Under the
 * lock. Returns NULL only for space lost to a foreign mapping (then p is jemalloc's). */
static struct mmvi_block *live_block(void *p, const char *op)
{
    struct mmvi_block *b = mmvi_registry_owner(p);
    if (b == MMVI_LOST)
        return NULL;
    if (!b || b->state != MMVI_BLOCK_LIVE)
        mmvi_fatal("%s(%p): double free or not an allocated block", op, p);
    if (b->addr != (uintptr_t)p)
        mmvi_fatal("%s(%p): pointer inside the block %p, not at its start", op, p, (void *)b->addr);
    return b;
}

static int cacheable(const struct mmvi_block *b)
{
    return b->size <= mmvi_opt.cache_bytes && mmvi_block_cacheable(b) &&
           mmvi_heap.state == MMVI_HEAP_READY;
}

/* Frees a block; returns 0 when p turned out not to be ours. */
static int large_free_nc(void *p)
{
    struct mmvi_evicted ev = {NULL};
    pthread_mutex_lock(&mmvi_heap.lock);
    struct mmvi_block *b = live_block(p, "free");
    if (!b) {
        pthread_mutex_unlock(&mmvi_heap.lock);
        return 0;
    }
    count_gone(b);
    unadvise(b); /* whoever reuses it from the cache starts from normal advice */
    mmvi_advise_freed(b);
    struct mmvi_block seen = *b; /* logged after unlocking: a backtrace may load libgcc */
    b->alone = (uint8_t)mmvi_block_cacheable(b); /* a later fork child drops it (fork.c) */
    if (cacheable(b)) {
        b->state = MMVI_BLOCK_CACHED;
        mmvi_cache_put(b, mmvi_now_ms(), &ev);
    } else {
        b->state = MMVI_BLOCK_DYING;
        b->cache_next = NULL;
        ev.head = b;
        if (b->backing == MMVI_BACK_ANON) /* its memory goes now: the estimate drops */
            mmvi_pressure_relieved(b->size);
    }
    pthread_mutex_unlock(&mmvi_heap.lock);
    log_block("freed", &seen);
    mmvi_heap_teardown(&ev);
    after_large();
    return 1;
}

/* ---- realloc of a block -------------------------------------------------------------------- */

/* Moves the contents of p (usable bytes `have`) to a new allocation of n bytes routed anew. */
static void *realloc_copy(void *p, size_t have, size_t n)
{
    void *q = mmv_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, have < n ? have : n);
    mmv_free(p);
    mmvi_stat_inc(MMVI_STAT_REALLOC_COPIED);
    return q;
}

/* A RAM block realloc grows to `size`: it stays in RAM while that fits below the mark, else
 * it moves into a file first, in this call (realloc owns the block: nothing else may write
 * it meanwhile), and grows as a file. */
static void ram_grow_or_move(struct mmvi_block *b, size_t size)
{
    if (mmvi_opt.placement != MMVI_PLACE_AUTO)
        return;
    pthread_mutex_lock(&mmvi_heap.lock);
    mmvi_pressure_refresh(0);
    mmvi_spill_relieve(size - b->size, NULL);
    if (b->backing == MMVI_BACK_ANON && !mmvi_pressure_place_ram(size - b->size))
        mmvi_spill_block(b); /* if it cannot (disk full), it grows in RAM */
    pthread_mutex_unlock(&mmvi_heap.lock);
}

static void *realloc_owned(struct mmvi_block *b, void *p, size_t n);
static void release(struct mmvi_block *b);

/* realloc owns its block: while it works, moves to files by other threads leave it alone (a
 * RAM block grown without the lock must still be RAM when its mapping grows). */
static void *large_realloc_nc(void *p, size_t n)
{
    pthread_mutex_lock(&mmvi_heap.lock);
    struct mmvi_block *b = live_block(p, "realloc");
    if (b)
        __atomic_store_n(&b->busy, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&mmvi_heap.lock);
    if (!b) /* lost space: jemalloc's */
        return mmvi_je_realloc(p, n);
    void *q = realloc_owned(b, p, n);
    after_large();
    return q;
}

/* realloc is done with b (before b may be freed). */
static void release(struct mmvi_block *b)
{
    __atomic_store_n(&b->busy, 0, __ATOMIC_RELAXED);
}

static void *realloc_owned(struct mmvi_block *b, void *p, size_t n)
{
    size_t size = mmvi_page_round(n);
    /* Frozen at a fork whose children are gone: back into its file first, to grow in place. */
    if (b->frozen && b->backing == MMVI_BACK_FILE && size > b->size) {
        pthread_mutex_lock(&mmvi_heap.lock);
        mmvi_fork_unfreeze(b);
        pthread_mutex_unlock(&mmvi_heap.lock);
    }
    /* Copy when crossing the threshold, or when growing a file we may not touch: gone
     * (MMVEC_UNLINK), the parent's (inherited through fork) or frozen for a living child. */
    int fixed_file = !mmvi_block_can_resize(b);
    if (!routed(n) || size == 0 || (fixed_file && size > b->size)) {
        release(b);
        return realloc_copy(p, b->size, n);
    }
    /* Hysteresis, as for a vector: growth takes a quarter more than asked, so a block grown in
     * small steps pays for a file resize only every 25%; a shrink of less than that keeps the
     * block as it is. */
    if (size <= b->size && size >= b->size - b->size / 4) {
        release(b);
        return p;
    }
    if (size > b->size) {
        size_t ahead = mmvi_page_round(b->size + b->size / 4);
        size = ahead > size ? ahead : size;
    }
    in_large = 1;
    if (size > b->size && b->backing == MMVI_BACK_ANON)
        ram_grow_or_move(b, size);
    long delta = (long)size - (long)b->size;
    int ram = b->backing == MMVI_BACK_ANON;
    int rc = size < b->size ? mmvi_block_shrink(b, size) : mmvi_block_grow(b, size);
    in_large = 0;
    if (rc < 0) {
        release(b);
        if (mmvi_opt.strict) {
            errno = ENOMEM;
            return NULL;
        }
        /* The file could not grow (full disk...): the data moves to RAM instead. */
        void *q = fallback(n, 0, 0, -rc);
        if (q) {
            memcpy(q, p, b->size);
            mmv_free(p);
        }
        return q;
    }
    mmvi_stat_add(MMVI_STAT_BLOCK_BYTES_LIVE, (uint64_t)delta);
    if (ram) {
        mmvi_stat_add(MMVI_STAT_RAM_BYTES_LIVE, (uint64_t)delta);
        mmvi_stat_max(MMVI_STAT_RAM_BYTES_PEAK,
                      mmvi_stat_get(MMVI_STAT_RAM_BYTES_LIVE));
    }
    mmvi_stat_max(MMVI_STAT_BLOCK_BYTES_PEAK,
                  mmvi_stat_get(MMVI_STAT_BLOCK_BYTES_LIVE));
    mmvi_stat_max(MMVI_STAT_LARGEST_BLOCK, size);
    release(b);
    return (void *)b->addr;
}

/* The large path runs with cancellation off (see heap.h), nested calls included. */
static void *large_alloc(size_t n, size_t align, int zero, int file_only)
{
    int cs = mmvi_nocancel_begin();
    void *p = large_alloc_nc(n, align, zero, file_only);
    mmvi_nocancel_end(cs);
    return p;
}

static int large_free(void *p)
{
    int cs = mmvi_nocancel_begin();
    int mine = large_free_nc(p);
    mmvi_nocancel_end(cs);
    return mine;
}

static void *large_realloc(void *p, size_t n)
{
    int cs = mmvi_nocancel_begin();
    void *q = large_realloc_nc(p, n);
    mmvi_nocancel_end(cs);
    return q;
}

/* ---- the public entry points (the interposer maps the standard names onto these) ----------- */

void *mmvi_malloc_slow(size_t n)
{
    return routed(n) ? large_alloc(n, 1, 0, 0) : small_alloc(n, 0, 0);
}

void *mmv_malloc(size_t n)
{
    return mmvi_malloc(n);
}

void *mmv_malloc_file(size_t n)
{
    mmv_threshold(); /* reads the options */
    if (mmvi_opt.disable || in_large) {
        errno = ENOTSUP;
        return NULL;
    }
    return large_alloc(n ? n : 1, 1, 0, 1);
}

void *mmv_calloc(size_t n, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    if (likely(total < mmvi_route_min()))
        return small_alloc(total, 0, 1);
    /* A fresh segment file reads as zeros: its pages are not touched here. */
    return routed(total) ? large_alloc(total, 1, 1, 0) : small_alloc(total, 0, 1);
}

void mmvi_free_slow(void *p)
{
    int saved = errno; /* free never changes errno (POSIX 2024; programs rely on it) */
    if (!large_free(p))
        mmvi_je_free(p);
    errno = saved;
}

void mmv_free(void *p)
{
    mmvi_free(p);
}

/* Sized free, for C++'s sized delete (preload/override_cxx.cpp), whose contract guarantees that
 * size is what an unaligned new asked for: jemalloc then finds the size class without a
 * lookup. A wrong size (or an aligned allocation) would corrupt jemalloc's heap. */
void mmvi_free_sized(void *p, size_t size)
{
    if (likely(!mmvi_in_reserve(p))) {
        if (p)
            mmvi_je_sdallocx(p, size ? size : 1, 0);
        return;
    }
    mmvi_free_slow(p);
}

/* The public mmv_free_sized takes the size as a hint only: a caller may pass it for memory from
 * mmv_posix_memalign or mmv_memalign, whose size class the size alone does not give, and
 * nothing a caller passes may corrupt the heap (found by fuzz_alloc). */
void mmv_free_sized(void *p, size_t size)
{
    (void)size;
    mmv_free(p);
}

void *mmvi_realloc_slow(void *p, size_t n)
{
    if (!p)
        return mmv_malloc(n);
    if (n == 0) { /* glibc frees and returns NULL */
        mmv_free(p);
        return NULL;
    }
    if (unlikely(mmvi_in_reserve(p)))
        return large_realloc(p, n);
    /* Crossing the threshold upwards: into a block. While files fail (a full disk, a missing
     * directory), the block grows as jemalloc grows it instead of being copied into a RAM
     * fallback again at every step. */
    if (unlikely(routed(n)) && !__atomic_load_n(&mmvi_heap.files_failing, __ATOMIC_RELAXED))
        return realloc_copy(p, mmvi_je_malloc_usable_size(p), n);
    return mmvi_je_realloc(p, n);
}

void *mmv_reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return mmvi_realloc(p, total);
}

void *mmv_realloc(void *p, size_t n)
{
    return mmvi_realloc(p, n);
}

static int valid_alignment(size_t a)
{
    return a != 0 && (a & (a - 1)) == 0;
}

static void *aligned(size_t align, size_t n)
{
    if (align <= 8) /* jemalloc's 8-byte class is only 8-aligned: 16 must ask for it */
        return mmv_malloc(n);
    if (routed(n))
        return large_alloc(n, align > mmvi_page_size() ? align : 1, 0, 0);
    return small_alloc(n, align, 0);
}

int mmv_posix_memalign(void **out, size_t align, size_t n)
{
    if (!out || !valid_alignment(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = aligned(align, n);
    if (!p)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

void *mmv_aligned_alloc(size_t align, size_t n)
{
    if (!valid_alignment(align)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, n);
}

/* glibc's memalign rounds an alignment that is not a power of two up to the next one. */
void *mmv_memalign(size_t align, size_t n)
{
    if (align > (SIZE_MAX >> 1) + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1;
    while (a < align)
        a <<= 1;
    return aligned(a, n);
}

void *mmv_valloc(size_t n)
{
    return aligned(mmvi_page_size(), n);
}

void *mmv_pvalloc(size_t n)
{
    size_t rounded = mmvi_page_round(n ? n : 1);
    if (!rounded) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(mmvi_page_size(), rounded);
}

size_t mmv_usable_size(const void *p)
{
    if (!p)
        return 0;
    if (unlikely(mmvi_in_reserve(p))) {
        struct mmvi_block *b = mmvi_registry_owner(p);
        if (b != MMVI_LOST)
            return b && b->addr == (uintptr_t)p ? b->size : 0;
    }
    return mmvi_je_malloc_usable_size(p);
}

bool mmv_owns(const void *p)
{
    if (!mmvi_in_reserve(p))
        return false;
    pthread_mutex_lock(&mmvi_heap.lock);
    struct mmvi_block *b = mmvi_registry_owner(p);
    bool mine = b && b != MMVI_LOST && b->addr == (uintptr_t)p && b->state == MMVI_BLOCK_LIVE;
    pthread_mutex_unlock(&mmvi_heap.lock);
    return mine;
}

int mmv_block_path(const void *p, char *buf, size_t size)
{
    if (!buf || !mmvi_in_reserve(p))
        return -EINVAL;
    pthread_mutex_lock(&mmvi_heap.lock);
    struct mmvi_block *b = mmvi_registry_owner(p);
    int rc = -EINVAL;
    if (b && b != MMVI_LOST && b->addr == (uintptr_t)p && b->state == MMVI_BLOCK_LIVE)
        rc = b->backing == MMVI_BACK_ANON ? -ENODATA /* in RAM: no file (yet) */
             : b->unlinked || b->backing == MMVI_BACK_COW
                 ? -ENOENT /* its file is gone, or an ancestor's it reads privately */
                 : mmvi_block_path_of(b, buf, size);
    pthread_mutex_unlock(&mmvi_heap.lock);
    return rc;
}

