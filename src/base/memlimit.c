/* The memory the process may use, and its usage (memlimit.h). */
#define _GNU_SOURCE
#include "memlimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* v1 reports "no limit" as a page-rounded LONG_MAX; anything this large is no limit. */
#define NO_LIMIT ((uint64_t)1 << 62)

/* The n strings one after the other into out; -ENAMETOOLONG when they do not fit. (Not
 * snprintf: gcc -O0 warns that it may truncate, whatever was checked before.) */
static int join(char *out, size_t size, const char *const *part, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(part[i]);
        if (len + k >= size)
            return -ENAMETOOLONG;
        memcpy(out + len, part[i], k);
        len += k;
    }
    out[len] = '\0';
    return 0;
}

static int read_at(const struct mmvi_memsrc *src, const char *dir, const char *file, char *buf,
                   size_t size)
{
    char path[1200];
    const char *part[4] = {dir ? "" : src->root, dir ? dir : "", file[0] == '/' ? "" : "/", file};
    if (join(path, sizeof path, part, 4) < 0)
        return -ENAMETOOLONG;
    return mmvi_os_read_file(path, buf, size);
}

/* A decimal number and nothing after it but blanks; else UINT64_MAX. */
static uint64_t parse_number(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return UINT64_MAX;
    char *end;
    errno = 0;
    uint64_t v = strtoull(p, &end, 10);
    if (errno)
        return UINT64_MAX;
    while (*end == ' ' || *end == '\t')
        end++;
    return *end == '\0' || *end == '\n' || !strncmp(end, "kB", 2) ? v : UINT64_MAX;
}

/* A number, or UINT64_MAX for "max", a missing file or garbage. */
static uint64_t read_number(const struct mmvi_memsrc *src, const char *dir, const char *file)
{
    char buf[64];
    if (read_at(src, dir, file, buf, sizeof buf) < 0)
        return UINT64_MAX;
    uint64_t v = parse_number(buf);
    return v >= NO_LIMIT ? UINT64_MAX : v;
}

/* The value of "key N" in a memory.stat or /proc file ("key: N kB" too), UINT64_MAX if absent
 * or not a number. */
static uint64_t stat_find(const char *text, const char *key)
{
    size_t k = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p += k)
        if ((p == text || p[-1] == '\n') && (p[k] == ' ' || p[k] == ':'))
            return parse_number(p + k + 1);
    return UINT64_MAX;
}

/* The same, 0 if absent. */
static uint64_t stat_value(const char *text, const char *key)
{
    uint64_t v = stat_find(text, key);
    return v == UINT64_MAX ? 0 : v;
}

/* ---- finding the cgroup ------------------------------------------------------------------- */

/* The line of /proc/self/cgroup for v1's memory controller ("N:a,memory,b:/path"), or v2's
 * ("0::/path"). The path, copied into out; 1 or 2, or 0 if neither. */
static int cgroup_path(const char *text, char *out, size_t size)
{
    int version = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        const char *end = strchr(line, '\n');
        if (!c2 || (end && c2 > end))
            continue;
        size_t clen = (size_t)(c2 - c1 - 1);
        int v1 = 0;
        for (const char *c = c1 + 1; c < c2;) { /* the comma-separated controller list */
            size_t n = strcspn(c, ",:");
            v1 |= n == 6 && strncmp(c, "memory", 6) == 0;
            c += n + (c[n] == ',');
        }
        int v2 = clen == 0 && strncmp(line, "0:", 2) == 0;
        if (!v1 && !(v2 && version == 0))
            continue;
        size_t n = end ? (size_t)(end - c2 - 1) : strlen(c2 + 1);
        if (n >= size)
            continue;
        memcpy(out, c2 + 1, n);
        out[n] = '\0';
        version = v1 ? 1 : 2;
        if (v1)
            break; /* on a hybrid machine the v1 memory controller is the one that limits */
    }
    return version;
}

/* The mount of that hierarchy in /proc/self/mountinfo: its mount point (into mnt) and the
 * cgroup path it shows as its root (into mroot). Fields: id parent maj:min root mountpoint
 * options [optional...] - fstype source superoptions. 0, or -ENOENT. */
