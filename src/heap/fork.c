/* What blocks become at fork (MMVEC_FORK). The handlers hold the heap lock across fork (taken
 * before jemalloc's: see alloc.c's route_init), so the child finds every record consistent; what
 * happens to each block is block.c's (mmvi_block_fork_remap, mmvi_block_fork_copy).
 *
 * Only a block backed by our own file is shared with the child by the kernel; anonymous and
 * copy-on-write blocks (inherited ones among them, at any depth) are already private, and the
 * kernel's own copy-on-write gives the child exactly our memory.
 *  - private (default): the child maps each of our files again MAP_PRIVATE. Its writes never
 *    reach us. Not guaranteed: pages the child has not touched yet still show the file, so our
 *    later writes to them can show in the child (docs/interposer.md).
 *  - copy: the child copies each of our files into a file of its own, while we wait; with other
 *    threads running, the files are frozen for the copy (freeze_files below): one instant.
 *  - shared: nothing changes: both see each other's writes.
 * A block that cannot be separated so (its file unreachable, the disk full) is copied into
 * anonymous memory in the child; if even that fails it is made inaccessible there: no mode but
 * shared ever leaves a child writing into our memory. The child never deletes our files, drops
 * our cached blocks, and we never recycle or cut a block that existed at a fork. */
#define _GNU_SOURCE
#include "advise.h"
#include "block_ops.h"
#include "cache.h"
#include "heap.h"
#include "log.h"
#include "options.h"
#include "publish.h"
#include "reaper.h"
#include "stats_internal.h"
#include "stopworld.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

/* While the child separates its blocks by copying them, we wait: our forking thread at least
 * writes nothing meanwhile. */
static int copy_pipe[2] = {-1, -1};
static int cancel_state;

/* Does the child have to copy (rather than remap) some block? In private mode only a block
 * whose file is already unlinked (MMVEC_UNLINK) can need it, and only where the mapping's own
 * entry in /proc/self/map_files cannot be opened (that needs CAP_SYS_ADMIN): one try tells,
 * since the child has our credentials. */
static int child_will_copy(void)
{
    if (mmvi_opt.fork_mode == MMVI_FORK_COPY)
        return 1;
    if (mmvi_opt.fork_mode != MMVI_FORK_PRIVATE)
        return 0;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->state == MMVI_BLOCK_LIVE && b->backing == MMVI_BACK_MIXED)
            return 1;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->state == MMVI_BLOCK_LIVE && b->backing == MMVI_BACK_FILE && b->unlinked) {
            int fd = mmvi_block_open_mapping(b);
            if (fd < 0)
                return 1;
            close(fd);
            return 0;
        }
    return 0;
}

/* MMVEC_FORK=copy while other threads run: the forking thread waits for the child's copy, but
 * the others would go on writing into the files the child is copying (a torn copy, several
 * moments). So each file block is frozen first (mapped private over its own file: from this
 * instant no write reaches the file, and the pages written since are copied by fork itself), and
 * thawed in the parent once the child has its copy: moved into a new file with the other threads
 * stopped for each chunk (stopworld.h), as a spill is. Where threads cannot be stopped (the
 * program owns SIGPWR), the copy is not frozen, and that is said once. */
static int frozen;

static void freeze_files(void)
{
    frozen = 0;
    if (mmvi_opt.fork_mode != MMVI_FORK_COPY || __libc_single_threaded || mmvi_advise_alone())
        return;
    int unfrozen = 0;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next) {
        if (b->state != MMVI_BLOCK_LIVE || b->backing != MMVI_BACK_FILE)
            continue;
        if (mmvi_stw_usable() && mmvi_block_freeze(b) == 0)
            frozen++;
        else
            unfrozen++;
    }
    if (unfrozen)
        mmvi_warn_once(MMVI_WARN_FORK_COPY, "MMVEC_FORK=copy: %d block(s) copied at fork while "
                       "other threads may write them (their files could not be frozen, or threads "
                       "cannot be stopped: SIGPWR in use): the child's copy may mix moments",
                       unfrozen);
}

static void thaw_files(void)
{
    for (struct mmvi_block *b = mmvi_heap.blocks; frozen && b; b = b->next)
        if (b->backing == MMVI_BACK_FILE && b->frozen) {
            frozen--;
            int rc = mmvi_block_thaw(b, mmvi_stw_usable() ? MMVI_HOLD_STOP : MMVI_HOLD_NONE);
            if (rc < 0 && b->backing == MMVI_BACK_ANON)
                mmvi_warn_once(MMVI_WARN_SPILL, "after a fork's copy, a block could not go back "
                               "to a file (%s): it stays in RAM", strerror(-rc));
        }
}

