/* What the private jemalloc sees of its environment. Its configuration sources, the variable
 * MALLOC_CONF and the link /etc/malloc.conf, belong to the program's own jemalloc (or to a
 * jemalloc the user preloads): ours must neither obey them nor warn about them. The build
 * points jemalloc's calls to secure_getenv and readlink here (cmake/jemalloc-private.syms);
 * ours reads MMVEC_JEMALLOC_CONF instead, and no file. */
#define _GNU_SOURCE
#include "small.h"

#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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
