/* The counters, mmv_stats_get, and the table printed at exit (MMVEC_STATS=1 or json). */
#include "mmvec/stats.h"

#include "figures.h"
#include "options.h"
#include "stats_internal.h"

#include "os.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t mmvi_stat_table[MMVI_STAT_COUNT];

#define get mmvi_stat_get

void mmvi_stats_fill(mmv_stats *out)
{
    *out = (mmv_stats){
        .active_segments = get(MMVI_STAT_ACTIVE_SEGMENTS),
        .fallocate_failed = get(MMVI_STAT_FALLOCATE_FAILED),
        .ftruncate_failed = get(MMVI_STAT_TRUNCATE_FAILED),
        .map_failed = get(MMVI_STAT_MAP_FAILED),
        .unmap_failed = get(MMVI_STAT_UNMAP_FAILED),
        .bytes_mapped = get(MMVI_STAT_BYTES_MAPPED),
        .bytes_mapped_peak = get(MMVI_STAT_BYTES_MAPPED_PEAK),
        .blocks_made = get(MMVI_STAT_BLOCKS_MADE),
        .blocks_live = get(MMVI_STAT_BLOCKS_LIVE),
        .block_bytes_live = get(MMVI_STAT_BLOCK_BYTES_LIVE),
        .block_bytes_peak = get(MMVI_STAT_BLOCK_BYTES_PEAK),
        .largest_block = get(MMVI_STAT_LARGEST_BLOCK),
        .cache_hits = get(MMVI_STAT_CACHE_HITS),
        .reallocs_in_place = get(MMVI_STAT_REALLOC_IN_PLACE),
        .reallocs_moved = get(MMVI_STAT_REALLOC_MOVED),
        .reallocs_copied = get(MMVI_STAT_REALLOC_COPIED),
        .fallbacks = get(MMVI_STAT_FALLBACKS),
        .fallback_dir = get(MMVI_STAT_FALLBACK_DIR),
        .fallback_space = get(MMVI_STAT_FALLBACK_SPACE),
        .fallback_maps = get(MMVI_STAT_FALLBACK_MAPS),
        .fallback_files = get(MMVI_STAT_FALLBACK_FILES),
        .fallback_other = get(MMVI_STAT_FALLBACK_OTHER),
        .writebacks = get(MMVI_STAT_WRITEBACKS),
        .files_reaped = get(MMVI_STAT_FILES_REAPED),
        .bytes_reaped = get(MMVI_STAT_BYTES_REAPED),
        .blocks_ram = get(MMVI_STAT_BLOCKS_RAM),
        .blocks_file_tight = get(MMVI_STAT_BLOCKS_FILE_TIGHT),
        .ram_bytes_live = get(MMVI_STAT_RAM_BYTES_LIVE),
        .ram_bytes_peak = get(MMVI_STAT_RAM_BYTES_PEAK),
        .spills = get(MMVI_STAT_SPILLS),
        .spill_bytes = get(MMVI_STAT_SPILL_BYTES),
        .spill_us = get(MMVI_STAT_SPILL_US),
        .spill_max_us = get(MMVI_STAT_SPILL_MAX_US),
        .spill_failed = get(MMVI_STAT_SPILL_FAILED),
        .spill_held_off = get(MMVI_STAT_SPILL_HELD_OFF),
        .memory_limit = get(MMVI_STAT_MEMORY_LIMIT),
        .memory_usage = get(MMVI_STAT_MEMORY_USAGE),
        .readaround_off = get(MMVI_STAT_ADVISE_RANDOM),
        .readaround_on = get(MMVI_STAT_ADVISE_PROBES),
        .advisor_samples = get(MMVI_STAT_ADVISE_SAMPLES),
        .disk_refused = get(MMVI_STAT_DISK_REFUSED),
        .ram_blocks_live = get(MMVI_STAT_RAM_BLOCKS_LIVE),
        .sparse_files = get(MMVI_STAT_SPARSE_FILES),
        .behind_written = get(MMVI_STAT_BEHIND_WRITTEN),
        .behind_dropped = get(MMVI_STAT_BEHIND_DROPPED),
        .ahead_cleared = get(MMVI_STAT_AHEAD_CLEARED),
        .fork_folds = get(MMVI_STAT_FORK_FOLDS),
        .fork_fold_bytes = get(MMVI_STAT_FORK_FOLD_BYTES),
        .fork_thaws = get(MMVI_STAT_FORK_THAWS),
    };
    /* Two relaxed loads apart: clamp rather than show a wrapped-around count. */
    out->file_blocks_live =
        out->blocks_live > out->ram_blocks_live ? out->blocks_live - out->ram_blocks_live : 0;
    out->file_bytes_live = out->block_bytes_live > out->ram_bytes_live
                               ? out->block_bytes_live - out->ram_bytes_live : 0;
}

