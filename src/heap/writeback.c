/* Early writeback under memory pressure (see writeback.h). */
#define _GNU_SOURCE
#include "writeback.h"

#include "options.h"
#include "pressure.h"
#include "stats_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A quarter of the memory the process may use, as last read (pressure.c). */
static uint64_t mark(void)
{
    uint64_t limit = mmvi_pressure_limit();
    return limit == UINT64_MAX ? UINT64_MAX : limit / 4;
}

int mmvi_memory_tight(size_t extra)
{
    uint64_t live = mmvi_stat_get(MMVI_STAT_BLOCK_BYTES_LIVE);
    return live + extra >= mark() || live + extra < live;
}

int mmvi_writeback_wanted(void)
{
    return mmvi_opt.writeback == MMVI_WRITEBACK_ON ||
           (mmvi_opt.writeback == MMVI_WRITEBACK_AUTO && mmvi_memory_tight(0));
}

void mmvi_writeback_fd(int fd, size_t len)
{
    if (sync_file_range(fd, 0, (off_t)len, SYNC_FILE_RANGE_WRITE) == 0)
        mmvi_stat_inc(MMVI_STAT_WRITEBACKS);
}
