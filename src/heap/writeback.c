/* Early writeback under memory pressure (see writeback.h). */
#define _GNU_SOURCE
#include "writeback.h"

#include "options.h"
#include "stats_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t mark = UINT64_MAX;

static uint64_t mem_total(void)
{
    char buf[256];
    if (mmvi_os_read_file("/proc/meminfo", buf, sizeof buf) < 0 ||
        strncmp(buf, "MemTotal:", 9) != 0)
        return UINT64_MAX;
    return strtoull(buf + 9, NULL, 10) * 1024;
}

/* The memory limit of our cgroup: v1 "N:memory:/path" -> memory.limit_in_bytes, or v2
 * "0::/path" -> memory.max. UINT64_MAX when unlimited or unknown. */
static uint64_t cgroup_limit(void)
{
    char buf[4096], path[4400];
    if (mmvi_os_read_file("/proc/self/cgroup", buf, sizeof buf) < 0)
        return UINT64_MAX;
    const char *v1 = strstr(buf, ":memory:/"), *v2 = strstr(buf, "0::/");
    const char *at = v1 ? v1 + 8 : v2 ? v2 + 3 : NULL;
    if (!at)
        return UINT64_MAX;
    size_t n = strcspn(at, "\n");
    snprintf(path, sizeof path, "%s%.*s/%s", v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup",
             (int)n, at, v1 ? "memory.limit_in_bytes" : "memory.max");
    if (mmvi_os_read_file(path, buf, 64) < 0 || buf[0] < '0' || buf[0] > '9')
        return UINT64_MAX; /* "max", or no such file */
    return strtoull(buf, NULL, 10);
}

void mmvi_writeback_init(void)
{
    uint64_t total = mem_total(), limit = cgroup_limit();
    uint64_t budget = limit < total ? limit : total;
    mark = budget == UINT64_MAX ? UINT64_MAX : budget / 4;
}

int mmvi_memory_tight(size_t extra)
{
    uint64_t live = __atomic_load_n(&mmvi_stat_table[MMVI_STAT_BLOCK_BYTES_LIVE], __ATOMIC_RELAXED);
    return live + extra >= mark || live + extra < live;
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
