/* mmvec plot: a recording of `mmvec run --record` (CSV) drawn by gnuplot.
 *
 * What is drawn is checked in the gnuplot script (--script): the series, one data row per
 * sample, the rates computed from the cumulative counters, gaps for empty fields. A real run
 * checks the PNG gnuplot makes (skipped, loudly, without gnuplot); a fake gnuplot in PATH checks
 * how its failures are reported. Every error is one line naming the line of the file. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define CHILD_TIMEOUT 60
#define MIB 1048576.0

static void teardown(void);

static char tdir[256];

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-plot-XXXXXX");
}

static void teardown(void)
{
    tu_rm_rf(tdir);
    tdir[0] = '\0';
}

static char *path_in(const char *name) { return tu_path_in(tdir, name); }

static void write_file(const char *name, const char *text, mode_t mode)
{
    FILE *f = fopen(path_in(name), "w");
    cr_assert_not_null(f, "%s: %s", name, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path_in(name), mode), 0);
}

/* ---- running mmvec ----------------------------------------------------------------------- */

struct out {
    int code; /* the exit code, or 128 + the signal */
    char *out, *err;
};

/* argv in tdir, with our environment (without MMVEC_*, LD_PRELOAD), PATH=path when given. */
static struct out run_in_path(const char *const *argv, const char *path)
{
    size_t n;
    char **env = tu_child_env(4, &n, path ? "PATH=" : NULL);
    char pathvar[600];
    snprintf(pathvar, sizeof pathvar, "PATH=%s", path ? path : "");
    if (path)
        env[n++] = pathvar;
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (chdir(tdir) < 0)
            _exit(126);
        tu_redirect(NULL, 0, O_RDONLY);
        tu_redirect(path_in("out"), 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(path_in("err"), 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT); /* survives exec: a hung gnuplot kills the run, not the suite */
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    int status = tu_wait(pid);
    struct out r = {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                    tu_slurp(path_in("out")), tu_slurp(path_in("err"))};
    return r;
}

static struct out run(const char *const *argv) { return run_in_path(argv, NULL); }

/* The script for file (and extra options), which must succeed; in a buffer of its own. */
static char *script_of(const char *file, const char *opt, const char *val)
{
    const char *argv[] = {MMVEC_CLI, "plot", file, "--script", opt, val, NULL};
    struct out r = run(argv);
    cr_assert_eq(r.code, 0, "plot %s --script: exit %d, %s", file, r.code, r.err);
    cr_assert_str_empty(r.err, "plot %s --script said: %s", file, r.err);
    char *copy = strdup(r.out);
    cr_assert_not_null(copy);
    return copy;
}

/* A failure: exit `code`, and exactly one line on stderr, "mmvec plot: ...". */
static char *expect_one_line_error(const char *const *argv, const char *path, int code)
{
    struct out r = run_in_path(argv, path);
    cr_assert_eq(r.code, code, "%s %s: exit %d, not %d; stderr: %s", argv[1],
                 argv[2] ? argv[2] : "", r.code, code, r.err);
    size_t len = strlen(r.err);
    cr_assert(len > 0 && r.err[len - 1] == '\n' && strchr(r.err, '\n') == r.err + len - 1,
              "not one line: [%s]", r.err);
    cr_assert(!strncmp(r.err, "mmvec plot: ", 12), "no prefix: [%s]", r.err);
    return r.err;
}

/* ---- gnuplot ----------------------------------------------------------------------------- */

static bool have_gnuplot(void)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char exe[1200];
        snprintf(exe, sizeof exe, "%s/gnuplot", d);
        found = access(exe, X_OK) == 0;
    }
    free(copy);
    return found;
}

static void skip_unless_gnuplot(void)
{
    if (!have_gnuplot())
        TU_SKIP(teardown, "no gnuplot in PATH: the PNG cannot be checked (apt-get install "
                          "gnuplot-nox, or scripts/install-deps.sh)");
}

/* ---- fixtures ---------------------------------------------------------------------------- */

static const char header[] =
    "t_s,rss_bytes,rss_anon_bytes,rss_file_bytes,ram_block_bytes,file_block_bytes,"
    "disk_read_bytes,disk_write_bytes,major_faults,minor_faults,cgroup_usage_bytes,"
    "memory_limit_bytes,spill_bytes\n";

