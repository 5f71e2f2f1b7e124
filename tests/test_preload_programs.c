/* Unmodified programs under the interposer: same output as without it, blocks really in files,
 * no file left behind; and every interposed symbol exercised in a child under LD_PRELOAD.
 *
 * Each test runs a program twice, once plainly and once with LD_PRELOAD=libmmvec_preload,
 * MMVEC_THRESHOLD=64K, MMVEC_DIR=<its own temp dir> and MMVEC_STATS=1, then compares the two
 * stdouts byte for byte, reads the "blocks made" lines of the stats tables (stderr) to be sure
 * segment blocks were really used, and checks that no *.seg file remains.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define CHILD_TIMEOUT 120

extern char **environ;

static void teardown(void);

static char tdir[256];   /* this test's temp directory */
static char segdir[300]; /* MMVEC_DIR of the preloaded runs */

/* ---- temp dirs and files ------------------------------------------------------------------ */

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-preload-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tdir);
}

static void teardown(void)
{
    tu_rm_rf(tdir);
    tdir[0] = '\0';
}

static char *path_in(const char *name) { return tu_path_in(tdir, name); }

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    static char ba[1 << 16], bb[1 << 16];
    while (same) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        same = na == nb && memcmp(ba, bb, na) == 0;
        if (na == 0)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- child processes --------------------------------------------------------------------- */

/* A program's absolute path from PATH (or the given absolute path), NULL when not installed. */
static const char *find_program(const char *name)
{
    static char buf[8][512];
    static int next;
    char *out = buf[next++ % 8];
    if (name[0] == '/')
        return access(name, X_OK) == 0 ? name : NULL;
    const char *path = getenv("PATH");
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, sizeof buf[0], "%s/%s", d, name);
        if (access(out, X_OK) == 0)
            return out;
    }
    return NULL;
}

struct kid {
    const char *const *argv;  /* argv[0]: an absolute path */
    bool preload;             /* LD_PRELOAD plus the test's MMVEC_* settings */
    const char *const *extra; /* more "NAME=value" entries, or NULL */
    const char *in, *out, *err;
};

/* The environment of a child: ours without LD_PRELOAD and MMVEC_* (so the caller's settings
 * cannot change a test), plus the test's. Built before fork: the child only execs. */
static char **kid_env(const struct kid *k, char *own[8])
{
    size_t n;
    char **env = tu_child_env(32, &n, "LC_ALL=");
    env[n++] = "LC_ALL=C";
    if (k->preload) {
        cr_assert(asprintf(&own[0], "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB) > 0);
        cr_assert(asprintf(&own[1], "MMVEC_DIR=%s", segdir) > 0);
        env[n++] = own[0];
        env[n++] = own[1];
        env[n++] = "MMVEC_THRESHOLD=64K";
        env[n++] = "MMVEC_STATS=1";
        env[n++] = "MMVEC_LOG=2";
    }
    for (const char *const *x = k->extra; x && *x; x++)
        env[n++] = (char *)*x;
    env[n] = NULL;
    return env;
}

/* Runs the child to its end; returns its wait status. */
static int kid_run(const struct kid *k)
{
    char *own[8] = {0};
    char **env = kid_env(k, own);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        tu_redirect(k->in, 0, O_RDONLY);
        tu_redirect(k->out, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(k->err, 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT); /* survives exec: a hung program dies instead of the suite */
        execve(k->argv[0], (char *const *)k->argv, env);
        _exit(127);
    }
    int status = tu_wait(pid);
    free(env);
    for (int i = 0; i < 8; i++)
        free(own[i]);
    return status;
}

static void expect_success(int status, const char *what, const char *errfile)
{
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: %s %d; stderr:\n%.1500s", what, WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tu_slurp(errfile));
}

/* A whole file, malloc'ed and NUL-terminated (NULL when missing). */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    if (buf)
        buf[got] = '\0';
    fclose(f);
    return buf;
}

static unsigned long long count_text(const char *text, const char *what)
{
    unsigned long long n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* Sum of the "blocks made" counts of the stats tables (one per process) in a stderr file. */
static unsigned long long stats_blocks_made(const char *text)
{
    unsigned long long total = 0;
    for (const char *p = text; (p = strstr(p, "blocks made")) != NULL;) {
        p += strlen("blocks made");
        total += strtoull(p, NULL, 10);
    }
    return total;
}

/* Segment blocks a preloaded run made, from its stderr: the stats tables (MMVEC_STATS=1), or
 * the "made" lines of MMVEC_LOG=2 when a program closed its stderr before the table could be
 * printed at exit (coreutils and xz do). */
static unsigned long long blocks_made(const char *errfile)
{
    char *text = read_all(errfile);
    if (!text)
        return 0;
    unsigned long long a = stats_blocks_made(text), b = count_text(text, "mmvec: made ");
    free(text);
    return a > b ? a : b;
}

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                 "preloaded into an uninstrumented child");
#endif
}

