/* The options table: every MMVEC_* variable, read once from the environment. */
#define _GNU_SOURCE
#include "options.h"

#include "log.h"
#include "mmvec/common.h"
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MMVI_DEFAULT_THRESHOLD (1u << 20)
/* RAM blocks while usage stays below 60% of the limit: see README ("Where blocks live"). */
#define MMVI_DEFAULT_RAM_HIGH_PCT 60
/* Block files leave 5% of their filesystem free, and at least 1 GiB or 10% of it, whichever is
 * less: never the disk that holds a home full, and a small filesystem still usable. */
#define MMVI_DEFAULT_DISK_RESERVE_PCT 5

struct mmvi_options mmvi_opt = {
    .threshold_min = MMVI_DEFAULT_THRESHOLD,
    .threshold_max = SIZE_MAX,
    .cache_bytes = (size_t)256 << 20, /* enough to recycle a 256 MiB block; little dirty data kept */
    .cache_decay_ms = 5000,
    .reserve_bytes = (size_t)4 << 40,
    .log = 1,
    .fork_mode = MMVI_FORK_PRIVATE,
    .advice = MMVI_ADVICE_AUTO,
    .behind = MMVI_BEHIND_WRITE,
    .stats_fd = -1,
    .ram_high = {.pct = MMVI_DEFAULT_RAM_HIGH_PCT},
    .disk_reserve = {.pct = MMVI_DEFAULT_DISK_RESERVE_PCT},
};

int mmvi_parse_size(const char *s, size_t *out)
{
    if (!s || !out)
        return -EINVAL;
    while (*s == ' ')
        s++;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    uint64_t v = 0;
    int over = 0; /* reported after the grammar check: garbage is -EINVAL even when long */
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = 1;
        else
            v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    case 't': case 'T': shift = 40; s++; break;
    default: break;
    }
    if (shift && (*s == 'i' || *s == 'I'))
        s++;
    if (*s == 'b' || *s == 'B')
        s++;
    while (*s == ' ')
        s++;
    if (*s != '\0')
        return -EINVAL;
    if (over || (shift && v > (SIZE_MAX >> shift)))
        return -ERANGE;
    if (v > SIZE_MAX)
        return -ERANGE;
    *out = (size_t)(v << shift);
    return 0;
}

int mmvi_parse_range(const char *s, size_t *min, size_t *max)
{
    if (!s || !min || !max)
        return -EINVAL;
    const char *colon = strchr(s, ':');
    if (!colon) {
        *max = SIZE_MAX;
        return mmvi_parse_size(s, min);
    }
    char lo[64];
    size_t n = (size_t)(colon - s);
    if (n >= sizeof lo)
        return -EINVAL;
    memcpy(lo, s, n);
    lo[n] = '\0';
    size_t a, b;
    int rc = mmvi_parse_size(lo, &a);
    if (rc == 0)
        rc = mmvi_parse_size(colon + 1, &b);
    if (rc < 0)
        return rc;
    if (a > b)
        return -EINVAL;
    *min = a;
    *max = b;
    return 0;
}

extern char **environ;

/* The environment the process started with, for calls made before libc sets `environ`: read
 * once from /proc/self/environ ("NAME=value\0..."). Variables past the buffer are not seen. */
static const char *initial_env(const char *name)
{
    static char env[256 << 10];
    static size_t len;
    static int loaded;
    if (!__atomic_exchange_n(&loaded, 1, __ATOMIC_ACQ_REL)) {
        int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
        for (ssize_t n; fd >= 0 && len < sizeof env - 1 &&
                        (n = read(fd, env + len, sizeof env - 1 - len)) > 0;)
            len += (size_t)n;
        if (fd >= 0)
            close(fd);
    }
    size_t k = strlen(name);
    for (size_t i = 0; i < len; i += strlen(env + i) + 1)
        if (strncmp(env + i, name, k) == 0 && env[i + k] == '=')
            return env + i + k + 1;
    return NULL;
}