/* One sample of the hand-made recording, every 0.5 s: disk_read grows by 1 MB (10^6 bytes) per
 * row, disk_write by 0.5 MB, spill by 3 MB, major faults by 10; RSS 100 MiB + 10 per row. */
struct sample {
    double t;
    long long rss, anon, file, ram, files, read, written, major, minor, cgroup, limit, spill;
};

static struct sample sample(int i)
{
    const long long mib = 1 << 20;
    struct sample s = {0.5 * (i + 1), (100 + 10 * i) * mib, (90 + 10 * i) * mib, 10 * mib,
                       64 * mib, 32LL * i * mib, 1000000LL * i, 500000LL * i, 10LL * i,
                       100LL * i, (110 + 10 * i) * mib, 512 * mib, 3000000LL * i};
    return s;
}

static void put_sample(FILE *f, const struct sample *s)
{
    fprintf(f, "%.3f,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n", s->t, s->rss,
            s->anon, s->file, s->ram, s->files, s->read, s->written, s->major, s->minor,
            s->cgroup, s->limit, s->spill);
}

/* The comment, the header, then n samples. */
static void write_recording(const char *name, int n)
{
    FILE *f = fopen(path_in(name), "w");
    cr_assert_not_null(f);
    fprintf(f, "# mmvec record: ./simulate big.conf; interval 500 ms; memory limit %d\n%s",
            512 << 20, header);
    for (int i = 0; i < n; i++) {
        struct sample s = sample(i);
        put_sample(f, &s);
    }
    cr_assert_eq(fclose(f), 0);
}

/* ---- reading the script ------------------------------------------------------------------ */

enum { MAX_ROWS = 64, MAX_COLS = 8 };

/* The rows of datablock $name (comment lines skipped), each parsed into v (NAN for "NaN");
 * the number of rows, -1 without such a block. */
static int datablock(const char *script, const char *name, double v[MAX_ROWS][MAX_COLS],
                     int *ncols)
{
    char start[64];
    snprintf(start, sizeof start, "$%s << EOD\n", name);
    const char *p = strstr(script, start);
    if (!p)
        return -1;
    p += strlen(start);
    int rows = 0;
    *ncols = 0;
    for (const char *end; *p && strncmp(p, "EOD\n", 4); p = end + 1) {
        end = strchr(p, '\n');
        cr_assert_not_null(end, "datablock $%s does not end", name);
        if (*p == '#')
            continue;
        cr_assert_lt(rows, MAX_ROWS);
        int c = 0;
        for (char *q = (char *)p, *next; q < end && c < MAX_COLS; q = next, c++) {
            v[rows][c] = strtod(q, &next);
            cr_assert_neq(q, next, "not a number in $%s: %.*s", name, (int)(end - p), p);
        }
        *ncols = c;
        rows++;
    }
    return rows;
}

/* Whether the script has a plot line for the series titled `title`. */
static bool plots(const char *script, const char *title)
{
    char want[128];
    snprintf(want, sizeof want, " title '%s'", title);
    return strstr(script, want) != NULL;
}

/* The datablocks of a script, as text (to compare two scripts' data). */
static char *blocks_text(const char *script)
{
    const char *a = strchr(script, '$'), *b = strstr(script, "\nset multiplot");
    cr_assert(a && b && a < b, "no datablocks in:\n%s", script);
    return strndup(a, (size_t)(b - a));
}

TestSuite(plot, .init = setup, .fini = teardown, .timeout = 120);

/* ---- what is drawn ------------------------------------------------------------------------- */

