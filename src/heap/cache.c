/* The cache of freed blocks: a small array ordered oldest first. */
#include "cache.h"

#include "options.h"
#include "stats_internal.h"

#include "heap.h"

#include <string.h>
#include <sys/mman.h>

static struct mmvi_block *slot[MMVI_CACHE_SLOTS];
static size_t count, bytes;

static struct mmvi_block *take(size_t i);

static void evict(size_t i, struct mmvi_evicted *out)
{
    struct mmvi_block *b = take(i);
    b->cache_next = out->head;
    out->head = b;
}

/* Bytes of RAM blocks whose pages the cache holds: also read without the lock, by the hook
 * that sees the small heap grow (mmvi_heap.ram_cached). */
static void count_cached_ram(const struct mmvi_block *b, int sign)
{
    if (b->backing == MMVI_BACK_ANON && !b->emptied)
        __atomic_fetch_add(&mmvi_heap.ram_cached, sign > 0 ? b->size : -b->size,
                           __ATOMIC_RELAXED);
}

static struct mmvi_block *take(size_t i)
{
    struct mmvi_block *b = slot[i];
    memmove(&slot[i], &slot[i + 1], (count - i - 1) * sizeof *slot);
    count--;
    bytes -= b->size;
    count_cached_ram(b, -1);
    b->emptied = 0;
    return b;
}

struct mmvi_block *mmvi_cache_take(size_t size, size_t align)
{
    size_t best = SIZE_MAX;
    /* Newest first: its pages are the likeliest to be still in memory and in the TLB. A RAM
     * block may be up to half as large again (its pages are memory already held; a file block's
     * extra length would be disk), a file block a quarter more. */
    for (size_t i = count; i-- > 0;) {
        struct mmvi_block *b = slot[i];
        size_t slack = b->backing == MMVI_BACK_ANON ? size / 2 : size / 4;
        if (b->size < size || b->size - size > slack || (b->addr & (align - 1)))
            continue;
        if (best == SIZE_MAX || b->size < slot[best]->size)
            best = i;
        if (b->size == size)
            break;
    }
    return best == SIZE_MAX ? NULL : take(best);
}

struct mmvi_block *mmvi_cache_take_smaller(size_t size, size_t align)
{
    size_t best = SIZE_MAX;
    for (size_t i = count; i-- > 0;) {
        struct mmvi_block *b = slot[i];
        if (b->backing != MMVI_BACK_ANON || b->size >= size || (b->addr & (align - 1)))
            continue;
        if (best == SIZE_MAX || b->size > slot[best]->size)
            best = i;
    }
    return best == SIZE_MAX ? NULL : take(best);
}

size_t mmvi_cache_ram_bytes(void)
{
    return __atomic_load_n(&mmvi_heap.ram_cached, __ATOMIC_RELAXED);
}

void mmvi_cache_empty_ram(void)
{
    for (size_t i = 0; i < count; i++) {
        struct mmvi_block *b = slot[i];
        if (b->backing != MMVI_BACK_ANON || b->emptied)
            continue;
        count_cached_ram(b, -1);
        madvise((void *)b->addr, b->size, MADV_DONTNEED); /* reads as zeros when reused */
        b->emptied = 1;
    }
}

void mmvi_cache_put(struct mmvi_block *b, uint64_t now_ms, struct mmvi_evicted *out)
{
    b->cached_at_ms = now_ms;
    b->emptied = 0;
    slot[count++] = b;
    bytes += b->size;
    count_cached_ram(b, 1);
    while (count > 0 && (bytes > mmvi_opt.cache_bytes || count == MMVI_CACHE_SLOTS))
        evict(0, out);
}

void mmvi_cache_decay(uint64_t now_ms, struct mmvi_evicted *out)
{
    while (count > 0 && now_ms - slot[0]->cached_at_ms > mmvi_opt.cache_decay_ms)
        evict(0, out);
}

void mmvi_cache_drain(struct mmvi_evicted *out)
{
    while (count > 0)
        evict(count - 1, out);
}
