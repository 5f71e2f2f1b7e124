/* Which addresses are segment blocks. All blocks live inside one reserved range of address space
 * (PROT_NONE, no memory), so "is p mine?" is one subtraction and compare, with no lock: that is
 * all the small path ever pays. Inside the range, the space is cut into granules; a table maps
 * each granule to the block that owns it, and a bitmap (under the allocator lock) says which are
 * free. */
#ifndef MMVEC_REGISTRY_H
#define MMVEC_REGISTRY_H

#include "block.h"
#include "os.h"

#include <stddef.h>
#include <stdint.h>

#define MMVI_GRANULE_SHIFT 20
#define MMVI_GRANULE ((size_t)1 << MMVI_GRANULE_SHIFT)

/* What every malloc and free reads, written once at start: a cache line of its own, so that
 * nothing the large path writes (the heap lock, the space cursor, the counters) ever
 * invalidates it in the other threads' caches. */
struct mmvi_route {
    size_t min;             /* requests below go straight to jemalloc: 0 until the options are
                               read (the first request of any size takes the slow path once);
                               SIZE_MAX when large blocks are off */
    uintptr_t reserve_base; /* the reserved range (mmvi_registry_init); zero before, so nothing */
    size_t reserve_size;    /*   is in range */
} __attribute__((aligned(64)));

extern struct mmvi_route mmvi_route MMVI_HIDDEN;

static inline int mmvi_in_reserve(const void *p)
{
    return (uintptr_t)p - __atomic_load_n(&mmvi_route.reserve_base, __ATOMIC_RELAXED) <
           __atomic_load_n(&mmvi_route.reserve_size, __ATOMIC_RELAXED);
}

/* A granule whose space was lost to a foreign mapping (see registry.c): never ours again. */
#define MMVI_LOST ((struct mmvi_block *)1)

/* Reserves `bytes` of address space. 0 or a negative errno. */
MMVI_HIDDEN int mmvi_registry_init(size_t bytes);

/* The block owning the granule that holds p (NULL: a free granule; MMVI_LOST). No lock. */
MMVI_HIDDEN struct mmvi_block *mmvi_registry_owner(const void *p);

/* Under the allocator lock: finds `span` bytes (granule multiple) of free space aligned to
 * `align` (power of two), marks them used, returns the address or 0. */
MMVI_HIDDEN uintptr_t mmvi_space_take(size_t span, size_t align);
/* Under the lock: tries to extend [addr, addr+span) to new_span in place. 0 on success. */
MMVI_HIDDEN int mmvi_space_extend(uintptr_t addr, size_t span, size_t new_span);
/* Under the lock: gives back [addr, addr+span) (already PROT_NONE again). */
MMVI_HIDDEN void mmvi_space_give(uintptr_t addr, size_t span);

/* Points every granule of [addr, addr+span) at b (or NULL). */
MMVI_HIDDEN void mmvi_registry_set(uintptr_t addr, size_t span, struct mmvi_block *b);

/* Turns [addr, addr+len) back into reserved, inaccessible space, dropping whatever was mapped
 * there in one step (no moment in which another mmap could take it). 0 or negative errno. */
MMVI_HIDDEN int mmvi_space_unmap(uintptr_t addr, size_t len);

/* After a mapping left [addr, addr+len) (mremap moved it, or a failed mmap), puts the
 * reservation back there. Returns 0, or 1 when another thread's mmap took part of the hole
 * meanwhile: the caller then gives the space up with mmvi_space_lose. */
MMVI_HIDDEN int mmvi_space_refill(uintptr_t addr, size_t len);

/* Under the lock: [addr, addr+span) (granule aligned) is no longer ours: its granules stay
 * used forever and say MMVI_LOST, so pointers there go to jemalloc. */
MMVI_HIDDEN void mmvi_space_lose(uintptr_t addr, size_t span);

/* Rounds n up to a granule multiple (0 on overflow). */
static inline size_t mmvi_granule_round(size_t n)
{
    return n > SIZE_MAX - (MMVI_GRANULE - 1) ? 0 : (n + MMVI_GRANULE - 1) & ~(MMVI_GRANULE - 1);
}

#endif
