/* What happens to segment blocks at fork (MMVEC_FORK).
 *
 * A block is a MAP_SHARED file mapping, so without care a child's writes would land in the
 * parent's memory. The handlers below run with the allocator lock held across fork:
 *  - private (default): the child maps each inherited block again MAP_PRIVATE from the same file.
 *    Its writes are copy-on-write and never reach the parent; the cost is one open+mmap per block,
 *    not per byte. Not guaranteed: pages the child has not written yet still show the file, so the
 *    parent's later writes to them can be seen by the child.
 *  - copy: the child copies each block into a file of its own before the parent may go on (the
 *    parent waits): full isolation both ways, O(bytes).
 *  - shared: nothing changes: both see each other's writes.
 * In every mode the child never deletes the parent's files (it does not own them), drops the
 * parent's cached blocks, and the parent never recycles a block that existed at a fork (a child
 * may still map its file), so a child's view never changes because the parent freed and
 * allocated again. */
#define _GNU_SOURCE
#include "segblock.h"

#include "cache.h"
#include "log.h"
#include "namer.h"
#include "options.h"
#include "reaper.h"
#include "registry.h"
#include "stats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int copy_pipe[2] = {-1, -1};

static void prepare(void)
{
    pthread_mutex_lock(&mmvi_lock);
    if (mmvi_opt.fork_mode == MMVI_FORK_COPY && mmvi_blocks && pipe2(copy_pipe, O_CLOEXEC) < 0)
        copy_pipe[0] = copy_pipe[1] = -1;
}

static void parent(void)
{
    mmvi_fork_epoch++;
    if (copy_pipe[0] >= 0) {
        /* Wait until the child has its copies (it closes its end; EOF also if it died). */
        char c;
        close(copy_pipe[1]);
        while (read(copy_pipe[0], &c, 1) < 0 && errno == EINTR) {
        }
        close(copy_pipe[0]);
        copy_pipe[0] = copy_pipe[1] = -1;
    }
    pthread_mutex_unlock(&mmvi_lock);
}

/* Maps b again from its file, copy-on-write. */
static int remap_private(struct mmvi_block *b)
{
    char path[4200];
    int fd, rc = b->unlinked ? -ENOENT : mmvi_block_path_of(b, path, sizeof path);
    if (rc == 0)
        rc = mmvi_os_open(path, &fd);
    if (rc < 0)
        return rc;
    void *p;
    rc = mmvi_os_map(fd, 0, b->size, (void *)b->addr, 1, &p);
    mmvi_os_close(fd);
    return rc;
}

/* Copies b into a new file of the child's own and maps that in its place. */
static int copy_to_own_file(struct mmvi_block *b)
{
    if (!mmvi_proc.ready && mmvi_proc_open(mmvi_proc.dir) < 0)
        return -EIO;
    char path[4200];
    struct mmvi_block copy = *b;
    memcpy(copy.proc, mmvi_proc.name, sizeof copy.proc);
    int fd, rc;
    mmvi_uuid_text(copy.uuid);
    rc = mmvi_block_path_of(&copy, path, sizeof path);
    if (rc == 0)
        rc = mmvi_os_create(path, b->size, &fd);
    if (rc < 0)
        return rc;
    for (size_t done = 0; rc == 0 && done < b->size;) {
        ssize_t w = pwrite(fd, (char *)b->addr + done, b->size - done, (off_t)done);
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else
            done += (size_t)w;
    }
    void *p;
    if (rc == 0)
        rc = mmvi_os_map(fd, 0, b->size, (void *)b->addr, 0, &p);
    mmvi_os_close(fd);
    if (rc < 0) {
        unlink(path);
        return rc;
    }
    memcpy(b->proc, copy.proc, sizeof b->proc);
    memcpy(b->uuid, copy.uuid, sizeof b->uuid);
    b->incarnation = mmvi_proc.incarnation;
    if (mmvi_opt.unlink_files) {
        unlink(path);
        b->unlinked = 1;
    } else {
        b->unlinked = 0;
    }
    return 0;
}

static void child(void)
{
    mmvi_proc_forget();
    struct mmvi_evicted ev = {NULL};
    mmvi_cache_drain(&ev);
    for (struct mmvi_block *b = ev.head, *next; b; b = next) {
        next = b->cache_next;
        mmvi_segblock_unmap(b);
        mmvi_block_forget(b);
    }
    int failed = 0;
    for (struct mmvi_block *b = mmvi_blocks, *next; b; b = next) {
        next = b->next;
        if (b->state != MMVI_BLOCK_LIVE) { /* a parent thread was freeing it */
            mmvi_segblock_unmap(b);
            mmvi_block_forget(b);
            continue;
        }
        if (mmvi_opt.fork_mode == MMVI_FORK_COPY || (b->unlinked && mmvi_opt.fork_mode == MMVI_FORK_PRIVATE))
            failed |= copy_to_own_file(b) < 0;
        else if (mmvi_opt.fork_mode == MMVI_FORK_PRIVATE)
            failed |= remap_private(b) < 0;
    }
    if (copy_pipe[1] >= 0) {
        close(copy_pipe[0]);
        close(copy_pipe[1]);
        copy_pipe[0] = copy_pipe[1] = -1;
    }
    if (failed)
        mmvi_log(1, "warning: after fork, some blocks could not be separated from the parent's "
                    "(MMVEC_FORK=%s); they stay shared",
                 mmvi_opt.fork_mode == MMVI_FORK_COPY ? "copy" : "private");
    mmvi_alloc_after_fork_child();
    pthread_mutex_unlock(&mmvi_lock);
}

void mmvi_fork_register(void)
{
    static int done;
    if (!__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
        pthread_atfork(prepare, parent, child);
}