Test(plot, script_has_the_series_and_the_rates)
{
    enum { N = 5 };
    write_recording("rec.csv", N);
    char *script = script_of("rec.csv", NULL, NULL);
    static const char *const series[] = {"RSS", "RAM in blocks", "in files", "cgroup usage",
                                         "memory limit", "disk read", "disk write",
                                         "moved to files", "major faults/s (right axis)"};
    for (size_t i = 0; i < sizeof series / sizeof *series; i++)
        cr_assert(plots(script, series[i]), "no series '%s' in:\n%s", series[i], script);
    cr_assert(strstr(script, "set multiplot layout 2,1 title 'mmvec: ./simulate big.conf'"),
              "the title is the recorded command: %s", script);
    cr_assert(strstr(script, "set output 'rec.png'\n"), "default output: rec.png");

    double v[MAX_ROWS][MAX_COLS];
    int cols;
    cr_assert_eq(datablock(script, "mem", v, &cols), N, "one memory row per sample");
    cr_assert_eq(cols, 6, "t, RSS, RAM in blocks, in files, cgroup usage, memory limit");
    for (int i = 0; i < N; i++) {
        struct sample s = sample(i);
        cr_assert_float_eq(v[i][0], s.t, 1e-9);
        cr_assert_float_eq(v[i][1], s.rss / MIB, 1e-3, "RSS in MiB");
        cr_assert_float_eq(v[i][3], s.files / MIB, 1e-3, "in files, MiB");
        cr_assert_float_eq(v[i][5], 512, 1e-9, "the limit, MiB");
    }
    /* Rates: one per interval between two rows, stamped with its end. */
    cr_assert_eq(datablock(script, "rate", v, &cols), N - 1, "%s", script);
    cr_assert_eq(cols, 5, "t, read, write, moved to files, major faults/s");
    for (int i = 0; i < N - 1; i++) {
        cr_assert_float_eq(v[i][0], sample(i + 1).t, 1e-9);
        cr_assert_float_eq(v[i][1], 2.0, 1e-9, "1 MB read per 0.5 s: 2 MB/s, not %g", v[i][1]);
        cr_assert_float_eq(v[i][2], 1.0, 1e-9, "0.5 MB written per 0.5 s");
        cr_assert_float_eq(v[i][3], 6.0, 1e-9, "3 MB moved per 0.5 s");
        cr_assert_float_eq(v[i][4], 20.0, 1e-9, "10 faults per 0.5 s");
    }
    cr_assert(strstr(script, "\n1.000 2.000 1.000 6.000 20.000\n"), "%s", script);
    free(script);
}

/* The header says where each column is: another order and columns this version does not know
 * (not even numbers) give the same data. */
Test(plot, columns_are_found_by_name)
{
    write_recording("rec.csv", 4);
    FILE *f = fopen(path_in("shuffled.csv"), "w");
    cr_assert_not_null(f);
    fprintf(f, "# mmvec record: ./simulate big.conf; interval 500 ms; memory limit 0\n"
               "spill_bytes,phase,memory_limit_bytes,cgroup_usage_bytes,minor_faults,"
               "major_faults,disk_write_bytes,disk_read_bytes,file_block_bytes,ram_block_bytes,"
               "rss_file_bytes,rss_anon_bytes,rss_bytes,t_s,future_bytes\n");
    for (int i = 0; i < 4; i++) {
        struct sample s = sample(i);
        fprintf(f, "%lld,warm up,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.3f,%d\n",
                s.spill, s.limit, s.cgroup, s.minor, s.major, s.written, s.read, s.files, s.ram,
                s.file, s.anon, s.rss, s.t, i);
    }
    cr_assert_eq(fclose(f), 0);
    char *a = script_of("rec.csv", NULL, NULL), *b = script_of("shuffled.csv", NULL, NULL);
    char *da = blocks_text(a), *db = blocks_text(b);
    cr_assert_str_eq(da, db, "the same samples, other column order");
    free(da), free(db), free(a), free(b);
}

/* An empty field is a value the recorder could not read: a gap (NaN), in that row and in the
 * rates on either side; a column empty everywhere is not drawn; the limit can come from the
 * comment. */
