/* The mmvec command: run (environment, exec, exit codes), clean (dead processes' files only),
 * --help/--version, and one-line errors. */
#define _GNU_SOURCE
#include "mmvec/common.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define CHILD_TIMEOUT 60

extern char **environ;

static void teardown(void);

static char tdir[256];
static pid_t holders[4]; /* long-running children, killed by teardown if a test failed */

/* ---- temp dirs and files ------------------------------------------------------------------ */

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-cli-XXXXXX");
}

static void teardown(void)
{
    for (int i = 0; i < 4; i++) {
        if (holders[i] > 0) {
            kill(holders[i], SIGKILL);
            waitpid(holders[i], NULL, 0);
            holders[i] = 0;
        }
    }
    tu_rm_rf(tdir);
    tdir[0] = '\0';
}

static char *path_in(const char *name) { return tu_path_in(tdir, name); }

/* ---- running mmvec ----------------------------------------------------------------------- */

struct out {
    int status;
    char *out, *err;
};

/* Environment: ours without MMVEC_* and LD_PRELOAD, plus `extra` ("NAME=value" entries). */
static char **child_env(const char *const *extra)
{
    size_t n;
    char **env = tu_child_env(16, &n, NULL);
    for (const char *const *x = extra; x && *x; x++)
        env[n++] = (char *)*x;
    return env;
}

/* Starts argv in tdir with stdout to `out` (a file, or a pipe when out_fd is given). */
static pid_t start(const char *const *argv, const char *const *extra, const char *out,
                   const char *err, int *out_fd)
{
    char **env = child_env(extra);
    int p[2] = {-1, -1};
    cr_assert(!out_fd || pipe2(p, O_CLOEXEC) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (chdir(tdir) < 0)
            _exit(126);
        tu_redirect("/dev/null", 0, O_RDONLY);
        if (out_fd)
            dup2(p[1], 1);
        else
            tu_redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(err, 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT); /* survives exec: a hung program dies instead of the suite */
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    if (out_fd) {
        close(p[1]);
        *out_fd = p[0];
    }
    return pid;
}

static struct out run(const char *const *argv, const char *const *extra)
{
    struct out r;
    r.status = tu_wait(start(argv, extra, path_in("out"), path_in("err"), NULL));
    r.out = tu_slurp(path_in("out"));
    r.err = tu_slurp(path_in("err"));
    return r;
}

static int exit_code(const struct out *r)
{
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}

/* A failure: non-zero exit and exactly one line on stderr, starting with "mmvec: ". */
static void expect_one_line_error(const char *const *argv, int code)
{
    struct out r = run(argv, NULL);
    cr_assert_neq(exit_code(&r), 0, "%s %s succeeded", argv[1], argv[2] ? argv[2] : "");
    if (code)
        cr_assert_eq(exit_code(&r), code, "exit %d, stderr: %s", exit_code(&r), r.err);
    size_t len = strlen(r.err);
    cr_assert(len > 0 && r.err[len - 1] == '\n' && strchr(r.err, '\n') == r.err + len - 1,
              "not one line: [%s]", r.err);
    cr_assert(!strncmp(r.err, "mmvec: ", 7), "no prefix: [%s]", r.err);
}

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                 "preloaded into an uninstrumented child");
#endif
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

/* ---- help, version, errors --------------------------------------------------------------- */

Test(cli, help_and_version)
{
    const char *help[] = {MMVEC_CLI, "--help", NULL};
    struct out r = run(help, NULL);
    cr_assert_eq(exit_code(&r), 0);
    cr_assert(strstr(r.out, "mmvec run") && strstr(r.out, "mmvec clean"), "%s", r.out);
    cr_assert(strstr(r.out, "--threshold") && strstr(r.out, "--stats"), "%s", r.out);
    const char *version[] = {MMVEC_CLI, "--version", NULL};
    r = run(version, NULL);
    cr_assert_eq(exit_code(&r), 0);
    cr_assert_str_eq(r.out, "mmvec " MMV_VERSION_STRING "\n");
}

/* mmvec config: every variable once, with the value in force (the environment's, else the
 * default), and a bad value shown as the default it falls back to. */
