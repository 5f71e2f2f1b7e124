/* `mmvec ps`, `mmvec top`, `mmvec stats PID`: the live figures of processes running under mmvec,
 * read from their pages (src/base/figures.h) and /proc/PID, never from the processes themselves:
 * looking stops, signals or slows nobody. A page whose flock can be taken is a dead process's
 * and is passed over (the library removes it later; these commands only read). */
#define _GNU_SOURCE
#include "live.h"

#include "figures.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_USAGE = 2 };

/* ---- finding the pages ------------------------------------------------------------------- */

/* The roots the library may put pages under: MMVEC_LIVE_DIR when set, else /dev/shm and
 * $XDG_RUNTIME_DIR (the library takes the first memory filesystem of the two). */
static int roots(const char *given, const char *out[2])
{
    if (given) {
        out[0] = given;
        return 1;
    }
    const char *env = getenv("MMVEC_LIVE_DIR");
    if (env && *env && strcmp(env, "auto") && !mmvi_live_dir_off(env)) {
        out[0] = env;
        return 1;
    }
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    out[0] = "/dev/shm";
    if (xdg && xdg[0] == '/' && strcmp(xdg, "/dev/shm")) {
        out[1] = xdg;
        return 2;
    }
    return 1;
}

/* Reads the page at path if its process is alive (its flock is held). 0, or -1. */
static int read_page(const char *path, struct mmvi_live_page *p)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    ssize_t n = alive ? pread(fd, p, sizeof *p, 0) : -1;
    close(fd); /* drops our shared lock, if we got it (a dead page) */
    if (n != (ssize_t)sizeof *p || p->magic != MMVI_LIVE_MAGIC ||
        p->version != MMVI_LIVE_VERSION || p->size != sizeof *p)
        return -1;
    p->command[sizeof p->command - 1] = '\0';
    p->config[sizeof p->config - 1] = '\0';
    return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Calls fn for each live page under root/mmvec-live-* (every user's that we may read). */
static void each_in_root(const char *root, mmvc_page_fn fn, void *arg)
{
    DIR *d = opendir(root);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, MMVI_LIVE_PREFIX, strlen(MMVI_LIVE_PREFIX)) != 0)
            continue;
        char folder[4200];
        snprintf(folder, sizeof folder, "%s/%s", root, e->d_name);
        DIR *f = opendir(folder);
        if (!f)
            continue;
        for (struct dirent *g; (g = readdir(f)) != NULL;) {
            char path[4500];
            struct mmvi_live_page page;
            if (!has_suffix(g->d_name, MMVI_LIVE_SUFFIX))
                continue;
            snprintf(path, sizeof path, "%s/%s", folder, g->d_name);
            if (read_page(path, &page) == 0)
                fn(&page, path, arg);
        }
        closedir(f);
    }
    closedir(d);
}

void mmvc_each_page(const char *root, mmvc_page_fn fn, void *arg)
{
    const char *r[2];
    int n = roots(root, r);
    for (int i = 0; i < n; i++)
        each_in_root(r[i], fn, arg);
}

struct find {
    long pid;
    struct mmvi_live_page *out;
    char *path;
    size_t path_size;
    int found;
};

static void find_one(const struct mmvi_live_page *p, const char *path, void *arg)
{
    struct find *f = arg;
    /* The newest page of the pid: after an exec, the old image's page may linger unlocked (it
     * is skipped as dead) or, briefly, both may be live. */
    if (p->pid != f->pid || (f->found && p->updated_ns < f->out->updated_ns))
        return;
    *f->out = *p;
    if (f->path)
        snprintf(f->path, f->path_size, "%s", path);
    f->found = 1;
}

int mmvc_find_page(const char *root, long pid, struct mmvi_live_page *out, char *path,
                   size_t path_size)
{
    struct find f = {pid, out, path, path_size, 0};
    mmvc_each_page(root, find_one, &f);
    return f.found ? 0 : -1;
}

int mmvc_reread_page(const char *path, struct mmvi_live_page *out)
{
    return read_page(path, out);
}

/* ---- printing ------------------------------------------------------------------------------ */

/* A command line made fit for one line of a terminal, as ps(1) does: control characters and
 * bytes that are not UTF-8 become '?' (a command line is anybody's text: root's `mmvec ps` shows
 * every user's, and must not let one of them move its cursor or clear its screen). At most
 * `width` characters. */
