/* The stress program (tests/helpers/stress.c) in short bounded runs: 8 threads, sizes from 1 byte
 * to 64 MiB around a 64K threshold, every block's pattern checked. Each run must report zero
 * corruption and zero failed allocation, must have used both the jemalloc path and segment
 * blocks, and must leave no file at all in its segment directory.
 *
 * The preloaded run (standard malloc names through libmmvec_preload) is skipped in sanitizer
 * builds, whose runtime must come first; the --api run (mmv_malloc & co called directly) runs
 * everywhere, so ASan/UBSan and TSan see the allocator under threads too. One more run flips a
 * byte on purpose and must fail: the checker can see corruption.
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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

#define STRESS MMVEC_HELPER_DIR "/stress"
#define CHILD_TIMEOUT 280 /* the runs stop themselves after --seconds; this is the backstop */

extern char **environ;

static char tdir[256];   /* this test's temp directory */
static char segdir[300]; /* MMVEC_DIR of the runs */

/* ---- temp directory ----------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int nfiles;

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)st;
    (void)ftw;
    if (flag != FTW_D && flag != FTW_DP)
        nfiles++;
    return 0;
}

/* Entries other than directories under dir: segment files, locks, anything. */
static int count_files(const char *dir)
{
    nfiles = 0;
    nftw(dir, count_entry, 16, FTW_PHYS);
    return nfiles;
}

static void setup(void)
{
    strcpy(tdir, "/tmp/mmvec-stress-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir), "mkdtemp: %s", strerror(errno));
    snprintf(segdir, sizeof segdir, "%s/seg", tdir);
}

static void teardown(void)
{
    if (tdir[0])
        nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *in_tdir(const char *name)
{
    static char bufs[4][400];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tdir, name);
    return b;
}

/* The start of a file, NUL-terminated ("" when missing); two rotating buffers. */
static char *slurp(const char *path)
{
    static char bufs[2][1 << 16];
    static int next;
    char *buf = bufs[next++ % 2];
    buf[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return buf;
    ssize_t n = read(fd, buf, sizeof bufs[0] - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

/* ---- running the stress program ------------------------------------------------------------ */

/* Our environment minus LD_PRELOAD and MMVEC_* (the caller's settings must not change the
 * test), plus the run's own. Built before fork: the child only execs. */
static char **child_env(bool preload, char *own[2])
{
    size_t n = 0, cap = 16;
    for (char **e = environ; *e; e++)
        cap++;
    char **env = calloc(cap, sizeof *env);
    cr_assert_not_null(env);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) && strncmp(*e, "MMVEC_", 6))
            env[n++] = *e;
    cr_assert(asprintf(&own[0], "MMVEC_DIR=%s", segdir) > 0);
    env[n++] = own[0];
    env[n++] = "MMVEC_THRESHOLD=64K";
    if (preload) {
        cr_assert(asprintf(&own[1], "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB) > 0);
        env[n++] = own[1];
    }
    env[n] = NULL;
    return env;
}

static void redirect(const char *path, int fd)
{
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (f < 0 || dup2(f, fd) < 0)
        _exit(126);
    close(f);
}

/* Runs the stress program with argv (argv[0] is set here); returns its wait status. Its
 * stdout and stderr go to <tdir>/out and <tdir>/err. */
static int run_stress(bool preload, const char **argv)
{
    char *own[2] = {0};
    char **env = child_env(preload, own);
    const char *out = in_tdir("out"), *err = in_tdir("err");
    argv[0] = STRESS;
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        redirect(out, 1);
        redirect(err, 2);
        alarm(CHILD_TIMEOUT); /* survives exec: a hung run dies instead of the suite */
        execve(STRESS, (char *const *)argv, env);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    free(env);
    free(own[0]);
    free(own[1]);
    return status;
}

/* The value of key=... in the summary line; cr_assert when it is missing. */
static unsigned long long field(const char *summary, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(summary, pat);
    cr_assert_not_null(p, "no %s in the summary: %s", key, summary);
    return strtoull(p + strlen(pat), NULL, 10);
}

/* A run that must succeed: exit 0, no corruption, no failed allocation, both paths used, and
 * not one file left under the segment directory. */
static void expect_clean_run(bool preload, const char **argv)
{
    int status = run_stress(preload, argv);
    char *out = slurp(in_tdir("out")), *err = slurp(in_tdir("err"));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "stress %s %d\nstdout: %s\nstderr: %.3000s", WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out, err);
    const char *line = strstr(out, "mmvec-stress:");
    cr_assert_not_null(line, "no summary; stdout: %s", out);
    cr_assert_eq(field(line, "corruptions"), 0, "%s", line);
    cr_assert_eq(field(line, "failures"), 0, "%s", line);
    cr_assert_gt(field(line, "ops"), 0, "%s", line);
    cr_assert_gt(field(line, "segment_blocks"), 0, "no segment block was made: %s", line);
    cr_assert_gt(field(line, "heap_blocks"), 0, "no jemalloc block was made: %s", line);
    cr_assert_eq(field(line, "threads"), 8, "%s", line);
    cr_assert_eq(count_files(segdir), 0, "files left behind under %s", segdir);
}

TestSuite(stress, .init = setup, .fini = teardown, .timeout = 300);

Test(stress, preloaded_short_run)
{
#ifdef SANITIZED
    teardown(); /* a skipped test's .fini does not run: remove the temp dir now */
    cr_skip_test("sanitizer build: its runtime must come first, so the interposer cannot be "
                 "preloaded into the child (the --api run covers this build)");
#endif
    const char *argv[] = {NULL, "--threads", "8", "--ops", "20000", "--seconds", "120",
                          "--max-live", "512M", "--seed", "7", NULL};
    expect_clean_run(true, argv);
}

Test(stress, explicit_api_short_run)
{
    const char *argv[] = {NULL, "--api", "--threads", "8", "--ops", "20000", "--seconds", "120",
                          "--max-live", "512M", "--seed", "11", NULL};
    expect_clean_run(false, argv);
}

/* The checker itself: a flipped byte must be reported and fail the run. */
Test(stress, injected_corruption_is_caught)
{
    const char *argv[] = {NULL, "--api", "--threads", "2", "--ops", "2000", "--seconds", "60",
                          "--max-size", "1M", "--inject-corruption", NULL};
    int status = run_stress(false, argv);
    char *out = slurp(in_tdir("out")), *err = slurp(in_tdir("err"));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "want exit 1, got status %d: %s",
              status, out);
    const char *line = strstr(out, "mmvec-stress:");
    cr_assert_not_null(line, "no summary; stdout: %s", out);
    cr_assert_geq(field(line, "corruptions"), 1, "%s", line);
    cr_assert_not_null(strstr(err, "pattern mismatch"), "the flipped byte went unseen: %s", err);
    cr_assert_eq(count_files(segdir), 0, "files left behind under %s", segdir);
}