const char *mmvi_getenv(const char *name)
{
    if (getauxval(AT_SECURE))
        return NULL;
    return environ ? getenv(name) : initial_env(name);
}

static void bad(const char *name, const char *value)
{
    /* One line per bad variable; the default stays in force. */
    mmvi_log(1, "warning: ignoring %s=\"%.64s\" (invalid value); using the default", name, value);
}

/* ---- the table ------------------------------------------------------------------------------ */

enum kind { K_BOOL, K_SIZE, K_RANGE, K_MARK, K_CHOICE, K_LEVEL, K_DIR, K_DOC };

struct option {
    const char *name;
    enum kind kind;
    void *field;                /* int (bool, choice, level), size_t (size), char[] (dir) */
    size_t lo, hi;              /* K_SIZE: accepted values */
    const char *const *names;   /* K_CHOICE: the words, NULL-terminated, and their values */
    const int *values;
    const char *doc;            /* one line */
};

static const char *const fork_names[] = {"private", "copy", "shared", NULL};
static const int fork_values[] = {MMVI_FORK_PRIVATE, MMVI_FORK_COPY, MMVI_FORK_SHARED};
/* normal: the kernel reads ahead around each fault (fast sequential first writes and re-reads
 * after eviction, but a sparse first touch zero-fills the whole read-ahead window); random: one
 * page per fault; auto: random for calloc'd blocks while memory is plentiful, and out of core for
 * file blocks whose read-around is wasted (src/heap/advise.c). docs/design.md. */
static const char *const advice_names[] = {"auto", "normal", "random", NULL};
static const int advice_values[] = {MMVI_ADVICE_AUTO, MADV_NORMAL, MADV_RANDOM};
static const char *const place_names[] = {"auto", "file", NULL};
static const int place_values[] = {MMVI_PLACE_AUTO, MMVI_PLACE_FILE};
static const char *const stats_names[] = {"0", "1", "json", "no", "yes", "off", "on",
                                          "false", "true", "", NULL};
static const int stats_values[] = {MMVI_STATS_OFF,   MMVI_STATS_TABLE, MMVI_STATS_JSON,
                                   MMVI_STATS_OFF,   MMVI_STATS_TABLE, MMVI_STATS_OFF,
                                   MMVI_STATS_TABLE, MMVI_STATS_OFF,   MMVI_STATS_TABLE,
                                   MMVI_STATS_OFF};
static const char *const behind_names[] = {"off", "on", "write", "0", "1", NULL};
static const int behind_values[] = {0, 1, 2, 0, 1};
static const char *const wb_names[] = {"auto", "on", "off", "1", "0", NULL};
static const int wb_values[] = {MMVI_WRITEBACK_AUTO, MMVI_WRITEBACK_ON, MMVI_WRITEBACK_OFF,
                                MMVI_WRITEBACK_ON, MMVI_WRITEBACK_OFF};

