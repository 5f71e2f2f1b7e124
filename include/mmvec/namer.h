/* Namers hand out unique paths for new segment files (the seed's SegmentBuilder).
 *
 * A namer is a function pointer plus a context. The default one writes
 * "<dir>/<uuid-v4>.seg" where <dir> is, in this order: $MMVEC_DIR, $XDG_CACHE_HOME/mmvec,
 * $HOME/.cache/mmvec, /var/tmp/mmvec; the directory is created 0700 when missing.
 */
#ifndef MMVEC_NAMER_H
#define MMVEC_NAMER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a new unique path into buf (size bytes). Returns 0 or a negative errno
 * (-ENAMETOOLONG when buf is too small). */
typedef int (*mmv_namer_fn)(void *ctx, char *buf, size_t size);

typedef struct mmv_namer {
    mmv_namer_fn next_path;
    void *ctx;
} mmv_namer;

/* The default namer: uuid names in the default directory. */
MMV_API mmv_namer mmv_namer_default(void);

/* uuid names in `dir` (the seed's with_path). `dir` is created (with parents, 0700) at the first
 * path; the string must stay valid as long as the namer is used. */
MMV_API mmv_namer mmv_namer_in_dir(const char *dir);

/* Calls the namer; a namer with a NULL function is the default one. */
MMV_API int mmv_namer_next(const mmv_namer *namer, char *buf, size_t size);

/* Resolves the default directory (as above), creating it 0700 when missing.
 * Returns 0 or a negative errno. */
MMV_API int mmv_default_dir(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
