/* `mmvec run --record FILE`: samples the program's figures over time into a CSV (record.h) that
 * `mmvec plot` draws. Each row reads /proc/PID (resident memory, disk bytes, faults), the
 * program's live page (bytes in RAM blocks and in files, bytes moved to files, the limit mmvec
 * sees) and, with --memory, the group's usage. A field that cannot be read is left empty. Only
 * the program itself is sampled (the group's usage counts its children too). */
#define _GNU_SOURCE
#include "record.h"

#include "figures.h"
#include "live.h"
#include "os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

int mmvc_record_open(struct mmvc_recorder *r, const char *file, char **argv, uint64_t limit)
{
    memset(r, 0, sizeof *r);
    r->out = fopen(file, "w");
    if (!r->out)
        return -errno;
    r->limit = limit;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    fprintf(r->out, "# mmvec record:");
    for (char **a = argv; *a; a++)
        fprintf(r->out, " %s", *a);
    fprintf(r->out, "; interval %u ms; memory limit %llu\n", MMVC_RECORD_MS,
            (unsigned long long)limit);
    fprintf(r->out, "t_s,rss_bytes,rss_anon_bytes,rss_file_bytes,ram_block_bytes,"
                    "file_block_bytes,disk_read_bytes,disk_write_bytes,major_faults,"
                    "minor_faults,cgroup_usage_bytes,memory_limit_bytes,spill_bytes\n");
    fflush(r->out);
    return 0;
}

/* The program's page: the one found last time while its process lives, else looked up again
 * (the program makes it at its first large request, and again after an exec). */
static int page(struct mmvc_recorder *r, long pid, struct mmvi_live_page *p)
{
    if (r->page_path[0] && mmvc_reread_page(r->page_path, p) == 0 && p->pid == pid)
        return 0;
    r->page_path[0] = '\0';
    return mmvc_find_page(NULL, pid, p, r->page_path, sizeof r->page_path);
}

static void num(FILE *out, int have, uint64_t v)
{
    if (have)
        fprintf(out, ",%llu", (unsigned long long)v);
    else
        fputc(',', out);
}

void mmvc_record_sample(struct mmvc_recorder *r, long pid, const char *usage_file)
{
    struct mmvi_proc_figures f;
    struct mmvi_live_page p;
    int proc = mmvi_proc_figures_read(pid, &f) == 0;
    int live = page(r, pid, &p) == 0;
    char text[64];
    int have_usage = usage_file && mmvi_os_read_file(usage_file, text, sizeof text) == 0;
    uint64_t limit = r->limit ? r->limit : live ? p.stats.memory_limit : 0;
    fprintf(r->out, "%.3f", since(&r->t0));
    num(r->out, proc, f.rss);
    num(r->out, proc, f.rss_anon);
    num(r->out, proc, f.rss_file);
    num(r->out, live, live ? p.stats.ram_bytes_live : 0);
    num(r->out, live, live ? p.stats.file_bytes_live : 0);
    num(r->out, proc && f.have_io, f.read_bytes);
    num(r->out, proc && f.have_io, f.write_bytes);
    num(r->out, proc, f.majflt);
    num(r->out, proc, f.minflt);
    num(r->out, have_usage, have_usage ? strtoull(text, NULL, 10) : 0);
    num(r->out, limit != 0, limit);
    num(r->out, live, live ? p.stats.spill_bytes : 0);
    fputc('\n', r->out);
    fflush(r->out); /* a program killed half way still leaves what was seen */
}

int mmvc_record_close(struct mmvc_recorder *r)
{
    if (!r->out)
        return 0;
    int rc = ferror(r->out) ? -EIO : 0;
    if (fclose(r->out) != 0 && rc == 0)
        rc = -errno;
    r->out = NULL;
    return rc;
}
