/* The live figures page of this process (publish.c; the layout: base/figures.h). */
#ifndef MMVEC_PUBLISH_H
#define MMVEC_PUBLISH_H

#include "os.h"

/* At the end of a large request, without the heap lock: makes the page the first time, then
 * writes the counters into it. */
MMVI_HIDDEN void mmvi_live_publish(void);

/* Writes the counters into the page if there is one (never makes it: for the advisor's rounds). */
MMVI_HIDDEN void mmvi_live_update(void);

/* In a fork child: the parent's page is not ours (not even mapped here). */
MMVI_HIDDEN void mmvi_live_forget(void);

/* At exit: the page's name goes, so that nobody lists a process that is ending. */
MMVI_HIDDEN void mmvi_live_close(void);

#endif
