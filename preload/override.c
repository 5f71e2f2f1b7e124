/* The standard names, each mapped onto the mmvec allocator, and nothing else: every rule lives
 * in src/heap/alloc.c (malloc, free and realloc use its inline small path, src/heap/alloc_fast.h).
 * Exported from libmmvec_preload.so, which is LD_PRELOADed or linked (-lmmvec_preload). */
#define _GNU_SOURCE
#include "alloc_fast.h"
#include "mmvec/alloc.h"

#include <stddef.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { return mmvi_malloc(n); }
EXPORT void *calloc(size_t n, size_t size) { return mmv_calloc(n, size); }
EXPORT void *realloc(void *p, size_t n) { return mmvi_realloc(p, n); }
EXPORT void *reallocarray(void *p, size_t n, size_t size) { return mmv_reallocarray(p, n, size); }
EXPORT void free(void *p) { mmvi_free(p); }
EXPORT void cfree(void *p) { mmv_free(p); }
EXPORT int posix_memalign(void **out, size_t align, size_t n) { return mmv_posix_memalign(out, align, n); }
EXPORT void *aligned_alloc(size_t align, size_t n) { return mmv_aligned_alloc(align, n); }
EXPORT void *memalign(size_t align, size_t n) { return mmv_memalign(align, n); }
EXPORT void *valloc(size_t n) { return mmv_valloc(n); }
EXPORT void *pvalloc(size_t n) { return mmv_pvalloc(n); }
EXPORT size_t malloc_usable_size(void *p) { return mmv_usable_size(p); }

/* glibc's internal names: a block from any of them can reach our free, so all are ours. */
EXPORT void *__libc_malloc(size_t n) { return mmv_malloc(n); }
EXPORT void *__libc_calloc(size_t n, size_t size) { return mmv_calloc(n, size); }
EXPORT void *__libc_realloc(void *p, size_t n) { return mmv_realloc(p, n); }
EXPORT void __libc_free(void *p) { mmv_free(p); }
EXPORT void *__libc_memalign(size_t align, size_t n) { return mmv_memalign(align, n); }
EXPORT void *__libc_valloc(size_t n) { return mmv_valloc(n); }
EXPORT void *__libc_pvalloc(size_t n) { return mmv_pvalloc(n); }
EXPORT int __posix_memalign(void **out, size_t align, size_t n) { return mmv_posix_memalign(out, align, n); }
