/* `mmvec plot FILE.csv [-o OUT.png] [--title TEXT] [--script]` (plot.h).
 *
 * A recording (`mmvec run --record FILE`) is a comment line naming the command, the sampling
 * interval and the memory limit, a header naming the columns, then one row per sample:
 *   # mmvec record: ./simulate big.conf; interval 100 ms; memory limit 536870912
 *   t_s,rss_bytes,...,spill_bytes
 *   0.100,123,...
 * Columns are found by their names, so that a recorder that adds or reorders columns does not
 * break this reader. An empty field is a value the recorder could not read: nothing is drawn
 * there (a gap, not a made-up zero).
 *
 * The drawing is gnuplot's: this file writes a gnuplot script with the data inline (datablocks)
 * and pipes it into gnuplot (no temporary files, no shell). The rates (MB/s, faults/s) are
 * computed here, as differences of the cumulative counters between consecutive rows over their
 * dt, so that the script holds exactly the numbers drawn and can be tweaked (--script) without
 * knowing the CSV. Memory is in MiB (2^20 bytes, as the kernel counts it), disk rates in MB/s
 * (10^6 bytes, as disks are rated).
 */
#define _GNU_SOURCE
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };
enum { WIDTH = 1000, HEIGHT = 700 };
/* A command line longer than this (characters) would not fit the width as a title. */
enum { TITLE_MAX = 110 };
/* More columns than this is not a recording. */
enum { MAX_FIELDS = 256 };

#define MIB 1048576.0
#define MB 1e6

static const char plot_usage[] =
    "Usage: mmvec plot FILE.csv [-o OUT.png] [--title TEXT] [--script]\n"
    "  draw a recording of mmvec run --record (memory, disk rates, major faults) with gnuplot\n"
    "    -o, --output OUT.png  the image (default: FILE with .csv replaced by .png)\n"
    "        --title TEXT      the title (default: the recorded command)\n"
    "        --script          print the gnuplot script (data inline) instead of drawing\n";

static void __attribute__((format(printf, 1, 2))) complain(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mmvec plot: %s\n", line);
}

/* ---- reading the recording ----------------------------------------------------------------- */

/* The columns of the format; any other column is carried along unread. */
enum col {
    C_T, C_RSS, C_RSS_ANON, C_RSS_FILE, C_RAM, C_FILES, C_READ, C_WRITE, C_MAJFLT, C_MINFLT,
    C_CGROUP, C_LIMIT, C_SPILL, NCOLS
};
static const char *const col_names[NCOLS] = {
    "t_s", "rss_bytes", "rss_anon_bytes", "rss_file_bytes", "ram_block_bytes",
    "file_block_bytes", "disk_read_bytes", "disk_write_bytes", "major_faults", "minor_faults",
    "cgroup_usage_bytes", "memory_limit_bytes", "spill_bytes",
};

struct record {
    const char *path;
    char command[4096]; /* from the comment line; "" without one */
    double limit;       /* bytes, from the comment line; 0: none, or not said */
    int map[MAX_FIELDS]; /* the column of each field of the header, -1 for unknown ones */
    size_t nfields;      /* of the header; 0 until it is read */
    size_t n, cap;
    double (*row)[NCOLS]; /* NAN: an empty field, or a column the file does not have */
};

/* "# mmvec record: <command>; interval <N> ms; memory limit <bytes>": the command is whatever
 * comes before the last "; interval " (a command line may itself hold "; "). */
static void parse_comment(const char *line, struct record *r)
{
    static const char prefix[] = "# mmvec record: ", lim[] = "; memory limit ";
    if (strncmp(line, prefix, sizeof prefix - 1))
        return;
    const char *cmd = line + sizeof prefix - 1, *end = NULL;
    for (const char *p = cmd; (p = strstr(p, "; interval ")); p++)
        end = p;
    if (!end)
        end = cmd + strlen(cmd);
    snprintf(r->command, sizeof r->command, "%.*s", (int)(end - cmd), cmd);
    const char *l = strstr(end, lim);
    if (l)
        r->limit = strtod(l + sizeof lim - 1, NULL);
}

