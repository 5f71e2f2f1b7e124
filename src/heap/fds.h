/* Descriptors of our own files that a fork child must not keep (fds.c). */
#ifndef MMVEC_FDS_H
#define MMVEC_FDS_H

#include "os.h"

/* Around an open of one of our files (and whatever descriptors it opens and closes on the way,
 * such as its folder's): the open and its listing are one step for fork. */
MMVI_HIDDEN void mmvi_fds_lock(void);
MMVI_HIDDEN void mmvi_fds_unlock(void);

/* Under mmvi_fds_lock: lists fd (a negative errno passes through). Returns fd. */
MMVI_HIDDEN int mmvi_fds_add(int fd);

/* Unlists and closes a descriptor mmvi_fds_add listed (errno kept). */
MMVI_HIDDEN void mmvi_fds_close(int fd);

/* fork's handlers (fork.c): prepare takes the lock (after the heap lock), the parent gives it
 * back, the child closes what is listed (other threads' descriptors, not its own) and gives it
 * back. */
MMVI_HIDDEN void mmvi_fds_prepare(void);
MMVI_HIDDEN void mmvi_fds_parent(void);
MMVI_HIDDEN void mmvi_fds_child(void);

#endif
