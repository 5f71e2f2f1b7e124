/* The life of one block: made, grown, shrunk, written back, what it becomes in a fork child,
 * unlinked, unmapped, forgotten. The callers in alloc.c and fork.c decide when; the functions
 * here take the heap lock only where the registry or a mapping must change atomically with
 * respect to a fork. */
#define _GNU_SOURCE
#include "block_ops.h"
#include "disk.h"
#include "fds.h"

#include "heap.h"
#include "log.h"
#include "paths.h"
#include "options.h"
#include "reaper.h"
#include "registry.h"
#include "small.h"
#include "stats_internal.h"
#include "stopworld.h"
#include "wprotect.h"
#include "writeback.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void file_name(const struct mmvi_block *b, char name[48])
{
    snprintf(name, 48, "%s.seg", b->uuid);
}

int mmvi_block_path_of(const struct mmvi_block *b, char *buf, size_t size)
{
    return mmvi_block_file(b->dir, b->proc, b->uuid, buf, size);
}

/* Every descriptor of a block's file is opened here (open_in, open_mapped) and closed with
 * mmvi_fds_close: listed meanwhile, so that a fork in another thread never leaves the child one
 * (fds.c). A descriptor or a negative errno. */
static int open_in(int d, const char *name, int flags, mode_t mode)
{
    mmvi_fds_lock();
    int fd = mmvi_fds_add(mmvi_proc_openat(d, name, flags, mode));
    mmvi_fds_unlock();
    return fd;
}

/* Our own file of b, opened in our folder. A descriptor or a negative errno. */
static int open_own(const struct mmvi_block *b, int flags)
{
    char name[48];
    if ((b->backing != MMVI_BACK_FILE && b->backing != MMVI_BACK_MIXED) || b->unlinked)
        return -ENOENT;
    file_name(b, name);
    return open_in(b->dir, name, flags, 0);
}

/* A new file of `size` bytes (fallocated) in one of our folders (the caller made sure they are
 * open: mmvi_heap_folder), named into b->dir, b->proc and b->uuid. The directory with the most
 * room first; one that refuses (full, over its budget, read-only) passes the file on to the next.
 * A descriptor or a negative errno (nothing left behind). */
static int new_file(struct mmvi_block *b, size_t size)
{
    int order[MMVI_MAX_DIRS], n = mmvi_heap_dirs_by_room(order), rc = -ENOENT;
    memcpy(b->proc, mmvi_proc.name, sizeof b->proc);
    for (int i = 0; i < n; i++) {
        char name[48];
        b->dir = (uint8_t)order[i];
        mmvi_uuid_text(b->uuid);
        file_name(b, name);
        int fd = open_in(b->dir, name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            rc = mmvi_disk_allow(fd, size);
            if (rc == 0)
                rc = mmvi_os_resize(fd, 0, size);
            if (rc == 0)
                return fd;
            mmvi_fds_close(fd);
            mmvi_proc_unlinkat(b->dir, name);
        } else {
            rc = fd;
        }
        if (rc != -ENOSPC && rc != -EDQUOT && rc != -EROFS && rc != -EACCES && rc != -EPERM)
            break; /* not about this directory's room or rights: the others would say the same */
    }
    return rc;
}

/* After a file of ours backs b: its name goes now under MMVEC_UNLINK. */
static void file_done(struct mmvi_block *b, size_t file_size)
{
    char name[48];
    b->file_size = file_size;
    b->unlinked = 0;
    if (mmvi_opt.unlink_files) {
        file_name(b, name);
        mmvi_proc_unlinkat(b->dir, name);
        b->unlinked = 1;
    }
}

/* A new file of `size` bytes in our folder, mapped shared at b->addr. */
static int make_file(struct mmvi_block *b, size_t size)
{
    char name[48];
    int fd = new_file(b, size);
    if (fd < 0)
        return fd;
    file_name(b, name);
    int rc = 0;
    void *p;
    if (rc == 0)
        rc = mmvi_os_map(fd, 0, size, (void *)b->addr, 0, &p);
    mmvi_fds_close(fd);
    if (rc < 0) {
        mmvi_proc_unlinkat(b->dir, name);
        return rc;
    }
    b->backing = MMVI_BACK_FILE;
    file_done(b, size);
    return 0;
}