static int parse_header(char *line, size_t lineno, struct record *r)
{
    bool seen[NCOLS] = {false};
    size_t n = 0;
    for (char *p = line, *f; (f = strsep(&p, ",")); n++) {
        if (n == MAX_FIELDS) {
            complain("%s line %zu: more than %d columns", r->path, lineno, MAX_FIELDS);
            return -1;
        }
        r->map[n] = -1;
        for (int c = 0; c < NCOLS; c++) {
            if (strcmp(f, col_names[c]))
                continue;
            if (seen[c]) {
                complain("%s line %zu: column %s twice", r->path, lineno, f);
                return -1;
            }
            seen[c] = true;
            r->map[n] = c;
        }
    }
    /* Any line can be split at commas: only the time column tells a header from data. */
    if (!seen[C_T]) {
        complain("%s line %zu: no header (the column names, t_s among them)", r->path, lineno);
        return -1;
    }
    r->nfields = n;
    return 0;
}

/* A field of column c: "" (could not be read: NAN), else a non-negative number, with decimals
 * for the time only. Refuses what strtod/strtoull would take but a recorder never writes
 * (signs, spaces, hex, inf). */
static int parse_value(const char *f, int c, double *out)
{
    if (!*f) {
        *out = NAN;
        return 0;
    }
    if (*f < '0' || *f > '9')
        return -1;
    char *end;
    errno = 0;
    if (c == C_T)
        *out = strtod(f, &end);
    else
        *out = (double)strtoull(f, &end, 10);
    return *end || errno || !isfinite(*out) ? -1 : 0;
}

static int parse_row(char *line, size_t lineno, struct record *r, double *row)
{
    size_t n = 1;
    for (const char *p = line; (p = strchr(p, ',')); p++)
        n++;
    /* A shifted field would be read as the wrong column: the whole row is suspect. */
    if (n != r->nfields) {
        complain("%s line %zu: %zu fields, but the header has %zu", r->path, lineno, n,
                 r->nfields);
        return -1;
    }
    for (int c = 0; c < NCOLS; c++)
        row[c] = NAN;
    n = 0;
    for (char *p = line, *f; (f = strsep(&p, ",")); n++) {
        int c = r->map[n];
        if (c >= 0 && parse_value(f, c, &row[c]) < 0) {
            complain("%s line %zu: %s is '%.40s', not a non-negative number", r->path, lineno,
                     col_names[c], f);
            return -1;
        }
    }
    if (isnan(row[C_T])) {
        complain("%s line %zu: no time (t_s is empty)", r->path, lineno);
        return -1;
    }
    return 0;
}

static int add_row(char *line, size_t lineno, struct record *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        void *grown = realloc(r->row, cap * sizeof *r->row);
        if (!grown) {
            complain("%s line %zu: out of memory", r->path, lineno);
            return -1;
        }
        r->row = grown;
        r->cap = cap;
    }
    if (parse_row(line, lineno, r, r->row[r->n]) < 0)
        return -1;
    r->n++;
    return 0;
}

/* Blank lines are skipped; a comment before the header may be the recorder's, later ones are
 * skipped too. */
static int take_line(char *line, size_t lineno, struct record *r)
{
    line[strcspn(line, "\r\n")] = '\0';
    if (!*line)
        return 0;
    if (line[0] == '#') {
        if (!r->nfields && !r->command[0])
            parse_comment(line, r);
        return 0;
    }
    if (!r->nfields)
        return parse_header(line, lineno, r);
    return add_row(line, lineno, r);
}

