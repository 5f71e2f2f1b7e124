/* What blocks become at fork (MMVEC_FORK). The handlers hold the heap lock across fork (taken
 * before jemalloc's: see alloc.c's route_init), so the child finds every record consistent; what
 * happens to each block is block.c's (freeze, fold, thaw, fork_remap, fork_copy).
 *
 * Only a block backed by our own file is shared with the child by the kernel; anonymous and
 * copy-on-write blocks (inherited ones among them, at any depth) are already private, and the
 * kernel's own copy-on-write gives the child exactly our memory.
 *  - private (default): in prepare, each of our file blocks is frozen: mapped MAP_PRIVATE over
 *    its own file, which no write reaches from that instant (block.c). The child keeps that
 *    mapping as it inherits it: the file is the fork's instant and the pages written since
 *    are copied by fork itself, so the child sees exactly our memory, whatever we and our other
 *    threads write later. Ours go into private pages meanwhile: RAM, as a RAM block's are,
 *    and as glibc's heap would after a fork. When memory gets tight (mmvi_fork_settle), they
 *    are folded back into the files if no child maps them any more (it exited or exec'd: the
 *    fork lock below), else the blocks holding most of them move into new files, leaving the
 *    old ones to the children. realloc folds its block back at once to grow it in place.
 *    Folding only when tight is what a fork+exec loop needs: a fold costs a write of the pages
 *    copied since and a fault on each page touched after it, twice what glibc's copy-on-write
 *    costs; frozen, a block costs what glibc's heap does (bench/README.md).
 *  - copy: the child copies each of our files into a file of its own, while we wait; with other
 *    threads running, the files are frozen for the copy and thawed after it: one instant.
 *  - shared: nothing changes: both see each other's writes.
 * A block that cannot be separated so (its file unreachable, the disk full) is copied into
 * anonymous memory in the child; if even that fails it is made inaccessible there: no mode but
 * shared ever leaves a child writing into our memory. The child never deletes our files, drops
 * our cached blocks, and we never recycle or cut a block that a child may map.
 *
 * The fork lock: a file in our folder (MMVI_FORK_LOCK). At each fork, prepare opens it anew,
 * takes a shared flock on that description and maps one page of it; the child inherits the
 * page (and its children after it), we unmap ours. The flock lives as long as some descendant
 * still maps that page: until it exits or execs, whatever descriptors it closes. No child maps
 * our frozen files exactly when an exclusive flock can be taken. */
#define _GNU_SOURCE
#include "advise.h"
#include "block_ops.h"
#include "cache.h"
#include "fds.h"
#include "heap.h"
#include "log.h"
#include "options.h"
#include "pressure.h"
#include "spill.h"
#include "publish.h"
#include "reaper.h"
#include "stats_internal.h"
#include "stopworld.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
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
            mmvi_fds_close(fd);
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
            int rc = mmvi_block_thaw(b, mmvi_stw_usable() ? MMVI_HOLD_STOP : MMVI_HOLD_NOTHING);
            if (rc < 0 && b->backing == MMVI_BACK_ANON)
                mmvi_warn_once(MMVI_WARN_SPILL, "after a fork's copy, a block could not go back "
                               "to a file (%s): it stays in RAM", strerror(-rc));
        }
}

/* ---- MMVEC_FORK=private: frozen at the fork, folded back when the children are gone ----- */

/* The fork lock's state, under the heap lock. */
static struct {
    int dir;          /* the segment directory whose folder holds it (-1: not made yet) */
    void *page;       /* from prepare to the parent handler: the child's hold on it */
    uint64_t next_ms; /* when mmvi_fork_settle may look again */
} forks = {-1, NULL, 0};

#define SETTLE_MS 20 /* how often at most memory is looked at for frozen blocks */

/* A hold on the fork lock for the child to inherit, or NULL (nothing is frozen then). */
static void *hold_for_child(void)
{
    for (int d = 0; forks.dir < 0 && d < mmvi_heap.ndirs; d++)
        if (mmvi_proc.d[d].ready)
            forks.dir = d;
    if (forks.dir < 0)
        return NULL;
    int fd = mmvi_proc_openat(forks.dir, MMVI_FORK_LOCK, O_RDONLY | O_CREAT, 0600);
    if (fd < 0)
        return NULL;
    void *m = flock(fd, LOCK_SH | LOCK_NB) == 0
                  ? mmap(NULL, mmvi_page_size(), PROT_NONE, MAP_SHARED, fd, 0) : MAP_FAILED;
    mmvi_os_close(fd);
    return m == MAP_FAILED ? NULL : m;
}

/* Does no descendant of ours map one of our frozen files any more? */
static int children_gone(void)
{
    int fd = forks.dir < 0 ? -ENOENT : mmvi_proc_openat(forks.dir, MMVI_FORK_LOCK, O_RDONLY, 0);
    if (fd < 0)
        return fd == -ENOENT;
    int gone = flock(fd, LOCK_EX | LOCK_NB) == 0;
    mmvi_os_close(fd); /* drops the lock too */
    return gone;
}

