/* What the library says on stderr: only when asked (MMVEC_LOG), or once per kind of behaviour
 * change. Formats into a stack buffer and write(2)s it: never allocates. */
#ifndef MMVEC_LOG_H
#define MMVEC_LOG_H

#include "os.h"

enum mmvi_warn_kind {
    MMVI_WARN_OPTION,     /* bad variable value (each variable says so itself) */
    MMVI_WARN_FALLBACK,   /* first fallback to RAM */
    MMVI_WARN_TMPFS,      /* segment directory is RAM-backed */
    MMVI_WARN_DIR,        /* directory unusable */
    MMVI_WARN_SECURE,     /* AT_SECURE: files disabled */
    MMVI_WARN_SPARSE,     /* no fallocate: sparse files */
    MMVI_WARN_SPILL,      /* a RAM block could not move to a file */
    MMVI_WARN_STOP,       /* threads are stopped to move blocks (no userfaultfd) */
    MMVI_WARN_SPILL_HELD, /* no safe way to move blocks with threads running */
    MMVI_WARN_DISK,       /* the disk budget or the free-space reserve refused a file */
    MMVI_WARN_FORK_COPY,  /* MMVEC_FORK=copy could not freeze files for a one-instant copy */
    MMVI_WARN_FORK_FOLD,  /* private fork: frozen blocks cannot fold back (threads unstoppable) */
    MMVI_WARN_FORK_FREEZE, /* private fork: a file block could not be frozen */
    MMVI_WARN_UNLINK,     /* a freed block's file could not be removed (credentials changed) */
    MMVI_WARN_COUNT
};

/* A message at MMVEC_LOG >= level. */
MMVI_HIDDEN void mmvi_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A warning printed at most once per kind per process (MMVEC_LOG >= 1). */
MMVI_HIDDEN void mmvi_warn_once(enum mmvi_warn_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The caller's stack, at MMVEC_LOG=3 (backtrace_symbols_fd: no allocation). */
MMVI_HIDDEN void mmvi_log_backtrace(void);

/* A fatal misuse (bad free): one line naming mmvec, then abort(). */
MMVI_HIDDEN _Noreturn void mmvi_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