static int read_record(struct record *r)
{
    FILE *f = fopen(r->path, "r");
    if (!f) {
        complain("cannot read %s: %s", r->path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    errno = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0)
        rc = take_line(line, ++lineno, r);
    if (rc == 0 && ferror(f)) { /* a directory opens, and fails here (EISDIR) */
        complain("cannot read %s: %s", r->path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc == 0 && !r->nfields) {
        complain("%s: no header (the column names, t_s among them)", r->path);
        rc = -1;
    } else if (rc == 0 && !r->n) {
        complain("%s: no rows after the header", r->path);
        rc = -1;
    }
    return rc;
}

/* ---- what is drawn ------------------------------------------------------------------------- */

/* One line of a panel: a column of the recording, scaled, against the left axis or the right. */
struct series {
    const char *title;
    enum col col;
    double scale; /* the unit, in the column's own (bytes or faults) */
    bool y2;
    const char *style; /* gnuplot's line properties */
};

static const struct series memory_series[] = {
    {"RSS", C_RSS, MIB, false, "lw 2"},
    {"RAM in blocks", C_RAM, MIB, false, "lw 1.5"},
    {"in files", C_FILES, MIB, false, "lw 1.5"},
    {"cgroup usage", C_CGROUP, MIB, false, "lw 1.5"},
    {"memory limit", C_LIMIT, MIB, false, "lw 1.5 dt 2 lc rgb 'black'"},
};

/* Per second, from the cumulative counters. */
static const struct series rate_series[] = {
    {"disk read", C_READ, MB, false, "lw 1.5"},
    {"disk write", C_WRITE, MB, false, "lw 1.5"},
    {"moved to files", C_SPILL, MB, false, "lw 1.5"},
    {"major faults/s (right axis)", C_MAJFLT, 1, true, "lw 1 lc rgb 'gray40'"},
};

struct panel {
    const char *block, *title, *ylabel, *y2label;
    const struct series *series;
    size_t nseries;
    bool rates;
    size_t nrows;
    double *v; /* nrows x (1 + nseries): the time, then each series; NAN: nothing there */
};

/* The limit drawn: the row's own (0 there means none), else the comment's. */
static double limit_at(const struct record *r, size_t i)
{
    double v = r->row[i][C_LIMIT];
    return v > 0 ? v : r->limit > 0 ? r->limit : NAN;
}

static double gauge(const struct record *r, size_t i, const struct series *s)
{
    return (s->col == C_LIMIT ? limit_at(r, i) : r->row[i][s->col]) / s->scale;
}

/* Over the interval that ends at row i. A repeated time, a counter that went back (a reader
 * restarted) or an empty end has no rate: NAN, a gap. */
static double rate(const struct record *r, size_t i, const struct series *s)
{
    double dt = r->row[i][C_T] - r->row[i - 1][C_T];
    double dv = r->row[i][s->col] - r->row[i - 1][s->col];
    return dt > 0 && dv >= 0 ? dv / dt / s->scale : NAN;
}

static int fill_panel(struct panel *p, const struct record *r)
{
    p->nrows = p->rates ? r->n - 1 : r->n;
    size_t width = 1 + p->nseries;
    p->v = malloc((p->nrows ? p->nrows : 1) * width * sizeof *p->v);
    if (!p->v) {
        complain("out of memory");
        return -1;
    }
    for (size_t k = 0; k < p->nrows; k++) {
        size_t i = p->rates ? k + 1 : k; /* a rate is stamped with the end of its interval */
        double *out = p->v + k * width;
        out[0] = r->row[i][C_T];
        for (size_t s = 0; s < p->nseries; s++)
            out[1 + s] = p->rates ? rate(r, i, &p->series[s]) : gauge(r, i, &p->series[s]);
    }
    return 0;
}

/* A series with no value anywhere is left out: gnuplot would warn, or fail when nothing at all
 * of a panel could be drawn. */
static bool drawn(const struct panel *p, size_t s)
{
    for (size_t k = 0; k < p->nrows; k++)
        if (!isnan(p->v[k * (1 + p->nseries) + 1 + s]))
            return true;
    return false;
}

static bool any_drawn(const struct panel *p, bool y2)
{
    for (size_t s = 0; s < p->nseries; s++)
        if (p->series[s].y2 == y2 && drawn(p, s))
            return true;
    return false;
}

/* The highest value on one axis (0 when nothing drawn there). */
static double axis_max(const struct panel *p, bool y2)
{
    double max = 0;
    for (size_t k = 0; k < p->nrows; k++)
        for (size_t s = 0; s < p->nseries; s++) {
            double v = p->v[k * (1 + p->nseries) + 1 + s];
            if (p->series[s].y2 == y2 && v > max)
                max = v;
        }
    return max;
}

/* ---- the gnuplot script -------------------------------------------------------------------- */

/* s as a gnuplot string: single quotes, inside which gnuplot substitutes neither `commands` nor
 * @macros (a recorded command line is not to be run); ' is doubled, and a control character,
 * which would end the command, becomes a space. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc((unsigned char)*s < ' ' ? ' ' : *s, f);
    }
    fputc('\'', f);
}

static void put_block(FILE *f, const struct panel *p)
{
    fprintf(f, "$%s << EOD\n# 1: t_s", p->block);
    for (size_t s = 0; s < p->nseries; s++)
        fprintf(f, "  %zu: %s", s + 2, p->series[s].title);
    fputc('\n', f);
    for (size_t k = 0; k < p->nrows; k++) {
        const double *v = p->v + k * (1 + p->nseries);
        fprintf(f, "%.3f", v[0]);
        for (size_t s = 0; s < p->nseries; s++) {
            if (isnan(v[1 + s]))
                fputs(" NaN", f); /* gnuplot's undefined value: the line breaks there */
            else
                fprintf(f, " %.3f", v[1 + s]);
        }
        fputc('\n', f);
    }
    fputs("EOD\n", f);
}

