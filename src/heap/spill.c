/* Moving RAM blocks into files (spill.h). */
#define _GNU_SOURCE
#include "spill.h"

#include "advise.h"

#include "block_ops.h"
#include "cache.h"
#include "heap.h"
#include "log.h"
#include "options.h"
#include "pressure.h"
#include "stats_internal.h"
#include "stopworld.h"
#include "wprotect.h"

#include <errno.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Moves b with writers held off as `hold` says, and keeps the books. */
static int move(struct mmvi_block *b, int hold)
{
    int rc = mmvi_heap_folder();
    uint64_t t0 = now_us();
    if (rc == 0)
        rc = mmvi_block_to_file(b, hold);
    if (rc < 0 && b->backing != MMVI_BACK_MIXED) {
        mmvi_stat_inc(MMVI_STAT_SPILL_FAILED);
        mmvi_warn_once(MMVI_WARN_SPILL, "memory is tight but a block could not move to a file "
                       "(%s): it stays in RAM", strerror(-rc));
        return rc;
    }
    uint64_t us = now_us() - t0;
    mmvi_stat_sub(MMVI_STAT_RAM_BLOCKS_LIVE, 1);
    mmvi_stat_sub(MMVI_STAT_RAM_BYTES_LIVE, b->size);
    mmvi_stat_inc(MMVI_STAT_SPILLS);
    mmvi_stat_add(MMVI_STAT_SPILL_BYTES, b->size);
    mmvi_stat_add(MMVI_STAT_SPILL_US, us);
    mmvi_stat_max(MMVI_STAT_SPILL_MAX_US, us);
    mmvi_pressure_relieved(b->size);
    mmvi_log(2, "moved %p %zu B to a file in %llu us", (void *)b->addr, b->size,
             (unsigned long long)us);
    return 0;
}

int mmvi_spill_block(struct mmvi_block *b)
{
    return move(b, MMVI_HOLD_NONE);
}

/* How to hold other threads' writes off: write protection where the process may use
 * userfaultfd, else stopping them (said once), else nothing works (said once): MMVI_HOLD_NONE. */
static int open_hold(void)
{
    if (mmvi_heap.wp >= 0) {
        int fd = mmvi_wp_open();
        if (fd >= 0) {
            mmvi_heap.wp = 1;
            return fd;
        }
        mmvi_heap.wp = fd;
    }
    if (mmvi_stw_usable()) {
        mmvi_warn_once(MMVI_WARN_STOP, "memory is tight: other threads are stopped for a few "
                       "milliseconds at a time while RAM blocks move to files (userfaultfd: %s)",
                       strerror(-mmvi_heap.wp));
        return MMVI_HOLD_STOP;
    }
    mmvi_stat_inc(MMVI_STAT_SPILL_HELD_OFF);
    mmvi_warn_once(MMVI_WARN_SPILL_HELD, "memory is tight, but RAM blocks cannot move to "
                   "files while other threads run (userfaultfd: %s; SIGPWR in use); new blocks go "
                   "to files", strerror(-mmvi_heap.wp));
    return MMVI_HOLD_NONE;
}

int mmvi_spill_possible(void)
{
    if (__libc_single_threaded || mmvi_advise_alone())
        return 1;
    if (mmvi_heap.wp == 0) { /* the first time with threads: can we protect? */
        int fd = mmvi_wp_open();
        mmvi_heap.wp = fd >= 0 ? 1 : fd;
        if (fd >= 0)
            close(fd);
    }
    return mmvi_heap.wp > 0 || mmvi_stw_usable();
}

static struct mmvi_block *largest_ram_block(void)
{
    struct mmvi_block *best = NULL;
    for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
        if (b->state == MMVI_BLOCK_LIVE && b->backing == MMVI_BACK_ANON && !b->sealed &&
            !__atomic_load_n(&b->busy, __ATOMIC_RELAXED) && (!best || b->size > best->size))
            best = b;
    return best;
}

void mmvi_spill_relieve(size_t extra, struct mmvi_evicted *ev)
{
    if (mmvi_heap.state != MMVI_HEAP_READY)
        return;
    size_t cached = mmvi_cache_ram_bytes();
    if (!cached && !mmvi_stat_get(MMVI_STAT_RAM_BLOCKS_LIVE))
        return;
    size_t excess = mmvi_pressure_excess(extra);
    if (!excess)
        return;
    if (cached) { /* freed RAM blocks go first: that costs no copy */
        if (ev)
            mmvi_cache_drain(ev);
        else /* inside jemalloc: no teardown (it frees records); their pages go now */
            mmvi_cache_empty_ram();
        mmvi_pressure_relieved(cached);
        if (cached >= excess)
            return;
        excess -= cached;
    }
    int alone = __libc_single_threaded || mmvi_advise_alone(), hold = MMVI_HOLD_NONE;
    if (!alone && (hold = open_hold()) == MMVI_HOLD_NONE)
        return;
    mmvi_log(2, "memory tight: moving %zu B of RAM blocks to files", excess);
    for (size_t moved = 0; moved < excess;) {
        struct mmvi_block *b = largest_ram_block();
        if (!b || move(b, hold) < 0)
            break;
        moved += b->size;
    }
    if (hold >= 0)
        close(hold); /* wakes any writer still waiting */
}

void mmvi_spill_small_grew(size_t len)
{
    if (!mmvi_stat_get(MMVI_STAT_RAM_BLOCKS_LIVE) &&
        !__atomic_load_n(&mmvi_heap.ram_cached, __ATOMIC_RELAXED))
        return;
    if (pthread_mutex_trylock(&mmvi_heap.lock) != 0)
        return; /* another thread is in the large path: it will look */
    int cs = mmvi_nocancel_begin();
    mmvi_pressure_refresh(0);
    mmvi_spill_relieve(len, NULL); /* no teardown here: that would call jemalloc */
    pthread_mutex_unlock(&mmvi_heap.lock);
    mmvi_nocancel_end(cs);
}