/* Anonymous memory at b->addr: a block in RAM. */
static int make_ram(struct mmvi_block *b)
{
    void *p = mmap((void *)b->addr, b->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    b->backing = MMVI_BACK_ANON;
    b->file_size = 0;
    b->uuid[0] = '\0';
    return 0;
}

int mmvi_block_make(struct mmvi_block *b, int ram)
{
    if (ram)
        return make_ram(b);
    int rc = make_file(b, b->size);
    if (rc < 0) {
        /* A failed MAP_FIXED may have left a hole: fill it (or mark it lost) before reuse. */
        if (mmvi_space_refill(b->addr, b->size)) {
            pthread_mutex_lock(&mmvi_heap.lock);
            mmvi_space_lose(b->addr, b->span);
            pthread_mutex_unlock(&mmvi_heap.lock);
            b->span = 0; /* so that forgetting b gives nothing back */
        }
        return rc;
    }
    if (mmvi_opt.advice == MADV_RANDOM)
        mmvi_os_advise((void *)b->addr, b->size, MADV_RANDOM);
    mmvi_stat_mapped(1, (int64_t)b->size);
    return 0;
}

int mmvi_block_unlink(struct mmvi_block *b)
{
    char name[48];
    if ((b->backing != MMVI_BACK_FILE && b->backing != MMVI_BACK_MIXED) || b->unlinked)
        return 0;
    file_name(b, name);
    int rc = mmvi_proc_unlinkat(b->dir, name);
    b->unlinked = 1;
    if (rc == -ENOENT) { /* the file gone, or its folder out of reach (chroot) */
        int dir = mmvi_proc_self_open(b->dir);
        if (dir >= 0)
            mmvi_os_close(dir);
        rc = dir >= 0 ? 0 : -EACCES;
    }
    return rc;
}

void mmvi_block_give_space(const struct mmvi_block *b)
{
    if (b->backing != MMVI_BACK_FILE || b->frozen || !b->alone)
        return; /* a child may read the file (or part of b is not in it) */
    int rc = madvise((void *)b->addr, b->size, MADV_REMOVE) == 0 ? 0 : -errno;
    char path[4096];
    if (mmvi_block_path_of(b, path, sizeof path) != 0)
        snprintf(path, sizeof path, "(unnamed)");
    mmvi_warn_once(MMVI_WARN_UNLINK,
                   "cannot remove %s (the process lost the right to its folder, or its way "
                   "there: setuid? chroot?); %s; mmvec's reaper removes it when it next runs "
                   "as its owner",
                   path, rc == 0 ? "its disk space is given back" : "it keeps its disk space");
}

void mmvi_block_unmap(struct mmvi_block *b)
{
    /* One mmap over the whole span drops the pages and restores the reservation at once. */
    if (mmvi_space_unmap(b->addr, b->span) < 0)
        mmvi_stat_inc(MMVI_STAT_UNMAP_FAILED);
    if (b->backing != MMVI_BACK_ANON)
        mmvi_stat_mapped(-1, -(int64_t)(b->backing == MMVI_BACK_MIXED ? b->file_size : b->size));
}

void mmvi_block_forget(struct mmvi_block *b)
{
    if (b->state) { /* published: in the list and the table */
        if (b->prev)
            b->prev->next = b->next;
        else
            mmvi_heap.blocks = b->next;
        if (b->next)
            b->next->prev = b->prev;
    }
    mmvi_registry_set(b->addr, b->span, NULL);
    mmvi_space_give(b->addr, b->span);
    mmvi_je_free(b);
}

int mmvi_block_can_resize(const struct mmvi_block *b)
{
    return (b->backing == MMVI_BACK_FILE && !b->unlinked && !b->frozen) ||
           (b->backing == MMVI_BACK_ANON && !b->sealed && !b->frozen);
}

int mmvi_block_cacheable(const struct mmvi_block *b)
{
    /* Anonymous memory is ours alone even after a fork (the kernel copies on write). */
    if (b->backing == MMVI_BACK_ANON)
        return !b->sealed && !b->frozen;
    return b->fork_epoch == mmvi_heap.fork_epoch && mmvi_block_can_resize(b);
}

void mmvi_block_writeback(const struct mmvi_block *b, size_t len)
{
    int fd = open_own(b, O_RDONLY);
    if (fd < 0)
        return; /* freed meanwhile: nothing to write */
    mmvi_writeback_fd(fd, len);
    mmvi_fds_close(fd);
}

void mmvi_block_write_range(const struct mmvi_block *b, size_t off, size_t len)
{
    int fd = open_own(b, O_RDONLY);
    if (fd < 0)
        return;
    if (sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE) == 0)
        mmvi_stat_inc(MMVI_STAT_WRITEBACKS);
    mmvi_fds_close(fd);
}