/* The top of an axis: a tenth above the data, so that a line at the maximum (a limit, a
 * steady rate) is not hidden in the frame; 1 when everything is 0 (an empty range would be a
 * warning). */
static double axis_top(const struct panel *p, bool y2)
{
    double max = axis_max(p, y2);
    return max > 0 ? max * 1.1 : 1;
}

static void put_axes(FILE *f, const struct panel *p)
{
    fprintf(f, "set ylabel '%s'\nset yrange [0:%.6g]\n", p->ylabel, axis_top(p, false));
    if (!any_drawn(p, true)) {
        fputs("unset y2label\nunset y2tics\nset ytics mirror\n", f);
        return;
    }
    fprintf(f, "set y2label '%s'\nset y2range [0:%.6g]\nset y2tics\nset ytics nomirror\n",
            p->y2label, axis_top(p, true));
}

static void put_panel(FILE *f, const struct panel *p)
{
    fprintf(f, "\nset title '%s'\n", p->title);
    put_axes(f, p);
    const char *sep = "plot ";
    for (size_t s = 0; s < p->nseries; s++) {
        if (!drawn(p, s))
            continue;
        const struct series *x = &p->series[s];
        fprintf(f, "%s$%s using 1:%zu axes x1y%d with lines %s title ", sep, p->block, s + 2,
                x->y2 ? 2 : 1, x->style);
        put_quoted(f, x->title);
        sep = ", \\\n     ";
    }
    fputc('\n', f);
}

struct plot {
    const char *csv, *out, *title;
    bool script;
    char out_buf[PATH_MAX];
    char title_buf[TITLE_MAX + 16];
};

static void put_script(FILE *f, const struct plot *o, const struct record *r,
                       const struct panel *panels, size_t npanels)
{
    fputs("# mmvec plot of ", f);
    put_quoted(f, o->csv);
    fputs("; draw it again with: gnuplot THIS_FILE\n", f);
    fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,10'\nset output ", WIDTH,
            HEIGHT);
    put_quoted(f, o->out);
    fputc('\n', f);
    for (size_t i = 0; i < npanels; i++)
        put_block(f, &panels[i]);
    size_t shown = 0;
    for (size_t i = 0; i < npanels; i++)
        shown += panels[i].nrows > 0;
    fprintf(f, "set multiplot layout %zu,1 title ", shown);
    put_quoted(f, o->title);
    fputs(" font ',12'\n", f);
    /* The same time range and margins (room for a right axis) in every panel: their time
     * axes line up, and one label under the last says what they are. The key is opaque: where
     * it covers a line, it hides the line rather than mixes with it. */
    double t0 = r->row[0][C_T], t1 = r->row[r->n - 1][C_T];
    fprintf(f, "set xrange [%.3f:%.3f]\n", t0, t1 > t0 ? t1 : t0 + 1);
    fputs("set lmargin 11\nset rmargin 11\nset grid\nset key top left opaque\n", f);
    for (size_t i = 0; i < npanels; i++) {
        if (!panels[i].nrows)
            continue;
        if (!--shown)
            fputs("set xlabel 'seconds since start'\n", f);
        put_panel(f, &panels[i]);
    }
    fputs("\nunset multiplot\nunset output\n", f);
}

/* A panel with nothing to draw is dropped (its rows emptied); none at all is an error. */
static int drop_empty_panels(struct panel *panels, size_t npanels, const struct record *r)
{
    size_t left = 0;
    for (size_t i = 0; i < npanels; i++) {
        if (!any_drawn(&panels[i], false) && !any_drawn(&panels[i], true))
            panels[i].nrows = 0;
        left += panels[i].nrows > 0;
    }
    if (!left)
        complain("%s: nothing to draw (every memory field and counter is empty)", r->path);
    return left ? 0 : -1;
}

