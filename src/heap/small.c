/* What the private jemalloc sees of its environment. Its configuration sources, the variable
 * MALLOC_CONF and the link /etc/malloc.conf, belong to the program's own jemalloc (or to a
 * jemalloc the user preloads): ours must neither obey them nor warn about them. The build
 * points jemalloc's calls to secure_getenv and readlink here (cmake/jemalloc-private.syms);
 * ours reads MMVEC_JEMALLOC_CONF instead, and no file. */
#define _GNU_SOURCE
#include "small.h"

#include "options.h"
#include "spill.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *mmvi_je_conf_getenv(const char *name)
{
    if (strcmp(name, "MALLOC_CONF") == 0)
        return (char *)mmvi_getenv("MMVEC_JEMALLOC_CONF");
    return secure_getenv(name);
}

ssize_t mmvi_je_conf_readlink(const char *path, char *buf, size_t size)
{
    if (strcmp(path, "/etc/malloc.conf") == 0) {
        errno = ENOENT;
        return -1;
    }
    return readlink(path, buf, size);
}

/* jemalloc maps memory for the small heap here (the build points its mmap calls to this
 * function): each time the small heap grows by a chunk, RAM blocks may have to move into files
 * (spill.c). Cheap when there is no RAM block; never waits for our lock. */
void *mmvi_je_os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd < 0)
        mmvi_spill_small_grew(len);
    return p;
}
