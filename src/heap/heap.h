/* The heap: the allocator's state in one place, and which lock guards what.
 *
 *   mmvi_route (read by every malloc/free, written once at start): a cache line of its own,
 *       so that the lock and the counters written on the large path never invalidate it.
 *   mmvi_heap.lock guards everything else in mmvi_heap, the registry's space bitmap
 *       (registry.c), the cache (cache.c) and the process folder (reaper.c). It is held for
 *       bookkeeping only: files are made, grown, written back and removed outside it, and a
 *       mapping changes under it only where a fork must never see it half done.
 *   A block's record is changed by the thread that owns the block (the caller of malloc, free
 *   or realloc with its address) or under the lock; the fork handlers run with the lock held.
 * Nothing here is touched by the small path. */
#ifndef MMVEC_HEAP_H
#define MMVEC_HEAP_H

#include "block.h"
#include "cache.h"
#include "os.h"
#include "reaper.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* UNTRIED: no large request yet. READY: blocks are made (RAM or files; the process folder is
 * made at the first file). UNUSABLE: files cannot be made here (init_errno says why): large
 * requests go to jemalloc. CLOSED: the process is exiting. */
enum mmvi_heap_state { MMVI_HEAP_UNTRIED, MMVI_HEAP_READY, MMVI_HEAP_UNUSABLE, MMVI_HEAP_CLOSED };

struct mmvi_heap {
    pthread_mutex_t lock;
    struct mmvi_block *blocks; /* every block: live, cached, dying */
    size_t nblocks;            /* records alive */
    size_t max_blocks;         /* from vm.max_map_count: each block costs the process two maps */
    size_t sparse_blocks;      /* blocks advised MADV_RANDOM (MMVEC_ADVICE=auto) */
    uint64_t fork_epoch;       /* bumped in the parent at each fork: older blocks never recycle */
    enum mmvi_heap_state state;
    int init_errno;
    int files_failing;         /* relaxed atomic, no lock: the last attempt at a file failed */
    size_t ram_cached;         /* bytes of cached RAM blocks still holding pages (relaxed,
                                  read by the same hook; cache.c) */
    int wp;                    /* write protection for moving blocks while other threads run:
                                  0 not tried yet, 1 works, else the negative errno (spill.c) */
    int ndirs;                 /* the segment directories (MMVEC_DIR "A:B", or the default), */
    char dirs[MMVI_MAX_DIRS][4096]; /* absolute, resolved at start; */
    int dir_err[MMVI_MAX_DIRS];     /* the negative errno that made one unusable (else 0) */
    unsigned dir_turn;         /* relaxed atomic: rotates among directories with as much room */
    int unsettled;             /* relaxed atomic: after a fork, blocks frozen or copied on write
                                  may need to go into files (fork.c): MMVI_UNSETTLED, or
                                  MMVI_UNSETTLED_NEAR when memory is close to tight; 0 none */
};

#define MMVI_UNSETTLED 1
#define MMVI_UNSETTLED_NEAR 2

extern struct mmvi_heap mmvi_heap MMVI_HIDDEN;

/* Takes the lock and makes sure the large path is set up (reserve, process folder; a fork
 * child's own folder at its first block), then lets the cache decay into *ev. Returns 0 with the
 * lock held, or the errno that keeps large blocks off (the lock is then released). */
MMVI_HIDDEN int mmvi_heap_enter(struct mmvi_evicted *ev);

/* Tears down blocks that left the cache: files and mappings without the lock (dropping dirty
 * pages is the slow part), then their records under it. */
MMVI_HIDDEN void mmvi_heap_teardown(struct mmvi_evicted *ev);

/* Under the lock: a new record with its space reserved, or NULL with *err (E2BIG: more than
 * the whole reservation, which no memory of any kind could hold either). */
MMVI_HIDDEN struct mmvi_block *mmvi_heap_new_record(size_t size, size_t align, int *err);

/* Under the lock: makes sure this process's folders exist, for a file (the first file of the
 * process, or of a fork child), in every segment directory that can have one. 0 when at least
 * one can, else a negative errno (the heap is then UNUSABLE). */
MMVI_HIDDEN int mmvi_heap_folder(void);

/* The directories whose folder is ready, the one with the most free space first (those with
 * about as much take turns, so that blocks spread over directories on one filesystem too).
 * Fills order[] with their indexes; returns how many. No lock needed (one statvfs each, and
 * none with a single directory). */
MMVI_HIDDEN int mmvi_heap_dirs_by_room(int order[MMVI_MAX_DIRS]);

/* Under the lock: b, made, enters the list and the registry as LIVE. */
MMVI_HIDDEN void mmvi_heap_publish(struct mmvi_block *b);

/* Registers the fork handlers (once; fork.c). */
MMVI_HIDDEN void mmvi_fork_register(void);

/* Under the lock, on the large path and at the advisor's rounds (`advisor` set: the caller is
 * that thread): when memory is tight, blocks frozen at a fork (MMVEC_FORK=private) go back into
 * their files if no child maps them any more, else move into new files (fork.c). Looks at most
 * every 20 ms; nothing at all when no block is frozen. */
MMVI_HIDDEN void mmvi_fork_settle(int advisor);

/* Under the lock, for realloc, which owns b (nothing else writes it): a frozen b goes back into
 * its file now if no child maps it any more, so that it may grow in place. 0 or a negative
 * errno (-EBUSY: not frozen, or children still map it). */
MMVI_HIDDEN int mmvi_fork_unfreeze(struct mmvi_block *b);

/* Cancellation points (open, close, read...) must never act inside the allocator: a thread
 * cancelled with the lock held would wedge every later large request. glibc does the same. */
static inline uint64_t mmvi_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline int mmvi_nocancel_begin(void)
{
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

static inline void mmvi_nocancel_end(int old)
{
    int ignored;
    pthread_setcancelstate(old, &ignored);
}

#endif