/* The script in one buffer (free it): printed as is, or piped into gnuplot. */
static char *make_script(const struct plot *o, const struct record *r, size_t *len)
{
    struct panel panels[] = {
        {"mem", "memory", "MiB", "", memory_series, sizeof memory_series / sizeof *memory_series,
         false, 0, NULL},
        {"rate", "disk and faults", "MB/s", "major faults/s", rate_series,
         sizeof rate_series / sizeof *rate_series, true, 0, NULL},
    };
    size_t npanels = sizeof panels / sizeof *panels;
    char *text = NULL;
    int rc = 0;
    for (size_t i = 0; i < npanels && rc == 0; i++)
        rc = fill_panel(&panels[i], r);
    if (rc == 0)
        rc = drop_empty_panels(panels, npanels, r);
    FILE *f = rc == 0 ? open_memstream(&text, len) : NULL;
    if (f) {
        put_script(f, o, r, panels, npanels);
        if (fclose(f) != 0) {
            free(text);
            text = NULL;
        }
    }
    if (rc == 0 && !text)
        complain("out of memory");
    for (size_t i = 0; i < npanels; i++)
        free(panels[i].v);
    return text;
}

/* ---- running gnuplot ----------------------------------------------------------------------- */

static void __attribute__((noreturn)) exec_gnuplot(int in, int err, int status)
{
    /* An ignored signal stays ignored through exec: gnuplot gets the default back. */
    signal(SIGPIPE, SIG_DFL);
    /* Its stdout is nowhere: where `set output` fails, gnuplot would draw the PNG there. */
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0 && dup2(in, STDIN_FILENO) >= 0 && dup2(null, STDOUT_FILENO) >= 0 &&
        dup2(err, STDERR_FILENO) >= 0) {
        /* The script as a file to load, not as typed input: gnuplot then stops at the first
         * error (and says its line) instead of going on with the rest. */
        char *argv[] = {"gnuplot", "/dev/stdin", NULL};
        execvp(argv[0], argv);
    }
    int e = errno;
    if (write(status, &e, sizeof e) < 0) {
        /* nothing to do: the parent then sees an exec that worked and the exit status 127 */
    }
    _exit(127);
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) /* EPIPE: gnuplot stopped reading; its exit status will say why */
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* gnuplot's errors say where: "line 12: undefined variable: x" (maybe after a file name). */
static bool is_error_line(const char *l)
{
    const char *p = strstr(l, "line ");
    if (!p)
        return false;
    size_t digits = strspn(p + 5, "0123456789");
    return digits > 0 && p[5 + digits] == ':';
}

/* gnuplot's error, for one line: '"/dev/stdin" line 12: cannot open file' and the "system
 * error: ..." line after it, if any, as "line 12: cannot open file (system error: ...)"; else
 * its last line; "" for none. */
static void gnuplot_message(int fd, char *buf, size_t size)
{
    char text[8192];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    buf[0] = '\0';
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        l += strspn(l, " \t");
        if (!*l || *l == '^') /* the caret under the offending command */
            continue;
        if (!is_error_line(l)) {
            snprintf(buf, size, "%s", l);
            continue;
        }
        l = strstr(l, "line ");
        char *next = strtok_r(NULL, "\n", &save);
        bool why = next && !strncmp(next, "system error: ", 14);
        snprintf(buf, size, "%s%s%s%s", l, why ? " (" : "", why ? next : "", why ? ")" : "");
        return;
    }
}

static void copy_fd(int from, int to)
{
    char buf[4096];
    off_t at = 0;
    for (ssize_t n; (n = pread(from, buf, sizeof buf, at)) > 0; at += n)
        write_all(to, buf, (size_t)n);
}

