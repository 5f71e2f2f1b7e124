/* mmvec: the command line tool.
 *
 *   mmvec run [-t SIZE] [-d DIR] [-m SIZE] [--stats] [--] PROGRAM ARGS...
 *   mmvec clean [DIR]
 *   mmvec plot FILE.csv [-o OUT.png] [--title TEXT] [--script]
 *   mmvec ps [--json] [DIR] | top [-d SECS] [-n N] [-b] | stats PID [--json]
 *   mmvec --help | --version
 *
 * `run` only prepares the environment (LD_PRELOAD and the MMVEC_* variables) and execs: the
 * program then runs exactly as it would with the variables set by hand, with no wrapper process
 * left between it and its parent (signals, exit codes and pids stay the program's own). With
 * --memory it stays as the program's parent for as long as the memory cgroup it made must
 * exist (memrun.c), unless systemd-run makes the limit; with --record, to sample it (record.c).
 * Every error is one line on stderr and a non-zero exit: 2 for usage, 1 for a failure, and for
 * `run`, 126/127 when the program cannot be executed (as env(1) and the shells do).
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/common.h"
#include "mmvec/namer.h"

#include "live.h"
#include "memrun.h"
#include "plot.h"
#include "record.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRELOAD_NAME "libmmvec_preload.so"

enum { EXIT_USAGE = 2, EXIT_CANNOT_EXEC = 126, EXIT_NOT_FOUND = 127 };

static const char usage_text[] =
    "Usage: mmvec run [-t SIZE] [-d DIR] [-m SIZE] [--stats] [--record FILE] [--] PROGRAM\n"
    "                 [ARGS...]\n"
    "       mmvec ps [--json] [DIR]\n"
    "       mmvec top [-d SECONDS] [-n COUNT] [-b] [DIR]\n"
    "       mmvec stats PID [--json]\n"
    "       mmvec clean [DIR]\n"
    "       mmvec plot FILE.csv [-o OUT.png] [--title TEXT] [--script]\n"
    "       mmvec config\n"
    "       mmvec help [VARIABLE]\n"
    "       mmvec --help | --version\n"
    "\n"
    "Commands:\n"
    "  run     run PROGRAM with the mmvec interposer preloaded: heap blocks of at least\n"
    "          the threshold live in files, smaller ones in RAM (jemalloc)\n"
    "    -t, --threshold SIZE  MMVEC_THRESHOLD: 64K, 1M, 2G, or a range MIN:MAX (bytes)\n"
    "    -d, --dir DIR         MMVEC_DIR: where the block files go (not a tmpfs!); several\n"
    "                          directories A:B (one per disk): blocks go to the roomiest\n"
    "    -m, --memory SIZE     run PROGRAM with at most SIZE of memory, swap included (a\n"
    "                          memory cgroup of its own, v1 or v2, or systemd-run); says so\n"
    "                          when the kernel's OOM killer ends it; with --stats, its peak\n"
    "        --without-mmvec   do not preload mmvec (to compare: run --memory 512M\n"
    "                          --without-mmvec -- PROGRAM)\n"
    "    -s, --stats           MMVEC_STATS=1: print a table of what went to files at exit\n"
    "    -r, --record FILE     sample the program every 100 ms into FILE (CSV: resident\n"
    "                          memory, bytes in RAM blocks and in files, disk bytes read and\n"
    "                          written, faults, the group's usage); draw it with mmvec plot\n"
    "  ps      one line per process running under mmvec: blocks and bytes in RAM and in\n"
    "          files, disk held, bytes moved to files, since when, command (--json: one\n"
    "          object per line)\n"
    "  top     the same, refreshed every second, with rates (moved, disk read and write,\n"
    "          major faults per second); q quits, -b for a log\n"
    "  stats   the figures of one process, as MMVEC_STATS=1 prints them (--json: one object)\n"
    "  clean   remove the files left in DIR (default: the default directory) by processes\n"
    "          that died without cleaning up (kill -9, crash); live processes' files stay;\n"
    "          nothing mmvec did not make is ever removed\n"
    "  plot    draw a recording of run --record (FILE.csv) as a PNG with gnuplot: memory\n"
    "          (RSS, in blocks, in files, cgroup, limit), disk MB/s, major faults/s\n"
    "    -o, --output OUT.png  the image (default: FILE.png)\n"
    "        --title TEXT      the title (default: the recorded command)\n"
    "        --script          print the gnuplot script, data inline, instead\n"
    "  config  print every MMVEC_* variable with the value in force here, and what it does\n"
    "  help VARIABLE  that one variable (MMVEC_ may be left out: help threshold)\n"
    "\n"
    "Other MMVEC_* variables in the environment (MMVEC_STRICT, MMVEC_UNLINK, MMVEC_LOG, ...)\n"
    "are passed on unchanged. See docs/interposer.md.\n";

/* One line, prefixed, on stderr: the only way this tool reports a problem. */
static void __attribute__((format(printf, 1, 2))) complain(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mmvec: %s\n", line);
}

