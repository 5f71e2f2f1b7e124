/* The counters and the table printed at exit (MMVEC_STATS=1). */
#include "mmvec/stats.h"

#include "stats_internal.h"

#include "os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t mmvi_stat_table[MMVI_STAT_COUNT];

static uint64_t get(enum mmvi_stat s)
{
    return __atomic_load_n(&mmvi_stat_table[s], __ATOMIC_RELAXED);
}

/* What this process made the kernel write to disk (its own writes and its dirtied pages). */
static uint64_t disk_write_bytes(void)
{
    char buf[512];
    if (mmvi_os_read_file("/proc/self/io", buf, sizeof buf) < 0)
        return 0;
    const char *p = strstr(buf, "\nwrite_bytes: ");
    return p ? strtoull(p + 14, NULL, 10) : 0;
}

int mmv_stats_get(mmv_stats *out)
{
    if (!out)
        return -EINVAL;
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
        .disk_write_bytes = disk_write_bytes(),
        .readaround_off = get(MMVI_STAT_ADVISE_RANDOM),
        .readaround_on = get(MMVI_STAT_ADVISE_PROBES),
        .advisor_samples = get(MMVI_STAT_ADVISE_SAMPLES),
        .disk_refused = get(MMVI_STAT_DISK_REFUSED),
    };
    return 0;
}

/* Formats without malloc: this runs at exit inside programs whose heap we are. */
void mmv_stats_print(int fd)
{
    mmv_stats s;
    mmv_stats_get(&s);
    char buf[3072];
    int n = snprintf(buf, sizeof buf,
                     "mmvec stats (pid %ld)\n"
                     "  blocks made        %12llu   cache hits     %12llu\n"
                     "  blocks live        %12llu   largest block  %12llu B\n"
                     "  block bytes live   %12llu B peak %llu B\n"
                     "  reallocs in place  %12llu   moved %llu   copied %llu\n"
                     "  fallbacks to RAM   %12llu   (dir %llu, disk full %llu, maps %llu, "
                     "files %llu, other %llu)\n"
                     "  early writebacks   %12llu\n"
                     "  files reaped       %12llu   (%llu B)\n"
                     "  segments mapped    %12llu   bytes %llu, peak %llu\n"
                     "  failures           fallocate %llu, ftruncate %llu, map %llu, unmap %llu\n"
                     "  sparse files       %12llu   (no fallocate on the filesystem)\n"
                     "  blocks in RAM      %12llu   made as files when tight %llu\n"
                     "  RAM bytes live     %12llu B peak %llu B; in files %llu B\n"
                     "  moved to files     %12llu   (%llu B in %llu us, longest %llu us; "
                     "failed %llu, held off %llu)\n"
                     "  memory limit       %12llu B usage %llu B\n"
                     "  disk bytes written %12llu B\n"
                     "  read-around off    %12llu   on again %llu; pages sampled %llu\n"
                     "  disk refused       %12llu   (free-space reserve or disk budget)\n",
                     (long)getpid(), (unsigned long long)s.blocks_made,
                     (unsigned long long)s.cache_hits, (unsigned long long)s.blocks_live,
                     (unsigned long long)s.largest_block, (unsigned long long)s.block_bytes_live,
                     (unsigned long long)s.block_bytes_peak,
                     (unsigned long long)s.reallocs_in_place, (unsigned long long)s.reallocs_moved,
                     (unsigned long long)s.reallocs_copied, (unsigned long long)s.fallbacks,
                     (unsigned long long)s.fallback_dir, (unsigned long long)s.fallback_space,
                     (unsigned long long)s.fallback_maps, (unsigned long long)s.fallback_files,
                     (unsigned long long)s.fallback_other, (unsigned long long)s.writebacks,
                     (unsigned long long)s.files_reaped,
                     (unsigned long long)s.bytes_reaped, (unsigned long long)s.active_segments,
                     (unsigned long long)s.bytes_mapped, (unsigned long long)s.bytes_mapped_peak,
                     (unsigned long long)s.fallocate_failed, (unsigned long long)s.ftruncate_failed,
                     (unsigned long long)s.map_failed, (unsigned long long)s.unmap_failed,
                     (unsigned long long)__atomic_load_n(&mmvi_stat_table[MMVI_STAT_SPARSE_FILES],
                                                         __ATOMIC_RELAXED),
                     (unsigned long long)s.blocks_ram, (unsigned long long)s.blocks_file_tight,
                     (unsigned long long)s.ram_bytes_live, (unsigned long long)s.ram_bytes_peak,
                     (unsigned long long)(s.block_bytes_live - s.ram_bytes_live),
                     (unsigned long long)s.spills, (unsigned long long)s.spill_bytes,
                     (unsigned long long)s.spill_us, (unsigned long long)s.spill_max_us,
                     (unsigned long long)s.spill_failed, (unsigned long long)s.spill_held_off,
                     (unsigned long long)s.memory_limit, (unsigned long long)s.memory_usage,
                     (unsigned long long)s.disk_write_bytes,
                     (unsigned long long)s.readaround_off, (unsigned long long)s.readaround_on,
                     (unsigned long long)s.advisor_samples,
                     (unsigned long long)s.disk_refused);
    if (n > 0) {
        size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
        ssize_t w = write(fd, buf, len);
        (void)w;
    }
}