#define O struct mmvi_options
static const struct option table[] = {
    /* MMVEC_LOG first: it decides whether the others may warn. */
    {"MMVEC_LOG", K_LEVEL, &mmvi_opt.log, 0, 3, NULL, NULL,
     "0 silent, 1 warnings (default), 2 a line per block, 3 with backtraces"},
    {"MMVEC_THRESHOLD", K_RANGE, &mmvi_opt.threshold_min, 0, 0, NULL, NULL,
     "requests of at least this size (or in MIN:MAX) become segment blocks"},
    {"MMVEC_DIR", K_DIR, mmvi_opt.dir, 0, 0, NULL, NULL,
     "where block files go (in its subfolder mmvec-heap-<uid>)"},
    {"MMVEC_FORK", K_CHOICE, &mmvi_opt.fork_mode, 0, 0, fork_names, fork_values,
     "what a fork child sees of the blocks: private, copy or shared"},
    {"MMVEC_STRICT", K_BOOL, &mmvi_opt.strict, 0, 0, NULL, NULL,
     "1: a large request that cannot be a file fails (NULL, ENOMEM) instead of using RAM"},
    {"MMVEC_UNLINK", K_BOOL, &mmvi_opt.unlink_files, 0, 0, NULL, NULL,
     "1: unlink each block file as soon as it is mapped"},
    {"MMVEC_DISABLE", K_BOOL, &mmvi_opt.disable, 0, 0, NULL, NULL,
     "1: everything to the private jemalloc, no files"},
    {"MMVEC_STATS", K_CHOICE, &mmvi_opt.stats, 0, 0, stats_names, stats_values,
     "1: print the figures to stderr at exit; json: the same as one JSON object"},
    {"MMVEC_LIVE_DIR", K_DIR, mmvi_opt.live_dir, 0, 0, NULL, NULL,
     "where the live figures page goes (mmvec ps/top/stats): auto (/dev/shm), a dir, or off"},
    {"MMVEC_SHOW_CONFIG", K_BOOL, &mmvi_opt.show_config, 0, 0, NULL, NULL,
     "1: print this configuration to stderr at start"},
    {"MMVEC_PLACEMENT", K_CHOICE, &mmvi_opt.placement, 0, 0, place_names, place_values,
     "auto: large blocks in RAM while the heap fits, files past it; file: files from the start"},
    {"MMVEC_RAM_HIGH", K_MARK, &mmvi_opt.ram_high, 1, 0, NULL, NULL,
     "RAM blocks while usage stays below this share (60%) or size of the memory limit"},
    {"MMVEC_MAX_DISK", K_MARK, &mmvi_opt.max_disk, 0, 0, NULL, NULL,
     "bytes of block files at most: a size or a share of their filesystem (0: no cap)"},
    {"MMVEC_DISK_RESERVE", K_MARK, &mmvi_opt.disk_reserve, 0, 0, NULL, NULL,
     "space block files leave free on their filesystem (default 5%, at least 1G or 10%)"},
    {"MMVEC_MEMORY_LIMIT", K_SIZE, &mmvi_opt.memory_limit, 0, SIZE_MAX, NULL, NULL,
     "a memory limit of your own for this process (0: only cgroups and MemTotal count)"},
    {"MMVEC_ADVICE", K_CHOICE, &mmvi_opt.advice, 0, 0, advice_names, advice_values,
     "read-ahead of block pages: auto, normal or random"},
    {"MMVEC_WRITEBACK", K_CHOICE, &mmvi_opt.writeback, 0, 0, wb_names, wb_values,
     "early writeback of finished blocks: auto (when memory is tight), on or off"},
    {"MMVEC_BEHIND", K_CHOICE, &mmvi_opt.behind, 0, 0, behind_names, behind_values,
     "out of core, one block filled in order: write (default) starts the writeback behind its "
     "front; on also drops those pages and reads ahead; off leaves it to the kernel"},
    {"MMVEC_CACHE", K_SIZE, &mmvi_opt.cache_bytes, 0, SIZE_MAX, NULL, NULL,
     "bytes of freed blocks kept mapped for reuse"},
    {"MMVEC_CACHE_DECAY_MS", K_SIZE, &mmvi_opt.cache_decay_ms, 0, 3600u * 1000u, NULL, NULL,
     "milliseconds a freed block stays in the cache"},
    {"MMVEC_RESERVE", K_SIZE, &mmvi_opt.reserve_bytes, (size_t)1 << 30, (size_t)64 << 40, NULL,
     NULL, "address space reserved for blocks"},
    {"MMVEC_JEMALLOC_CONF", K_DOC, NULL, 0, 0, NULL, NULL,
     "options for the private jemalloc (its MALLOC_CONF; the program's MALLOC_CONF is not read)"},
};
#undef O

/* 0/1 switches: "1", "0", "yes", "no", "true", "false", "on", "off". */
static int read_bool(const char *v, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    return -EINVAL;
}