Test(cli, config_prints_the_effective_configuration)
{
    const char *argv[] = {MMVEC_CLI, "config", NULL};
    const char *env[] = {"MMVEC_THRESHOLD=64K:1G", "MMVEC_FORK=copy", "MMVEC_CACHE=garbage",
                         "MMVEC_LOG=0", NULL};
    struct out r = run(argv, env);
    cr_assert_eq(exit_code(&r), 0, "%s", r.err);
    static const char *const want[] = {"MMVEC_THRESHOLD=64K:1G ", "MMVEC_FORK=copy ",
                                       "MMVEC_CACHE=256M ", "MMVEC_LOG=0 ", "MMVEC_STRICT=0 ",
                                       "MMVEC_RESERVE=4T ", "MMVEC_DIR=", "MMVEC_JEMALLOC_CONF="};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *at = strstr(r.out, want[i]);
        cr_assert(at && (at == r.out || at[-1] == '\n'), "no line %s in:\n%s", want[i], r.out);
        cr_assert_null(strstr(at + 1, want[i]), "%s twice", want[i]);
    }
    for (const char *line = r.out; *line; line = strchr(line, '\n') + 1)
        cr_assert(!strncmp(line, "MMVEC_", 6) && strstr(line, "# "), "line without doc: %s", line);
}

/* MMVEC_SHOW_CONFIG=1: the same table on stderr when a preloaded program starts. */
Test(cli, show_config_prints_at_start)
{
    skip_unless_preloadable();
    const char *argv[] = {"/bin/true", NULL};
    const char *env[] = {"LD_PRELOAD=" MMVEC_PRELOAD_LIB, "MMVEC_SHOW_CONFIG=1",
                         "MMVEC_THRESHOLD=2M", NULL};
    struct out r = run(argv, env);
    cr_assert_eq(exit_code(&r), 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "MMVEC_THRESHOLD=2M "), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "MMVEC_SHOW_CONFIG=1 "), "%s", r.err);
}

Test(cli, errors_are_one_line)
{
    const char *none[] = {MMVEC_CLI, NULL};
    const char *unknown[] = {MMVEC_CLI, "frobnicate", NULL};
    const char *noprog[] = {MMVEC_CLI, "run", NULL};
    const char *noprog2[] = {MMVEC_CLI, "run", "-t", "1M", "--", NULL};
    const char *badopt[] = {MMVEC_CLI, "run", "-x", "/bin/true", NULL};
    const char *noval[] = {MMVEC_CLI, "run", "-t", NULL};
    const char *clean2[] = {MMVEC_CLI, "clean", "a", "b", NULL};
    expect_one_line_error(none, 2);
    expect_one_line_error(unknown, 2);
    expect_one_line_error(noprog, 2);
    expect_one_line_error(noprog2, 2);
    expect_one_line_error(badopt, 2);
    expect_one_line_error(noval, 2);
    expect_one_line_error(clean2, 2);
}

Test(cli, bad_thresholds_refused)
{
    static const char *const bad[] = {"", "abc", "12Q", "1MX", "-5", "0", "5:", ":5", "2G:1M",
                                      "0:1M", "99999999999999999999", "1M:2M:3M", "16777216T"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {MMVEC_CLI, "run", "-t", bad[i], "--", "/bin/true", NULL};
        expect_one_line_error(argv, 2);
    }
}

/* The same syntax the library reads: anything it would accept is passed on. */
Test(cli, good_thresholds_accepted)
{
    skip_unless_preloadable();
    static const char *const good[] = {"4096", "64K", "64k", "1M", "2GiB", "1tb", "100B",
                                       "64K:1G", "1M:1M"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *argv[] = {MMVEC_CLI, "run", "-t", good[i], "/bin/sh", "-c",
                              "printf %s \"$MMVEC_THRESHOLD\"", NULL};
        struct out r = run(argv, NULL);
        cr_assert_eq(exit_code(&r), 0, "-t %s: %s", good[i], r.err);
        cr_assert_str_eq(r.out, good[i]);
        cr_assert(!strstr(r.err, "warning"), "the library refused %s: %s", good[i], r.err);
    }
}

Test(cli, missing_program_is_127)
{
    const char *argv[] = {MMVEC_CLI, "run", "--", "/nonexistent/program", NULL};
    expect_one_line_error(argv, 127);
    int fd = open(path_in("data.txt"), O_WRONLY | O_CREAT, 0644);
    cr_assert(fd >= 0);
    close(fd);
    const char *notexec[] = {MMVEC_CLI, "run", path_in("data.txt"), NULL};
    expect_one_line_error(notexec, 126);
}