Test(plot, empty_fields_are_gaps)
{
    char text[4096];
    snprintf(text, sizeof text,
             "# mmvec record: sort -S 2G big.txt; interval 500 ms; memory limit 268435456\n%s"
             "0.500,104857600,,,0,0,0,0,0,0,,,0\n"
             "1.000,115343360,,,0,0,1000000,0,0,0,,,0\n"
             "1.500,,,,0,0,,0,0,0,,,0\n"
             "2.000,136314880,,,0,0,3000000,0,0,0,,,0\n"
             "2.500,146800640,,,0,0,4000000,0,0,0,,,0\n",
             header);
    write_file("gaps.csv", text, 0644);
    char *script = script_of("gaps.csv", NULL, NULL);
    double v[MAX_ROWS][MAX_COLS];
    int cols;
    cr_assert_eq(datablock(script, "mem", v, &cols), 5);
    cr_assert(isnan(v[2][1]), "the empty RSS is a gap, not %g", v[2][1]);
    cr_assert_float_eq(v[3][1], 130, 1e-9);
    cr_assert_float_eq(v[2][5], 256, 1e-9, "no limit in the rows: the comment's");
    cr_assert_eq(datablock(script, "rate", v, &cols), 4);
    cr_assert_float_eq(v[0][1], 2.0, 1e-9);
    cr_assert(isnan(v[1][1]) && isnan(v[2][1]), "no rate into or out of an empty field");
    cr_assert_float_eq(v[3][1], 2.0, 1e-9);
    cr_assert(!plots(script, "cgroup usage"), "an empty column is not drawn");
    cr_assert(plots(script, "RSS") && plots(script, "memory limit"));
    free(script);
    /* And gnuplot draws it. */
    skip_unless_gnuplot();
    const char *argv[] = {MMVEC_CLI, "plot", "gaps.csv", NULL};
    struct out r = run(argv);
    cr_assert_eq(r.code, 0, "%s", r.err);
    struct stat st;
    cr_assert(stat(path_in("gaps.png"), &st) == 0 && st.st_size > 0, "no gaps.png");
}

/* Without the comment: no command to name (the file's name is the title), no limit unless a
 * row has one. --title and -o win over the defaults. */
Test(plot, without_a_comment_and_with_options)
{
    char text[4096];
    snprintf(text, sizeof text, "%s0.100,1048576,,,,,,,,,,0,\n0.200,2097152,,,,,,,,,,0,\n",
             header);
    write_file("bare.csv", text, 0644);
    char *script = script_of("bare.csv", NULL, NULL);
    cr_assert(strstr(script, "layout 1,1 title 'bare.csv'"), "one panel (no counters): %s",
              script);
    cr_assert(plots(script, "RSS") && !plots(script, "memory limit"), "%s", script);
    free(script);
    script = script_of("bare.csv", "--title", "it's mine");
    cr_assert(strstr(script, "title 'it''s mine'"), "a quote doubled for gnuplot: %s", script);
    free(script);
    script = script_of("bare.csv", "-o", "elsewhere.png");
    cr_assert(strstr(script, "set output 'elsewhere.png'\n"), "%s", script);
    free(script);
    /* A command too long for the width is cut, with "..." to say so. */
    char cmd[1200];
    memset(cmd, 'x', sizeof cmd - 1);
    cmd[sizeof cmd - 1] = '\0';
    snprintf(text, sizeof text, "# mmvec record: %s; interval 100 ms; memory limit 0\n%s%s", cmd,
             header, "0.100,1048576,,,,,,,,,,0,\n");
    write_file("long.csv", text, 0644);
    script = script_of("long.csv", NULL, NULL);
    const char *title = strstr(script, "title 'mmvec: xxx");
    cr_assert_not_null(title, "%s", script);
    const char *end = strstr(title, "...'");
    cr_assert(end && end - title < 200, "not cut: %.300s", title);
    free(script);
}

/* ---- the PNG ------------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size the script asks gnuplot for ("set terminal pngcairo size W,H"). */
static void asked_size(const char *script, unsigned *w, unsigned *h)
{
    const char *p = strstr(script, "set terminal pngcairo size ");
    cr_assert(p && sscanf(p, "set terminal pngcairo size %u,%u", w, h) == 2, "%s", script);
}