/* Runs argv plainly and preloaded with the same input; both must succeed and print the same
 * bytes, the preloaded run must have made segment blocks and left no file. */
static void same_output(const char *const *argv, const char *in, unsigned long long min_blocks)
{
    struct kid plain = {argv, false, NULL, in, path_in("plain.out"), path_in("plain.err")};
    struct kid pre = {argv, true, NULL, in, path_in("pre.out"), path_in("pre.err")};
    expect_success(kid_run(&plain), "plain run", plain.err);
    expect_success(kid_run(&pre), "preloaded run", pre.err);
    cr_assert(file_size(plain.out) > 0, "%s printed nothing", argv[0]);
    cr_assert(files_equal(plain.out, pre.out),
              "%s: output differs under the preload:\n--- plain\n%.600s\n--- preloaded\n%.600s",
              argv[0], tu_slurp(plain.out), tu_slurp(pre.out));
    unsigned long long made = blocks_made(pre.err);
    cr_assert(made >= min_blocks, "%s made %llu segment blocks (want >= %llu); stderr:\n%.1500s",
              argv[0], made, min_blocks, tu_slurp(pre.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind in %s", segdir);
}

static const char *need(const char *name)
{
    const char *p = find_program(name);
    if (!p)
        TU_SKIP(teardown, "%s is not installed", name);
    return p;
}

TestSuite(preload, .init = setup, .fini = teardown, .timeout = 240);

/* ---- every symbol ------------------------------------------------------------------------ */

Test(preload, symbols_helper_is_right_without_preload)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its allocator reports the helper's deliberate overflowing "
                 "requests as errors instead of returning NULL");
#endif
    const char *argv[] = {MMVEC_HELPER_DIR "/symbols", NULL};
    struct kid k = {argv, false, NULL, NULL, path_in("out"), path_in("err")};
    expect_success(kid_run(&k), "symbols (glibc only)", k.err);
    cr_assert(strstr(tu_slurp(k.out), "checks passed"));
}

