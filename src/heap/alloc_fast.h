/* The small path, inline: what malloc and free cost when the request is jemalloc's. Used by the
 * public mmv_* functions and by the interposer's standard names alike, so both take exactly the
 * same decisions. Everything past the first branch is out of line in alloc.c. */
#ifndef MMVEC_ALLOC_FAST_H
#define MMVEC_ALLOC_FAST_H

#include "os.h"
#include "registry.h"
#include "small.h"

#include <stddef.h>

MMVI_HIDDEN void *mmvi_malloc_slow(size_t n);
MMVI_HIDDEN void mmvi_free_slow(void *p);
MMVI_HIDDEN void *mmvi_realloc_slow(void *p, size_t n);
/* Sized free for callers that guarantee the size (C++ sized delete); see alloc.c. */
MMVI_HIDDEN void mmvi_free_sized(void *p, size_t size);

/* The threshold, set once by the first request (alloc.c): a relaxed atomic load, a plain load on
 * every machine we run on, but no data race with the thread that sets it. */
static inline size_t mmvi_route_min(void)
{
    return __atomic_load_n(&mmvi_route.min, __ATOMIC_RELAXED);
}

static inline void *mmvi_malloc(size_t n)
{
    if (__builtin_expect(n < mmvi_route_min(), 1))
        return mmvi_je_malloc(n);
    return mmvi_malloc_slow(n);
}

static inline void mmvi_free(void *p)
{
    if (__builtin_expect(!mmvi_in_reserve(p), 1))
        mmvi_je_free(p);
    else
        mmvi_free_slow(p);
}

/* Small to small, the common case; everything else (NULL, 0, blocks, crossing) is slow. */
static inline void *mmvi_realloc(void *p, size_t n)
{
    if (__builtin_expect(p && n && n < mmvi_route_min() && !mmvi_in_reserve(p), 1))
        return mmvi_je_realloc(p, n);
    return mmvi_realloc_slow(p, n);
}

#endif