int mmv_stats_get(mmv_stats *out)
{
    if (!out)
        return -EINVAL;
    mmvi_stats_fill(out);
    struct mmvi_proc_figures f;
    if (mmvi_proc_figures_read(0, &f) == 0 && f.have_io) {
        out->disk_write_bytes = f.write_bytes;
        out->disk_read_bytes = f.read_bytes;
    }
    return 0;
}

/* When this process started, in Unix seconds: its start in clock ticks after boot
 * (/proc/self/stat, field 22) against the time since boot now (CLOCK_BOOTTIME). 0 when
 * unreadable. (Not /proc/stat's btime: on a large machine it comes after tens of KiB.) */
static uint64_t started_s(void)
{
    char st[1024];
    struct timespec now, boot;
    if (mmvi_os_read_file("/proc/self/stat", st, sizeof st) < 0 ||
        clock_gettime(CLOCK_REALTIME, &now) < 0 || clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
        return 0;
    const char *p = strrchr(st, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    long hz = sysconf(_SC_CLK_TCK);
    if (!p || hz <= 0)
        return 0;
    uint64_t age = (uint64_t)boot.tv_sec - strtoull(p + 1, NULL, 10) / (uint64_t)hz;
    return (uint64_t)now.tv_sec > age ? (uint64_t)now.tv_sec - age : 0;
}

/* The command line, arguments joined by spaces (truncated to fit). */
static void command_line(char *buf, size_t size)
{
    memset(buf, 0, size);
    int n = mmvi_os_read_file("/proc/self/cmdline", buf, size);
    size_t len = n < 0 ? 0 : strnlen(buf, size - 1);
    /* mmvi_os_read_file NUL-terminates after what it read: find the real end, past the NULs
     * that separate the arguments. */
    if (n == 0) {
        size_t end = size - 1;
        while (end > 0 && buf[end] == '\0')
            end--;
        for (size_t i = 0; i < end; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        len = strnlen(buf, size - 1);
    }
    buf[len] = '\0';
}

void mmvi_stats_header(struct mmvi_live_page *p)
{
    memset(p, 0, sizeof *p);
    p->magic = MMVI_LIVE_MAGIC;
    p->version = MMVI_LIVE_VERSION;
    p->size = (uint32_t)sizeof *p;
    p->pid = (int64_t)getpid();
    p->started_s = started_s();
    command_line(p->command, sizeof p->command);
    mmvi_options_format(p->config, sizeof p->config);
}

/* The figures now, header and counters, with this process's own /proc figures. */
static void snapshot(struct mmvi_live_page *p, struct mmvi_proc_figures *f)
{
    mmvi_stats_header(p);
    mmvi_stats_fill(&p->stats);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->updated_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (mmvi_proc_figures_read(0, f) < 0)
        memset(f, 0, sizeof *f);
    p->stats.disk_write_bytes = f->write_bytes;
    p->stats.disk_read_bytes = f->read_bytes;
}

/* Formats without malloc: this runs at exit inside programs whose heap we are. The buffers are
 * static, not on a thread's stack that may be small, so calls take turns. */
static void print(int fd, int json)
{
    static pthread_mutex_t turn = PTHREAD_MUTEX_INITIALIZER;
    static struct mmvi_live_page page;
    static char buf[8192];
    struct mmvi_proc_figures f;
    pthread_mutex_lock(&turn);
    snapshot(&page, &f);
    size_t len = json ? mmvi_figures_json(&page, &f, buf, sizeof buf)
                      : mmvi_figures_text(&page, &f, buf, sizeof buf);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&turn);
}

void mmv_stats_print(int fd)
{
    print(fd, 0);
}

void mmvi_stats_print_at_exit(int fd)
{
    print(fd, mmvi_opt.stats == MMVI_STATS_JSON);
}