Test(preload, every_c_symbol_under_preload)
{
    skip_unless_preloadable();
    const char *argv[] = {MMVEC_HELPER_DIR "/symbols", "--preloaded", NULL};
    struct kid k = {argv, true, NULL, NULL, path_in("out"), path_in("err")};
    expect_success(kid_run(&k), "symbols --preloaded", k.err);
    cr_assert(strstr(tu_slurp(k.out), "checks passed (preloaded)"), "%s", tu_slurp(k.out));
    cr_assert(blocks_made(k.err) > 64, "stats: %s", tu_slurp(k.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

Test(preload, every_c_symbol_when_linked)
{
    skip_unless_preloadable();
    /* Not preloaded: the helper is linked with -lmmvec_preload. */
    char *dir = NULL;
    cr_assert(asprintf(&dir, "MMVEC_DIR=%s", segdir) > 0);
    const char *extra[] = {dir, "MMVEC_THRESHOLD=64K", NULL};
    const char *argv[] = {MMVEC_HELPER_DIR "/linked_symbols", "--preloaded", NULL};
    struct kid k = {argv, false, extra, NULL, path_in("out"), path_in("err")};
    expect_success(kid_run(&k), "linked_symbols --preloaded", k.err);
    cr_assert(strstr(tu_slurp(k.out), "checks passed (preloaded)"), "%s", tu_slurp(k.out));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

Test(preload, malloc_before_any_constructor)
{
    skip_unless_preloadable();
    const char *argv[] = {MMVEC_HELPER_DIR "/preinit", NULL};
    struct kid k = {argv, true, NULL, NULL, path_in("out"), path_in("err")};
    expect_success(kid_run(&k), "preinit", k.err);
    cr_assert(strstr(tu_slurp(k.out), "preinit ok"), "%s", tu_slurp(k.out));
    cr_assert_geq(blocks_made(k.err), 1, "the early block was not a segment: %s", tu_slurp(k.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

Test(preload, cxx_program_same_output)
{
    skip_unless_preloadable();
    const char *plain_argv[] = {MMVEC_HELPER_DIR "/cxxprog", NULL};
    const char *pre_argv[] = {MMVEC_HELPER_DIR "/cxxprog", "--preloaded", NULL};
    struct kid plain = {plain_argv, false, NULL, NULL, path_in("p.out"), path_in("p.err")};
    struct kid pre = {pre_argv, true, NULL, NULL, path_in("q.out"), path_in("q.err")};
    expect_success(kid_run(&plain), "cxxprog", plain.err);
    expect_success(kid_run(&pre), "cxxprog --preloaded", pre.err);
    cr_assert(file_size(plain.out) > 0);
    cr_assert(files_equal(plain.out, pre.out), "--- plain\n%.800s\n--- preloaded\n%.800s",
              tu_slurp(plain.out), tu_slurp(pre.out));
    cr_assert(blocks_made(pre.err) > 10, "stats: %s", tu_slurp(pre.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

/* ---- unmodified programs ----------------------------------------------------------------- */

static const char python_script[] =
    "import hashlib\n"
    "h = hashlib.sha256()\n"
    "a = []\n"
    "for i in range(2000000):\n"
    "    a.append(i * 7 % 1000003)\n"
    "h.update(str(sum(a)).encode())\n"
    "b = bytearray()\n"
    "for i in range(200):\n"
    "    b += bytes([i % 256]) * 100000\n"
    "h.update(b)\n"
    "del b[::2]\n"
    "h.update(b)\n"
    "blobs = [bytes([j % 251]) * (j * 1000 + 70000) for j in range(100)]\n"
    "h.update(b''.join(blobs))\n"
    "d = {i: str(i) for i in range(300000)}\n"
    "keys = sorted(d, key=lambda k: d[k])\n"
    "h.update(','.join(map(str, keys[:1000])).encode())\n"
    "print(len(a), len(b), len(d), keys[:5], h.hexdigest())\n";

Test(preload, python3_same_output)
{
    skip_unless_preloadable();
    const char *py = find_program("/usr/bin/python3");
    if (!py)
        py = need("python3");
    write_file(path_in("prog.py"), python_script);
    const char *argv[] = {py, path_in("prog.py"), NULL};
    same_output(argv, NULL, 10);
}

static const char perl_script[] =
    "use strict; use warnings; use Digest::MD5 qw(md5_hex);\n"
    "my @a = map { $_ * 3 % 1000003 } 0 .. 1_000_000;\n"
    "my $s = join(',', @a);\n"
    "my %h; $h{$_} = $_ x 3 for 0 .. 200_000;\n"
    "my $big = 'abc' x 3_000_000;\n"
    "$big =~ s/b/xy/g;\n"
    "my @sorted = sort { $a <=> $b } @a;\n"
    "print scalar(@a), ' ', length($s), ' ', md5_hex($s), ' ', md5_hex($big), ' ',\n"
    "      $sorted[12345], ' ', scalar(keys %h), \"\\n\";\n";

Test(preload, perl_same_output)
{
    skip_unless_preloadable();
    const char *perl = need("perl");
    write_file(path_in("prog.pl"), perl_script);
    const char *argv[] = {perl, path_in("prog.pl"), NULL};
    same_output(argv, NULL, 5);
}

static const char sqlite_script[] =
    "PRAGMA cache_size = -262144;\n" /* a 256 MiB page cache */
    "PRAGMA temp_store = MEMORY;\n"
    "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);\n"
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)\n"
    "  INSERT INTO t SELECT x, (x * 7919) % 100003,\n"
    "    printf('%08d-%s', (x * 104729) % 1000003, substr('abcdefghijklmnopqrstuvwxyz', x % 26 + 1, 8))\n"
    "  FROM c;\n"
    "CREATE INDEX t_k ON t(k);\n"
    "SELECT count(*), sum(k), max(v) FROM t;\n"
    "SELECT k, count(*) FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 5;\n"
    "SELECT v FROM t ORDER BY v DESC LIMIT 3;\n"
    "SELECT length(group_concat(v)) FROM t;\n"
    "SELECT sum(length(v)) FROM (SELECT v FROM t ORDER BY substr(v, 10), id);\n";

Test(preload, sqlite3_same_output)
{
    skip_unless_preloadable();
    const char *sqlite = need("sqlite3");
    write_file(path_in("prog.sql"), sqlite_script);
    const char *argv[] = {sqlite, path_in("db.sqlite"), NULL};
    /* The database file is created by each run: start the second from scratch too. */
    struct kid plain = {argv, false, NULL, path_in("prog.sql"), path_in("p.out"), path_in("p.err")};
    struct kid pre = {argv, true, NULL, path_in("prog.sql"), path_in("q.out"), path_in("q.err")};
    expect_success(kid_run(&plain), "sqlite3", plain.err);
    unlink(path_in("db.sqlite"));
    expect_success(kid_run(&pre), "sqlite3 preloaded", pre.err);
    cr_assert(file_size(plain.out) > 0);
    cr_assert(files_equal(plain.out, pre.out), "--- plain\n%.800s\n--- preloaded\n%.800s",
              tu_slurp(plain.out), tu_slurp(pre.out));
    cr_assert(blocks_made(pre.err) > 0, "stats: %s", tu_slurp(pre.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

/* ~200 MB of lines that sort has to really work on: random keys, numbers, varying lengths. */
static void make_sort_input(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    static const char pad[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned long long s = 88172645463325252ull;
    for (size_t done = 0; done < bytes;) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int n = fprintf(f, "%016llx %llu %.*s\n", s, s % 1000000007ull, (int)(s % 40), pad);
        done += (size_t)n;
    }
    cr_assert_eq(fclose(f), 0);
}

Test(preload, sort_200mb_same_output)
{
    skip_unless_preloadable();
    const char *sort = need("sort");
    make_sort_input(path_in("in.txt"), (size_t)200 << 20);
    char tmpdir_env[400];
    snprintf(tmpdir_env, sizeof tmpdir_env, "TMPDIR=%s", tdir);
    const char *extra[] = {tmpdir_env, NULL};
    const char *argv[] = {sort, "-S", "512M", "--parallel=2", path_in("in.txt"), NULL};
    struct kid plain = {argv, false, extra, NULL, path_in("p.out"), path_in("p.err")};
    struct kid pre = {argv, true, extra, NULL, path_in("q.out"), path_in("q.err")};
    expect_success(kid_run(&plain), "sort", plain.err);
    expect_success(kid_run(&pre), "sort preloaded", pre.err);
    cr_assert_eq(file_size(plain.out), file_size(path_in("in.txt")));
    cr_assert(files_equal(plain.out, pre.out), "sorted outputs differ under the preload");
    cr_assert(blocks_made(pre.err) > 0, "stats: %s", tu_slurp(pre.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

/* Text that compresses like real data: words from a small vocabulary in a shifting order. */
static void make_xz_input(const char *path, size_t bytes)
{
    static const char *const words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta",
                                        "eta",   "theta", "iota", "kappa", "lambda", "mu"};
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    unsigned long long s = 1234567;
    for (size_t done = 0; done < bytes;) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int n = fprintf(f, "%s %llu%c", words[(s >> 33) % 12], (s >> 40) % 1000,
                        (s >> 20) % 9 ? ' ' : '\n');
        done += (size_t)n;
    }
    cr_assert_eq(fclose(f), 0);
}

Test(preload, xz_round_trip_same_bytes)
{
    skip_unless_preloadable();
    const char *xz = need("xz");
    make_xz_input(path_in("data"), (size_t)3 << 20);
    const char *comp[] = {xz, "-9", "-T1", "-c", path_in("data"), NULL};
    struct kid plain = {comp, false, NULL, NULL, path_in("p.xz"), path_in("p.err")};
    struct kid pre = {comp, true, NULL, NULL, path_in("q.xz"), path_in("q.err")};
    expect_success(kid_run(&plain), "xz -9", plain.err);
    expect_success(kid_run(&pre), "xz -9 preloaded", pre.err);
    cr_assert(file_size(plain.out) > 0);
    cr_assert(files_equal(plain.out, pre.out), "xz -9 output differs under the preload");
    unsigned long long made = blocks_made(pre.err);
    const char *decomp[] = {xz, "-d", "-c", path_in("q.xz"), NULL};
    struct kid back = {decomp, true, NULL, NULL, path_in("back"), path_in("d.err")};
    expect_success(kid_run(&back), "xz -d preloaded", back.err);
    cr_assert(files_equal(path_in("data"), path_in("back")), "xz -d did not give the input back");
    cr_assert(made > 0 && blocks_made(back.err) > 0, "stats:\n%s", tu_slurp(pre.err));
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

/* MMVEC_STATS=1 promises a table at exit; programs that close stderr themselves before exit
 * (gnulib's close_stdout in coreutils, xz) must not make it vanish. */
Test(preload, stats_table_survives_a_closed_stderr)
{
    skip_unless_preloadable();
    const char *sort = need("sort");
    make_sort_input(path_in("in.txt"), (size_t)1 << 20);
    const char *argv[] = {sort, "-S", "64M", path_in("in.txt"), NULL};
    struct kid pre = {argv, true, NULL, NULL, "/dev/null", path_in("q.err")};
    expect_success(kid_run(&pre), "sort preloaded", pre.err);
    char *text = read_all(pre.err);
    cr_assert_not_null(text);
    bool table = strstr(text, "mmvec stats") != NULL;
    free(text);
    cr_assert(table, "no MMVEC_STATS table: sort closed fd 2 before the table was written");
}