int mmvi_block_unmap_range(const struct mmvi_block *b, size_t off, size_t len)
{
    if (b->backing != MMVI_BACK_FILE || b->frozen)
        return -EINVAL; /* MADV_DONTNEED would discard private pages */
    return madvise((void *)(b->addr + off), len, MADV_DONTNEED) == 0 ? 0 : -errno;
}

int mmvi_block_open_file(const struct mmvi_block *b)
{
    return open_own(b, O_RDONLY);
}

/* ---- shrink and grow ------------------------------------------------------------------------ */

/* A file may be cut only while no fork child can map it: past the new end its pages would
 * SIGBUS in the child. */
static int may_cut(const struct mmvi_block *b)
{
    return mmvi_block_cacheable(b);
}

int mmvi_block_shrink(struct mmvi_block *b, size_t size)
{
    size_t span = mmvi_granule_round(size);
    pthread_mutex_lock(&mmvi_heap.lock);
    int cut = may_cut(b);
    mmvi_space_unmap(b->addr + size, b->size - size);
    if (span < b->span) {
        mmvi_registry_set(b->addr + span, b->span - span, NULL);
        mmvi_space_give(b->addr + span, b->span - span);
        b->span = span;
    }
    if (b->backing != MMVI_BACK_ANON)
        mmvi_stat_mapped(0, -(int64_t)(b->size - size));
    b->size = size;
    pthread_mutex_unlock(&mmvi_heap.lock);
    int fd = cut && b->backing == MMVI_BACK_FILE ? open_own(b, O_RDWR) : -1;
    if (fd >= 0) { /* gives the disk space back; harmless if it fails */
        if (ftruncate(fd, (off_t)size) == 0)
            b->file_size = size;
        mmvi_fds_close(fd);
    }
    return 0;
}

/* Under the lock: the granules [addr, addr+span) that b leaves behind when it moves. */
static void vacate(uintptr_t addr, size_t span, int taken)
{
    mmvi_registry_set(addr, span, NULL);
    if (taken)
        mmvi_space_lose(addr, span);
    else
        mmvi_space_give(addr, span);
}

/* Extends b's mapping where it stands to `size` bytes (the file is already that long), inside
 * its span. mremap can only grow a mapping into unmapped space, so the reservation after it is
 * dropped first; mapping the tail on its own instead would leave two mappings that never merge
 * (the file is opened twice) and that mremap could not move later. Returns 0, or -ENOMEM with
 * *taken set when another thread's mmap took the hole in that instant (b must then move away
 * and its whole span be given up). */
static int grow_in_place(struct mmvi_block *b, size_t size, int *taken)
{
    munmap((void *)(b->addr + b->size), size - b->size);
    if (mmvi_os_remap_in_place((void *)b->addr, b->size, size) == 0)
        return 0;
    *taken = mmvi_space_refill(b->addr + b->size, size - b->size);
    return -ENOMEM;
}

/* Under the lock: moves b's mapping, grown to `size`, to new space (mremap moves page tables:
 * no data are copied). */
static int move_grown(struct mmvi_block *b, size_t size, size_t span, int taken)
{
    uintptr_t to = mmvi_space_take(span, b->align);
    void *q;
    int rc = to ? mmvi_os_remap((void *)b->addr, b->size, size, (void *)to, &q) : -ENOMEM;
    if (rc == 0) {
        taken |= mmvi_space_refill(b->addr, b->size);
        vacate(b->addr, b->span, taken);
        mmvi_registry_set(to, span, b);
        b->addr = to;
        b->span = span;
        mmvi_stat_inc(MMVI_STAT_REALLOC_MOVED);
        return 0;
    }
    if (to)
        mmvi_space_give(to, span);
    if (taken) { /* stuck next to a stranger: keep only what b still maps */
        size_t keep = mmvi_granule_round(b->size);
        mmvi_space_lose(b->addr + keep, b->span - keep);
        b->span = keep;
    }
    return rc;
}

