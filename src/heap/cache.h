/* Freed blocks kept mapped, with their files, for reuse: a new block of a similar size then costs
 * no file, no syscall and no page fault. Bounded in bytes and count, and decaying: a block that
 * waited longer than MMVEC_CACHE_DECAY_MS is released at the next large request. All calls are
 * made under the allocator lock; blocks that leave the cache are handed back to the caller to tear
 * down after unlocking. */
#ifndef MMVEC_CACHE_H
#define MMVEC_CACHE_H

#include "block.h"
#include "os.h"

#include <stddef.h>

#define MMVI_CACHE_SLOTS 64

/* A list of blocks to tear down (linked through cache_next). */
struct mmvi_evicted {
    struct mmvi_block *head;
};

/* A cached block of at least `size` bytes (at most a quarter more for a file, half again
 * for a RAM block), with its address aligned to `align`, or NULL. */
MMVI_HIDDEN struct mmvi_block *mmvi_cache_take(size_t size, size_t align);

/* The largest cached RAM block smaller than `size` (aligned), to grow into a new block: its
 * pages are reused, only the new tail is faulted in. NULL if none. */
MMVI_HIDDEN struct mmvi_block *mmvi_cache_take_smaller(size_t size, size_t align);

/* Bytes of RAM blocks in the cache whose pages it still holds. */
MMVI_HIDDEN size_t mmvi_cache_ram_bytes(void);

/* Gives back the pages of the cached RAM blocks (MADV_DONTNEED), keeping the blocks: for the
 * hook inside jemalloc, which may not tear blocks down (that frees their records). */
MMVI_HIDDEN void mmvi_cache_empty_ram(void);

/* Keeps b (its state must already be CACHED); what no longer fits goes to *out. */
MMVI_HIDDEN void mmvi_cache_put(struct mmvi_block *b, uint64_t now_ms, struct mmvi_evicted *out);

/* Moves blocks cached before now_ms - decay_ms to *out. */
MMVI_HIDDEN void mmvi_cache_decay(uint64_t now_ms, struct mmvi_evicted *out);

/* Moves every cached block to *out. */
MMVI_HIDDEN void mmvi_cache_drain(struct mmvi_evicted *out);

#endif