static void printable(const char *in, size_t in_size, int width, char *out, size_t size)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t k = 0;
    for (size_t i = 0; i < in_size && u[i] && width > 0 && k + 5 < size; width--) {
        size_t n = mmvi_utf8_char(u + i, in_size - i);
        /* C1 controls (U+0080..U+009F, encoded C2 80..C2 9F) are controls too */
        if (n == 0 || u[i] < 0x20 || u[i] == 0x7f || (n == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0)) {
            out[k++] = '?';
            i += n ? n : 1;
            continue;
        }
        memcpy(out + k, in + i, n);
        k += n;
        i += n;
    }
    out[k] = '\0';
}

/* 1536 -> "1.5K", like ps and top: one decimal below 10, none above. */
static void human(uint64_t b, char *buf, size_t size)
{
    static const char units[] = "BKMGTP";
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%lluB", (unsigned long long)b);
    else
        snprintf(buf, size, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* Elapsed time as ps's etime: [[dd-]hh:]mm:ss. */
static void elapsed(uint64_t started, char *buf, size_t size)
{
    time_t now = time(NULL);
    uint64_t s = started && (uint64_t)now > started ? (uint64_t)now - started : 0;
    unsigned long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    if (!started)
        snprintf(buf, size, "?");
    else if (d)
        snprintf(buf, size, "%llu-%02llu:%02llu:%02llu", d, h, m, sec);
    else if (h)
        snprintf(buf, size, "%02llu:%02llu:%02llu", h, m, sec);
    else
        snprintf(buf, size, "%02llu:%02llu", m, sec);
}

static const char ps_header[] =
    "    PID  RAM BLK      RAM  FILE BLK    FILES     DISK    MOVED     SINCE  COMMAND\n";

static void ps_line(FILE *out, const struct mmvi_live_page *p, int width)
{
    char ram[16], files[16], disk[16], moved[16], since[32];
    const mmv_stats *s = &p->stats;
    human(s->ram_bytes_live, ram, sizeof ram);
    human(s->file_bytes_live, files, sizeof files);
    human(s->bytes_mapped, disk, sizeof disk);
    human(s->spill_bytes, moved, sizeof moved);
    elapsed(p->started_s, since, sizeof since);
    char cmd[1024];
    printable(p->command, sizeof p->command, width, cmd, sizeof cmd);
    fprintf(out, "%7lld  %7llu  %7s  %8llu  %7s  %7s  %7s  %8s  %s\n", (long long)p->pid,
            (unsigned long long)s->ram_blocks_live, ram, (unsigned long long)s->file_blocks_live,
            files, disk, moved, since, cmd);
}

/* The figures as the library prints them, with this process's /proc figures. */
static void with_proc(struct mmvi_live_page *p, struct mmvi_proc_figures *f)
{
    if (mmvi_proc_figures_read((long)p->pid, f) < 0)
        memset(f, 0, sizeof *f);
    p->stats.disk_read_bytes = f->read_bytes;
    p->stats.disk_write_bytes = f->write_bytes;
}

/* ---- ps ------------------------------------------------------------------------------------ */

struct ps_state {
    int json, count;
};

static void ps_one(const struct mmvi_live_page *p, const char *path, void *arg)
{
    struct ps_state *st = arg;
    (void)path;
    if (st->json) {
        struct mmvi_live_page copy = *p;
        struct mmvi_proc_figures f;
        char buf[8192];
        with_proc(&copy, &f);
        fwrite(buf, 1, mmvi_figures_json(&copy, &f, buf, sizeof buf), stdout);
    } else {
        if (!st->count)
            fputs(ps_header, stdout);
        ps_line(stdout, p, 200);
    }
    st->count++;
}

static const char ps_usage[] =
    "Usage: mmvec ps [--json] [DIR]\n"
    "  one line per live process under mmvec: pid, blocks and bytes in RAM and in files, disk\n"
    "  held by its files, bytes moved to files, time since it started, command line.\n"
    "  --json  one JSON object per process and line (the keys of mmvec stats --json)\n"
    "  DIR     where the pages are (default: MMVEC_LIVE_DIR, else /dev/shm and\n"
    "          $XDG_RUNTIME_DIR)\n";

int mmvc_ps_main(int argc, char **argv)
{
    struct ps_state st = {0, 0};
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            st.json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return fputs(ps_usage, stdout), 0;
        else if (argv[i][0] == '-' || dir)
            return fprintf(stderr, "mmvec: ps: unexpected '%s' (try mmvec ps --help)\n", argv[i]),
                   EXIT_USAGE;
        else
            dir = argv[i];
    }
    struct stat sb;
    if (dir && stat(dir, &sb) < 0) {
        fprintf(stderr, "mmvec: ps: cannot read '%s': %s\n", dir, strerror(errno));
        return 1;
    }
    mmvc_each_page(dir, ps_one, &st);
    if (!st.count && !st.json)
        fputs(ps_header, stdout);
    return 0;
}

/* ---- stats PID ----------------------------------------------------------------------------- */

int mmvc_stats_main(int argc, char **argv)
{
    int json = 0;
    const char *pid_text = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (!pid_text && argv[i][0] != '-')
            pid_text = argv[i];
        else
            return fprintf(stderr, "mmvec: stats: unexpected '%s' (usage: mmvec stats PID "
                                   "[--json] [-d DIR])\n", argv[i]),
                   EXIT_USAGE;
    }
    char *end;
    long pid = pid_text ? strtol(pid_text, &end, 10) : 0;
    if (!pid_text || *end || pid <= 0) {
        fprintf(stderr, "mmvec: stats: expected a process id (usage: mmvec stats PID [--json])\n");
        return EXIT_USAGE;
    }
    struct mmvi_live_page p;
    if (mmvc_find_page(dir, pid, &p, NULL, 0) < 0) {
        fprintf(stderr, "mmvec: stats: no live figures for pid %ld (not running under mmvec, no "
                        "large request yet, or MMVEC_LIVE_DIR elsewhere or off)\n", pid);
        return 1;
    }
    struct mmvi_proc_figures f;
    char buf[8192];
    with_proc(&p, &f);
    size_t n = json ? mmvi_figures_json(&p, &f, buf, sizeof buf)
                    : mmvi_figures_text(&p, &f, buf, sizeof buf);
    fwrite(buf, 1, n, stdout);
    return 0;
}