Test(plot, makes_a_png_of_the_size_asked)
{
    skip_unless_gnuplot();
    write_recording("rec.csv", 60);
    char *script = script_of("rec.csv", NULL, NULL);
    unsigned w, h;
    asked_size(script, &w, &h);
    free(script);
    cr_assert(w >= 800 && h >= 500, "a readable size, not %ux%u", w, h);

    const char *argv[] = {MMVEC_CLI, "plot", "rec.csv", "-o", "out.png", NULL};
    struct out r = run(argv);
    cr_assert_eq(r.code, 0, "exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.out, "out.png"), "says where the image is: %s", r.out);
    unsigned char png[24];
    FILE *f = fopen(path_in("out.png"), "rb");
    cr_assert_not_null(f, "no out.png");
    cr_assert_eq(fread(png, 1, sizeof png, f), sizeof png, "out.png is too short");
    fclose(f);
    cr_assert_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0, "not a PNG signature");
    cr_assert_eq(memcmp(png + 12, "IHDR", 4), 0, "the first chunk is not IHDR");
    cr_assert_eq(be32(png + 16), w, "width %u, asked %u", be32(png + 16), w);
    cr_assert_eq(be32(png + 20), h, "height %u, asked %u", be32(png + 20), h);

    /* Without -o: next to the recording, .csv replaced by .png. */
    const char *plain[] = {MMVEC_CLI, "plot", "rec.csv", NULL};
    r = run(plain);
    cr_assert_eq(r.code, 0, "%s", r.err);
    struct stat st;
    cr_assert(stat(path_in("rec.png"), &st) == 0 && st.st_size > 0, "no rec.png");
}

/* ---- errors -------------------------------------------------------------------------------- */

