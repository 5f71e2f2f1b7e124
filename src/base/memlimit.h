/* How much memory the process may use, and how much is used against that: the tightest of the
 * memory cgroup limits on the whole path from the process's cgroup up to its mount's root (v1
 * memory.limit_in_bytes; v2 memory.max and memory.high), MemTotal, and a limit the user set.
 *
 * Usage does not count page cache the kernel can drop (clean file pages, active or inactive),
 * but does count dirty pages and pages under writeback, which must reach the disk first. So the
 * pages of block files (page cache) are not "used": they go when the kernel needs the room.
 *
 * Paths are resolved once (mmvi_memsrc_open): /proc/self/cgroup gives the cgroup, the mount of
 * its hierarchy comes from /proc/self/mountinfo, whose mount root is stripped from the cgroup's
 * path (a container without a cgroup namespace sees the host's path, and its own cgroup mounted
 * as the root). Every read after that is a few small files. `root` prefixes /proc and /sys, for
 * tests on fixture trees ("" for the real system). Allocates nothing. */
#ifndef MMVEC_MEMLIMIT_H
#define MMVEC_MEMLIMIT_H

#include "os.h"

#include <stddef.h>
#include <stdint.h>

enum mmvi_mem_source { MMVI_MEM_HOST, MMVI_MEM_CGROUP_V1, MMVI_MEM_CGROUP_V2, MMVI_MEM_USER };

#define MMVI_MEM_LEVELS 32 /* cgroup levels read, from the process's own up */

struct mmvi_memsrc {
    int version;                 /* 0: no memory cgroup found, 1 or 2 */
    int levels;                  /* cgroup folders from the process's own up to the mount */
    char root[256];              /* prefix for /proc and /sys ("" normally) */
    char dir[MMVI_MEM_LEVELS][512]; /* dir[0] the process's cgroup folder, then its parents */
};

struct mmvi_memview {
    uint64_t limit;              /* bytes: the tightest limit found */
    uint64_t usage;              /* bytes used against that limit (without droppable cache) */
    int source;                  /* enum mmvi_mem_source */
    int level;                   /* for a cgroup: which dir[] gave it */
    int high;                    /* v2: the limit is memory.high (throttling, not OOM) */
};

/* Finds the process's memory cgroup and its ancestors under `root`. Never fails: without a
 * cgroup, only the host's figures (and the user's limit) count. */
MMVI_HIDDEN void mmvi_memsrc_open(struct mmvi_memsrc *src, const char *root);

/* Reads the limits and usages now. `user_limit` (0: none) is a limit on this process's own
 * anonymous memory (RssAnon). The view with the least headroom wins. 0, or -ENOENT when not
 * even /proc/meminfo could be read (then limit is UINT64_MAX). */
MMVI_HIDDEN int mmvi_memview_read(const struct mmvi_memsrc *src, uint64_t user_limit,
                                  struct mmvi_memview *out);

/* "cgroup v2 memory.high", "host MemTotal"...: for logs and `mmvec config`. */
MMVI_HIDDEN const char *mmvi_mem_source_name(const struct mmvi_memview *v);

#endif
