/* Moving RAM blocks into files when memory gets tight (MMVEC_PLACEMENT=auto).
 *
 * A RAM block moves into a file mapped over the same addresses (block.c: mmvi_block_to_file),
 * so pointers stay valid. A move must never lose a write, the kernel's on the program's behalf
 * included (read(2) into the block), so it happens only at a moment that is safe:
 *  - realloc owns its block: a RAM block grown past the mark moves in that call;
 *  - in a single-threaded process (glibc's __libc_single_threaded) nothing else writes while
 *    the allocator runs: any large request, and each time the private jemalloc maps more memory
 *    for the small heap (the hook in small.c), is such a moment;
 *  - with other threads running, each chunk is write-protected while it moves (userfaultfd,
 *    wprotect.h): writers wait a few milliseconds. Where the process may not use userfaultfd,
 *    the other threads are stopped for each chunk instead (stopworld.h, said once). Where
 *    neither works (SIGPWR is the program's, a thread blocks it), nothing moves (said once):
 *    placement alone keeps new blocks off RAM, with half the mark (pressure.c).
 * Not covered: memory the kernel writes into asynchronously, after the call that asked for it
 * (io_uring fixed buffers, AIO/O_DIRECT in flight, RDMA): such buffers belong in blocks that are
 * files from the start (mmv_malloc_file, or MMVEC_PLACEMENT=file).
 * The largest blocks move first. Everything here runs under the heap lock. */
#ifndef MMVEC_SPILL_H
#define MMVEC_SPILL_H

#include "block.h"
#include "cache.h"
#include "os.h"

#include <stddef.h>

/* Under the lock: if memory is tight with `extra` bytes about to be used, frees the cached RAM
 * blocks (into *ev, for the caller to tear down after unlocking; ev may be NULL), then moves
 * live RAM blocks into files until it is not tight (when a safe way exists). */
MMVI_HIDDEN void mmvi_spill_relieve(size_t extra, struct mmvi_evicted *ev);

/* Under the lock: could RAM blocks move now if memory got tight (a single thread, or write
 * protection available)? Without, placement keeps more room (pressure.c). */
MMVI_HIDDEN int mmvi_spill_possible(void);

/* Under the lock: moves b, which the caller owns (realloc), into a file. 0 or a negative errno. */
MMVI_HIDDEN int mmvi_spill_block(struct mmvi_block *b);

/* The small heap is growing by `len` bytes (jemalloc mapped them): relieve memory if it is
 * tight, without waiting for the lock and without allocating (jemalloc's locks are held). */
MMVI_HIDDEN void mmvi_spill_small_grew(size_t len);

#endif
