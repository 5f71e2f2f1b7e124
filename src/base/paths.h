/* Paths shared by the core and the heap (paths.c). */
#ifndef MMVEC_PATHS_H
#define MMVEC_PATHS_H

#include "os.h"

#include <stddef.h>

/* Creates `dir` and its parents (0700) when missing. With `strict`, the final directory must be a
 * real directory (not a symlink) owned by the effective user, else -EPERM (or -ENOTDIR).
 * Returns 0 or a negative errno. */
MMVI_HIDDEN int mmvi_dir_prepare(const char *dir, int strict);

/* The default directory's path without creating it: $MMVEC_DIR, $XDG_CACHE_HOME/mmvec,
 * $HOME/.cache/mmvec, /var/tmp/mmvec-<uid> (variables read with mmvi_getenv: as secure_getenv).
 * The XDG and home candidates count only on a local filesystem (not NFS, SMB, FUSE...). */
MMVI_HIDDEN int mmvi_default_dir_path(char *buf, size_t size);

/* Is a filesystem of this statfs f_type on another machine (NFS, SMB, Ceph, 9P, FUSE...)? */
MMVI_HIDDEN int mmvi_fs_is_network(long type);

/* Writes "<dir>/<uuid-v4><suffix>" into buf. */
MMVI_HIDDEN int mmvi_uuid_path(const char *dir, const char *suffix, char *buf, size_t size);


/* A new uuid v4 as 36 lowercase characters and a NUL. */
MMVI_HIDDEN void mmvi_uuid_text(char out[37]);

#endif
