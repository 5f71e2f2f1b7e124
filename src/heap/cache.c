/* The cache of freed blocks: a small array ordered oldest first. */
#include "cache.h"

#include "options.h"
#include "stats_internal.h"

#include <string.h>

static struct mmvi_block *slot[MMVI_CACHE_SLOTS];
static size_t count, bytes;

static void evict(size_t i, struct mmvi_evicted *out)
{
    struct mmvi_block *b = slot[i];
    memmove(&slot[i], &slot[i + 1], (count - i - 1) * sizeof *slot);
    count--;
    bytes -= b->size;
    b->cache_next = out->head;
    out->head = b;
}

struct mmvi_block *mmvi_cache_take(size_t size, size_t align)
{
    size_t best = SIZE_MAX;
    /* Newest first: its pages are the likeliest to be still in memory and in the TLB. */
    for (size_t i = count; i-- > 0;) {
        struct mmvi_block *b = slot[i];
        if (b->size < size || b->size - size > size / 4 || (b->addr & (align - 1)))
            continue;
        if (best == SIZE_MAX || b->size < slot[best]->size)
            best = i;
        if (b->size == size)
            break;
    }
    if (best == SIZE_MAX)
        return NULL;
    struct mmvi_block *b = slot[best];
    memmove(&slot[best], &slot[best + 1], (count - best - 1) * sizeof *slot);
    count--;
    bytes -= b->size;
    return b;
}

void mmvi_cache_put(struct mmvi_block *b, uint64_t now_ms, struct mmvi_evicted *out)
{
    b->cached_at_ms = now_ms;
    slot[count++] = b;
    bytes += b->size;
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
