/* The process folder: where this process keeps its block files, and removing what dead
 * processes left behind, without ever touching a file that mmvec did not make.
 *
 * Layout, inside the segment directory D (MMVEC_DIR or the default):
 *     D/mmvec-heap-<uid>/                       the heap folder: only mmvec writes here
 *     D/mmvec-heap-<uid>/<host>-<pid>-<rand>.lock   flock()ed by its process for its whole life
 *     D/mmvec-heap-<uid>/<host>-<pid>-<rand>/<uuid>.seg   the process's block files
 * <host> is 8 hex digits naming the machine (a hash of its node name): a folder on a shared
 * filesystem is only ever reaped from the host that made it, since flock may not cross hosts.
 * A lock that can be taken means its process is dead (the kernel drops a dead process's flocks,
 * so a reused pid fools nothing). The reaper matches these exact name patterns, removes only
 * regular files of ours named <uuid>.seg (and its fork lock, forks.lock), and rmdir()s (never recursively): anything else in D
 * or in the heap folder is left exactly as it was.
 *
 * No descriptor is kept between calls (programs count and close theirs): each operation opens
 * the folder it needs by its absolute path (resolved once) and checks that it is the very folder
 * we made (device and inode), so a chdir, a relative MMVEC_DIR or a program that closes or
 * reuses descriptors never makes us work in another folder; the lock is held by a mapping. */
#ifndef MMVEC_REAPER_H
#define MMVEC_REAPER_H

#include "os.h"

#include <stdint.h>
#include <sys/types.h>

/* What a folder was when we made or opened it. */
struct mmvi_file_id {
    dev_t dev;
    ino_t ino;
};

/* MMVEC_DIR may name several directories ("A:B", one per disk): each has its heap folder and,
 * in it, this process's folder and lock, all of one name. */
#define MMVI_MAX_DIRS 8

/* In a process folder, beside the .seg files: the fork lock (fork.c). */
#define MMVI_FORK_LOCK "forks.lock"

struct mmvi_proc_dir {
    char dir[4096];            /* the heap folder, absolute: D/mmvec-heap-<uid> */
    struct mmvi_file_id heap;  /* the heap folder */
    struct mmvi_file_id self;  /* this process's folder in it */
    void *lock_map;            /* a mapping of the lock file: holds its flock */
    int lock_fd;               /* ... or, where it could not be mapped, its descriptor (else -1) */
    int ready;                 /* self and the lock are this process's own */
};

struct mmvi_proc {
    char name[48];             /* this process's folders: <host>-<pid>-<rand> (in a fork child,
                                  until it makes its own: the parent's) */
    int named;                 /* name is this process's own */
    struct mmvi_proc_dir d[MMVI_MAX_DIRS]; /* by the index of the directory in MMVEC_DIR */
};

extern struct mmvi_proc mmvi_proc MMVI_HIDDEN;

/* Directory d: resolves D (made 0700 when missing; a relative D is taken from the current
 * directory, once), opens or makes the heap folder in it (refused when it is a symlink or another
 * user's), reaps dead processes' folders there and makes this process's folder and lock. 0 or a
 * negative errno. Allocates nothing. */
MMVI_HIDDEN int mmvi_proc_open(int d, const char *dir);

/* A fork child's first block: its own folder and lock in heap folder d, already known. */
MMVI_HIDDEN int mmvi_proc_reopen(int d);

/* Removes this process's folders and locks (their files must already be gone). */
MMVI_HIDDEN void mmvi_proc_close(void);

/* In a fork child, after its handler has reopened what it needs of the parent's folders:
 * forgets the parent's folders and locks, so that the child makes its own at its first block. */
MMVI_HIDDEN void mmvi_proc_forget(void);

/* openat() in this process's folder of directory d (flags as open; O_CLOEXEC|O_NOFOLLOW added),
 * the folder checked to be ours. Returns the descriptor or a negative errno. */
MMVI_HIDDEN int mmvi_proc_openat(int d, const char *file, int flags, mode_t mode);

/* This process's folder of directory d, opened and checked, for a series of operations (the
 * caller closes it). A descriptor or a negative errno. */
MMVI_HIDDEN int mmvi_proc_self_open(int d);

/* unlinkat() in this process's folder of directory d. 0 or a negative errno. */
MMVI_HIDDEN int mmvi_proc_unlinkat(int d, const char *file);

/* Removes the folders of dead processes in the heap folder of segment directory `dir` (or, with
 * dir NULL, in every one already open); adds the .seg files and bytes removed. */
MMVI_HIDDEN int mmvi_reap(const char *dir, uint64_t *files, uint64_t *bytes);

/* A new name "<host>-<pid>-<rand>" for this process (its folder, its live page). */
MMVI_HIDDEN void mmvi_proc_make_name(char *buf, size_t size);

/* Removes the live figures pages of dead processes in the folder open as dirfd (publish.c). */
MMVI_HIDDEN void mmvi_reap_live(int dirfd);

/* "<heap folder of directory d>/<proc>/<uuid>.seg" into buf. */
MMVI_HIDDEN int mmvi_block_file(int d, const char *proc, const char *uuid, char *buf,
                                size_t size);

#endif
