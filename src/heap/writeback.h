/* Starting the writeback of block files early when memory is tight.
 *
 * A block's dirty pages must reach the disk before the kernel can evict them. Left alone, that
 * happens when reclaim finds them (slow: a memory-cgroup limit stalls the writer on writeback)
 * or after dirty_expire (30 s). When the heap in blocks is a good part of the memory the process
 * may use, mmvec asks for writeback (sync_file_range, asynchronous) of a block as soon as the
 * program has most likely finished writing it: the previous block, when a new one is made, and
 * the old part of a block that realloc grows. Measured: 2 GiB written through 64 MiB blocks in
 * a 512 MiB cgroup, 0.9-1.0 GB/s without, 1.5-1.6 GB/s with. Below the pressure mark nothing is
 * done, so short-lived blocks of a program that fits in memory never cost a disk write. */
#ifndef MMVEC_WRITEBACK_H
#define MMVEC_WRITEBACK_H

#include "os.h"

#include <stddef.h>
#include <stdint.h>

/* Is memory tight: would live block memory, plus `extra` bytes, pass a quarter of the memory
 * the process may use (pressure.h)? Early writeback starts there, and read-ahead advice goes
 * back to normal (alloc.c). */
MMVI_HIDDEN int mmvi_memory_tight(size_t extra);

/* Should finished blocks be written back early (MMVEC_WRITEBACK: on, or auto and tight)? */
MMVI_HIDDEN int mmvi_writeback_wanted(void);

/* Starts writeback of the first `len` bytes (0: all) of an open file. */
MMVI_HIDDEN void mmvi_writeback_fd(int fd, size_t len);

#endif