/* In prepare, with the child's hold on the fork lock taken: each file block frozen for the child
 * (a block whose file cannot be reached goes the old way: fork_remap in the child). */
static void freeze_for_private(int locked)
{
    if (mmvi_opt.fork_mode != MMVI_FORK_PRIVATE)
        return;
    int failed = 0, err = ENOLCK;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next) {
        if (b->state != MMVI_BLOCK_LIVE || b->backing != MMVI_BACK_FILE)
            continue;
        int rc = locked ? mmvi_block_freeze(b) : -ENOLCK;
        if (rc == 0)
            __atomic_store_n(&mmvi_heap.unsettled, MMVI_UNSETTLED_NEAR, __ATOMIC_RELAXED);
        else
            failed++, err = -rc;
    }
    if (failed)
        mmvi_warn_once(MMVI_WARN_FORK_FREEZE, "fork: %d file block(s) could not be frozen (%s): "
                       "the child may see them change after the fork",
                       failed, strerror(err));
}

/* How a fold or a thaw may hold other threads off now: MMVI_HOLD_NONE when none runs but the
 * advisor (and the caller is not the advisor), else stopping them, else MMVI_HOLD_NOTHING. */
static int settle_hold(int advisor)
{
    if (!advisor && (__libc_single_threaded || mmvi_advise_alone()))
        return MMVI_HOLD_NONE;
    return mmvi_stw_usable() ? MMVI_HOLD_STOP : MMVI_HOLD_NOTHING;
}

/* Is some live block still frozen over its file? */
static int any_frozen(void)
{
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->state == MMVI_BLOCK_LIVE && b->backing == MMVI_BACK_FILE && b->frozen)
            return 1;
    return 0;
}

/* The children are gone: every frozen block folds back into its file. */
static void fold_all(int hold)
{
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next) {
        if (b->backing != MMVI_BACK_FILE || !b->frozen || b->state == MMVI_BLOCK_DYING)
            continue;
        uint64_t bytes = 0;
        int rc = mmvi_block_fold(b, hold, pagemap, &bytes);
        mmvi_stat_add(MMVI_STAT_FORK_FOLD_BYTES, bytes);
        if (rc == 0)
            mmvi_stat_inc(MMVI_STAT_FORK_FOLDS);
        else
            mmvi_log(2, "fold of %p after fork stopped at %zu B: %s", (void *)b->addr, b->folded,
                     strerror(-rc));
        if (rc == -ETIMEDOUT || rc == -EBUSY)
            break; /* threads cannot be stopped now: the next look tries again */
    }
    if (pagemap >= 0)
        close(pagemap);
}

/* Moves frozen b, which holds `copied` bytes written since its fork, into a new file. */
static int refile(struct mmvi_block *b, uint64_t copied, int hold, int pagemap)
{
    uint64_t bytes = 0;
    int rc = b->folded ? -EAGAIN : mmvi_block_refile(b, hold, pagemap, &bytes);
    if (rc < 0 && b->backing == MMVI_BACK_FILE) /* nothing moved: the plain way */
        rc = mmvi_block_thaw(b, hold);
    if (rc < 0) {
        mmvi_warn_once(MMVI_WARN_SPILL, "memory is tight but a block frozen at a fork could not "
                       "move to a new file (%s)", strerror(-rc));
        return rc;
    }
    mmvi_stat_inc(MMVI_STAT_FORK_THAWS);
    mmvi_pressure_relieved(copied);
    mmvi_log(2, "memory tight, children alive: moved frozen %p %zu B (%llu B written since the "
             "fork) to a new file", (void *)b->addr, b->size, (unsigned long long)copied);
    return 0;
}

/* Children still map the files, and memory is tight: our writes since the fork are in RAM,
 * which nothing else can relieve. Frozen blocks move into new files until it is not tight:
 * first those mostly rewritten (a move costs little more than what it gives back), then any
 * that holds such writes. Two passes over the blocks' page tables at most. */
static void thaw_tight(int hold)
{
    mmvi_pressure_refresh(0);
    size_t excess = mmvi_pressure_excess(0);
    int pagemap = excess && mmvi_heap_folder() == 0
                      ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
    uint64_t moved = 0;
    int ok = pagemap >= 0;
    for (int pass = 0; ok && pass < 2 && moved < excess; pass++)
        for (struct mmvi_block *b = mmvi_heap.blocks; ok && b && moved < excess; b = b->next) {
            if (b->state != MMVI_BLOCK_LIVE || b->backing != MMVI_BACK_FILE || !b->frozen)
                continue;
            uint64_t copied = mmvi_block_copied(b, pagemap);
            if (copied == 0 || (pass == 0 && copied < b->size / 2))
                continue;
            ok = refile(b, copied, hold, pagemap) == 0;
            moved += ok ? copied : 0;
        }
    if (pagemap >= 0)
        close(pagemap);
}

