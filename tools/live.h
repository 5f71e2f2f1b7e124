/* `mmvec ps`, `top`, `stats PID` (live.c), and finding a process's live figures page (also used
 * by `run --record`, record.c). */
#ifndef MMVEC_TOOLS_LIVE_H
#define MMVEC_TOOLS_LIVE_H

#include "figures.h"

#include <stddef.h>

typedef void (*mmvc_page_fn)(const struct mmvi_live_page *p, const char *path, void *arg);

/* Calls fn for each live page (its process alive) under root, or, with root NULL, where the
 * library puts them (MMVEC_LIVE_DIR, else /dev/shm and $XDG_RUNTIME_DIR). */
void mmvc_each_page(const char *root, mmvc_page_fn fn, void *arg);

/* The live page of pid into *out, and its path into path when not NULL. 0, or -1 if none. */
int mmvc_find_page(const char *root, long pid, struct mmvi_live_page *out, char *path,
                   size_t path_size);

/* The page at path again, if its process is still alive. 0 or -1. */
int mmvc_reread_page(const char *path, struct mmvi_live_page *out);

int mmvc_ps_main(int argc, char **argv);
int mmvc_top_main(int argc, char **argv);
int mmvc_stats_main(int argc, char **argv);

#endif
