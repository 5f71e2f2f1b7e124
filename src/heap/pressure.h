/* Memory pressure, as the large path sees it: the limit and usage of memlimit.h, read at most
 * every few milliseconds, plus what this process placed in RAM since (so that a burst of blocks
 * does not all see the same stale figure). It says where a new block goes (RAM or a file) and
 * how much RAM should move to files. All calls are made under the heap lock; nothing here is
 * on the small path.
 *
 * The mark: RAM blocks while usage + the block stays at or below MMVEC_RAM_HIGH (60% of the
 * limit by default). Moving to files starts when usage passes the mark by a sixteenth of the
 * limit (so that a small excursion does not move a block), and brings usage back to the mark. */
#ifndef MMVEC_PRESSURE_H
#define MMVEC_PRESSURE_H

#include "memlimit.h"
#include "os.h"

#include <stddef.h>
#include <stdint.h>

/* Finds the cgroup (once) and reads the figures. */
MMVI_HIDDEN void mmvi_pressure_init(void);

/* Re-reads the figures if the last read is older than a few milliseconds (or always). */
MMVI_HIDDEN void mmvi_pressure_refresh(int always);

/* Should a new block of `size` bytes be RAM? If so it is counted in the estimate. */
MMVI_HIDDEN int mmvi_pressure_place_ram(size_t size);

/* How many bytes of RAM blocks should move to files now, with `extra` more bytes about to be
 * used (0: none). */
MMVI_HIDDEN size_t mmvi_pressure_excess(size_t extra);

/* `bytes` of RAM blocks moved to files or were freed: the estimate drops until the next read. */
MMVI_HIDDEN void mmvi_pressure_relieved(size_t bytes);

/* The last figures, and the mark in bytes. */
MMVI_HIDDEN void mmvi_pressure_view(struct mmvi_memview *view, uint64_t *mark);

/* The limit alone (UINT64_MAX before the first read), without the lock: the writeback mark is
 * a share of it. */
MMVI_HIDDEN uint64_t mmvi_pressure_limit(void);

#endif
