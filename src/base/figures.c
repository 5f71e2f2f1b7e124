/* Printing a process's figures (figures.h): the table and the JSON object, for the library at
 * exit and for `mmvec stats`. Nothing here allocates: it runs inside programs whose heap we are. */
#define _GNU_SOURCE
#include "figures.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int mmvi_live_dir_off(const char *v)
{
    return !strcmp(v, "off") || !strcmp(v, "none") || !strcmp(v, "0");
}

size_t mmvi_utf8_char(const unsigned char *s, size_t max)
{
    if (max == 0 || s[0] == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not characters */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* ---- /proc/PID ----------------------------------------------------------------------------- */

/* The number after "key" in text (a /proc key: value file), times `unit`; 0 when absent. */
static uint64_t field(const char *text, const char *key, uint64_t unit)
{
    const char *p = strstr(text, key);
    return p ? strtoull(p + strlen(key), NULL, 10) * unit : 0;
}

int mmvi_proc_figures_read(long pid, struct mmvi_proc_figures *f)
{
    char path[64], buf[4096];
    memset(f, 0, sizeof *f);
    if (pid)
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    if (mmvi_os_read_file(path, buf, sizeof buf) < 0)
        return -1;
    f->rss = field(buf, "\nVmRSS:", 1024);
    f->rss_anon = field(buf, "\nRssAnon:", 1024);
    f->rss_file = field(buf, "\nRssFile:", 1024) + field(buf, "\nRssShmem:", 1024);
    /* io: only the owner (or root) may read it */
    snprintf(path + strlen(path) - strlen("status"), 8, "io");
    if (mmvi_os_read_file(path, buf, sizeof buf) == 0) {
        f->have_io = 1;
        f->read_bytes = field(buf, "\nread_bytes: ", 1);
        f->write_bytes = field(buf, "\nwrite_bytes: ", 1);
        /* what the process wrote and then truncated away never reached the disk */
        uint64_t cancelled = field(buf, "\ncancelled_write_bytes: ", 1);
        f->write_bytes = f->write_bytes > cancelled ? f->write_bytes - cancelled : 0;
    }
    snprintf(path + strlen(path) - strlen("io"), 8, "stat");
    if (mmvi_os_read_file(path, buf, sizeof buf) == 0) {
        /* after the command's closing parenthesis: state is field 3, minflt 10, majflt 12 */
        const char *p = strrchr(buf, ')');
        for (int i = 2; p && i < 12; i++) {
            p = strchr(p + 1, ' ');
            if (p && i + 1 == 10)
                f->minflt = strtoull(p + 1, NULL, 10);
        }
        if (p)
            f->majflt = strtoull(p + 1, NULL, 10);
    }
    return 0;
}

/* ---- a buffer that never overflows --------------------------------------------------------- */

struct out {
    char *buf;
    size_t size, len;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->size ? o->len + (size_t)n : o->size - 1;
}

/* s as the body of a JSON string (quotes, backslashes and control characters escaped). */
static void put_json_string(struct out *o, const char *s, size_t max)
{
    put(o, "\"");
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < max && u[i];) {
        size_t n = mmvi_utf8_char(u + i, max - i);
        if (n == 0) /* not UTF-8 (or a character cut short): JSON must be */
            put(o, "\\ufffd");
        else if (u[i] == '"' || u[i] == '\\')
            put(o, "\\%c", u[i]);
        else if (u[i] < 0x20 || u[i] == 0x7f)
            put(o, "\\u%04x", u[i]);
        else
            put(o, "%.*s", (int)n, s + i);
        i += n ? n : 1;
    }
    put(o, "\"");
}

static void put_time(struct out *o, uint64_t unix_s)
{
    char when[64] = "?";
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (unix_s && localtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    put(o, "%s", when);
}

/* ---- the table ------------------------------------------------------------------------------ */

#define U(x) ((unsigned long long)(x))

/* The lines MMVEC_STATS=1 always printed (scripts read them), in the same words. */
static void put_counters(struct out *o, const mmv_stats *s)
{
    put(o, "  blocks made        %12llu   cache hits     %12llu\n", U(s->blocks_made),
        U(s->cache_hits));
    put(o, "  blocks live        %12llu   largest block  %12llu B\n", U(s->blocks_live),
        U(s->largest_block));
    put(o, "  block bytes live   %12llu B peak %llu B\n", U(s->block_bytes_live),
        U(s->block_bytes_peak));
    put(o, "  reallocs in place  %12llu   moved %llu   copied %llu\n", U(s->reallocs_in_place),
        U(s->reallocs_moved), U(s->reallocs_copied));
    put(o, "  fallbacks to RAM   %12llu   (dir %llu, disk full %llu, maps %llu, files %llu, "
           "other %llu)\n",
        U(s->fallbacks), U(s->fallback_dir), U(s->fallback_space), U(s->fallback_maps),
        U(s->fallback_files), U(s->fallback_other));
    put(o, "  early writebacks   %12llu\n", U(s->writebacks));
    put(o, "  files reaped       %12llu   (%llu B)\n", U(s->files_reaped), U(s->bytes_reaped));
    put(o, "  segments mapped    %12llu   bytes %llu, peak %llu\n", U(s->active_segments),
        U(s->bytes_mapped), U(s->bytes_mapped_peak));
    put(o, "  failures           fallocate %llu, ftruncate %llu, map %llu, unmap %llu\n",
        U(s->fallocate_failed), U(s->ftruncate_failed), U(s->map_failed), U(s->unmap_failed));
    put(o, "  sparse files       %12llu   (no fallocate on the filesystem)\n",
        U(s->sparse_files));
    put(o, "  blocks in RAM      %12llu   made as files when tight %llu\n", U(s->blocks_ram),
        U(s->blocks_file_tight));
    put(o, "  RAM bytes live     %12llu B peak %llu B; in files %llu B\n", U(s->ram_bytes_live),
        U(s->ram_bytes_peak), U(s->file_bytes_live));
    put(o, "  moved to files     %12llu   (%llu B in %llu us, longest %llu us; failed %llu, "
           "held off %llu)\n",
        U(s->spills), U(s->spill_bytes), U(s->spill_us), U(s->spill_max_us), U(s->spill_failed),
        U(s->spill_held_off));
    put(o, "  memory limit       %12llu B usage %llu B\n", U(s->memory_limit), U(s->memory_usage));
    put(o, "  disk bytes written %12llu B\n", U(s->disk_write_bytes));
    put(o, "  read-around off    %12llu   on again %llu; pages sampled %llu\n",
        U(s->readaround_off), U(s->readaround_on), U(s->advisor_samples));
    put(o, "  disk refused       %12llu   (free-space reserve or disk budget)\n",
        U(s->disk_refused));
    put(o, "  behind the front   %12llu B written back early, %llu B dropped; ahead %llu B "
           "cleared\n",
        U(s->behind_written), U(s->behind_dropped), U(s->ahead_cleared));
    put(o, "  after forks        %12llu   blocks folded back (%llu B written), %llu moved\n",
        U(s->fork_folds), U(s->fork_fold_bytes), U(s->fork_thaws));
}

size_t mmvi_figures_text(const struct mmvi_live_page *p, const struct mmvi_proc_figures *f,
                         char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    const mmv_stats *s = &p->stats;
    put(&o, "mmvec stats (pid %lld) %.*s\n", (long long)p->pid, (int)sizeof p->command,
        p->command);
    put_counters(&o, s);
    put(&o, "  blocks now         %12llu   in RAM %llu (%llu B), in files %llu (%llu B)\n",
        U(s->blocks_live), U(s->ram_blocks_live), U(s->ram_bytes_live), U(s->file_blocks_live),
        U(s->file_bytes_live));
    put(&o, "  disk read          %12llu B\n", U(s->disk_read_bytes));
    put(&o, "  resident           %12llu B (anonymous %llu B, files %llu B); faults %llu major, "
            "%llu minor\n",
        U(f->rss), U(f->rss_anon), U(f->rss_file), U(f->majflt), U(f->minflt));
    put(&o, "  started            ");
    put_time(&o, p->started_s);
    put(&o, "\n");
    return o.len;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/* Every counter of mmv_stats, by its name in the struct (the JSON keys). */
#define MMVI_STATS_FIELDS(X)                                                                      \
    X(active_segments) X(fallocate_failed) X(ftruncate_failed) X(map_failed) X(unmap_failed)     \
    X(bytes_mapped) X(bytes_mapped_peak) X(blocks_made) X(blocks_live) X(block_bytes_live)       \
    X(block_bytes_peak) X(largest_block) X(cache_hits) X(reallocs_in_place) X(reallocs_moved)    \
    X(reallocs_copied) X(fallbacks) X(fallback_dir) X(fallback_space) X(fallback_maps)          \
    X(fallback_files) X(fallback_other) X(writebacks) X(files_reaped) X(bytes_reaped)           \
    X(blocks_ram) X(blocks_file_tight) X(ram_bytes_live) X(ram_bytes_peak) X(spills)            \
    X(spill_bytes) X(spill_us) X(spill_max_us) X(spill_failed) X(spill_held_off)                \
    X(memory_limit) X(memory_usage) X(disk_write_bytes) X(readaround_off) X(readaround_on)      \
    X(advisor_samples) X(disk_refused) X(ram_blocks_live) X(file_blocks_live)                   \
    X(file_bytes_live) X(disk_read_bytes) X(sparse_files) X(behind_written) X(behind_dropped) \
    X(fork_folds) X(fork_fold_bytes) X(fork_thaws) X(ahead_cleared)

/* "config": {"MMVEC_X": "value", ...} from the page's "NAME=value\n" lines. */
static void put_config(struct out *o, const char *cfg, size_t max)
{
    put(o, "\"config\":{");
    const char *end = cfg + strnlen(cfg, max);
    int first = 1;
    for (const char *line = cfg; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *eq = memchr(line, '=', (size_t)((nl ? nl : end) - line));
        if (!nl)
            nl = end;
        if (eq) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(eq - line), line);
            put(o, first ? "" : ",");
            put_json_string(o, name, sizeof name);
            put(o, ":");
            put_json_string(o, eq + 1, (size_t)(nl - eq - 1));
            first = 0;
        }
        line = nl + 1;
    }
    put(o, "}");
}

size_t mmvi_figures_json(const struct mmvi_live_page *p, const struct mmvi_proc_figures *f,
                         char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    if (size)
        buf[0] = '\0';
    const mmv_stats *s = &p->stats;
    put(&o, "{\"mmvec_stats\":%u,\"pid\":%lld,\"command\":", (unsigned)p->version,
        (long long)p->pid);
    put_json_string(&o, p->command, sizeof p->command);
    put(&o, ",\"started\":%llu,\"updated_ns\":%llu,", U(p->started_s), U(p->updated_ns));
    put_config(&o, p->config, sizeof p->config);
#define X(name) put(&o, ",\"" #name "\":%llu", U(s->name));
    MMVI_STATS_FIELDS(X)
#undef X
    put(&o, ",\"rss\":%llu,\"rss_anon\":%llu,\"rss_file\":%llu,\"major_faults\":%llu,"
            "\"minor_faults\":%llu}\n",
        U(f->rss), U(f->rss_anon), U(f->rss_file), U(f->majflt), U(f->minflt));
    return o.len;
}
