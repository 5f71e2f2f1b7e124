/* The options table: every MMVEC_* variable, read once from the environment. */
#define _GNU_SOURCE
#include "options.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MMVI_DEFAULT_THRESHOLD (1u << 20)

struct mmvi_options mmvi_opt = {
    .threshold_min = MMVI_DEFAULT_THRESHOLD,
    .threshold_max = SIZE_MAX,
    .cache_bytes = (size_t)256 << 20, /* enough to recycle a 256 MiB block; little dirty data kept */
    .cache_decay_ms = 5000,
    .reserve_bytes = (size_t)4 << 40,
    .log = 1,
    .fork_mode = MMVI_FORK_PRIVATE,
    .advice = MMVI_ADVICE_AUTO,
    .stats_fd = -1,
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

/* 0/1 switches: "1", "0", "yes", "no", "true", "false", "on", "off". */
static void read_bool(const char *name, int *out)
{
    const char *v = mmvi_getenv(name);
    if (!v)
        return;
    static const char *const yes[] = {"1", "yes", "true", "on"}, *const no[] = {"0", "no", "false", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return;
        }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return;
        }
    bad(name, v);
}

static void read_size(const char *name, size_t *out, size_t lo, size_t hi)
{
    const char *v = mmvi_getenv(name);
    size_t x;
    if (!v)
        return;
    if (mmvi_parse_size(v, &x) < 0 || x < lo || x > hi)
        bad(name, v);
    else
        *out = x;
}

static void read_threshold(void)
{
    const char *v = mmvi_getenv("MMVEC_THRESHOLD");
    size_t lo, hi;
    if (!v)
        return;
    if (mmvi_parse_range(v, &lo, &hi) < 0 || lo == 0) {
        bad("MMVEC_THRESHOLD", v);
        return;
    }
    mmvi_opt.threshold_min = lo;
    mmvi_opt.threshold_max = hi;
}

static void read_log(void)
{
    const char *v = mmvi_getenv("MMVEC_LOG");
    if (!v)
        return;
    if (v[0] >= '0' && v[0] <= '3' && v[1] == '\0')
        mmvi_opt.log = v[0] - '0';
    else
        bad("MMVEC_LOG", v);
}

/* A variable that names one of a few choices; `names` ends with NULL. */
static void read_choice(const char *name, const char *const *names, const int *values, int *out)
{
    const char *v = mmvi_getenv(name);
    if (!v)
        return;
    for (size_t i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = values[i];
            return;
        }
    bad(name, v);
}

static void read_choices(void)
{
    static const char *const fork_names[] = {"private", "copy", "shared", NULL};
    static const int fork_values[] = {MMVI_FORK_PRIVATE, MMVI_FORK_COPY, MMVI_FORK_SHARED};
    /* normal: the kernel reads ahead around each fault (fast sequential first writes and
     * re-reads after eviction, but a sparse first touch zero-fills the whole read-ahead window);
     * random: one page per fault (sparse touching is cheap, re-reads after eviction are much
     * slower); auto: random for calloc'd blocks while memory is plentiful. docs/design.md. */
    static const char *const advice_names[] = {"auto", "normal", "random", NULL};
    static const int advice_values[] = {MMVI_ADVICE_AUTO, MADV_NORMAL, MADV_RANDOM};
    static const char *const wb_names[] = {"auto", "on", "1", "off", "0", NULL};
    static const int wb_values[] = {MMVI_WRITEBACK_AUTO, MMVI_WRITEBACK_ON, MMVI_WRITEBACK_ON,
                                    MMVI_WRITEBACK_OFF, MMVI_WRITEBACK_OFF};
    int fork_mode = (int)mmvi_opt.fork_mode, wb = (int)mmvi_opt.writeback;
    read_choice("MMVEC_FORK", fork_names, fork_values, &fork_mode);
    read_choice("MMVEC_ADVICE", advice_names, advice_values, &mmvi_opt.advice);
    read_choice("MMVEC_WRITEBACK", wb_names, wb_values, &wb);
    mmvi_opt.fork_mode = (enum mmvi_fork_mode)fork_mode;
    mmvi_opt.writeback = (enum mmvi_writeback)wb;
}

static void read_dir(void)
{
    const char *v = mmvi_getenv("MMVEC_DIR");
    if (!v)
        return;
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof mmvi_opt.dir - 64) {
        bad("MMVEC_DIR", v);
        return;
    }
    memcpy(mmvi_opt.dir, v, n + 1);
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

void mmvi_options_init(void)
{
    static int done;
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        return;
    /* Two threads racing here both parse the same environment into the same values: harmless,
     * and it keeps this path free of locks before anything is set up. */
    if (getauxval(AT_SECURE)) {
        mmvi_opt.secure = 1;
        mmvi_opt.disable = 1;
    } else {
        read_log(); /* first: it decides whether the others may warn */
        read_threshold();
        read_bool("MMVEC_STRICT", &mmvi_opt.strict);
        read_bool("MMVEC_UNLINK", &mmvi_opt.unlink_files);
        read_bool("MMVEC_DISABLE", &mmvi_opt.disable);
        read_bool("MMVEC_STATS", &mmvi_opt.stats);
        if (mmvi_opt.stats)
            save_stderr();
        read_choices();
        read_dir();
        read_size("MMVEC_CACHE", &mmvi_opt.cache_bytes, 0, SIZE_MAX);
        size_t decay = mmvi_opt.cache_decay_ms;
        read_size("MMVEC_CACHE_DECAY_MS", &decay, 0, 3600u * 1000u);
        mmvi_opt.cache_decay_ms = (unsigned)decay;
        read_size("MMVEC_RESERVE", &mmvi_opt.reserve_bytes, (size_t)1 << 30, (size_t)64 << 40);
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
}
