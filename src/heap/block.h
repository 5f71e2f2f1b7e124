/* A block: one large allocation, mapped at a fixed address inside the reserved range. Records
 * are allocated from jemalloc (they are small) and linked in one list in the heap (heap.h), so
 * that exit and fork can walk every block. Everything that changes what backs a block lives in
 * block.c. */
#ifndef MMVEC_BLOCK_H
#define MMVEC_BLOCK_H

#include <stddef.h>
#include <stdint.h>

/* LIVE: handed out. CACHED: freed, kept for reuse. DYING: freed, being torn down. */
enum mmvi_block_state { MMVI_BLOCK_LIVE = 1, MMVI_BLOCK_CACHED = 2, MMVI_BLOCK_DYING = 3 };

/* What the block's pages are. Only a FILE block's file is ours: we may grow, cut or delete it.
 * COW and ANON blocks are this process's private memory: a fork needs nothing for them (the
 * kernel's copy-on-write already gives the child exactly our memory). */
enum mmvi_backing {
    MMVI_BACK_FILE = 1, /* our own file, MAP_SHARED */
    MMVI_BACK_PEER,     /* an ancestor's file, still MAP_SHARED with it (MMVEC_FORK=shared) */
    MMVI_BACK_COW,      /* an ancestor's file, MAP_PRIVATE: our writes are ours alone */
    MMVI_BACK_ANON,     /* anonymous memory: placed in RAM (MMVEC_PLACEMENT=auto), or a copy
                           made at fork when no file could serve */
    MMVI_BACK_MIXED,    /* a move to a file that stopped half way (mmap failed): the first
                           file_size bytes map our file, the rest is still anonymous */
};

struct mmvi_block {
    uintptr_t addr;        /* first byte; what malloc returned */
    size_t size;           /* bytes mapped = usable size (page multiple) */
    size_t file_size;      /* bytes the file has (>= size: never cut below a child's mapping) */
    size_t span;           /* bytes of address space owned (granule multiple, >= size) */
    size_t align;          /* alignment asked for; kept when the block moves */
    uint64_t fork_epoch;   /* forks seen when the block was made: see fork.c */
    uint64_t cached_at_ms; /* when it entered the cache */
    uint8_t state;         /* enum mmvi_block_state */
    uint8_t backing;       /* enum mmvi_backing */
    uint8_t unlinked;      /* the file is gone already (MMVEC_UNLINK, exit) */
    uint8_t sparse;        /* advised MADV_RANDOM until memory gets tight (alloc.c) */
    uint8_t sealed;        /* made inaccessible in a fork child (no memory for a copy) */
    uint8_t pinned;        /* asked for as a file (mmv_malloc_file): never placed in RAM */
    uint8_t busy;          /* realloc is working on it (relaxed atomic): other threads' moves
                              to files leave it alone */
    uint8_t emptied;       /* cached, its pages given back (MADV_DONTNEED) under pressure */
    uint8_t alone;         /* freed (dying or cached) while no fork child could map its file:
                              its disk space may be given back through the mapping */
    uint8_t frozen;        /* mapped MAP_PRIVATE over a file of ours that no longer changes:
                              at a fork (MMVEC_FORK=private, and copy with other threads) until
                              no child maps the file (then folded back: fork.c) or until it
                              moves into a new file; if it could not move, an ANON block whose
                              mapping is still file-backed (never grown in place: past the
                              file's end a page would SIGBUS) */
    size_t folded;         /* frozen: the first bytes already folded back (shared again) by a
                              fold that stopped half way */
    uint8_t ra_random;     /* the advisor turned read-around off (MADV_RANDOM; advise.c) */
    uint8_t ra_level;      /* spells of random in a row: the next one lasts 1 s << ra_level */
    uint8_t ra_still;      /* the advisor's looks in a row at a front that did not move */
    uint16_t ra_cached;    /* the advisor's samples since its last decision: pages cached, */
    uint16_t ra_unmapped;  /*     and of those, pages nobody has mapped (read around, unused) */
    uint64_t ra_since_ms;  /* when ra_random last changed */
    uint64_t ra_front;     /* the advisor's last look: where the last long run of mapped pages
                              ended (a page index; 0: none) */
    uint64_t ra_written;   /* out of core, used in order: pages behind the front whose writeback
                              the advisor started (a page index) */
    uint64_t ra_dropped;   /* ... and those it then dropped from memory */
    uint8_t ra_ahead;      /* the advisor's rounds in a row that saw the front move forward */
    uint8_t ra_seq;        /* advised MADV_SEQUENTIAL while its front moves (advise.c) */
    struct mmvi_block *prev, *next; /* all blocks, live and cached */
    struct mmvi_block *cache_next;  /* the cache's LIFO list */
    uint8_t dir;           /* the segment directory of its file (an index of MMVEC_DIR) */
    char proc[48];         /* the folder that holds the file: <host>-<pid>-<rand> */
    char uuid[40];         /* file name: <uuid>.seg */
};

#endif
