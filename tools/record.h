/* `mmvec run --record FILE`: the program's figures over time, as a CSV (record.c). Its format:
 *   # mmvec record: <command line>; interval <ms> ms; memory limit <bytes, 0 for none>
 *   t_s,rss_bytes,rss_anon_bytes,rss_file_bytes,ram_block_bytes,file_block_bytes,
 *   disk_read_bytes,disk_write_bytes,major_faults,minor_faults,cgroup_usage_bytes,
 *   memory_limit_bytes,spill_bytes
 * then one row per sample: seconds since the start, then integers (cumulative counters or
 * gauges); an empty field could not be read at that moment. `mmvec plot` draws it. */
#ifndef MMVEC_TOOLS_RECORD_H
#define MMVEC_TOOLS_RECORD_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define MMVC_RECORD_MS 100 /* between samples */

struct mmvc_recorder {
    FILE *out;
    struct timespec t0;
    uint64_t limit;        /* --memory, or 0 */
    char page_path[4500];  /* the program's live page, once found */
};

/* Creates FILE and writes its header. 0 or a negative errno. */
int mmvc_record_open(struct mmvc_recorder *r, const char *file, char **argv, uint64_t limit);

/* One row for process pid; usage_file is the group's usage control file, or NULL. */
void mmvc_record_sample(struct mmvc_recorder *r, long pid, const char *usage_file);

/* 0, or a negative errno when the file could not be written whole. */
int mmvc_record_close(struct mmvc_recorder *r);

#endif
