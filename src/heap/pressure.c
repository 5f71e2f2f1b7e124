/* Memory pressure for placement and moving blocks to files (pressure.h). */
#define _GNU_SOURCE
#include "pressure.h"

#include "heap.h"
#include "options.h"
#include "stats_internal.h"

/* Figures older than this are read again. Reading is a few small files (about 20-80 us with a
 * few cgroup levels); a block of 1 MiB or more takes longer than that to fill. */
#define REFRESH_MS 10

static struct {
    struct mmvi_memsrc src;
    struct mmvi_memview view;
    uint64_t read_ms;     /* when view was read */
    int64_t since;        /* bytes placed in RAM since, minus bytes moved to files or freed */
    int ready;
} pr;

void mmvi_pressure_init(void)
{
    mmvi_memsrc_open(&pr.src, "");
    pr.ready = 1;
    mmvi_pressure_refresh(1);
}

void mmvi_pressure_refresh(int always)
{
    uint64_t now = mmvi_now_ms();
    if (!pr.ready || (!always && now - pr.read_ms < REFRESH_MS))
        return;
    mmvi_memview_read(&pr.src, mmvi_opt.memory_limit, &pr.view);
    pr.read_ms = now;
    pr.since = 0;
    mmvi_stat_inc(MMVI_STAT_PRESSURE_READS);
    __atomic_store_n(&mmvi_stat_table[MMVI_STAT_MEMORY_LIMIT], pr.view.limit, __ATOMIC_RELAXED);
    __atomic_store_n(&mmvi_stat_table[MMVI_STAT_MEMORY_USAGE], pr.view.usage, __ATOMIC_RELAXED);
}

static uint64_t mark(void)
{
    uint64_t limit = pr.view.limit;
    if (limit == UINT64_MAX)
        return UINT64_MAX;
    if (mmvi_opt.ram_high_pct)
        return limit / 100 * (uint64_t)mmvi_opt.ram_high_pct;
    return mmvi_opt.ram_high < limit ? mmvi_opt.ram_high : limit;
}

static uint64_t usage(void)
{
    int64_t u = (int64_t)pr.view.usage + pr.since;
    return u > 0 ? (uint64_t)u : 0;
}

int mmvi_pressure_place_ram(size_t size)
{
    if (mmvi_opt.placement != MMVI_PLACE_AUTO || !pr.ready)
        return 0;
    uint64_t m = mark();
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
    return pr.ready ? pr.view.limit : UINT64_MAX;
}