/* What gnuplot's end means for us: 0 when it drew a non-empty image. */
static int judge(int status, int errfd, const char *out)
{
    char msg[512];
    if (WIFSIGNALED(status)) {
        complain("gnuplot was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return -1;
    }
    if (WEXITSTATUS(status) != 0) {
        gnuplot_message(errfd, msg, sizeof msg);
        complain("gnuplot failed with exit status %d%s%s", WEXITSTATUS(status), *msg ? ": " : "",
                 msg);
        return -1;
    }
    copy_fd(errfd, STDERR_FILENO); /* its warnings, if any, are the user's to see */
    struct stat st;
    if (stat(out, &st) < 0 || st.st_size == 0) {
        complain("gnuplot made no image in %s", out);
        return -1;
    }
    return 0;
}

/* gnuplot (PATH) reads the script on a pipe; its stderr goes to a memfd, read once it ended:
 * there is then no second pipe to drain while the script is written. The exec's errno comes
 * back on a close-on-exec pipe: a missing gnuplot is told apart from one that failed. */
static int run_gnuplot(const char *script, size_t len, const char *out)
{
    int in[2] = {-1, -1}, st[2] = {-1, -1};
    int errfd = memfd_create("mmvec-plot-gnuplot-stderr", MFD_CLOEXEC);
    if (errfd < 0 || pipe2(in, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0) {
        complain("cannot start gnuplot: %s", strerror(errno));
        return -1;
    }
    /* gnuplot ending early must be an exit status to report, not a SIGPIPE that kills us. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ignore, &old);
    pid_t pid = fork();
    if (pid == 0)
        exec_gnuplot(in[0], errfd, st[1]);
    close(in[0]);
    close(st[1]);
    int err = pid < 0 ? errno : 0;
    if (pid > 0 && read(st[0], &err, sizeof err) != sizeof err)
        err = 0; /* closed by the exec: gnuplot runs */
    close(st[0]);
    if (!err)
        write_all(in[1], script, len);
    close(in[1]);
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    sigaction(SIGPIPE, &old, NULL);
    int rc = -1;
    if (err == ENOENT)
        complain("needs gnuplot (apt-get install gnuplot-nox)");
    else if (err)
        complain("cannot run gnuplot: %s", strerror(err));
    else
        rc = judge(status, errfd, out);
    close(errfd);
    return rc;
}

/* ---- options and main ---------------------------------------------------------------------- */

/* 0 to go on, 1 after --help, -1 for a usage error (said). */
static int parse_opts(int argc, char **argv, struct plot *o)
{
    static const struct option longs[] = {
        {"output", required_argument, NULL, 'o'},
        {"title", required_argument, NULL, 'T'},
        {"script", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0; /* our own one-line messages instead of getopt's */
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, ":o:h", longs, NULL)) != -1;) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'T': o->title = optarg; break;
        case 'S': o->script = true; break;
        case 'h': fputs(plot_usage, stdout); return 1;
        case ':':
            complain("option '%s' needs a value (try mmvec plot --help)", argv[optind - 1]);
            return -1;
        default:
            complain("unknown option '%s' (try mmvec plot --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind != argc - 1) {
        complain(optind >= argc ? "no recording given (try mmvec plot --help)"
                                : "one recording at a time (try mmvec plot --help)");
        return -1;
    }
    o->csv = argv[optind];
    if (o->out && !*o->out) {
        complain("empty output name for -o");
        return -1;
    }
    return 0;
}

/* FILE.csv -> FILE.png, anything else -> FILE.png appended. */
static void default_output(struct plot *o)
{
    size_t n = strlen(o->csv);
    if (n > 4 && !strcasecmp(o->csv + n - 4, ".csv"))
        n -= 4;
    snprintf(o->out_buf, sizeof o->out_buf, "%.*s.png", (int)n, o->csv);
    o->out = o->out_buf;
}

/* "mmvec: <command>", cut to fit (at a character, not inside one: UTF-8); without a recorded
 * command, the file's name. */
static void default_title(struct plot *o, const struct record *r)
{
    o->title = o->title_buf;
    if (!r->command[0]) {
        const char *slash = strrchr(o->csv, '/');
        snprintf(o->title_buf, sizeof o->title_buf, "%.*s", TITLE_MAX, slash ? slash + 1 : o->csv);
        return;
    }
    size_t n = strlen(r->command);
    bool cut = n > TITLE_MAX;
    if (cut)
        n = TITLE_MAX;
    while (cut && n > 0 && ((unsigned char)r->command[n] & 0xC0) == 0x80)
        n--;
    snprintf(o->title_buf, sizeof o->title_buf, "mmvec: %.*s%s", (int)n, r->command,
             cut ? "..." : "");
}

static int print_script(const char *script, size_t len)
{
    if (fwrite(script, 1, len, stdout) != len || fflush(stdout) != 0) {
        complain("cannot write the script: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int mmvec_plot_main(int argc, char **argv)
{
    struct plot o = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : EXIT_USAGE;
    struct record r = {.path = o.csv};
    if (read_record(&r) < 0) {
        free(r.row);
        return EXIT_FAIL;
    }
    if (!o.out)
        default_output(&o);
    if (!o.title)
        default_title(&o, &r);
    size_t len = 0;
    char *script = make_script(&o, &r, &len);
    if (!script)
        rc = -1;
    else if (o.script)
        rc = print_script(script, len);
    else if ((rc = run_gnuplot(script, len, o.out)) == 0)
        printf("mmvec plot: %s (%dx%d), %zu sample%s over %.1f s\n", o.out, WIDTH, HEIGHT, r.n,
               r.n == 1 ? "" : "s", r.row[r.n - 1][C_T] - r.row[0][C_T]);
    free(script);
    free(r.row);
    return rc == 0 ? 0 : EXIT_FAIL;
}
