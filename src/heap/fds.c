/* Descriptors of our own files, open for a moment, that a fork child must not keep.
 *
 * Why. The large path opens a block's file without the heap lock while it makes, grows or cuts
 * the block, or starts its writeback, and the advisor after its round drops pages through one.
 * A fork in another thread at that moment gives the child a copy of the descriptor that nothing
 * in the child closes: it keeps the file's disk space after we unlink it, for as long as the
 * child lives (a daemon's worker, say), and the program never asked for it. Linux has no
 * O_CLOFORK.
 *
 * How. Each such descriptor is opened and listed in one step, and unlisted and closed in one
 * step, under this module's lock, which fork's prepare handler also takes. A child so inherits a
 * descriptor only while it is listed, and closes every one listed (the threads that opened them
 * are not in the child). The lock is never held across anything that waits for the disk (the
 * writeback, a fallocate), only across the open and the close: fork never waits for the disk.
 *
 * Lock order: mmvi_heap.lock, then this one (fork's prepare takes both in that order; nothing
 * waits for the heap lock while holding this one). */
#define _GNU_SOURCE
#include "fds.h"

#include "log.h"

#include <pthread.h>
#include <unistd.h>

#define MAX_FDS 256 /* open at once: more threads than that in the large path at one instant */

static struct {
    pthread_mutex_t lock;
    unsigned n;        /* listed below (lock) */
    int fd[MAX_FDS];   /* (lock) */
    int overflowed;    /* warned once (lock) */
} fds = {.lock = PTHREAD_MUTEX_INITIALIZER};

void mmvi_fds_lock(void)
{
    pthread_mutex_lock(&fds.lock);
}

void mmvi_fds_unlock(void)
{
    pthread_mutex_unlock(&fds.lock);
}

int mmvi_fds_add(int fd)
{
    if (fd < 0)
        return fd;
    if (fds.n < MAX_FDS) {
        fds.fd[fds.n++] = fd;
    } else if (!fds.overflowed) {
        fds.overflowed = 1;
        mmvi_log(1, "warning: more than %d of mmvec's files open at once: a fork now may leave "
                    "the child a descriptor", MAX_FDS);
    }
    return fd;
}

void mmvi_fds_close(int fd)
{
    if (fd < 0)
        return;
    pthread_mutex_lock(&fds.lock);
    for (unsigned i = 0; i < fds.n; i++)
        if (fds.fd[i] == fd) {
            fds.fd[i] = fds.fd[--fds.n];
            break;
        }
    mmvi_os_close(fd);
    pthread_mutex_unlock(&fds.lock);
}

void mmvi_fds_prepare(void)
{
    pthread_mutex_lock(&fds.lock);
}

void mmvi_fds_parent(void)
{
    pthread_mutex_unlock(&fds.lock);
}

void mmvi_fds_child(void)
{
    for (unsigned i = 0; i < fds.n; i++)
        mmvi_os_close(fds.fd[i]);
    fds.n = 0;
    pthread_mutex_unlock(&fds.lock);
}
