/* Memory pressure for placement and moving blocks to files (pressure.h). */
#define _GNU_SOURCE
#include "pressure.h"

#include "heap.h"
#include "options.h"
#include "spill.h"
#include "stats_internal.h"

/* Figures older than this are read again. Reading is a few small files (about 20-80 us with a
 * few cgroup levels); a block of 1 MiB or more takes longer than that to fill. */
#define REFRESH_MS 10
/* The cgroup is looked up again this often: a process can be moved into another one (systemd,
 * a container runtime, `echo PID > cgroup.procs`) after it started. */
#define REOPEN_MS 1000

static struct {
    struct mmvi_memsrc src;
    struct mmvi_memview view;
    uint64_t read_ms;     /* when view was read */
    uint64_t opened_ms;   /* when src was looked up */
    int64_t since;        /* bytes placed in RAM that usage does not show yet, minus bytes
                             moved to files or freed since the last read */
    int ready;
} pr;

void mmvi_pressure_init(void)
{
    mmvi_memsrc_open(&pr.src, "");
    pr.opened_ms = mmvi_now_ms();
    pr.ready = 1;
    mmvi_pressure_refresh(1);
}

/* After a read: what was placed in RAM and does not show in usage yet stays counted. A block
 * shows only as its pages are touched, and threads that each malloc a buffer at once touch
 * them after all were placed: forgetting them at each read put 8 blocks of 512 MiB in RAM in a
 * 1 GiB group (OOM-killed). So the count drops by what usage grew, never below zero; frees and
 * moves take theirs off as they happen (mmvi_pressure_relieved). */
static void forget_what_shows(uint64_t before)
{
    int64_t grew = (int64_t)(pr.view.usage - before);
    if (pr.since > 0 && grew > 0)
        pr.since = pr.since > grew ? pr.since - grew : 0;
    else if (pr.since < 0) /* freed or moved: the new figure shows it */
        pr.since = 0;
}

void mmvi_pressure_refresh(int always)
{
    uint64_t now = mmvi_now_ms();
    if (!pr.ready || (!always && now - pr.read_ms < REFRESH_MS))
        return;
    if (now - pr.opened_ms >= REOPEN_MS) {
        mmvi_memsrc_open(&pr.src, "");
        pr.opened_ms = now;
    }
    uint64_t before = pr.view.usage;
    mmvi_memview_read(&pr.src, mmvi_opt.memory_limit, &pr.view);
    pr.read_ms = now;
    forget_what_shows(before);
    mmvi_stat_inc(MMVI_STAT_PRESSURE_READS);
    __atomic_store_n(&mmvi_stat_table[MMVI_STAT_MEMORY_LIMIT], pr.view.limit, __ATOMIC_RELAXED);
    __atomic_store_n(&mmvi_stat_table[MMVI_STAT_MEMORY_USAGE], pr.view.usage, __ATOMIC_RELAXED);
}

static uint64_t mark(void)
{
    uint64_t limit = pr.view.limit;
    if (limit == UINT64_MAX)
        return UINT64_MAX;
    uint64_t m = mmvi_mark_of(&mmvi_opt.ram_high, limit);
    return m < limit ? m : limit;
}

/* The mark for new RAM blocks. Where RAM blocks could not move later (other threads run and
 * write protection is not permitted), placement alone must leave the room that growth of the
 * rest of the heap needs: half the mark. Measured, unprivileged, 1 GiB cgroup, 512 MiB of 64 MiB
 * blocks then 640 MiB of small objects with a second thread running: OOM-killed at 45% and 60%,
 * finished at 30%. */
static uint64_t place_mark(void)
{
    uint64_t m = mark();
    return m == UINT64_MAX || mmvi_spill_possible() ? m : m / 2;
}

static uint64_t usage(void)
{
    int64_t u = (int64_t)pr.view.usage + pr.since;
    return u > 0 ? (uint64_t)u : 0;
}

int mmvi_pressure_place_ram(size_t size)
{
    /* MMVEC_FORK=shared promises parent and child each other's writes: only a file can. */
    if (mmvi_opt.placement != MMVI_PLACE_AUTO || mmvi_opt.fork_mode == MMVI_FORK_SHARED ||
        !pr.ready)
        return 0;
    uint64_t m = place_mark();
    if (usage() + size > m || usage() + size < usage())
        return 0;
    pr.since += (int64_t)size;
    return 1;
}

size_t mmvi_pressure_excess(size_t extra)
{
    if (!pr.ready || pr.view.limit == UINT64_MAX)
        return 0;
    uint64_t m = mark(), slack = pr.view.limit / 16, u = usage() + extra;
    if (u <= m + slack)
        return 0;
    return (size_t)(u - m);
}

void mmvi_pressure_relieved(size_t bytes)
{
    pr.since -= (int64_t)bytes;
}

void mmvi_pressure_view(struct mmvi_memview *view, uint64_t *m)
{
    *view = pr.view;
    *m = mark();
}

uint64_t mmvi_pressure_limit(void)
{
    /* The copy in the stats: read without the lock (early writeback asks from outside it). */
    uint64_t v = mmvi_stat_get(MMVI_STAT_MEMORY_LIMIT);
    return v ? v : UINT64_MAX;
}