/* Under the lock: b's mapping, its file already long enough, grown to `size`: in place when the
 * granules after it are free, else moved. */
static int map_grown(struct mmvi_block *b, size_t size)
{
    size_t span = mmvi_granule_round(size);
    int taken = 0, rc = -ENOMEM;
    if (span <= b->span || mmvi_space_extend(b->addr, b->span, span) == 0) {
        if (span > b->span) {
            mmvi_registry_set(b->addr + b->span, span - b->span, b);
            b->span = span;
        }
        rc = grow_in_place(b, size, &taken);
        if (rc == 0)
            mmvi_stat_inc(MMVI_STAT_REALLOC_IN_PLACE);
    }
    if (rc < 0)
        rc = move_grown(b, size, span, taken);
    if (rc == 0) {
        if (b->backing != MMVI_BACK_ANON)
            mmvi_stat_mapped(0, (int64_t)(size - b->size));
        b->size = size;
    }
    return rc;
}

int mmvi_block_grow(struct mmvi_block *b, size_t size)
{
    if (b->backing == MMVI_BACK_ANON) { /* RAM: the new tail is fresh zero pages */
        pthread_mutex_lock(&mmvi_heap.lock);
        int rc = map_grown(b, size);
        pthread_mutex_unlock(&mmvi_heap.lock);
        return rc;
    }
    int fd = open_own(b, O_RDWR);
    if (fd < 0)
        return fd;
    size_t old_file = b->file_size;
    int rc = size > old_file ? mmvi_disk_allow(fd, size - old_file) : 0;
    if (rc == 0 && size > old_file)
        rc = mmvi_os_resize(fd, old_file, size);
    if (rc == 0 && size > old_file)
        b->file_size = size;
    if (rc == 0 && mmvi_writeback_wanted())
        mmvi_writeback_fd(fd, b->size); /* the part written so far */
    if (rc == 0) {
        /* The mapping changes under the lock, so that a fork never sees a block half grown. */
        pthread_mutex_lock(&mmvi_heap.lock);
        rc = map_grown(b, size);
        int cut = rc < 0 && size > old_file && may_cut(b);
        pthread_mutex_unlock(&mmvi_heap.lock);
        if (cut && ftruncate(fd, (off_t)old_file) == 0) /* harmless if it fails */
            b->file_size = old_file;
    }
    mmvi_fds_close(fd);
    return rc;
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* Maps fd over b, copy-on-write. */
static int map_private(struct mmvi_block *b, int fd)
{
    void *p;
    int rc = mmvi_os_map(fd, 0, b->size, (void *)b->addr, 1, &p);
    mmvi_fds_close(fd);
    if (rc == 0)
        b->backing = MMVI_BACK_COW;
    return rc;
}

/* The file mapped over [from, to) of b, which must be one mapping, through
 * /proc/self/map_files (works for a file already unlinked; needs CAP_SYS_ADMIN). */
static int open_mapped(const struct mmvi_block *b, size_t from, size_t to, int flags)
{
    char path[80];
    snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", (unsigned long)(b->addr + from),
             (unsigned long)(b->addr + to));
    mmvi_fds_lock();
    int fd = open(path, flags | O_CLOEXEC);
    fd = mmvi_fds_add(fd < 0 ? -errno : fd);
    mmvi_fds_unlock();
    return fd;
}

int mmvi_block_open_mapping(const struct mmvi_block *b)
{
    return open_mapped(b, 0, b->size, O_RDONLY);
}

/* The parent's file of b, which the child can still reach: by name in the parent's folder
 * (open as dir), else through the mapping itself (for a file already unlinked). */
static int open_inherited(const struct mmvi_block *b, int dir)
{
    char name[48];
    file_name(b, name);
    mmvi_fds_lock();
    int fd = dir >= 0 && !b->unlinked ? openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    mmvi_fds_add(fd);
    mmvi_fds_unlock();
    return fd >= 0 ? fd : mmvi_block_open_mapping(b);
}

/* Copies b's pages into anonymous memory and puts that in its place, in one step (mremap
 * replaces the mapping atomically). */
