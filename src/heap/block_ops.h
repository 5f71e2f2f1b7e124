/* Operations on one block (block.c). None takes a lock unless it says so; the caller owns b
 * (it is the block being allocated, freed or reallocated) or holds the heap lock. */
#ifndef MMVEC_BLOCK_OPS_H
#define MMVEC_BLOCK_OPS_H

#include "block.h"
#include "os.h"

#include <stddef.h>

/* The path of b's file into buf (for mmv_block_path and the log). */
MMVI_HIDDEN int mmvi_block_path_of(const struct mmvi_block *b, char *buf, size_t size);

/* Maps b->size bytes at b->addr: anonymous memory (ram), or a new file of ours (b->uuid,
 * b->proc set here; the folder must be open: mmvi_heap_folder). 0 or a negative errno; on
 * failure nothing is left behind. Takes the lock only to give up space a stranger took. */
MMVI_HIDDEN int mmvi_block_make(struct mmvi_block *b, int ram);

/* How a move holds other writers off (else a write-protection descriptor, wprotect.h). */
#define MMVI_HOLD_NONE (-1) /* nothing else writes: a single thread, or realloc owns b */
#define MMVI_HOLD_STOP (-2) /* every other thread stopped for each chunk (stopworld.h) */
#define MMVI_HOLD_NOTHING (-3) /* other threads write, and nothing can hold them off */

/* Under the lock: moves a RAM block into a new file of ours mapped over the same addresses, in
 * chunks (little extra memory), each written back early. No write may be lost: `hold` says how
 * writers are held off each chunk while it moves. 0; or a negative errno with b unchanged, or
 * (a map or a stop failed half way) b MIXED, its data all kept. */
MMVI_HIDDEN int mmvi_block_to_file(struct mmvi_block *b, int hold);

/* Unlinks b's file when it is ours and still there. 0, or a negative errno: the name stays (the
 * process lost the right to its folder, or its way there: setuid, chroot), and b->alone says
 * whether mmvi_block_give_space may empty the file instead. */
MMVI_HIDDEN int mmvi_block_unlink(struct mmvi_block *b);

/* A freed block whose file could not be unlinked, that no fork child maps (b->alone): the
 * file's disk space goes back through the mapping (MADV_REMOVE punches its pages out; the
 * mapping keeps the write access its file was opened with, whatever the credentials are now).
 * The empty file stays, for mmvec's reaper running as its owner. Before mmvi_block_unmap. */
MMVI_HIDDEN void mmvi_block_give_space(const struct mmvi_block *b);

/* Unmaps b (its space becomes reserve again) without touching the file. */
MMVI_HIDDEN void mmvi_block_unmap(struct mmvi_block *b);

/* Under the lock: takes b out of the list and the registry, gives back its space, frees the
 * record. */
MMVI_HIDDEN void mmvi_block_forget(struct mmvi_block *b);

/* Is b's file ours to grow and cut (our own, still linked)? */
MMVI_HIDDEN int mmvi_block_can_resize(const struct mmvi_block *b);

/* Under the lock: may b be recycled, or its file cut? Not when a fork child may map it. */
MMVI_HIDDEN int mmvi_block_cacheable(const struct mmvi_block *b);

/* Starts writing back the first len bytes of b's file (0: all), asynchronously. */
MMVI_HIDDEN void mmvi_block_writeback(const struct mmvi_block *b, size_t len);

/* Gives back the tail of b beyond size (takes the lock). The file is cut too unless a fork child
 * may map it. */
MMVI_HIDDEN int mmvi_block_shrink(struct mmvi_block *b, size_t size);

/* Grows b to size bytes (takes the lock for the mapping): the file first, never cut below what
 * it had when that fails. 0 or a negative errno (b unchanged). */
MMVI_HIDDEN int mmvi_block_grow(struct mmvi_block *b, size_t size);

/* The file behind b's mapping, opened read-only through /proc/self/map_files (works for a file
 * already unlinked; needs CAP_SYS_ADMIN). A descriptor to close with mmvi_fds_close (fds.h), or
 * a negative errno. */