/* A mark: "60%" or a size ("8G"); 0 and 0% only where the option's lo is 0. */
static int read_mark(const struct option *o, const char *v)
{
    struct mmvi_mark *m = o->field;
    char *end;
    size_t x;
    if (strchr(v, '%')) {
        unsigned long pct = strtoul(v, &end, 10);
        if (end == v || strcmp(end, "%") != 0 || pct < o->lo || pct > 100 || v[0] == '-')
            return -EINVAL;
        *m = (struct mmvi_mark){.bytes = 0, .pct = (int)pct, .given = 1};
        return 0;
    }
    if (mmvi_parse_size(v, &x) < 0 || x < o->lo)
        return -EINVAL;
    *m = (struct mmvi_mark){.bytes = x, .pct = 0, .given = 1};
    return 0;
}

static int read_one(const struct option *o, const char *v)
{
    size_t x, y;
    switch (o->kind) {
    case K_BOOL:
        return read_bool(v, o->field);
    case K_SIZE:
        if (mmvi_parse_size(v, &x) < 0 || x < o->lo || x > o->hi)
            return -EINVAL;
        *(size_t *)o->field = x;
        return 0;
    case K_RANGE:
        if (mmvi_parse_range(v, &x, &y) < 0 || x == 0)
            return -EINVAL;
        mmvi_opt.threshold_min = x;
        mmvi_opt.threshold_max = y;
        return 0;
    case K_MARK:
        return read_mark(o, v);
    case K_CHOICE:
        for (size_t i = 0; o->names[i]; i++)
            if (strcmp(v, o->names[i]) == 0)
                return *(int *)o->field = o->values[i], 0;
        return -EINVAL;
    case K_LEVEL:
        if (v[0] < '0' || v[0] > '0' + (int)o->hi || v[1] != '\0')
            return -EINVAL;
        *(int *)o->field = v[0] - '0';
        return 0;
    case K_DIR:
        x = strlen(v);
        if (x == 0 || x >= sizeof mmvi_opt.dir - 64)
            return -EINVAL;
        memcpy(o->field, v, x + 1);
        return 0;
    case K_DOC:
        return 0;
    }
    return -EINVAL;
}

/* ---- printing the effective configuration --------------------------------------------------- */

/* "256M", "4K", "1000": the largest unit that divides the value. */
static void fmt_size(char *buf, size_t size, size_t v)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (v && u < 3 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (v == SIZE_MAX && u < 0)
        snprintf(buf, size, "max");
    else if (u >= 0)
        snprintf(buf, size, "%zu%c", v, units[u]);
    else
        snprintf(buf, size, "%zu", v);
}

static void fmt_value(const struct option *o, char *buf, size_t size)
{
    char a[32], b[32];
    switch (o->kind) {
    case K_BOOL:
    case K_LEVEL:
        snprintf(buf, size, "%d", *(int *)o->field);
        return;
    case K_SIZE:
        fmt_size(buf, size, *(size_t *)o->field);
        return;
    case K_RANGE:
        fmt_size(a, sizeof a, mmvi_opt.threshold_min);
        fmt_size(b, sizeof b, mmvi_opt.threshold_max);
        snprintf(buf, size, mmvi_opt.threshold_max == SIZE_MAX ? "%s" : "%s:%s", a, b);
        return;
    case K_MARK: {
        const struct mmvi_mark *m = o->field;
        if (m->pct)
            snprintf(buf, size, "%d%%", m->pct);
        else
            fmt_size(buf, size, m->bytes);
        return;
    }
    case K_CHOICE:
        for (size_t i = 0; o->names[i]; i++)
            if (o->values[i] == *(int *)o->field) {
                snprintf(buf, size, "%s", o->names[i]);
                return;
            }
        snprintf(buf, size, "?");
        return;
    case K_DIR:
        if (((const char *)o->field)[0])
            snprintf(buf, size, "%s", (const char *)o->field);
        else if (o->field != mmvi_opt.dir)
            snprintf(buf, size, "auto");
        else if (mmvi_default_dir_path(buf, size) < 0)
            snprintf(buf, size, "?");
        return;
    case K_DOC: {
        const char *v = mmvi_getenv(o->name);
        snprintf(buf, size, "%s", v ? v : "");
        return;
    }
    }
}