static int copy_to_anon(struct mmvi_block *b)
{
    void *q = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return -errno;
    memcpy(q, (void *)b->addr, b->size);
    void *r;
    int rc = mmvi_os_remap(q, b->size, b->size, (void *)b->addr, &r);
    if (rc < 0) {
        munmap(q, b->size);
        return rc;
    }
    b->backing = MMVI_BACK_ANON;
    b->frozen = 0;
    return 0;
}

/* Copies b into a new file of the child's own and maps that in its place. */
static int copy_to_own_file(struct mmvi_block *b)
{
    if (mmvi_heap_folder() < 0)
        return -EIO;
    struct mmvi_block copy = *b;
    char name[48];
    int fd = new_file(&copy, b->size);
    if (fd < 0)
        return fd;
    file_name(&copy, name);
    int rc = mmvi_os_pwrite_all(fd, (void *)b->addr, b->size, 0);
    void *p;
    if (rc == 0)
        rc = mmvi_os_map(fd, 0, b->size, (void *)b->addr, 0, &p);
    mmvi_fds_close(fd);
    if (rc < 0) {
        mmvi_proc_unlinkat(copy.dir, name);
        return rc;
    }
    b->dir = copy.dir;
    memcpy(b->proc, copy.proc, sizeof b->proc);
    memcpy(b->uuid, copy.uuid, sizeof b->uuid);
    b->backing = MMVI_BACK_FILE;
    b->frozen = 0;
    file_done(b, b->size);
    return 0;
}

