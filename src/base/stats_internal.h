/* The counters behind mmv_stats: one relaxed atomic each, so counting never takes a lock. */
#ifndef MMVEC_STATS_INTERNAL_H
#define MMVEC_STATS_INTERNAL_H

#include <stdint.h>

enum mmvi_stat {
    MMVI_STAT_ACTIVE_SEGMENTS,
    MMVI_STAT_FALLOCATE_FAILED,
    MMVI_STAT_TRUNCATE_FAILED,
    MMVI_STAT_MAP_FAILED,
    MMVI_STAT_UNMAP_FAILED,
    MMVI_STAT_BYTES_MAPPED,
    MMVI_STAT_BYTES_MAPPED_PEAK,
    MMVI_STAT_BLOCKS_MADE,
    MMVI_STAT_BLOCKS_LIVE,
    MMVI_STAT_BLOCK_BYTES_LIVE,
    MMVI_STAT_BLOCK_BYTES_PEAK,
    MMVI_STAT_LARGEST_BLOCK,
    MMVI_STAT_CACHE_HITS,
    MMVI_STAT_REALLOC_IN_PLACE,
    MMVI_STAT_REALLOC_MOVED,
    MMVI_STAT_REALLOC_COPIED,
    MMVI_STAT_FALLBACKS,
    MMVI_STAT_FALLBACK_DIR,
    MMVI_STAT_FALLBACK_SPACE,
    MMVI_STAT_FALLBACK_MAPS,
    MMVI_STAT_FALLBACK_FILES,
    MMVI_STAT_FALLBACK_OTHER,
    MMVI_STAT_WRITEBACKS,
    MMVI_STAT_FILES_REAPED,
    MMVI_STAT_BYTES_REAPED,
    MMVI_STAT_SPARSE_FILES,
    /* Placement and moves (MMVEC_PLACEMENT=auto: pressure.c, spill.c). */
    MMVI_STAT_BLOCKS_RAM,         /* blocks made in RAM */
    MMVI_STAT_BLOCKS_FILE_TIGHT,  /* blocks made as files because memory was tight */
    MMVI_STAT_RAM_BYTES_LIVE,
    MMVI_STAT_RAM_BYTES_PEAK,
    MMVI_STAT_SPILLS,             /* RAM blocks moved into files */
    MMVI_STAT_SPILL_BYTES,
    MMVI_STAT_SPILL_US,           /* time spent moving, in microseconds */
    MMVI_STAT_SPILL_MAX_US,       /* the longest move */
    MMVI_STAT_SPILL_FAILED,       /* moves that failed (the block stayed in RAM) */
    MMVI_STAT_SPILL_HELD_OFF,     /* tight, but no safe way to move with other threads */
    MMVI_STAT_PRESSURE_READS,     /* reads of the memory limit and usage */
    MMVI_STAT_MEMORY_LIMIT,       /* the last figures read */
    MMVI_STAT_MEMORY_USAGE,
    MMVI_STAT_ADVISE_RANDOM,      /* blocks whose read-around was turned off (advise.c) */
    MMVI_STAT_ADVISE_PROBES,      /* ... and on again at the end of the spell */
    MMVI_STAT_ADVISE_SAMPLES,     /* pages the advisor looked at */
    MMVI_STAT_DISK_REFUSED,       /* files not made or grown: disk budget or reserve (disk.c) */
    MMVI_STAT_BEHIND_WRITTEN,     /* bytes behind fronts whose writeback the advisor started */
    MMVI_STAT_BEHIND_DROPPED,     /* ... and that it then dropped from memory */
    MMVI_STAT_AHEAD_CLEARED,      /* bytes ahead of fronts dropped so that reads fill them whole */
    MMVI_STAT_FORK_FOLDS,         /* frozen blocks folded back into their files (fork.c) */
    MMVI_STAT_FORK_FOLD_BYTES,    /* ... the bytes written into them to do so */
    MMVI_STAT_FORK_THAWS,         /* frozen blocks moved into new files while children lived */
    MMVI_STAT_RAM_BLOCKS_LIVE,    /* live blocks in RAM; also read by the hook that sees the
                                     small heap grow (spill.c) */
    MMVI_STAT_COUNT
};

extern uint64_t mmvi_stat_table[MMVI_STAT_COUNT] __attribute__((visibility("hidden")));

static inline void mmvi_stat_add(enum mmvi_stat s, uint64_t n)
{
    __atomic_fetch_add(&mmvi_stat_table[s], n, __ATOMIC_RELAXED);
}
static inline void mmvi_stat_sub(enum mmvi_stat s, uint64_t n)
{
    __atomic_fetch_sub(&mmvi_stat_table[s], n, __ATOMIC_RELAXED);
}
static inline void mmvi_stat_inc(enum mmvi_stat s) { mmvi_stat_add(s, 1); }
static inline uint64_t mmvi_stat_get(enum mmvi_stat s)
{
    return __atomic_load_n(&mmvi_stat_table[s], __ATOMIC_RELAXED);
}

/* Raises the counter `s` to at least v (for peaks and maxima). */
static inline void mmvi_stat_max(enum mmvi_stat s, uint64_t v)
{
    uint64_t cur = __atomic_load_n(&mmvi_stat_table[s], __ATOMIC_RELAXED);
    while (cur < v &&
           !__atomic_compare_exchange_n(&mmvi_stat_table[s], &cur, v, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
    }
}

/* A mapping of `len` file-backed bytes came or went. */
static inline void mmvi_stat_mapped(int64_t segments, int64_t len)
{
    mmvi_stat_add(MMVI_STAT_ACTIVE_SEGMENTS, (uint64_t)segments);
    uint64_t now = __atomic_add_fetch(&mmvi_stat_table[MMVI_STAT_BYTES_MAPPED], (uint64_t)len,
                                      __ATOMIC_RELAXED);
    if (len > 0)
        mmvi_stat_max(MMVI_STAT_BYTES_MAPPED_PEAK, now);
}

#endif
