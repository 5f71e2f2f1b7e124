/* MMVEC_* environment variables: one table (options.c) of name, kind, default and doc; read
 * once, parsed, validated, printable. A bad value gives one warning and the default. In a
 * setuid/setgid program (AT_SECURE) none is read and no file is ever made. */
#ifndef MMVEC_OPTIONS_H
#define MMVEC_OPTIONS_H

#include "os.h"

#include <stddef.h>
#include <stdint.h>

/* MMVEC_BEHIND: write (the default: written back early, and dropped once clean behind a fill of
 * a block larger than the memory limit), on (dropped behind every pass, and read ahead as for
 * read(2)), off (left to the kernel). */
enum mmvi_behind { MMVI_BEHIND_OFF = 0, MMVI_BEHIND_ON = 1, MMVI_BEHIND_WRITE = 2 };

enum mmvi_fork_mode { MMVI_FORK_PRIVATE, MMVI_FORK_COPY, MMVI_FORK_SHARED };
enum mmvi_writeback { MMVI_WRITEBACK_AUTO, MMVI_WRITEBACK_ON, MMVI_WRITEBACK_OFF };
/* auto: a large block is RAM while the heap fits below the mark, a file otherwise (pressure.c);
 * file: every large block is a file from the start. */
enum mmvi_placement { MMVI_PLACE_AUTO, MMVI_PLACE_FILE };
/* MMVEC_STATS: nothing, the table, or one JSON object, at exit. */
enum mmvi_stats_mode { MMVI_STATS_OFF, MMVI_STATS_TABLE, MMVI_STATS_JSON };
/* calloc'd blocks MADV_RANDOM while memory is plentiful (see alloc.c, docs/design.md) */
#define MMVI_ADVICE_AUTO (-1)

/* A share or a size: "60%" or "8G" (MMVEC_RAM_HIGH, MMVEC_MAX_DISK, MMVEC_DISK_RESERVE). */
struct mmvi_mark {
    size_t bytes; /* as a size (used when pct is 0) */
    int pct;      /* as a percentage of a whole (the memory limit, the filesystem) */
    int given;    /* set by the user (a default may apply otherwise) */
};

/* The bytes `m` means out of `whole`. */
static inline uint64_t mmvi_mark_of(const struct mmvi_mark *m, uint64_t whole)
{
    return m->pct ? whole / 100 * (uint64_t)m->pct : (uint64_t)m->bytes;
}

struct mmvi_options {
    size_t threshold_min;  /* requests in [min, max] become segment blocks */
    size_t threshold_max;
    size_t cache_bytes;    /* freed blocks kept mapped for reuse, at most this many bytes */
    size_t cache_decay_ms; /* ... and for at most this long */
    size_t reserve_bytes;  /* address space reserved for blocks */
    int strict;            /* no RAM fallback: NULL + ENOMEM instead */
    int unlink_files;      /* unlink each file right after mapping it */
    int disable;           /* everything to jemalloc */
    int stats;             /* enum mmvi_stats_mode: print the figures at exit */
    int stats_fd;          /* where: a copy of stderr taken at start (programs close fd 2) */
    unsigned long stats_dev, stats_ino; /* ... and what it was, to know it is still that */
    int log;               /* 0 silent, 1 warnings, 2 a line per block, 3 with backtraces */
    int secure;            /* AT_SECURE: variables ignored, no files */
    int advice;            /* MMVEC_ADVICE: MMVI_ADVICE_AUTO, MADV_NORMAL or MADV_RANDOM */
    int fork_mode;         /* enum mmvi_fork_mode */
    int writeback;         /* enum mmvi_writeback: early writeback of block files (writeback.h) */
    int behind;            /* MMVEC_BEHIND (enum mmvi_behind): out of core, pages behind a
                              fill's or scan's front written back and dropped early (advise.c) */
    int show_config;       /* print the effective configuration at start */
    int placement;         /* enum mmvi_placement */
    struct mmvi_mark ram_high;     /* MMVEC_RAM_HIGH, of the memory limit */
    struct mmvi_mark max_disk;     /* MMVEC_MAX_DISK: bytes in block files, of the filesystem
                                      (0: no cap) */
    struct mmvi_mark disk_reserve; /* MMVEC_DISK_RESERVE: space left free on the filesystem */
    size_t memory_limit;   /* MMVEC_MEMORY_LIMIT: a limit of the user's own (0: none) */
    char dir[4096];        /* empty: the namer's default directory */
    char live_dir[4096];   /* MMVEC_LIVE_DIR: where the live figures page goes (publish.c);
                              empty: auto (/dev/shm or $XDG_RUNTIME_DIR), "off": none */
};

extern struct mmvi_options mmvi_opt MMVI_HIDDEN;

/* getenv that also works before libc has set `environ` up (a .preinit_array function may
 * call malloc first): it then looks in the environment the process started with
 * (/proc/self/environ). NULL in a setuid/setgid program (AT_SECURE), as secure_getenv. */
MMVI_HIDDEN const char *mmvi_getenv(const char *name);

/* Reads the environment (once; later calls return at once). Allocates nothing. */
MMVI_HIDDEN void mmvi_options_init(void);

/* Writes the effective configuration to fd: one "NAME=value  # doc" line per variable. */
MMVI_HIDDEN void mmvi_options_print(int fd);

/* The same into buf as "NAME=value\n" lines, without the docs (the live page); truncated at a
 * line's end to fit. */
MMVI_HIDDEN void mmvi_options_format(char *buf, size_t size);

/* "64M", "1g", "4096", "2KiB": bytes, with K/M/G/T (powers of 1024). -EINVAL on garbage,
 * -ERANGE on overflow. */
MMVI_HIDDEN int mmvi_parse_size(const char *s, size_t *out);

/* "64M" (from 64M up) or "64M:1G" (inclusive range, as AUTO_HBW_SIZE). */
MMVI_HIDDEN int mmvi_parse_range(const char *s, size_t *min, size_t *max);

#endif