void mmvi_fork_settle(int advisor)
{
    if (!__atomic_load_n(&mmvi_heap.unsettled, __ATOMIC_RELAXED) ||
        mmvi_heap.state != MMVI_HEAP_READY)
        return;
    uint64_t now = mmvi_now_ms();
    if (now < forks.next_ms)
        return;
    forks.next_ms = now + SETTLE_MS;
    int frozen = any_frozen(), ram = mmvi_stat_get(MMVI_STAT_RAM_BLOCKS_LIVE) > 0;
    if (!frozen && (!ram || children_gone())) { /* nothing left that a fork makes grow */
        __atomic_store_n(&mmvi_heap.unsettled, 0, __ATOMIC_RELAXED);
        return;
    }
    mmvi_pressure_refresh(0);
    if (!mmvi_pressure_excess(0)) {
        /* Frozen blocks hold their writes in RAM, as RAM blocks do, while that fits. The
         * advisor looks every 20 ms only when usage is within a quarter of the limit of the
         * mark (writes at memory speed fill that in a few rounds), else at its 100 ms rounds:
         * a look reads the limit's files, about ten system calls. */
        struct mmvi_memview v;
        uint64_t mark;
        mmvi_pressure_view(&v, &mark);
        int near = v.limit != UINT64_MAX && v.usage + v.limit / 4 >= mark;
        __atomic_store_n(&mmvi_heap.unsettled, near ? MMVI_UNSETTLED_NEAR : MMVI_UNSETTLED,
                         __ATOMIC_RELAXED);
        return;
    }
    __atomic_store_n(&mmvi_heap.unsettled, MMVI_UNSETTLED_NEAR, __ATOMIC_RELAXED);
    /* RAM blocks first: while children live, each page we write is copied, and no allocation
     * of ours (where spills happen otherwise) may come to move them. */
    if (ram)
        mmvi_spill_relieve(0, NULL);
    if (!frozen)
        return;
    int hold = settle_hold(advisor);
    if (hold == MMVI_HOLD_NOTHING) {
        mmvi_warn_once(MMVI_WARN_FORK_FOLD, "memory is tight, but blocks frozen at a fork keep "
                       "their later writes in RAM: other threads cannot be stopped to put them "
                       "into files (SIGPWR in use, or a thread blocks it)");
        return;
    }
    if (children_gone())
        fold_all(hold);
    else
        thaw_tight(hold);
}

int mmvi_fork_unfreeze(struct mmvi_block *b)
{
    if (b->backing != MMVI_BACK_FILE || !b->frozen || !children_gone())
        return -EBUSY;
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t bytes = 0;
    int rc = mmvi_block_fold(b, MMVI_HOLD_NONE, pagemap, &bytes);
    if (pagemap >= 0)
        close(pagemap);
    mmvi_stat_add(MMVI_STAT_FORK_FOLD_BYTES, bytes);
    if (rc == 0)
        mmvi_stat_inc(MMVI_STAT_FORK_FOLDS);
    return rc;
}

static void prepare(void)
{
    int cs = mmvi_nocancel_begin();
    pthread_mutex_lock(&mmvi_heap.lock);
    cancel_state = cs;
    /* Once files exist (then the advisor runs, and settles), children hold our fork lock: RAM
     * blocks, which the kernel copies on write while they live, and frozen ones are watched. */
    forks.page = mmvi_opt.fork_mode != MMVI_FORK_SHARED ? hold_for_child() : NULL;
    freeze_for_private(forks.page != NULL); /* no lock: nothing could ever fold them back */
    if (forks.page && mmvi_stat_get(MMVI_STAT_RAM_BLOCKS_LIVE))
        __atomic_store_n(&mmvi_heap.unsettled, MMVI_UNSETTLED_NEAR, __ATOMIC_RELAXED);
    if (child_will_copy() && pipe2(copy_pipe, O_CLOEXEC) < 0)
        copy_pipe[0] = copy_pipe[1] = -1;
    if (copy_pipe[0] >= 0)
        freeze_files(); /* only with the pipe: the thaw must wait for the child's copy */
    mmvi_fds_prepare(); /* last: the steps above open files too */
}

static void parent(void)
{
    mmvi_fds_parent(); /* first: the thaw below opens files */
    mmvi_heap.fork_epoch++;
    if (forks.page) { /* the child holds the lock now (or fork failed: nobody does) */
        munmap(forks.page, mmvi_page_size());
        forks.page = NULL;
    }
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
    mmvi_fds_child(); /* first: the other threads' descriptors of our files are not ours */
    mmvi_advise_forget(); /* its thread stayed in the parent */
    drop_unused();
    /* Frozen blocks are exactly the parent's memory at the fork: copy-on-write over its file,
     * which it never writes while we (or our children) hold its fork lock: the page it mapped
     * for us, which we keep. */
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->backing == MMVI_BACK_FILE && b->frozen && mmvi_opt.fork_mode == MMVI_FORK_PRIVATE) {
            b->backing = MMVI_BACK_COW;
            b->frozen = 0;
            b->folded = 0;
        }
    forks.page = NULL;
    forks.dir = -1;
    forks.next_ms = 0;
    __atomic_store_n(&mmvi_heap.unsettled, 0, __ATOMIC_RELAXED);
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