/* The last resort: the block is made inaccessible rather than left shared with the parent. */
static void seal(struct mmvi_block *b)
{
    mmap((void *)b->addr, b->size, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    b->backing = MMVI_BACK_ANON;
    b->sealed = 1;
}

int mmvi_block_fork_remap(struct mmvi_block *b, int dir)
{
    if (b->backing == MMVI_BACK_MIXED)
        return -EAGAIN; /* part file, part RAM: copied whole */
    if (b->backing != MMVI_BACK_FILE)
        return 0; /* private already (the kernel's copy-on-write is exactly our memory), or
                     MMVEC_FORK=shared */
    if (mmvi_opt.fork_mode == MMVI_FORK_SHARED) {
        b->backing = MMVI_BACK_PEER;
        return 0;
    }
    if (mmvi_opt.fork_mode != MMVI_FORK_PRIVATE)
        return -EAGAIN;
    int fd = open_inherited(b, dir);
    return fd < 0 ? fd : map_private(b, fd);
}

int mmvi_block_fork_copy(struct mmvi_block *b)
{
    if (b->backing != MMVI_BACK_FILE && b->backing != MMVI_BACK_MIXED)
        return 0;
    int rc = mmvi_opt.fork_mode == MMVI_FORK_COPY && b->backing == MMVI_BACK_FILE
                 ? copy_to_own_file(b) : -EAGAIN;
    if (rc < 0)
        rc = copy_to_anon(b);
    if (rc < 0)
        seal(b);
    return rc;
}

/* ---- moving a RAM block into a file ------------------------------------------------------ */

/* Chunks of a move: what it needs of extra memory at most (the chunk's page cache, before the
 * chunk's anonymous pages go), and what a writer waits for at most under write protection. */
#define MOVE_CHUNK ((size_t)8 << 20)

/* The chunk [off, off+len) of b goes into fd and the file is mapped over it: no write is lost,
 * since in that time nothing else writes it (the caller's guarantee; or `hold`: a write
 * protection descriptor that holds writers off, or MMVI_HOLD_STOP: every other thread stopped). */
static int move_chunk(struct mmvi_block *b, int fd, int hold, size_t off, size_t len)
{
    void *at = (void *)(b->addr + off), *p;
    int rc = hold >= 0 ? mmvi_wp_protect(hold, at, len, 1)
           : hold == MMVI_HOLD_STOP ? mmvi_stw_stop() : 0;
    if (rc < 0)
        return rc;
    rc = mmvi_os_pwrite_all(fd, at, len, off);
    for (int tries = 0; rc == 0 && tries < 3; tries++) /* a failed MAP_FIXED keeps the old map */
        if ((rc = mmvi_os_map(fd, off, len, at, 0, &p)) == 0)
            break;
    if (hold >= 0 && rc < 0)
        mmvi_wp_protect(hold, at, len, 0); /* still anonymous: writers go on there */
    else if (hold >= 0)
        mmvi_wp_wake(hold, at, len); /* they write into the file's pages now */
    else if (hold == MMVI_HOLD_STOP)
        mmvi_stw_resume();
    return rc;
}

int mmvi_block_to_file(struct mmvi_block *b, int hold)
{
    if (b->backing != MMVI_BACK_ANON || b->sealed)
        return -EINVAL;
    if (b->frozen && hold >= 0)
        return -EINVAL; /* write protection does not take a file's private mapping */
    struct mmvi_block f = *b;
    int fd = new_file(&f, b->size);
    if (fd < 0)
        return fd;
    int rc = hold >= 0 ? mmvi_wp_register(hold, (void *)b->addr, b->size) : 0;
    size_t off = 0;
    for (; rc == 0 && off < b->size; off += MOVE_CHUNK) {
        size_t len = b->size - off < MOVE_CHUNK ? b->size - off : MOVE_CHUNK;
        rc = move_chunk(b, fd, hold, off, len);
        if (rc < 0)
            break;
        /* Early writeback, bounded: the pages of two chunks back must be clean before we go
         * on, so that a cgroup v1 group (which does not throttle dirtying) never fills with
         * dirty pages it cannot reclaim. */
        sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
        if (off >= 2 * MOVE_CHUNK)
            sync_file_range(fd, (off_t)(off - 2 * MOVE_CHUNK), (off_t)MOVE_CHUNK,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER);
    }
    mmvi_fds_close(fd);
    b->dir = f.dir;
    memcpy(b->proc, f.proc, sizeof b->proc);
    memcpy(b->uuid, f.uuid, sizeof b->uuid);
    if (rc == 0) {
        b->backing = MMVI_BACK_FILE;
        b->frozen = 0;
        file_done(b, b->size);
        mmvi_stat_mapped(1, (int64_t)b->size);
        return 0;
    }
    if (off == 0) { /* nothing moved: b stays as it was */
        char name[48];
        file_name(&f, name);
        mmvi_proc_unlinkat(b->dir, name);
        b->uuid[0] = '\0';
        return rc;
    }
    /* Stopped half way: the data are all there, in two kinds of mapping. */
    b->backing = MMVI_BACK_MIXED;
    b->frozen = 0; /* MIXED is never grown in place nor cached anyway */
    b->file_size = off;
    b->unlinked = 0;
    mmvi_stat_mapped(1, (int64_t)off);
    return rc;
}

/* ---- frozen at a fork: one instant for every thread (fork.c) ------------------------------- */

int mmvi_block_freeze(struct mmvi_block *b)
{
    if (b->backing != MMVI_BACK_FILE)
        return -EINVAL;
    if (b->frozen && !b->folded)
        return 0; /* frozen at an earlier fork: the file still is that instant */
    /* What is still shared: all of it, or the part a fold that stopped half way put back. */
    size_t len = b->frozen ? b->folded : b->size;
    int fd = b->unlinked ? open_mapped(b, 0, len, O_RDONLY) : open_own(b, O_RDONLY);
    if (fd < 0)
        return fd;
    void *p;
    /* Atomic for every thread: a write lands before (in the file) or after (in a private page
     * copied from the file's), never nowhere. */
    int rc = mmvi_os_map(fd, 0, len, (void *)b->addr, 1, &p);
    mmvi_fds_close(fd);
    if (rc == 0) {
        b->frozen = 1;
        b->folded = 0;
    }
    return rc;
}

/* /proc/self/pagemap: present, swapped, file page (or shared anonymous). */
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_FILE (1ull << 61)

/* What a fold does with the other threads held off at most: this much of the block, so that a
 * pause stays short (its page table read is 128 KiB; the writes are only the pages copied). */
#define FOLD_SPAN ((size_t)64 << 20)

static uint64_t fold_entries[FOLD_SPAN / 4096]; /* under the heap lock */

/* Was the page copied on write since the freeze (anonymous now, in RAM or swapped)? A page
 * never written is the file's own, or not mapped at all: the file has it. */
static int copied(uint64_t e)
{
    return (e & PM_SWAP) || ((e & PM_PRESENT) && !(e & PM_FILE));
}

/* Writes into fd the pages of [off, off+len) of b copied since the freeze (all of them when
 * pagemap cannot tell): what the file lacks. Bytes written, or a negative errno. */
static long write_copied(const struct mmvi_block *b, int fd, int pagemap, size_t off, size_t len)
{
    size_t page = mmvi_page_size(), n = len / page;
    uintptr_t at = b->addr + off;
    if (pagemap < 0 || n > sizeof fold_entries / 8 ||
        pread(pagemap, fold_entries, n * 8, (off_t)(at / page * 8)) != (ssize_t)(n * 8)) {
        int rc = mmvi_os_pwrite_all(fd, (void *)at, len, off);
        return rc < 0 ? rc : (long)len;
    }
    long written = 0;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && copied(fold_entries[j]) == copied(fold_entries[i]); j++) {
        }
        if (!copied(fold_entries[i]))
            continue;
        int rc = mmvi_os_pwrite_all(fd, (void *)(at + i * page), (j - i) * page, off + i * page);
        if (rc < 0)
            return rc;
        written += (long)((j - i) * page);
    }
    return written;
}