static int cgroup_mount(const char *text, int version, char *mroot, char *mnt, size_t size)
{
    for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        char f_root[512], f_mnt[512], rest[512];
        if (sscanf(line, "%*s %*s %*s %511s %511s %*s", f_root, f_mnt) != 2 ||
            strlen(f_root) >= 511 || strlen(f_mnt) >= 511) /* too long for us: not this one */
            continue;
        const char *dash = strstr(line, " - ");
        const char *end = strchr(line, '\n');
        if (!dash || (end && dash > end))
            continue;
        size_t n = end ? (size_t)(end - dash - 3) : strlen(dash + 3);
        if (n >= sizeof rest)
            continue;
        memcpy(rest, dash + 3, n);
        rest[n] = '\0';
        int match = version == 2 ? strncmp(rest, "cgroup2 ", 8) == 0
                                 : strncmp(rest, "cgroup ", 7) == 0 &&
                                       (strstr(rest, ",memory") || strstr(rest, " memory"));
        if (!match || strlen(f_root) >= size || strlen(f_mnt) >= size)
            continue;
        strcpy(mroot, f_root);
        strcpy(mnt, f_mnt);
        return 0;
    }
    return -ENOENT;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void mmvi_memsrc_open(struct mmvi_memsrc *src, const char *root)
{
    static char text[65536]; /* mountinfo can be long; callers hold the heap lock or are alone */
    char cg[512], mroot[512], mnt[512], leaf[1100];
    memset(src, 0, sizeof *src);
    snprintf(src->root, sizeof src->root, "%s", root ? root : "");
    if (read_at(src, NULL, "/proc/self/cgroup", text, sizeof text) < 0)
        return;
    int version = cgroup_path(text, cg, sizeof cg);
    if (!version || read_at(src, NULL, "/proc/self/mountinfo", text, sizeof text) < 0 ||
        cgroup_mount(text, version, mroot, mnt, sizeof mnt) < 0)
        return;
    /* The cgroup's path below the mount: without the mount's own root (a container's view). */
    const char *rel = cg;
    size_t rl = strlen(mroot);
    if (strcmp(mroot, "/") != 0 && strncmp(cg, mroot, rl) == 0 && (cg[rl] == '/' || !cg[rl]))
        rel = cg + rl;
    if (!strcmp(rel, "/"))
        rel = "";
    const char *path[3] = {src->root, mnt, rel};
    if (join(leaf, sizeof leaf, path, 3) < 0)
        return;
    if (!is_dir(leaf)) /* a path the mount does not show (a foreign namespace): its root */
        join(leaf, sizeof leaf, path, 2);
    size_t top = strlen(src->root) + strlen(mnt);
    if (!is_dir(leaf) || strlen(leaf) >= sizeof src->dir[0])
        return;
    src->version = version;
    /* Every folder from the leaf up to the mount point, which is the last one considered. */
    while (src->levels < MMVI_MEM_LEVELS) {
        strcpy(src->dir[src->levels++], leaf);
        char *slash = strrchr(leaf, '/');
        if (strlen(leaf) <= top || !slash || (size_t)(slash - leaf) < top)
            break;
        *slash = '\0';
    }
}

/* ---- reading ------------------------------------------------------------------------------- */

/* Usage of one cgroup without the page cache it could drop. */
static uint64_t cgroup_usage(const struct mmvi_memsrc *src, const char *dir)
{
    static char stat[16384];
    int v1 = src->version == 1;
    uint64_t used = read_number(src, dir, v1 ? "memory.usage_in_bytes" : "memory.current");
    if (used == UINT64_MAX)
        return UINT64_MAX;
    if (read_at(src, dir, "memory.stat", stat, sizeof stat) < 0)
        return used;
    uint64_t cache, pinned;
    if (v1) {
        int hier = strstr(stat, "\ntotal_inactive_file ") != NULL;
        cache = stat_value(stat, hier ? "total_inactive_file" : "inactive_file") +
                stat_value(stat, hier ? "total_active_file" : "active_file");
        pinned = stat_value(stat, hier ? "total_dirty" : "dirty") +
                 stat_value(stat, hier ? "total_writeback" : "writeback");
    } else {
        cache = stat_value(stat, "inactive_file") + stat_value(stat, "active_file");
        pinned = stat_value(stat, "file_dirty") + stat_value(stat, "file_writeback");
    }
    uint64_t droppable = cache > pinned ? cache - pinned : 0;
    return used > droppable ? used - droppable : 0;
}

static void consider(struct mmvi_memview *best, uint64_t limit, uint64_t usage, int source,
                     int level, int high)
{
    if (limit == UINT64_MAX)
        return;
    if (usage == UINT64_MAX)
        usage = 0;
    uint64_t room = limit > usage ? limit - usage : 0;
    uint64_t best_room = best->limit > best->usage ? best->limit - best->usage : 0;
    if (best->limit != UINT64_MAX && room >= best_room)
        return;
    *best = (struct mmvi_memview){limit, usage, source, level, high};
}

int mmvi_memview_read(const struct mmvi_memsrc *src, uint64_t user_limit, struct mmvi_memview *out)
{
    static char text[4096];
    *out = (struct mmvi_memview){UINT64_MAX, 0, MMVI_MEM_HOST, 0, 0};
    int rc = read_at(src, NULL, "/proc/meminfo", text, sizeof text);
    if (rc == 0) {
        uint64_t total = stat_value(text, "MemTotal") * 1024;
        uint64_t avail = stat_find(text, "MemAvailable");
        if (avail == UINT64_MAX) /* kernels before 3.14: free and cache, roughly */
            avail = stat_value(text, "MemFree") + stat_value(text, "Cached");
        avail *= 1024;
        if (total)
            consider(out, total, total > avail ? total - avail : 0, MMVI_MEM_HOST, 0, 0);
    }
    for (int i = 0; i < src->levels; i++) {
        const char *d = src->dir[i];
        uint64_t max = read_number(src, d, src->version == 1 ? "memory.limit_in_bytes"
                                                             : "memory.max");
        uint64_t high = src->version == 2 ? read_number(src, d, "memory.high") : UINT64_MAX;
        if (max == UINT64_MAX && high == UINT64_MAX)
            continue;
        uint64_t used = cgroup_usage(src, d);
        int source = src->version == 1 ? MMVI_MEM_CGROUP_V1 : MMVI_MEM_CGROUP_V2;
        consider(out, max, used, source, i, 0);
        consider(out, high, used, source, i, 1);
    }
    if (user_limit && read_at(src, NULL, "/proc/self/status", text, sizeof text) == 0)
        consider(out, user_limit, stat_value(text, "RssAnon") * 1024, MMVI_MEM_USER, 0, 0);
    return rc == 0 ? 0 : -ENOENT;
}

const char *mmvi_mem_source_name(const struct mmvi_memview *v)
{
    switch (v->source) {
    case MMVI_MEM_CGROUP_V1: return "cgroup v1 memory.limit_in_bytes";
    case MMVI_MEM_CGROUP_V2: return v->high ? "cgroup v2 memory.high" : "cgroup v2 memory.max";
    case MMVI_MEM_USER: return "MMVEC_MEMORY_LIMIT";
    default: return "MemTotal";
    }
}
