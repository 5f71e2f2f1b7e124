/* A segment block: one allocation of the allocator, one file mapped at a fixed address inside
 * the reserved range. Records are allocated from jemalloc (they are small) and linked in one
 * list, under the allocator lock, so that exit and fork can walk every block. */
#ifndef MMVEC_BLOCK_H
#define MMVEC_BLOCK_H

#include <stddef.h>
#include <stdint.h>

/* LIVE: handed out. CACHED: freed, kept for reuse. DYING: freed, being torn down. */
enum mmvi_block_state { MMVI_BLOCK_LIVE = 1, MMVI_BLOCK_CACHED = 2, MMVI_BLOCK_DYING = 3 };

struct mmvi_block {
    uintptr_t addr;        /* first byte; what malloc returned */
    size_t size;           /* bytes mapped = file size = usable size (page multiple) */
    size_t span;           /* bytes of address space owned (granule multiple, >= size) */
    size_t align;          /* alignment asked for; kept when the block moves */
    uint64_t fork_epoch;   /* forks seen when the block was made: see forking.c */
    uint64_t cached_at_ms; /* when it entered the cache */
    uint32_t incarnation;  /* the process incarnation whose folder holds the file */
    uint8_t state;         /* enum mmvi_block_state */
    uint8_t unlinked;      /* the file is gone already (MMVEC_UNLINK, exit) */
    uint8_t sparse;        /* advised MADV_RANDOM until memory gets tight (alloc.c) */
    struct mmvi_block *prev, *next; /* all blocks, live and cached */
    struct mmvi_block *cache_next;  /* the cache's LIFO list */
    char proc[32];         /* the owning process folder's name */
    char uuid[40];         /* file name: <uuid>.seg */
};

#endif