/* One step of a fold into fd (b's own file, or a copy of it): with the other threads held off,
 * the pages of [off, off+len) copied since the freeze go into fd, and fd is mapped shared over
 * them. Adds the bytes written to *bytes. 0 or a negative errno (then nothing changed there). */
static int fold_step(struct mmvi_block *b, int fd, int hold, int pagemap, size_t off,
                     size_t len, uint64_t *bytes)
{
    void *at = (void *)(b->addr + off), *p;
    int rc = hold == MMVI_HOLD_STOP ? mmvi_stw_stop() : 0;
    if (rc < 0)
        return rc;
    long w = write_copied(b, fd, pagemap, off, len);
    rc = w < 0 ? (int)w : 0;
    for (int tries = 0; rc == 0 && tries < 3; tries++) /* a failed MAP_FIXED keeps the map */
        if ((rc = mmvi_os_map(fd, off, len, at, 0, &p)) == 0)
            break;
    if (hold == MMVI_HOLD_STOP)
        mmvi_stw_resume();
    if (rc == 0 && w > 0) {
        *bytes += (uint64_t)w;
        /* started now: a cgroup v1 group does not throttle dirtying */
        sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
    }
    return rc;
}

int mmvi_block_fold(struct mmvi_block *b, int hold, int pagemap, uint64_t *bytes)
{
    if (b->backing != MMVI_BACK_FILE || !b->frozen || hold >= 0)
        return -EINVAL;
    int fd = b->unlinked ? open_mapped(b, b->folded, b->size, O_RDWR) : open_own(b, O_RDWR);
    if (fd < 0)
        return fd;
    int rc = 0;
    while (rc == 0 && b->folded < b->size) {
        size_t off = b->folded, len = b->size - off < FOLD_SPAN ? b->size - off : FOLD_SPAN;
        if ((rc = fold_step(b, fd, hold, pagemap, off, len, bytes)) == 0)
            b->folded = off + len;
    }
    mmvi_fds_close(fd);
    if (b->folded == b->size) { /* ours alone again: it may be cut, recycled, grown in place */
        b->frozen = 0;
        b->folded = 0;
        b->fork_epoch = mmvi_heap.fork_epoch;
    }
    return rc;
}

uint64_t mmvi_block_copied(const struct mmvi_block *b, int pagemap)
{
    size_t page = mmvi_page_size();
    uint64_t copied_bytes = 0;
    for (size_t off = b->folded; pagemap >= 0 && off < b->size; off += FOLD_SPAN) {
        size_t n = (b->size - off < FOLD_SPAN ? b->size - off : FOLD_SPAN) / page;
        if (pread(pagemap, fold_entries, n * 8, (off_t)((b->addr + off) / page * 8)) !=
            (ssize_t)(n * 8))
            return copied_bytes;
        for (size_t i = 0; i < n; i++)
            copied_bytes += copied(fold_entries[i]) ? page : 0;
    }
    return copied_bytes;
}

/* Into fd, [off, off+len) of b's file (src) where b's pages were not copied on write (the
 * file's pages are b's there), in the kernel: no page passes through our mapping. Pages
 * copied meanwhile are written from memory by the fold step after, with the threads held off
 * (a page copied on write never goes back to the file's). 0 or a negative errno. */
