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

#include "util.h"

#define STRESS MMVEC_HELPER_DIR "/stress"
#define CHILD_TIMEOUT 280 /* the runs stop themselves after --seconds; this is the backstop */

extern char **environ;

static char tdir[256];   /* this test's temp directory */
static char segdir[300]; /* MMVEC_DIR of the runs */

/* ---- temp directory ----------------------------------------------------------------------- */

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-stress-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tdir);
}

static void teardown(void)
{
    tu_rm_rf(tdir);
}

/* <tdir>/<name> */
static const char *in_tdir(const char *name) { return tu_path_in(tdir, name); }

/* ---- running the stress program ------------------------------------------------------------ */

/* Our environment minus LD_PRELOAD and MMVEC_* (the caller's settings must not change the
 * test), plus the run's own. Built before fork: the child only execs. */
static char **child_env(bool preload, char *own[2])
{
    size_t n;
    char **env = tu_child_env(16, &n, NULL);
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
        tu_redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(err, 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT); /* survives exec: a hung run dies instead of the suite */
        execve(STRESS, (char *const *)argv, env);
        _exit(127);
    }
    int status = tu_wait(pid);
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
    char *out = tu_slurp(in_tdir("out")), *err = tu_slurp(in_tdir("err"));
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
    cr_assert_eq(tu_count_files(segdir), 0, "files left behind under %s", segdir);
}

TestSuite(stress, .init = setup, .fini = teardown, .timeout = 300);

Test(stress, preloaded_short_run)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
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
    char *out = tu_slurp(in_tdir("out")), *err = tu_slurp(in_tdir("err"));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "want exit 1, got status %d: %s",
              status, out);
    const char *line = strstr(out, "mmvec-stress:");
    cr_assert_not_null(line, "no summary; stdout: %s", out);
    cr_assert_geq(field(line, "corruptions"), 1, "%s", line);
    cr_assert_not_null(strstr(err, "pattern mismatch"), "the flipped byte went unseen: %s", err);
    cr_assert_eq(tu_count_files(segdir), 0, "files left behind under %s", segdir);
}