static void prepare(void)
{
    int cs = mmvi_nocancel_begin();
    pthread_mutex_lock(&mmvi_heap.lock);
    cancel_state = cs;
    if (child_will_copy() && pipe2(copy_pipe, O_CLOEXEC) < 0)
        copy_pipe[0] = copy_pipe[1] = -1;
    if (copy_pipe[0] >= 0)
        freeze_files(); /* only with the pipe: the thaw must wait for the child's copy */
}

static void parent(void)
{
    mmvi_heap.fork_epoch++;
    if (copy_pipe[0] >= 0) {
        /* Wait until the child has its copies (it closes its end; EOF also if it died). */
        char c;
        close(copy_pipe[1]);
        while (read(copy_pipe[0], &c, 1) < 0 && errno == EINTR) {
        }
        close(copy_pipe[0]);
        copy_pipe[0] = copy_pipe[1] = -1;
        thaw_files();
    }
    int cs = cancel_state;
    pthread_mutex_unlock(&mmvi_heap.lock);
    mmvi_nocancel_end(cs);
}

/* Our cached blocks and those a parent thread was freeing are not the child's. */
static void drop_unused(void)
{
    struct mmvi_evicted ev = {NULL};
    mmvi_cache_drain(&ev);
    for (struct mmvi_block *b = ev.head, *next; b; b = next) {
        next = b->cache_next;
        mmvi_block_unmap(b);
        mmvi_block_forget(b);
    }
    for (struct mmvi_block *b = mmvi_heap.blocks, *next; b; b = next) {
        next = b->next;
        if (b->state != MMVI_BLOCK_LIVE) {
            mmvi_block_unmap(b);
            mmvi_block_forget(b);
        }
    }
}

static void child(void)
{
    mmvi_advise_forget(); /* its thread stayed in the parent */
    drop_unused();
    /* First what the parent's folder serves (its descriptor is still open here), then what
     * needs a copy, made in the child's own folder. */
    int copies = 0, sealed = 0;
    int private = mmvi_heap.blocks && mmvi_opt.fork_mode == MMVI_FORK_PRIVATE;
    int dirs[MMVI_MAX_DIRS]; /* the parent's folders, opened once, not per block */
    for (int d = 0; d < MMVI_MAX_DIRS; d++)
        dirs[d] = private && d < mmvi_heap.ndirs ? mmvi_proc_self_open(d) : -1;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        copies += mmvi_block_fork_remap(b, dirs[b->dir]) < 0;
    for (int d = 0; d < MMVI_MAX_DIRS; d++)
        if (dirs[d] >= 0)
            close(dirs[d]);
    mmvi_proc_forget();
    mmvi_live_forget();
    for (struct mmvi_block *b = mmvi_heap.blocks; copies && b; b = b->next)
        sealed += mmvi_block_fork_copy(b) < 0;
    if (copy_pipe[1] >= 0) {
        close(copy_pipe[0]);
        close(copy_pipe[1]);
        copy_pipe[0] = copy_pipe[1] = -1;
    }
    if (sealed)
        mmvi_log(1, "warning: after fork, %d block(s) could neither be remapped nor copied "
                    "(out of memory): they are inaccessible in the child", sealed);
    /* Recount: blocks copied into anonymous memory above are RAM blocks now. */
    size_t ram = 0;
    uint64_t ram_bytes = 0;
    mmvi_heap.nblocks = 0;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next) {
        mmvi_heap.nblocks++;
        b->busy = 0; /* a parent thread's realloc does not go on in the child */
        if (b->backing == MMVI_BACK_ANON) {
            ram++;
            ram_bytes += b->size;
        }
    }
    __atomic_store_n(&mmvi_stat_table[MMVI_STAT_RAM_BLOCKS_LIVE], ram, __ATOMIC_RELAXED);
    __atomic_store_n(&mmvi_stat_table[MMVI_STAT_RAM_BYTES_LIVE], ram_bytes, __ATOMIC_RELAXED);
    int cs = cancel_state;
    pthread_mutex_unlock(&mmvi_heap.lock);
    mmvi_nocancel_end(cs);
}

void mmvi_fork_register(void)
{
    static int done;
    if (!__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
        pthread_atfork(prepare, parent, child);
}