/* ---- top ----------------------------------------------------------------------------------- */

#define TOP_MAX 256

/* One process between two screens: its figures then, for the rates. */
struct seen {
    long pid;
    uint64_t spill_bytes, read_bytes, write_bytes, majflt;
    int alive;
};

struct top {
    struct seen prev[TOP_MAX], now[TOP_MAX];
    int nprev, nnow;
    double dt;
    FILE *out;
    int width;
    uint64_t ram, files, disk;
};

static const struct seen *before(const struct top *t, long pid)
{
    for (int i = 0; i < t->nprev; i++)
        if (t->prev[i].pid == pid)
            return &t->prev[i];
    return NULL;
}

static void rate(uint64_t now, uint64_t then, double dt, char *buf, size_t size)
{
    if (dt <= 0 || now < then) {
        snprintf(buf, size, "-");
        return;
    }
    char h[16];
    human((uint64_t)((double)(now - then) / dt), h, sizeof h);
    snprintf(buf, size, "%s/s", h);
}

static void top_one(const struct mmvi_live_page *page, const char *path, void *arg)
{
    struct top *t = arg;
    (void)path;
    if (t->nnow >= TOP_MAX)
        return;
    struct mmvi_live_page p = *page;
    struct mmvi_proc_figures f;
    with_proc(&p, &f);
    struct seen *s = &t->now[t->nnow++];
    *s = (struct seen){(long)p.pid, p.stats.spill_bytes, f.read_bytes, f.write_bytes, f.majflt, 1};
    const struct seen *b = before(t, s->pid);
    char ram[16], files[16], disk[16], rss[16], moved[24], rd[24], wr[24], flt[24];
    human(p.stats.ram_bytes_live, ram, sizeof ram);
    human(p.stats.file_bytes_live, files, sizeof files);
    human(p.stats.bytes_mapped, disk, sizeof disk);
    human(f.rss, rss, sizeof rss);
    double dt = b ? t->dt : 0;
    rate(s->spill_bytes, b ? b->spill_bytes : 0, dt, moved, sizeof moved);
    rate(s->read_bytes, b ? b->read_bytes : 0, dt, rd, sizeof rd);
    rate(s->write_bytes, b ? b->write_bytes : 0, dt, wr, sizeof wr);
    if (dt > 0 && s->majflt >= b->majflt)
        snprintf(flt, sizeof flt, "%.0f", (double)(s->majflt - b->majflt) / dt);
    else
        snprintf(flt, sizeof flt, "-");
    t->ram += p.stats.ram_bytes_live;
    t->files += p.stats.file_bytes_live;
    t->disk += p.stats.bytes_mapped;
    char cmd[1024];
    printable(p.command, sizeof p.command, t->width, cmd, sizeof cmd);
    fprintf(t->out, "%7ld %6s %6s %6s %6s %9s %9s %9s %7s  %s\n", s->pid, rss, ram, files,
            disk, moved, rd, wr, flt, cmd);
}

