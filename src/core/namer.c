/* The namer: where vectors and segments put their files (include/mmvec/namer.h). The paths
 * themselves are made in base/paths.c, shared with the heap. */
#define _GNU_SOURCE
#include "mmvec/namer.h"

#include "paths.h"

#include <errno.h>

int mmv_default_dir(char *buf, size_t size)
{
    int rc = mmvi_default_dir_path(buf, size);
    return rc < 0 ? rc : mmvi_dir_prepare(buf, 1);
}

static int dir_namer(void *ctx, char *buf, size_t size)
{
    if (!buf || size == 0)
        return -EINVAL;
    const char *dir = ctx;
    char def[4096];
    int rc;
    if (!dir) {
        rc = mmv_default_dir(def, sizeof def);
        dir = def;
    } else {
        rc = mmvi_dir_prepare(dir, 0);
    }
    return rc < 0 ? rc : mmvi_uuid_path(dir, ".seg", buf, size);
}

mmv_namer mmv_namer_default(void)
{
    return (mmv_namer){dir_namer, NULL};
}

mmv_namer mmv_namer_in_dir(const char *dir)
{
    return (mmv_namer){dir_namer, (void *)dir};
}

int mmv_namer_next(const mmv_namer *namer, char *buf, size_t size)
{
    if (!namer || !namer->next_path)
        return dir_namer(NULL, buf, size);
    return namer->next_path(namer->ctx, buf, size);
}
