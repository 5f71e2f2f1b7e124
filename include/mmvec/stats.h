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
    /* Where blocks live (MMVEC_PLACEMENT=auto): RAM while the heap fits, files past it. */
    uint64_t blocks_ram;         /* blocks made in RAM */
    uint64_t blocks_file_tight;  /* blocks made as files because memory was tight */
    uint64_t ram_bytes_live;     /* bytes of blocks in RAM now (the rest of block_bytes_live */
    uint64_t ram_bytes_peak;     /*   is in files) */
    uint64_t spills;             /* RAM blocks moved into files under memory pressure */
    uint64_t spill_bytes;
    uint64_t spill_us;           /* time spent moving them, microseconds */
    uint64_t spill_max_us;       /* the longest single move */
    uint64_t spill_failed;       /* moves that failed (disk full...): the block stayed in RAM */
    uint64_t spill_held_off;     /* memory tight, but blocks could not move safely (threads
                                    running, no userfaultfd) */
    uint64_t memory_limit;       /* the limit mmvec last saw (cgroup, MemTotal or yours) */
    uint64_t memory_usage;       /* ... and the usage against it, without droppable cache */
    uint64_t disk_write_bytes;   /* bytes this process caused to be written to disk
                                    (/proc/self/io write_bytes; 0 where unreadable) */
    uint64_t readaround_off;     /* times a file block's read-around was turned off because
                                    it read pages nobody used (MMVEC_ADVICE=auto) */
    uint64_t readaround_on;      /* ... turned on again at the end of the spell */
    uint64_t advisor_samples;    /* pages the read-around advisor looked at */
    uint64_t disk_refused;       /* files not made or grown: the free-space reserve or the disk
                                    budget (MMVEC_DISK_RESERVE, MMVEC_MAX_DISK) */
    uint64_t ram_blocks_live;    /* live blocks in RAM now (the rest of blocks_live are files) */
    uint64_t file_blocks_live;   /* live blocks in files now */
    uint64_t file_bytes_live;    /* bytes of live blocks in files (block_bytes_live minus
                                    ram_bytes_live) */
    uint64_t disk_read_bytes;    /* bytes this process caused to be read from disk
                                    (/proc/self/io read_bytes; 0 where unreadable) */
    uint64_t sparse_files;       /* files made sparse: their filesystem has no fallocate */
    uint64_t behind_written;     /* out of core: bytes behind a fill's or scan's front whose
                                    writeback the advisor started early (MMVEC_BEHIND) */
    uint64_t behind_dropped;     /* ... and that it dropped from memory once clean */
    uint64_t fork_folds;         /* MMVEC_FORK=private: blocks frozen at a fork (their later
                                    writes kept in RAM) put back into their files once no child
                                    mapped them */
    uint64_t fork_fold_bytes;    /* ... bytes written into the files to do so */
    uint64_t fork_thaws;         /* ... frozen blocks moved into new files instead, memory
                                    being tight while children still mapped the old ones */
    uint64_t ahead_cleared;      /* out of core: bytes ahead of a fill's or scan's front, cached
                                    only here and there, dropped so that the kernel reads them
                                    in large folios (MMVEC_BEHIND) */
} mmv_stats;

/* Fills *out with a snapshot. Returns 0, or -EINVAL for NULL. */
MMV_API int mmv_stats_get(mmv_stats *out);

/* Prints the table that MMVEC_STATS=1 prints at exit, to the file descriptor fd. */
MMV_API void mmv_stats_print(int fd);

#ifdef __cplusplus
}
#endif

#endif