static int copy_unwritten(const struct mmvi_block *b, int src, int fd, int pagemap, size_t off,
                          size_t len)
{
    size_t page = mmvi_page_size(), n = len / page;
    int known = pagemap >= 0 && pread(pagemap, fold_entries, n * 8,
                                      (off_t)((b->addr + off) / page * 8)) == (ssize_t)(n * 8);
    int rc = 0;
    for (size_t i = 0, j; rc == 0 && i < n; i = j) {
        for (j = i + 1; known && j < n && copied(fold_entries[j]) == copied(fold_entries[i]); j++) {
        }
        if (!known)
            j = n;
        else if (copied(fold_entries[i]))
            continue;
        loff_t in = (loff_t)(off + i * page), out = in, end = (loff_t)(off + j * page);
        while (rc == 0 && in < end) {
            ssize_t got = copy_file_range(src, &in, fd, &out, (size_t)(end - in), 0);
            rc = got > 0 ? 0 : got == 0 ? -EIO : errno == EINTR ? 0 : -errno;
        }
    }
    return rc;
}

int mmvi_block_refile(struct mmvi_block *b, int hold, int pagemap, uint64_t *bytes)
{
    if (b->backing != MMVI_BACK_FILE || !b->frozen || b->folded || hold >= 0)
        return -EINVAL;
    int src = b->unlinked ? open_mapped(b, 0, b->size, O_RDONLY) : open_own(b, O_RDONLY);
    if (src < 0)
        return src;
    struct mmvi_block f = *b;
    int fd = new_file(&f, b->size);
    if (fd < 0) {
        mmvi_fds_close(src);
        return fd;
    }
    int rc = 0;
    size_t off = 0;
    while (rc == 0 && off < b->size) {
        size_t len = b->size - off < FOLD_SPAN ? b->size - off : FOLD_SPAN;
        rc = copy_unwritten(b, src, fd, pagemap, off, len);
        if (rc == 0)
            rc = fold_step(b, fd, hold, pagemap, off, len, bytes);
        if (rc == 0)
            off += len;
    }
    mmvi_fds_close(src);
    mmvi_fds_close(fd);
    if (off == 0) { /* nothing moved: b stays frozen over its file */
        char name[48];
        file_name(&f, name);
        mmvi_proc_unlinkat(f.dir, name);
        return rc;
    }
    mmvi_block_unlink(b); /* the children's now: their mappings keep it */
    b->dir = f.dir;
    memcpy(b->proc, f.proc, sizeof b->proc);
    memcpy(b->uuid, f.uuid, sizeof b->uuid);
    b->frozen = 0;
    if (off == b->size) {
        b->fork_epoch = mmvi_heap.fork_epoch; /* no child maps the new file */
        file_done(b, b->size);
        return 0;
    }
    /* Stopped half way: the new file up to off, the rest still private (like anonymous). */
    mmvi_stat_mapped(0, -(int64_t)(b->size - off));
    b->backing = MMVI_BACK_MIXED;
    b->file_size = off;
    b->unlinked = 0;
    return rc;
}

int mmvi_block_thaw(struct mmvi_block *b, int hold)
{
    if (b->backing != MMVI_BACK_FILE || !b->frozen)
        return -EINVAL;
    /* The name goes now: the file is stale (the writes since the freeze are in private pages),
     * and the child has its copy, or maps this file itself; our mapping keeps the inode until
     * it is replaced. */
    mmvi_block_unlink(b);
    mmvi_stat_mapped(-1, -(int64_t)b->size);
    b->backing = MMVI_BACK_ANON; /* what mmvi_block_to_file moves: the memory as it is now */
    int rc = hold == MMVI_HOLD_NOTHING ? -EAGAIN : mmvi_block_to_file(b, hold);
    if (b->backing == MMVI_BACK_ANON) { /* nothing moved: a RAM block, file-backed (frozen) */
        mmvi_stat_inc(MMVI_STAT_RAM_BLOCKS_LIVE);
        mmvi_stat_add(MMVI_STAT_RAM_BYTES_LIVE, b->size);
        b->file_size = 0;
    }
    return rc;
}