void mmvi_options_format(char *buf, size_t size)
{
    mmvi_options_init();
    char value[4200];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        if (table[i].kind == K_DOC)
            continue;
        fmt_value(&table[i], value, sizeof value);
        int n = snprintf(buf + len, size - len, "%s=%s\n", table[i].name, value);
        if (n < 0 || (size_t)n >= size - len) {
            buf[len] = '\0'; /* this line does not fit: stop at the last whole one */
            return;
        }
        len += (size_t)n;
    }
}

void mmvi_options_print(int fd)
{
    mmvi_options_init();
    char line[600], value[4200];
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        fmt_value(&table[i], value, sizeof value);
        int n = snprintf(line, sizeof line, "%s=%s%*s# %s\n", table[i].name, value,
                         (int)(strlen(table[i].name) + strlen(value) < 34
                                   ? 35 - strlen(table[i].name) - strlen(value) : 1),
                         "", table[i].doc);
        if (n > 0) {
            ssize_t w = write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
            (void)w;
        }
    }
    if (mmvi_opt.secure) {
        static const char note[] = "# setuid/setgid program: no variable is read, no file made\n";
        ssize_t w = write(fd, note, sizeof note - 1);
        (void)w;
    }
}

int mmv_config_print(int fd)
{
    if (fd < 0)
        return -EINVAL;
    mmvi_options_print(fd);
    return 0;
}

int mmv_parse_size(const char *s, size_t *out)
{
    return mmvi_parse_size(s, out);
}

int mmv_parse_range(const char *s, size_t *min, size_t *max)
{
    return mmvi_parse_range(s, min, max);
}

/* sort, xz and others close stderr before exiting: keep our own copy for the table, high
 * (programs reuse low numbers), with its identity. */
static void save_stderr(void)
{
    struct stat st;
    mmvi_opt.stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
    if (mmvi_opt.stats_fd >= 0 && fstat(mmvi_opt.stats_fd, &st) == 0) {
        mmvi_opt.stats_dev = (unsigned long)st.st_dev;
        mmvi_opt.stats_ino = (unsigned long)st.st_ino;
    }
}

/* Is it this thread's turn to read the options? The first thread reads them; one that comes
 * meanwhile waits for it (a few dozen variables: microseconds), so that no thread sees them half
 * written and no two write them at once (TSan caught two first mallocs doing that). A waiter
 * gives up after 100,000 yields (a tenth of a second or more) and reads them itself: the reader
 * may be gone (in the fork child of a thread that forked meanwhile), and reading twice writes
 * the same values. No lock: this runs
 * before anything is set up, inside the first malloc. */
static int read_state; /* 0: unread, 1: being read, 2: read */

static int my_turn(void)
{
    int *state = &read_state, expect = 0;
    if (__atomic_load_n(state, __ATOMIC_ACQUIRE) == 2)
        return 0;
    if (__atomic_compare_exchange_n(state, &expect, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 1;
    for (int i = 0; i < 100000 && __atomic_load_n(state, __ATOMIC_ACQUIRE) != 2; i++)
        sched_yield();
    return __atomic_load_n(state, __ATOMIC_ACQUIRE) != 2;
}

void mmvi_options_init(void)
{
    static __thread int reading __attribute__((tls_model("initial-exec")));
    if (reading || !my_turn())
        return;
    reading = 1; /* anything below that comes back here finds the options as they are so far */
    if (getauxval(AT_SECURE)) {
        mmvi_opt.secure = 1;
        mmvi_opt.disable = 1;
    } else {
        for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
            const char *v = mmvi_getenv(table[i].name);
            if (v && read_one(&table[i], v) < 0)
                bad(table[i].name, v);
        }
        if (mmvi_opt.stats)
            save_stderr();
    }
    reading = 0;
    __atomic_store_n(&read_state, 2, __ATOMIC_RELEASE);
    if (mmvi_opt.show_config)
        mmvi_options_print(STDERR_FILENO);
}
