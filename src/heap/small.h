/* The small path: jemalloc, linked privately into libmmvec.
 *
 * The build renames the public symbols of Debian's libjemalloc_pic.a from `malloc` to
 * `mmvi_je_malloc` (and so on, see cmake/jemalloc-private.syms) and hides them, so the copy of
 * jemalloc inside libmmvec serves our small requests and never competes with the process's own
 * malloc, whatever that is. Calls to it are direct (no PLT), which keeps the small path within a
 * few instructions of plain jemalloc. */
#ifndef MMVEC_SMALL_H
#define MMVEC_SMALL_H

#include <stddef.h>
#include <sys/types.h>

void *mmvi_je_malloc(size_t n);
void *mmvi_je_calloc(size_t n, size_t size);
void *mmvi_je_realloc(void *p, size_t n);
void mmvi_je_free(void *p);
void mmvi_je_sdallocx(void *p, size_t size, int flags);
int mmvi_je_posix_memalign(void **out, size_t align, size_t n);
size_t mmvi_je_malloc_usable_size(const void *p);

/* jemalloc's view of its configuration (small.c). */
char *mmvi_je_conf_getenv(const char *name) __attribute__((visibility("hidden")));
ssize_t mmvi_je_conf_readlink(const char *path, char *buf, size_t size)
    __attribute__((visibility("hidden")));
/* jemalloc's mmap (small.c): sees the small heap grow. */
void *mmvi_je_os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((visibility("hidden")));

#endif
