/* Making, resizing and dropping the file behind a segment block (no locks here: the callers in
 * alloc.c decide when). Shared by alloc.c and forking.c. */
#ifndef MMVEC_SEGBLOCK_H
#define MMVEC_SEGBLOCK_H

#include "block.h"
#include "os.h"

#include <pthread.h>

/* The allocator lock: the block list, the cache, the space bitmap and the process folder. */
extern pthread_mutex_t mmvi_lock MMVI_HIDDEN;
/* Every block, live and cached. */
extern struct mmvi_block *mmvi_blocks MMVI_HIDDEN;
/* Bumped in the parent at each fork: blocks older than it are never recycled. */
extern uint64_t mmvi_fork_epoch MMVI_HIDDEN;

/* The file of b into buf. */
MMVI_HIDDEN int mmvi_block_path_of(const struct mmvi_block *b, char *buf, size_t size);

/* Creates b's file (b->uuid, b->proc set here) of b->size bytes and maps it at b->addr.
 * 0 or a negative errno; on failure nothing is left behind. */
MMVI_HIDDEN int mmvi_segblock_make(struct mmvi_block *b);

/* Unlinks b's file when this process owns it and it is still there. */
MMVI_HIDDEN void mmvi_segblock_unlink(struct mmvi_block *b);

/* Unmaps b (its space becomes reserve again) without touching the file. */
MMVI_HIDDEN void mmvi_segblock_unmap(struct mmvi_block *b);

/* Under the lock: takes b out of the list and the registry, gives back its space, frees the
 * record. */
MMVI_HIDDEN void mmvi_block_forget(struct mmvi_block *b);

/* Does this process own b's file (made by it, not inherited through fork)? */
MMVI_HIDDEN int mmvi_block_owned(const struct mmvi_block *b);

/* In the fork child, under the lock: recounts what alloc.c keeps about the blocks. */
MMVI_HIDDEN void mmvi_alloc_after_fork_child(void);

/* Registers the fork handlers (once). */
MMVI_HIDDEN void mmvi_fork_register(void);

#endif