Test(cli, clean_missing_dir_is_an_error)
{
    const char *argv[] = {MMVEC_CLI, "clean", "/nonexistent/mmvec-dir", NULL};
    expect_one_line_error(argv, 1);
    int fd = open(path_in("data.txt"), O_WRONLY | O_CREAT, 0644);
    cr_assert(fd >= 0);
    close(fd);
    const char *file[] = {MMVEC_CLI, "clean", path_in("data.txt"), NULL};
    expect_one_line_error(file, 1);
}

/* ---- run --------------------------------------------------------------------------------- */

/* The value of NAME in an env(1) listing, or NULL. */
static const char *env_value(const char *listing, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    for (const char *p = listing; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, name, n) && p[n] == '=') {
            const char *end = strchr(p, '\n');
            size_t len = end ? (size_t)(end - p - n - 1) : strlen(p + n + 1);
            snprintf(buf, size, "%.*s", (int)len, p + n + 1);
            return buf;
        }
    }
    return NULL;
}

Test(cli, run_sets_the_environment)
{
    skip_unless_preloadable();
    const char *argv[] = {MMVEC_CLI, "run", "-t", "2M", "-d", "segs", "--stats", "--",
                          "/usr/bin/env", NULL};
    const char *extra[] = {"LD_PRELOAD=/nonexistent/libother.so", NULL};
    struct out r = run(argv, extra);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    char v[PATH_MAX + 64], want[PATH_MAX], got[PATH_MAX];
    cr_assert_not_null(env_value(r.out, "LD_PRELOAD", v, sizeof v), "%s", r.out);
    char *colon = strchr(v, ':');
    cr_assert(colon && !strcmp(colon + 1, "/nonexistent/libother.so"), "LD_PRELOAD=%s", v);
    *colon = '\0';
    cr_assert(realpath(v, got) && realpath(MMVEC_PRELOAD_LIB, want) && !strcmp(got, want),
              "preloads %s, not %s", v, MMVEC_PRELOAD_LIB);
    cr_assert_str_eq(env_value(r.out, "MMVEC_THRESHOLD", v, sizeof v), "2M");
    cr_assert_str_eq(env_value(r.out, "MMVEC_STATS", v, sizeof v), "1");
    cr_assert_str_eq(env_value(r.out, "MMVEC_DIR", v, sizeof v), path_in("segs"),
                     "a relative -d is made absolute");
}

Test(cli, run_does_not_preload_twice_and_passes_options_on)
{
    skip_unless_preloadable();
    char pre[PATH_MAX + 16];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB);
    const char *extra[] = {pre, NULL};
    /* The program's own options (-t here) are its own, not mmvec's. */
    const char *argv[] = {MMVEC_CLI, "run", "--threshold=1M:1G", "/bin/sh", "-c",
                          "echo \"$LD_PRELOAD|$MMVEC_THRESHOLD|$0\"", "-t", NULL};
    struct out r = run(argv, extra);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s|1M:1G|-t\n", MMVEC_PRELOAD_LIB);
    cr_assert_str_eq(r.out, want);
}

Test(cli, run_passes_the_exit_status)
{
    skip_unless_preloadable();
    const char *argv[] = {MMVEC_CLI, "run", "--", "/bin/sh", "-c", "exit 7", NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(exit_code(&r), 7);
    const char *sig[] = {MMVEC_CLI, "run", "/bin/sh", "-c", "kill -TERM $$", NULL};
    r = run(sig, NULL);
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGTERM,
              "exec, not a wrapper: the signal reaches our waitpid");
}

Test(cli, run_puts_blocks_in_files_and_prints_stats)
{
    skip_unless_preloadable();
    char dir[400];
    snprintf(dir, sizeof dir, "%s", path_in("seg")); /* path_in's buffers are reused */
    const char *argv[] = {MMVEC_CLI, "run", "-t", "1M", "-d", dir, "--stats", "--",
                          MMVEC_HELPER_DIR "/bigblocks", "4", "4M", NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "blocks=4 owned=4 files=4\n", "stderr: %s", r.err);
    cr_assert(strstr(r.err, "mmvec stats"), "no stats table: %s", r.err);
    cr_assert_eq(tu_count_segs(tdir), 0, "segment files left behind");
}

/* ---- clean ------------------------------------------------------------------------------- */

static void parse_clean(const char *out, unsigned long long *files, unsigned long long *bytes)
{
    const char *p = strstr(out, "removed ");
    cr_assert(p && sscanf(p, "removed %llu file", files) == 1, "clean said: %s", out);
    p = strchr(p, '(');
    cr_assert(p && sscanf(p, "(%llu bytes)", bytes) == 1, "clean said: %s", out);
}

