/* The figures of one process: what its live page holds (heap/publish.c writes it, `mmvec ps`,
 * `top` and `stats` read it from another process) and how they are printed (MMVEC_STATS=1 and
 * json at exit, `mmvec stats PID`). Formatting lives here, once, for the library and the CLI.
 *
 * The page is a file of its own on a memory filesystem (/dev/shm or $XDG_RUNTIME_DIR, or
 * MMVEC_LIVE_DIR):  <root>/mmvec-live-<uid>/<host>-<pid>-<rand>.live , flock()ed by its process
 * for its whole life (the lock is held by the page's mapping), so that a reader tells a live
 * page from a dead process's without asking the process anything. Readers only read: they never
 * stop, signal or slow the process they look at. Values are written with relaxed stores at the
 * end of each large request (and by the advisor's rounds): a reader may see a page half way
 * through an update, never a value that was not true a moment before. */
#ifndef MMVEC_FIGURES_H
#define MMVEC_FIGURES_H

#include "mmvec/stats.h"
#include "os.h"

#include <stddef.h>
#include <stdint.h>

#define MMVI_LIVE_MAGIC 0x4556494c43564d4dull /* "MMVCLIVE" */
#define MMVI_LIVE_VERSION 1
#define MMVI_LIVE_PREFIX "mmvec-live-"
#define MMVI_LIVE_SUFFIX ".live"

struct mmvi_live_page {
    uint64_t magic;
    uint32_t version;
    uint32_t size;          /* sizeof (struct mmvi_live_page) */
    int64_t pid;
    uint64_t started_s;     /* when the process started, Unix seconds (0: unknown) */
    uint64_t updated_ns;    /* the last update, CLOCK_REALTIME nanoseconds */
    uint64_t updates;
    char command[512];      /* the command line, arguments separated by spaces */
    char config[1536];      /* "NAME=value\n" for each MMVEC_* variable, as `mmvec config` */
    mmv_stats stats;        /* the counters (disk_write_bytes: readers read /proc/PID/io) */
};

/* What a reader adds from /proc/PID (0 where it could not read them). */
struct mmvi_proc_figures {
    uint64_t rss, rss_anon, rss_file; /* bytes */
    uint64_t read_bytes, write_bytes; /* /proc/PID/io */
    uint64_t minflt, majflt;          /* /proc/PID/stat */
    int have_io;
};

/* Does MMVEC_LIVE_DIR=v turn the page off ("off", "none", "0")? */
MMVI_HIDDEN int mmvi_live_dir_off(const char *v);

/* The length of the valid UTF-8 character at s (at most max bytes), or 0 when the bytes there are
 * not one (a command line cut in the middle of one, or not UTF-8 at all). */
MMVI_HIDDEN size_t mmvi_utf8_char(const unsigned char *s, size_t max);

/* Reads /proc/<pid>/{status,io,stat} ("self" with pid 0) into *f. 0 when the process exists. */
MMVI_HIDDEN int mmvi_proc_figures_read(long pid, struct mmvi_proc_figures *f);

/* The table MMVEC_STATS=1 prints (the same lines as always, then the live figures), into buf.
 * Returns the length (truncated to size - 1). Allocates nothing. */
MMVI_HIDDEN size_t mmvi_figures_text(const struct mmvi_live_page *p,
                                     const struct mmvi_proc_figures *f, char *buf, size_t size);

/* The same as one JSON object on one line (MMVEC_STATS=json, `mmvec stats --json`). */
MMVI_HIDDEN size_t mmvi_figures_json(const struct mmvi_live_page *p,
                                     const struct mmvi_proc_figures *f, char *buf, size_t size);

/* ---- the library's side (stats.c) ---------------------------------------------------------- */

/* The counters now, without /proc/self/io (cheap: relaxed loads; the live page's updates). */
MMVI_HIDDEN void mmvi_stats_fill(mmv_stats *out);

/* A page's header for this process: magic, pid, start, command line, configuration. */
MMVI_HIDDEN void mmvi_stats_header(struct mmvi_live_page *p);

/* What MMVEC_STATS asks for at exit (the table or JSON) to fd. */
MMVI_HIDDEN void mmvi_stats_print_at_exit(int fd);

#endif
