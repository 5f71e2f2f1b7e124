/* Thin wrappers over the system calls mmvec uses. Every function returns 0 or a negative errno
 * (pointers: MAP_FAILED-free, see each comment) and sets no global state but the stats. */
#ifndef MMVEC_OS_H
#define MMVEC_OS_H

#include <stddef.h>
#include <sys/types.h>

#define MMVI_HIDDEN __attribute__((visibility("hidden")))

/* The page size, read once. */
MMVI_HIDDEN size_t mmvi_page_size(void);

/* Rounds n up to a multiple of the page size; 0 when that overflows. */
MMVI_HIDDEN size_t mmvi_page_round(size_t n);

/* Creates a new file 0600 (O_EXCL|O_NOFOLLOW|O_CLOEXEC) and reserves `size` bytes of disk for it.
 * On success *fd is open read-write. On failure nothing is left behind. */
MMVI_HIDDEN int mmvi_os_create(const char *path, size_t size, int *fd);

/* Opens an existing file read-write (O_NOFOLLOW|O_CLOEXEC). */
MMVI_HIDDEN int mmvi_os_open(const char *path, int *fd);

/* Makes the file `size` bytes long. Growing reserves the new disk space with fallocate (a full
 * disk is -ENOSPC now, never a SIGBUS later); only where the filesystem does not support
 * fallocate does it fall back to ftruncate. Shrinking frees the tail. */
MMVI_HIDDEN int mmvi_os_resize(int fd, size_t old_size, size_t size);

/* Maps `len` bytes of fd from offset `off`, shared read-write. With `at` non-NULL the mapping
 * replaces whatever is at `at` (MAP_FIXED). Returns 0 and *out, or a negative errno. */
MMVI_HIDDEN int mmvi_os_map(int fd, size_t off, size_t len, void *at, int private_cow, void **out);

/* Unmaps; counts a failure in the stats. */
MMVI_HIDDEN int mmvi_os_unmap(void *p, size_t len);

/* Moves/resizes a mapping (mremap with MREMAP_MAYMOVE, or MREMAP_FIXED to `to` when non-NULL). */
MMVI_HIDDEN int mmvi_os_remap(void *p, size_t old_len, size_t new_len, void *to, void **out);

/* close(2) that keeps errno. */
MMVI_HIDDEN void mmvi_os_close(int fd);

/* madvise that ignores failure (advice only). */
MMVI_HIDDEN void mmvi_os_advise(void *p, size_t len, int advice);

#endif
