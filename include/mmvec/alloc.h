/* The explicit allocator: file-backed blocks without replacing malloc.
 *
 * Requests of at least the threshold (MMVEC_THRESHOLD, default in README) live in their own
 * segment file; smaller ones come from jemalloc. Every function here follows the C standard's
 * and glibc's semantics for its namesake (errno = ENOMEM on failure, EINVAL for a bad alignment).
 * There is one allocator state per process: under the interposer (libmmvec_preload), malloc and
 * mmv_malloc are the same allocator, so either's blocks may be freed by the other.
 */
#ifndef MMVEC_ALLOC_H
#define MMVEC_ALLOC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

MMV_API void *mmv_malloc(size_t size);
MMV_API void *mmv_calloc(size_t n, size_t size);
MMV_API void *mmv_realloc(void *p, size_t size);
MMV_API void *mmv_reallocarray(void *p, size_t n, size_t size);
MMV_API void mmv_free(void *p);
/* free, given the size that was asked for when p was allocated: the size is a hint only (any
 * value is safe, also for aligned allocations); the same as mmv_free. */
MMV_API void mmv_free_sized(void *p, size_t size);
/* Returns 0, EINVAL (bad alignment; *out untouched) or ENOMEM, as posix_memalign. */
MMV_API int mmv_posix_memalign(void **out, size_t alignment, size_t size);
MMV_API void *mmv_aligned_alloc(size_t alignment, size_t size);
MMV_API void *mmv_memalign(size_t alignment, size_t size);
MMV_API void *mmv_valloc(size_t size);
MMV_API void *mmv_pvalloc(size_t size);
/* Bytes that really can be written at p (0 for NULL). */
MMV_API size_t mmv_usable_size(const void *p);

/* A block backed by a file from the start, whatever the memory pressure and the threshold (for
 * buffers the kernel writes asynchronously: io_uring, AIO, RDMA). Freed with mmv_free. NULL
 * with errno when no file can be made (ENOSPC, EACCES...; ENOTSUP with MMVEC_DISABLE): never a
 * RAM fallback. */
MMV_API void *mmv_malloc_file(size_t n);

/* true when p is the start of a live segment block. */
MMV_API bool mmv_owns(const void *p);
/* The file behind a segment block, copied into buf; -EINVAL when p is not a block,
 * -ENODATA when the block is in RAM (it has no file yet: MMVEC_PLACEMENT=auto puts blocks in
 * RAM while the heap fits, and moves them into files when memory gets tight), -ENOENT when the
 * file was unlinked (MMVEC_UNLINK=1) or is an ancestor's read privately after fork,
 * -ENAMETOOLONG when buf is too small. */
MMV_API int mmv_block_path(const void *p, char *buf, size_t size);

/* The size from which requests become segment blocks. */
MMV_API size_t mmv_threshold(void);

/* Removes, in dir (NULL: the default directory), the files of processes that are no longer
 * running. Counts files and bytes removed. Returns 0 or a negative errno. */
MMV_API int mmv_clean(const char *dir, uint64_t *files, uint64_t *bytes);

#ifdef __cplusplus
}
#endif

#endif