static struct termios saved_tty;
static int tty_raw;

static void restore_tty(void)
{
    if (tty_raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    tty_raw = 0;
}

static void on_signal(int sig)
{
    restore_tty();
    fputs("\033[?25h", stdout); /* the cursor back */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Keys one at a time, without echo, so that 'q' quits at once (as in top). */
static void raw_keys(void)
{
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
        return;
    struct termios raw = saved_tty;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
        tty_raw = 1;
        atexit(restore_tty);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
    }
}

/* Waits up to ms for a key; 1 when it asks to quit. */
static int wait_key(int ms)
{
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    if (!tty_raw) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (poll(&pfd, 1, ms) <= 0)
        return 0;
    char c = 0;
    return read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q' || c == 3 /* ^C */);
}

static const char top_usage[] =
    "Usage: mmvec top [-d SECONDS] [-n COUNT] [-b] [DIR]\n"
    "  the live figures of every process under mmvec, refreshed, with rates: resident\n"
    "  memory, bytes in RAM blocks and in files, disk held, bytes moved to files per second,\n"
    "  disk reads and writes per second, major faults per second. q quits.\n"
    "  -d SECONDS  between screens (default 1; 0.1 at least)\n"
    "  -n COUNT    stop after COUNT screens\n"
    "  -b          batch: no screen clearing, no keys (for a log or a pipe)\n";

static void top_screen(struct top *t, int batch)
{
    char when[32], ram[16], files[16], disk[16];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%H:%M:%S", localtime_r(&now, &tm));
    t->nnow = 0;
    t->ram = t->files = t->disk = 0;
    /* The lines first, into memory: the summary above them needs their totals. */
    char *body = NULL;
    size_t body_len = 0;
    FILE *screen = open_memstream(&body, &body_len);
    if (!screen)
        return;
    t->out = screen;
    mmvc_each_page(NULL, top_one, t);
    fclose(screen);
    human(t->ram, ram, sizeof ram);
    human(t->files, files, sizeof files);
    human(t->disk, disk, sizeof disk);
    if (!batch)
        fputs("\033[H\033[2J", stdout);
    printf("mmvec top - %s  %d process%s  RAM blocks %s  in files %s  disk held %s\n", when,
           t->nnow, t->nnow == 1 ? "" : "es", ram, files, disk);
    printf("\n    PID    RSS    RAM  FILES   DISK  MOVED/s    READ/s   WRITE/s MAJFL/s  COMMAND\n");
    fwrite(body, 1, body_len, stdout);
    if (batch)
        putchar('\n');
    fflush(stdout);
    free(body);
    memcpy(t->prev, t->now, sizeof t->now);
    t->nprev = t->nnow;
}

int mmvc_top_main(int argc, char **argv)
{
    double delay = 1.0;
    long count = 0;
    int batch = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt(argc, argv, "+:d:n:bh")) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd':
            delay = strtod(optarg, &end);
            if (*end || delay < 0.1 || delay > 3600)
                return fprintf(stderr, "mmvec: top: bad delay '%s' (seconds, 0.1 to 3600)\n",
                               optarg), EXIT_USAGE;
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end || count <= 0)
                return fprintf(stderr, "mmvec: top: bad count '%s'\n", optarg), EXIT_USAGE;
            break;
        case 'b': batch = 1; break;
        case 'h': fputs(top_usage, stdout); return 0;
        default:
            return fprintf(stderr, "mmvec: top: unexpected '%s' (try mmvec top -h)\n",
                           argv[optind - 1]), EXIT_USAGE;
        }
    }
    if (optind < argc)
        setenv("MMVEC_LIVE_DIR", argv[optind], 1);
    static struct top t;
    t.width = 200;
    if (!batch)
        raw_keys();
    for (long i = 0; !count || i < count; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        top_screen(&t, batch);
        if (count && i + 1 == count)
            break;
        if (wait_key((int)(delay * 1000)))
            break;
        clock_gettime(CLOCK_MONOTONIC, &b);
        t.dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    }
    restore_tty();
    return 0;
}
