/* The read-around advisor (MMVEC_ADVICE=auto): a thread that watches how file blocks are read
 * and turns the kernel's read-around off for a block that wastes it, and on again when that
 * pays. See advise.c for why and how.
 *
 * Its state is its own (advise.c); the per-block fields it keeps (block.h: ra_*) are changed
 * only under mmvi_heap.lock, which the advisor holds (by trylock) for each round of work. */
#ifndef MMVEC_ADVISE_H
#define MMVEC_ADVISE_H

#include "os.h"

#include <sys/types.h>

/* Starts the advisor once file blocks exist (no-op otherwise, or when it runs). Called on the
 * large path without the lock held: starting a thread allocates. */
MMVI_HIDDEN void mmvi_advise_kick(void);

/* The advisor's thread id, or 0 when it does not run: the thread stop leaves it alone (it never
 * writes a block, and blocks every signal). */
MMVI_HIDDEN pid_t mmvi_advise_tid(void);

/* True when no thread but the caller and the advisor runs: the advisor takes the heap lock for
 * all it does, so a move under that lock is as safe as in a single-threaded process. */
MMVI_HIDDEN int mmvi_advise_alone(void);

/* Under the lock, as b is freed: what the advisor set on it goes (a reuse starts afresh). */
struct mmvi_block;
MMVI_HIDDEN void mmvi_advise_freed(struct mmvi_block *b);

/* In a fork child: the thread is not there any more; the next large request starts it again. */
MMVI_HIDDEN void mmvi_advise_forget(void);

#endif