Test(plot, bad_inputs_name_the_line)
{
    static const struct {
        const char *name, *body, *want;
    } cases[] = {
        {"fewer fields", "0.5,1,2,3,4,5,6,7,8,9,10,11,12\n1.0,1,2,3\n", "line 4: 4 fields"},
        {"more fields", "0.5,1,2,3,4,5,6,7,8,9,10,11,12,13\n", "line 3: 14 fields"},
        {"not a number", "0.5,1,2,3,4,5,6,7,8,9,10,11,12\n1.0,1,2,3,4,5,12x,7,8,9,10,11,12\n",
         "line 4: disk_read_bytes is '12x'"},
        {"negative", "0.5,-1,2,3,4,5,6,7,8,9,10,11,12\n", "line 3: rss_bytes is '-1'"},
        {"fraction of a byte", "0.5,1.5,2,3,4,5,6,7,8,9,10,11,12\n", "line 3: rss_bytes"},
        {"bad time", "0.5x,1,2,3,4,5,6,7,8,9,10,11,12\n", "line 3: t_s is '0.5x'"},
        {"no time", ",1,2,3,4,5,6,7,8,9,10,11,12\n", "line 3: no time"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[2048];
        snprintf(text, sizeof text, "# mmvec record: x; interval 500 ms; memory limit 0\n%s%s",
                 header, cases[i].body);
        write_file("bad.csv", text, 0644);
        const char *argv[] = {MMVEC_CLI, "plot", "bad.csv", "--script", NULL};
        const char *err = expect_one_line_error(argv, NULL, 1);
        cr_assert(strstr(err, "bad.csv line") && strstr(err, cases[i].want),
                  "%s: wanted '%s' in: %s", cases[i].name, cases[i].want, err);
    }
}

Test(plot, bad_files_are_one_line_errors)
{
    static const struct {
        const char *name, *body, *want;
    } cases[] = {
        {"empty", "", "no header"},
        {"comment only", "# mmvec record: x; interval 100 ms; memory limit 0\n", "no header"},
        {"data first", "0.5,1,2\n", "line 1: no header"},
        {"header only", "t_s,rss_bytes\n", "no rows"},
        {"twice a column", "t_s,rss_bytes,rss_bytes\n", "line 1: column rss_bytes twice"},
        {"nothing to draw", "t_s,rss_bytes,disk_read_bytes\n0.5,,\n1.0,,\n", "nothing to draw"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file("bad.csv", cases[i].body, 0644);
        const char *argv[] = {MMVEC_CLI, "plot", "bad.csv", "--script", NULL};
        const char *err = expect_one_line_error(argv, NULL, 1);
        cr_assert(strstr(err, cases[i].want), "%s: wanted '%s' in: %s", cases[i].name,
                  cases[i].want, err);
    }
    const char *missing[] = {MMVEC_CLI, "plot", "nonexistent.csv", NULL};
    const char *err = expect_one_line_error(missing, NULL, 1);
    cr_assert(strstr(err, "nonexistent.csv"), "%s", err);
    const char *dir[] = {MMVEC_CLI, "plot", ".", NULL};
    expect_one_line_error(dir, NULL, 1);
}

Test(plot, usage_errors_are_exit_2)
{
    write_recording("rec.csv", 3);
    const char *none[] = {MMVEC_CLI, "plot", NULL};
    const char *two[] = {MMVEC_CLI, "plot", "rec.csv", "rec.csv", NULL};
    const char *unknown[] = {MMVEC_CLI, "plot", "--frobnicate", "rec.csv", NULL};
    const char *noval[] = {MMVEC_CLI, "plot", "rec.csv", "-o", NULL};
    const char *notitle[] = {MMVEC_CLI, "plot", "rec.csv", "--title", NULL};
    expect_one_line_error(none, NULL, 2);
    expect_one_line_error(two, NULL, 2);
    expect_one_line_error(unknown, NULL, 2);
    expect_one_line_error(noval, NULL, 2);
    expect_one_line_error(notitle, NULL, 2);
    const char *help[] = {MMVEC_CLI, "plot", "--help", NULL};
    struct out r = run(help);
    cr_assert(r.code == 0 && strstr(r.out, "--script"), "exit %d: %s", r.code, r.out);
    const char *top[] = {MMVEC_CLI, "--help", NULL};
    r = run(top);
    cr_assert(r.code == 0 && strstr(r.out, "mmvec plot FILE.csv"), "%s", r.out);
}

/* ---- gnuplot missing or failing ------------------------------------------------------------ */

Test(plot, without_gnuplot)
{
    write_recording("rec.csv", 3);
    cr_assert_eq(mkdir(path_in("empty"), 0755), 0);
    char path[400];
    snprintf(path, sizeof path, "%s", path_in("empty"));
    const char *argv[] = {MMVEC_CLI, "plot", "rec.csv", NULL};
    const char *err = expect_one_line_error(argv, path, 1);
    cr_assert_str_eq(err, "mmvec plot: needs gnuplot (apt-get install gnuplot-nox)\n");
    /* --script needs no gnuplot. */
    const char *script[] = {MMVEC_CLI, "plot", "rec.csv", "--script", NULL};
    struct out r = run_in_path(script, path);
    cr_assert_eq(r.code, 0, "%s", r.err);
}

/* A fake gnuplot first in PATH: its exit status and error line are reported; one that exits 0
 * without drawing is caught by the check of the image. */
Test(plot, gnuplot_failures_are_reported)
{
    write_recording("rec.csv", 2000); /* a script larger than a pipe holds */
    cr_assert_eq(mkdir(path_in("bin"), 0755), 0);
    char path[400];
    snprintf(path, sizeof path, "%s", path_in("bin"));
    /* It does not read its input: writing the script must not kill mmvec (SIGPIPE). */
    write_file("bin/gnuplot",
               "#!/bin/sh\necho '         ^' >&2\n"
               "echo '\"/dev/stdin\" line 7: something broke' >&2\nexit 3\n",
               0755);
    const char *argv[] = {MMVEC_CLI, "plot", "rec.csv", NULL};
    const char *err = expect_one_line_error(argv, path, 1);
    cr_assert(strstr(err, "exit status 3") && strstr(err, "line 7: something broke"), "%s", err);

    write_file("bin/gnuplot", "#!/bin/sh\nexit 0\n", 0755);
    unlink(path_in("rec.png"));
    err = expect_one_line_error(argv, path, 1);
    cr_assert(strstr(err, "no image in rec.png"), "%s", err);

    write_file("bin/gnuplot", "#!/bin/sh\nkill -9 $$\n", 0755);
    err = expect_one_line_error(argv, path, 1);
    cr_assert(strstr(err, "signal 9"), "%s", err);
}

/* The real gnuplot, told to write where it cannot: its own reason, in one line. */
Test(plot, unwritable_output_is_gnuplots_error)
{
    skip_unless_gnuplot();
    write_recording("rec.csv", 3);
    const char *argv[] = {MMVEC_CLI, "plot", "rec.csv", "-o", "no/such/dir/out.png", NULL};
    const char *err = expect_one_line_error(argv, NULL, 1);
    cr_assert(strstr(err, "gnuplot failed") && strstr(err, "cannot open file"), "%s", err);
    struct out r = run(argv);
    cr_assert_str_empty(r.out, "nothing on stdout (gnuplot would draw there: 'output not "
                               "changed')");
}