MMVI_HIDDEN int mmvi_block_open_mapping(const struct mmvi_block *b);

/* In a fork child, under the lock, with the parent's folder open as dir (or -1): a block of
 * the parent's own file is mapped again copy-on-write (MMVEC_FORK=private) or marked the
 * parent's (shared). 0, or a negative errno when it is still the parent's shared mapping
 * (then mmvi_block_fork_copy must separate it). */
MMVI_HIDDEN int mmvi_block_fork_remap(struct mmvi_block *b, int dir);

/* Then, for what is still shared: a copy into a file of the child's own (copy), else into
 * anonymous memory; as a last resort the block is made inaccessible. Never left shared. */
MMVI_HIDDEN int mmvi_block_fork_copy(struct mmvi_block *b);

/* In the fork's prepare handler (fork.c), under the lock: b (a FILE block of ours) is mapped
 * MAP_PRIVATE over its own file, so that from this instant no thread's write reaches the file:
 * the child's view (its copy, or the file itself) and the pages written since, which fork
 * copies exactly, are one instant. A block frozen at an earlier fork stays as it is. 0, or a
 * negative errno (b as it was). */
MMVI_HIDDEN int mmvi_block_freeze(struct mmvi_block *b);

/* Under the lock, once no fork child maps b's file any more (fork.c): the pages written since
 * the freeze (found in pagemap, open as `pagemap`, or all of them when it is -1) go into the
 * file, which is mapped shared over b again, 64 MiB at a time with the other threads held off
 * as `hold` says (MMVI_HOLD_STOP, or MMVI_HOLD_NONE when nothing else writes). Adds the bytes
 * written to *bytes. 0, or a negative errno with b still frozen from b->folded on. */
MMVI_HIDDEN int mmvi_block_fold(struct mmvi_block *b, int hold, int pagemap, uint64_t *bytes);

/* Under the lock: bytes of frozen b copied on write since the freeze (what folding or moving it
 * would give back to memory), from pagemap (open as `pagemap`; 0 when -1). */
MMVI_HIDDEN uint64_t mmvi_block_copied(const struct mmvi_block *b, int pagemap);

/* Under the lock, while fork children still map frozen b's file and memory is tight: a new file
 * of ours gets a copy of that file (in the kernel) and then, 64 MiB at a time with the other
 * threads held off as `hold` says, the pages written since the freeze, and is mapped shared over
 * b; the old file is left to the children (its name goes). Adds the bytes written from memory
 * to *bytes. 0; or a negative errno with b unchanged, or (stopped half way) b MIXED. */
MMVI_HIDDEN int mmvi_block_refile(struct mmvi_block *b, int hold, int pagemap, uint64_t *bytes);

/* Starts writing back [off, off+len) of b's file (asynchronous; nothing when b has none). */
MMVI_HIDDEN void mmvi_block_write_range(const struct mmvi_block *b, size_t off, size_t len);

/* Unmaps [off, off+len) of a block mapped shared over its file (MADV_DONTNEED: a dirty page
 * hands its dirt to the page cache; nothing is lost), under the lock. 0 or a negative errno
 * (-EINVAL for any other mapping, whose private pages it would discard). */
MMVI_HIDDEN int mmvi_block_unmap_range(const struct mmvi_block *b, size_t off, size_t len);

/* b's own file, opened read-only in our folder (for posix_fadvise and the like, which touch
 * only the page cache: safe after the lock is released). A descriptor to close with
 * mmvi_fds_close (fds.h), or a negative errno. */
MMVI_HIDDEN int mmvi_block_open_file(const struct mmvi_block *b);

/* In the parent, under the lock, once the child has its copy (or, while children map the file,
 * when memory is tight): b's memory as it is now moves into a new file of ours (chunk by chunk,
 * other threads held off as `hold` says; MMVI_HOLD_NOTHING: nothing moves), and the stale file's
 * name goes. Where nothing moved, b is
 * a RAM block (ANON, still `frozen`: never grown in place or cached), right but in memory; the
 * spill path may move it later. 0 or a negative errno. */
MMVI_HIDDEN int mmvi_block_thaw(struct mmvi_block *b, int hold);

#endif
