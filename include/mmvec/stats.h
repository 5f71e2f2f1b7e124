/* Process-wide counters (the seed's MmapStats and more), read with one call. */
#ifndef MMVEC_STATS_H
#define MMVEC_STATS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmv_stats {
    /* Segments and files (every user: vectors, segments, allocator blocks). */
    uint64_t active_segments;    /* mapped now */
    uint64_t fallocate_failed;   /* fallocate refused (other than "unsupported") */
    uint64_t ftruncate_failed;
    uint64_t map_failed;         /* mmap/mremap failures */
    uint64_t unmap_failed;
    uint64_t bytes_mapped;       /* file-backed bytes mapped now */
    uint64_t bytes_mapped_peak;
    /* The allocator (mmv_malloc & co, and the interposer). */
    uint64_t blocks_made;        /* segment blocks handed out (fresh or from the cache) */
    uint64_t blocks_live;
    uint64_t block_bytes_live;
    uint64_t block_bytes_peak;
    uint64_t largest_block;
    uint64_t cache_hits;         /* blocks served from the cache of freed segments */
    uint64_t reallocs_in_place;  /* grown or shrunk without moving */
    uint64_t reallocs_moved;     /* moved by remapping (no copy) */
    uint64_t reallocs_copied;    /* had to copy (crossing the threshold) */
    uint64_t fallbacks;          /* large requests served from RAM (jemalloc) instead */
    uint64_t fallback_dir;       /*   ...because the directory was missing/unsafe/unwritable */
    uint64_t fallback_space;     /*   ...because the disk was full */
    uint64_t fallback_maps;      /*   ...because of vm.max_map_count / mmap ENOMEM */
    uint64_t fallback_files;     /*   ...because of EMFILE/ENFILE */
    uint64_t fallback_other;
    uint64_t writebacks;         /* early writebacks started (MMVEC_WRITEBACK) */
    uint64_t files_reaped;       /* files of dead processes removed */
    uint64_t bytes_reaped;
} mmv_stats;

/* Fills *out with a snapshot. Returns 0, or -EINVAL for NULL. */
MMV_API int mmv_stats_get(mmv_stats *out);

/* Prints the table that MMVEC_STATS=1 prints at exit, to the file descriptor fd. */
MMV_API void mmv_stats_print(int fd);

#ifdef __cplusplus
}
#endif

#endif
