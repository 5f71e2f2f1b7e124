/* Each process keeps its block files in a folder of its own, "<dir>/<pid>-<random>/", next to a
 * lock file "<dir>/<pid>-<random>.lock" that it holds flock()ed for as long as it lives. A lock
 * that can be taken means its process is dead (the kernel drops flocks of dead processes, so a
 * reused pid fools nothing): its folder can be removed. */
#ifndef MMVEC_REAPER_H
#define MMVEC_REAPER_H

#include "os.h"

#include <stdint.h>

struct mmvi_proc {
    char dir[4096];   /* the segment directory */
    char name[32];    /* this process's folder in it */
    int lock_fd;      /* held open (O_CLOEXEC) for the life of the process */
    uint32_t incarnation; /* grows at each fork in the child: which folder a block's file is in */
    int ready;
};

extern struct mmvi_proc mmvi_proc MMVI_HIDDEN;

/* Creates this process's folder in `dir` (created 0700 when missing; refused when it is a
 * symlink or belongs to another user) after removing dead processes' folders there.
 * 0 or a negative errno. Allocates nothing. */
MMVI_HIDDEN int mmvi_proc_open(const char *dir);

/* Removes this process's folder and lock (its files must already be gone). */
MMVI_HIDDEN void mmvi_proc_close(void);

/* In a fork child: forgets the parent's folder (closing our copy of its lock), so that the
 * child makes its own at its first block. */
MMVI_HIDDEN void mmvi_proc_forget(void);

/* Removes the folders of dead processes in dir; adds files and bytes removed. */
MMVI_HIDDEN int mmvi_reap(const char *dir, uint64_t *files, uint64_t *bytes);

/* "<dir>/<proc>/<uuid>.seg" into buf. */
MMVI_HIDDEN int mmvi_block_file(const char *proc, const char *uuid, char *buf, size_t size);

#endif
