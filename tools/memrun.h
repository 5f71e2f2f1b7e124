/* `mmvec run --memory SIZE`: the program in a memory limit of its own, with whatever the machine
 * offers (memrun.c). */
#ifndef MMVEC_TOOLS_MEMRUN_H
#define MMVEC_TOOLS_MEMRUN_H

#include "record.h"

#include <stdint.h>

/* Runs argv (argv[0] looked up in PATH) with at most `limit` bytes of memory, swap included, and
 * returns the exit code this tool should end with: the program's own, 128 + N for a signal N
 * (re-raised first, so that a shell sees the same death), or 1 with one line on stderr when no
 * limit can be set here. The environment (LD_PRELOAD and MMVEC_*) must be set already.
 *
 * With `report`, one line on stderr after the program: the group's peak memory and OOM kills.
 * `root` prefixes /proc, /sys and /run ("" for the real system; tests pass a fixture tree). */
int mmvc_run_limited(uint64_t limit, char **argv, const char *root, int report,
                     struct mmvc_recorder *rec);

/* With a recorder (run --record): the program samples every MMVC_RECORD_MS into it while it
 * runs (a limit made by systemd-run: the program keeps systemd-run's pid, our child). */

/* Runs argv as this tool's child with no limit (for --record alone), and ends as it did. */
int mmvc_run_watched(char **argv, struct mmvc_recorder *rec);

#endif