/* ---- sizes ------------------------------------------------------------------------------- */

/* Checks a threshold here, so that a typo is an error now rather than a warning (and the
 * default threshold) inside the program: "SIZE" or "MIN:MAX", not 0, MIN <= MAX. */
static int check_threshold(const char *s)
{
    size_t lo, hi;
    return mmv_parse_range(s, &lo, &hi) < 0 || lo == 0 ? -EINVAL : 0;
}

/* ---- finding the interposer ---------------------------------------------------------------- */

static int dir_of_self(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0 || (size_t)n >= size - 1)
        return -ENOENT;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    return 0;
}

static int try_candidate(char *out, size_t size, const char *dir, const char *rel)
{
    static const char *const names[] = {PRELOAD_NAME, PRELOAD_NAME ".0"};
    char where[PATH_MAX], real[PATH_MAX];
    int n = snprintf(where, sizeof where, "%s%s", dir, rel);
    if (n <= 0 || (size_t)n >= sizeof where)
        return -ENAMETOOLONG;
    /* "bin/../lib" works, but a tidy path is easier on whoever reads LD_PRELOAD; the file
     * name itself stays the unversioned link. */
    const char *base = realpath(where, real) ? real : where;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        n = snprintf(out, size, "%s/%s", base, names[i]);
        if (n > 0 && (size_t)n < size && access(out, R_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

/* Next to the tool (the build tree, where CMake puts both side by side, or a flat install),
 * then the libdirs of a relocated install, then the configured install libdir. */
static int find_preload(char *out, size_t size)
{
    char self[PATH_MAX];
    if (dir_of_self(self, sizeof self) == 0) {
        static const char *const rels[] = {
            "",
#ifdef MMVEC_INSTALL_LIBDIR
            ("/../" MMVEC_INSTALL_LIBDIR),
#endif
            "/../lib", "/../lib64",
        };
        for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++)
            if (try_candidate(out, size, self, rels[i]) == 0)
                return 0;
    }
#ifdef MMVEC_LIBDIR
    if (try_candidate(out, size, MMVEC_LIBDIR, "") == 0)
        return 0;
#endif
    return -ENOENT;
}

/* ---- run --------------------------------------------------------------------------------- */

/* Whether `list` (LD_PRELOAD: paths separated by ':' or ' ') already names the file `lib`,
 * under any path: the dynamic linker would load it once anyway, but the variable stays tidy. */
static bool has_token(const char *list, const char *lib)
{
    struct stat want, st;
    if (stat(lib, &want) < 0)
        return false;
    char *copy = strdup(list);
    bool found = false;
    for (char *save = NULL, *t = strtok_r(copy, ": ", &save); copy && t && !found;
         t = strtok_r(NULL, ": ", &save))
        found = stat(t, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino;
    free(copy);
    return found;
}

/* Our library goes first, so that its malloc wins over any other preloaded one; whatever was
 * preloaded already stays (after us). */
static int set_preload(const char *lib)
{
    if (strpbrk(lib, ": ")) {
        complain("cannot preload %s: its path contains ':' or a space", lib);
        return -EINVAL;
    }
    const char *old = getenv("LD_PRELOAD");
    if (!old || !*old)
        return setenv("LD_PRELOAD", lib, 1) == 0 ? 0 : -errno;
    if (has_token(old, lib))
        return 0;
    char *both = NULL;
    if (asprintf(&both, "%s:%s", lib, old) < 0)
        return -ENOMEM;
    int rc = setenv("LD_PRELOAD", both, 1) == 0 ? 0 : -errno;
    free(both);
    return rc;
}

/* The program may chdir: a relative directory is made absolute against our cwd now, each of a
 * list "A:B" (one per disk) too. */
static int set_dir(const char *dir)
{
    if (!*dir) {
        complain("empty directory for -d");
        return -EINVAL;
    }
    char cwd[PATH_MAX], list[8192] = "";
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    size_t len = 0;
    for (const char *p = dir; *p;) {
        size_t n = strcspn(p, ":");
        int w = n == 0 ? 0
                : p[0] == '/' ? snprintf(list + len, sizeof list - len, "%s%.*s", len ? ":" : "",
                                         (int)n, p)
                              : snprintf(list + len, sizeof list - len, "%s%s/%.*s",
                                         len ? ":" : "", cwd, (int)n, p);
        if (w < 0 || (size_t)w >= sizeof list - len || (n && p[0] != '/' && !cwd[0])) {
            complain("cannot make '%s' absolute", dir);
            return -EINVAL;
        }
        len += (size_t)w;
        p += n + (p[n] == ':');
    }
    return setenv("MMVEC_DIR", list, 1) == 0 ? 0 : -errno;
}

struct run_opts {
    const char *threshold;
    const char *dir;
    const char *memory;
    bool stats;
    bool plain; /* --without-mmvec */
    const char *record;
};

static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
    static const struct option longs[] = {
        {"threshold", required_argument, NULL, 't'},
        {"dir", required_argument, NULL, 'd'},
        {"memory", required_argument, NULL, 'm'},
        {"stats", no_argument, NULL, 's'},
        {"without-mmvec", no_argument, NULL, 'W'},
        {"record", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0; /* our own one-line messages instead of getopt's */
    optind = 1;
    int c;
    /* '+': stop at the program's name, so its own options are left alone. */
    while ((c = getopt_long(argc, argv, "+:t:d:m:r:sh", longs, NULL)) != -1) {
        switch (c) {
        case 't': o->threshold = optarg; break;
        case 'd': o->dir = optarg; break;
        case 'm': o->memory = optarg; break;
        case 's': o->stats = true; break;
        case 'W': o->plain = true; break;
        case 'r': o->record = optarg; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case ':':
            complain("option '%s' needs a value (try mmvec --help)", argv[optind - 1]);
            return -EINVAL;
        default:
            complain("unknown option '%s' for run (try mmvec --help)", argv[optind - 1]);
            return -EINVAL;
        }
    }
    return 0;
}

static int apply_run_opts(const struct run_opts *o)
{
    if (o->threshold && check_threshold(o->threshold) < 0) {
        complain("bad threshold '%s' (expected a size like 64K, 1M, 2G, or a range MIN:MAX)",
                 o->threshold);
        return -EINVAL;
    }
    if (o->threshold && setenv("MMVEC_THRESHOLD", o->threshold, 1) < 0)
        return -errno;
    if (o->dir && set_dir(o->dir) < 0)
        return -EINVAL;
    if (o->stats && setenv("MMVEC_STATS", "1", 1) < 0)
        return -errno;
    return 0;
}

/* --memory: a size of at least 1 MiB (less could not even start a program). */
static int memory_limit(const char *s, uint64_t *out)
{
    size_t v;
    if (mmv_parse_size(s, &v) < 0 || v < ((size_t)1 << 20)) {
        complain("bad memory limit '%s' (expected a size of at least 1M, like 512M or 2G)", s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    struct run_opts o = {0};
    uint64_t limit = 0;
    if (parse_run_opts(argc, argv, &o) < 0 || (o.memory && memory_limit(o.memory, &limit) < 0))
        return EXIT_USAGE;
    if (optind >= argc) {
        complain("run: no program given (try mmvec --help)");
        return EXIT_USAGE;
    }
    if (apply_run_opts(&o) < 0)
        return EXIT_USAGE;
    char lib[PATH_MAX];
    if (!o.plain && find_preload(lib, sizeof lib) < 0) {
        complain("cannot find %s next to this program or in its install tree", PRELOAD_NAME);
        return 1;
    }
    if (!o.plain && set_preload(lib) < 0)
        return 1;
    static struct mmvc_recorder rec;
    if (o.record) {
        int rc = mmvc_record_open(&rec, o.record, argv + optind, limit);
        if (rc < 0) {
            complain("cannot write the recording '%s': %s", o.record, strerror(-rc));
            return 1;
        }
    }
    if (o.memory || o.record) {
        /* Tests point this at a fixture tree of /proc, /sys and /run; the program never sees it. */
        const char *hook = getenv("MMVEC_RUN_TEST_ROOT");
        char root[256];
        snprintf(root, sizeof root, "%s", hook ? hook : "");
        unsetenv("MMVEC_RUN_TEST_ROOT");
        int rc = o.memory ? mmvc_run_limited(limit, argv + optind, root, o.stats,
                                             o.record ? &rec : NULL)
                          : mmvc_run_watched(argv + optind, &rec);
        if (o.record && mmvc_record_close(&rec) < 0)
            complain("the recording '%s' is incomplete: %s", o.record, strerror(errno));
        return rc;
    }
    execvp(argv[optind], argv + optind);
    int err = errno;
    complain("cannot run '%s': %s", argv[optind], strerror(err));
    return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

/* ---- clean ------------------------------------------------------------------------------- */

static void human_bytes(uint64_t b, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* A missing directory is an error here (a typo must not look like "nothing to clean"). */
static int check_clean_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        complain("cannot clean '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        complain("cannot clean '%s': %s", dir, strerror(ENOTDIR));
        return -1;
    }
    return 0;
}

/* One directory of `mmvec clean`'s list; 0 or 1 for a failure (said). */
static int clean_one(const char *dir, int defaulted)
{
    char def[PATH_MAX];
    if (!defaulted && check_clean_dir(dir) < 0)
        return 1;
    uint64_t files = 0, bytes = 0;
    int rc = mmv_clean(defaulted ? NULL : dir, &files, &bytes);
    if (defaulted)
        dir = mmv_default_dir(def, sizeof def) == 0 ? def : "the default directory";
    if (rc < 0) {
        complain("cannot clean '%s': %s", dir, mmv_strerror(rc));
        return 1;
    }
    char human[32];
    human_bytes(bytes, human, sizeof human);
    printf("mmvec clean: removed %" PRIu64 " file%s, %s (%" PRIu64 " bytes) in %s\n", files,
           files == 1 ? "" : "s", human, bytes, dir);
    return 0;
}

static int cmd_clean(int argc, char **argv)
{
    if (argc > 2) {
        complain("clean takes at most one directory, or a list A:B (try mmvec --help)");
        return EXIT_USAGE;
    }
    if (argc < 2)
        return clean_one(NULL, 1);
    int failed = 0; /* a list as MMVEC_DIR takes it: each directory in turn */
    char *list = strdup(argv[1]), *save = NULL;
    if (!list)
        return 1;
    for (char *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save))
        failed |= clean_one(d, 0);
    free(list);
    return failed;
}

/* ---- help VARIABLE ------------------------------------------------------------------------- */

/* The variable's line of `mmvec config` (value in force here, and what it does). */
static int cmd_help_variable(const char *name)
{
    char want[128];
    size_t k = 0;
    if (strncasecmp(name, "MMVEC_", 6) != 0)
        k = (size_t)snprintf(want, sizeof want, "MMVEC_");
    for (const char *p = name; *p && k + 2 < sizeof want; p++)
        want[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    want[k++] = '=';
    want[k] = '\0';
    int fd = memfd_create("mmvec-config", MFD_CLOEXEC);
    if (fd < 0 || mmv_config_print(fd) != 0) {
        complain("cannot read the configuration: %s", strerror(errno));
        return 1;
    }
    char text[16384];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (!strncmp(line, want, k)) {
            char *doc = strstr(line, "  # ");
            if (doc)
                *doc = '\0';
            for (size_t e = strlen(line); e > 0 && line[e - 1] == ' ';)
                line[--e] = '\0';
            printf("%s\n  %s\n  (docs/interposer.md, man 7 mmvec)\n", line,
                   doc ? doc + 4 : "");
            return 0;
        }
    want[k - 1] = '\0';
    complain("no variable %s (mmvec config lists them all)", want);
    return EXIT_USAGE;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2) {
        complain("no command given (try mmvec --help)");
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") && argc == 3)
        return cmd_help_variable(argv[2]);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
        printf("mmvec %s\n", MMV_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "clean"))
        return cmd_clean(argc - 1, argv + 1);
    if (!strcmp(cmd, "plot"))
        return mmvec_plot_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "ps"))
        return mmvc_ps_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "top"))
        return mmvc_top_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats"))
        return mmvc_stats_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) {
        fflush(stdout);
        return mmv_config_print(STDOUT_FILENO) == 0 ? 0 : 1;
    }
    complain("unknown command '%s' (try mmvec --help)", cmd);
    return EXIT_USAGE;
}