Test(cli, clean_empty_dir_and_default_dir)
{
    char empty[400];
    snprintf(empty, sizeof empty, "%s", path_in("empty")); /* path_in's buffers are reused */
    cr_assert_eq(mkdir(empty, 0700), 0);
    const char *argv[] = {MMVEC_CLI, "clean", empty, NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    unsigned long long files = 1, bytes = 1;
    parse_clean(r.out, &files, &bytes);
    cr_assert(files == 0 && bytes == 0, "%s", r.out);
    /* Without DIR: the default directory, which MMVEC_DIR names. */
    char dirvar[420];
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", empty);
    const char *extra[] = {dirvar, NULL};
    const char *noarg[] = {MMVEC_CLI, "clean", NULL};
    r = run(noarg, extra);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, empty), "does not name the directory: %s", r.out);
}

/* A child under the preload holding 4 blocks of 4 MiB in dir, once it said "ready". */
static pid_t start_holder(const char *dir, int slot)
{
    const char *argv[] = {MMVEC_CLI, "run", "-t", "1M", "-d", dir, "--",
                          MMVEC_HELPER_DIR "/bigblocks", "4", "4M", "hold", NULL};
    int fd = -1;
    pid_t pid = start(argv, NULL, NULL, path_in(slot ? "err1" : "err0"), &fd);
    holders[slot] = pid;
    FILE *f = fdopen(fd, "r");
    char line[128] = "", first[128] = "";
    while (f && fgets(line, sizeof line, f) && strcmp(line, "ready\n"))
        snprintf(first, sizeof first, "%s", line);
    if (f)
        fclose(f);
    cr_assert_str_eq(line, "ready\n", "holder did not get ready: %s / %s", first,
                     tu_slurp(path_in(slot ? "err1" : "err0")));
    cr_assert_str_eq(first, "blocks=4 owned=4 files=4\n");
    return pid;
}

Test(cli, clean_removes_dead_files_only)
{
    skip_unless_preloadable();
    char dir[400];
    snprintf(dir, sizeof dir, "%s", path_in("seg"));
    pid_t alive = start_holder(dir, 0);
    pid_t dead = start_holder(dir, 1);
    cr_assert_eq(tu_count_segs(dir), 8);
    kill(dead, SIGKILL);
    tu_wait(dead);
    holders[1] = 0;
    cr_assert_eq(tu_count_segs(dir), 8, "kill -9 leaves the files (nobody to delete them)");
    const char *argv[] = {MMVEC_CLI, "clean", dir, NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    unsigned long long files = 0, bytes = 0;
    parse_clean(r.out, &files, &bytes);
    /* 4 segment files (a lock file may be counted too) */
    cr_assert(files >= 4 && files <= 5, "%s", r.out);
    cr_assert(bytes >= 4ull * (4 << 20), "%s", r.out);
    cr_assert_eq(tu_count_segs(dir), 4, "the live process's files must stay");
    cr_assert_eq(kill(alive, 0), 0, "the live holder must be untouched");
    kill(alive, SIGTERM);
    int status = tu_wait(alive);
    holders[0] = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder: %s", tu_slurp(path_in("err0")));
    cr_assert_eq(tu_count_segs(dir), 0, "a normal exit deletes its files");
    r = run(argv, NULL);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    parse_clean(r.out, &files, &bytes);
    cr_assert_eq(bytes, 0, "nothing left to clean: %s", r.out);
}

/* ---- help VARIABLE ------------------------------------------------------------------------- */

Test(cli, help_variable_prints_its_value_and_meaning)
{
    const char *argv[] = {MMVEC_CLI, "help", "threshold", NULL};
    const char *extra[] = {"MMVEC_THRESHOLD=4M", NULL};
    struct out r = run(argv, extra);
    cr_assert_eq(exit_code(&r), 0, "stderr: %s", r.err);
    cr_assert(!strncmp(r.out, "MMVEC_THRESHOLD=4M\n  requests of at least", 40), "got: %s",
              r.out);
    const char *full[] = {MMVEC_CLI, "help", "MMVEC_DISK_RESERVE", NULL};
    r = run(full, NULL);
    cr_assert_eq(exit_code(&r), 0);
    cr_assert(strstr(r.out, "MMVEC_DISK_RESERVE=5%\n"), "got: %s", r.out);
    const char *bad[] = {MMVEC_CLI, "help", "nosuchthing", NULL};
    expect_one_line_error(bad, 2);
}
