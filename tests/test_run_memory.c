/* `mmvec run --memory SIZE` (tools/memrun.c, issue 10): a program under a memory limit of its
 * own, in a real cgroup v1 group where this machine has one (root), and on fixture trees for
 * cgroup v2 and the systemd-run fallback (this machine cannot mount v2). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define HELPER MMVEC_HELPER_DIR "/placement"
#define CHILD_TIMEOUT 90

static void teardown(void);

static char tdir[256];

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/var/tmp/mmvec-runmem-XXXXXX");
}

static void teardown(void)
{
    tu_rm_rf(tdir);
    tdir[0] = '\0';
}

TestSuite(run_memory, .init = setup, .fini = teardown, .timeout = 150);

struct out {
    int status;
    char out[1 << 14];
    char err[1 << 14];
};

static struct out last;
static pid_t last_pid; /* the last run's: `mmvec run` names its group mmvec-run-<its pid> */

/* Runs argv with our environment (no MMVEC_*, no LD_PRELOAD) plus `extra`; output kept. */
static struct out *run(const char *const *argv, const char *const *extra)
{
    size_t n;
    char **env = tu_child_env(16, &n, NULL);
    for (const char *const *x = extra; x && *x; x++) { /* replaces a variable of ours */
        size_t name = strcspn(*x, "=") + 1, i = 0;
        while (i < n && strncmp(env[i], *x, name))
            i++;
        env[i] = (char *)*x;
        n += i == n;
    }
    env[n] = NULL;
    char *outp = tu_path_in(tdir, "out"), *errp = tu_path_in(tdir, "err");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        tu_redirect("/dev/null", 0, O_RDONLY);
        tu_redirect(outp, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(errp, 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    last_pid = pid;
    last.status = tu_wait(pid);
    snprintf(last.out, sizeof last.out, "%s", tu_slurp(outp));
    snprintf(last.err, sizeof last.err, "%s", tu_slurp(errp));
    return &last;
}

static int code(const struct out *r)
{
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                      "preloaded into an uninstrumented child");
#endif
}

/* ---- a real cgroup v1 group ---------------------------------------------------------------- */

static char own_group[512];

static void need_v1(void)
{
    skip_unless_preloadable();
    if (access(TU_MEMCG_ROOT "/memory.limit_in_bytes", F_OK) < 0)
        TU_SKIP(teardown, "no cgroup v1 memory controller at " TU_MEMCG_ROOT " (v2 is covered "
                          "by the fixture cases)");
    tu_own_memcg(own_group, sizeof own_group);
    if (access(own_group, W_OK) < 0)
        TU_SKIP(teardown, "cannot make memory cgroups in %s: %s (needs root)", own_group,
                strerror(errno));
}

/* The last run's group is gone (other tests may run theirs meanwhile: only ours counts). */
static void expect_no_group_left(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/mmvec-run-%ld", own_group, (long)last_pid);
    cr_assert(access(path, F_OK) < 0, "mmvec run left its memory cgroup %s", path);
}

Test(run_memory, v1_the_program_sees_its_limit_and_the_group_goes)
{
    need_v1();
    char dir[400];
    snprintf(dir, sizeof dir, "%s", tu_path_in(tdir, "seg"));
    const char *argv[] = {MMVEC_CLI, "run", "-m", "256M", "-t", "1M", "-d", dir, "--", HELPER,
                          "untouched", "2", "64", NULL};
    struct out *r = run(argv, NULL);
    cr_assert_eq(code(r), 0, "stderr: %s", r->err);
    cr_assert(strstr(r->out, "memory_limit=268435456\n"), "the program saw another limit: %s",
              r->out);
    expect_no_group_left();
}

Test(run_memory, v1_exit_status_and_signals_pass_through)
{
    need_v1();
    const char *exit7[] = {MMVEC_CLI, "run", "-m", "64M", "--", "/bin/sh", "-c", "exit 7", NULL};
    cr_assert_eq(code(run(exit7, NULL)), 7);
    const char *term[] = {MMVEC_CLI, "run", "-m", "64M", "/bin/sh", "-c", "kill -TERM $$", NULL};
    struct out *r = run(term, NULL);
    cr_assert(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGTERM,
              "the program's death by SIGTERM is not ours (status %#x)", r->status);
    const char *missing[] = {MMVEC_CLI, "run", "-m", "64M", "--", "/no/such/program", NULL};
    cr_assert_eq(code(run(missing, NULL)), 127);
    expect_no_group_left();
}

Test(run_memory, v1_an_oom_kill_is_reported)
{
    need_v1();
    if (access("/usr/bin/python3", X_OK) < 0)
        TU_SKIP(teardown, "no /usr/bin/python3 to fill small objects with");
    /* Small objects: jemalloc's, which no file can take: 32 MiB cannot hold them. */
    const char *argv[] = {MMVEC_CLI, "run", "-m", "32M", "--", "/usr/bin/python3", "-c",
                          "x = [str(i) * 10 for i in range(10**7)]", NULL};
    struct out *r = run(argv, NULL);
    cr_assert_eq(code(r), 128 + SIGKILL, "exit %d, stderr: %s", code(r), r->err);
    cr_assert(strstr(r->err, "killed by the kernel's OOM killer at its memory limit of 32 MiB"),
              "no word of the OOM kill: %s", r->err);
    expect_no_group_left();
}

Test(run_memory, bad_limits_are_refused)
{
    const char *cases[] = {"12x", "0", "1000", "-5M", ""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {MMVEC_CLI, "run", "-m", cases[i], "--", "/bin/true", NULL};
        struct out *r = run(argv, NULL);
        cr_assert_eq(code(r), 2, "-m '%s': exit %d", cases[i], code(r));
        cr_assert(strstr(r->err, "bad memory limit"), "-m '%s': %s", cases[i], r->err);
        cr_assert_eq(strchr(r->err, '\n'), r->err + strlen(r->err) - 1, "not one line: %s",
                     r->err);
    }
}

/* ---- fixture trees: cgroup v2, systemd-run ----------------------------------------------- */

static void put(const char *rel, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/root/%s", tdir, rel);
    char dir[700];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    char cmd[800];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static const char *in_root(const char *rel)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/root/%s", tdir, rel);
    return path;
}

/* A v2 machine: the process in /app.slice/x.scope, cgroup2 at /sys/fs/cgroup. */
static void v2_tree(const char *controllers, const char *subtree)
{
    put("proc/self/cgroup", "0::/app.slice/x.scope\n");
    put("proc/self/mountinfo", "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
                               "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 "
                               "cgroup2 rw,nsdelegate\n");
    put("proc/meminfo", "MemTotal:       24576000 kB\nMemAvailable:   20000000 kB\n");
    put("sys/fs/cgroup/app.slice/x.scope/cgroup.controllers", controllers);
    put("sys/fs/cgroup/app.slice/x.scope/cgroup.subtree_control", subtree);
    put("sys/fs/cgroup/app.slice/x.scope/memory.max", "max\n");
}

static char root_env[400];

static const char *const *fixture_env(const char *path)
{
    static char path_env[900];
    static const char *env[4];
    snprintf(root_env, sizeof root_env, "MMVEC_RUN_TEST_ROOT=%s/root", tdir);
    snprintf(path_env, sizeof path_env, "PATH=%s", path);
    env[0] = root_env;
    env[1] = path_env;
    env[2] = NULL;
    return env;
}

/* The one mmvec-run-* folder made in the fixture's scope, or "" */
static void made_group(char *out, size_t size)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls -d %s/root/sys/fs/cgroup/app.slice/x.scope/mmvec-run-* "
                              "2>/dev/null", tdir);
    FILE *p = popen(cmd, "r");
    out[0] = '\0';
    if (p && fgets(out, (int)size, p))
        out[strcspn(out, "\n")] = '\0';
    if (p)
        pclose(p);
}

Test(run_memory, v2_fixture_makes_a_child_group_with_memory_max)
{
    skip_unless_preloadable();
    v2_tree("cpu io memory pids\n", "");
    const char *argv[] = {MMVEC_CLI, "run", "-m", "300M", "--", "/bin/sh", "-c",
                          "echo ran; echo \"root=${MMVEC_RUN_TEST_ROOT-unset}\"", NULL};
    struct out *r = run(argv, fixture_env("/usr/bin:/bin"));
    cr_assert_eq(code(r), 0, "stderr: %s", r->err);
    cr_assert_str_eq(r->out, "ran\nroot=unset\n", "the test hook reached the program?");
    char g[700];
    made_group(g, sizeof g);
    cr_assert(*g, "no group made in the v2 fixture; stderr: %s", r->err);
    char file[800];
    snprintf(file, sizeof file, "%s/memory.max", g);
    cr_assert_str_eq(tu_slurp(file), "314572800");
    snprintf(file, sizeof file, "%s/memory.swap.max", g);
    cr_assert_str_eq(tu_slurp(file), "0");
    snprintf(file, sizeof file, "%s/cgroup.procs", g);
    cr_assert_gt(atol(tu_slurp(file)), 1, "the program did not join the group");
    cr_assert_str_eq(tu_slurp(in_root("sys/fs/cgroup/app.slice/x.scope/cgroup.subtree_control")),
                     "+memory", "the memory controller was not enabled for the children");
}

static void fake_systemd_run(void)
{
    put("run/systemd/system/.keep", "");
    char script[700];
    snprintf(script, sizeof script, "%s/bin/systemd-run", tdir);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/bin", tdir);
    mkdir(dir, 0755);
    FILE *f = fopen(script, "w");
    cr_assert(f);
    fprintf(f, "#!/bin/sh\necho \"$*\" > %s/systemd-run.args\n"
               "while [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n", tdir);
    fclose(f);
    chmod(script, 0755);
}

Test(run_memory, v2_fixture_without_the_controller_uses_systemd_run)
{
    skip_unless_preloadable();
    v2_tree("cpu pids\n", "");
    fake_systemd_run();
    char path[800];
    snprintf(path, sizeof path, "%s/bin:/usr/bin:/bin", tdir);
    const char *argv[] = {MMVEC_CLI, "run", "-m", "300M", "--", "/bin/sh", "-c", "echo ran",
                          NULL};
    struct out *r = run(argv, fixture_env(path));
    cr_assert_eq(code(r), 0, "stderr: %s", r->err);
    cr_assert_str_eq(r->out, "ran\n");
    char args[800];
    snprintf(args, sizeof args, "%s/systemd-run.args", tdir);
    const char *got = tu_slurp(args);
    cr_assert(strstr(got, "--scope") && strstr(got, "-p MemoryMax=314572800") &&
              strstr(got, "-p MemorySwapMax=0") && strstr(got, "-- /bin/sh -c echo ran"),
              "systemd-run got: %s", got);
    cr_assert_eq(strstr(got, "--user") != NULL, geteuid() != 0,
                 "--user is for a user's own manager, not root's: %s", got);
    char g[700];
    made_group(g, sizeof g);
    cr_assert_str_eq(g, "", "a group was made without the memory controller");
}

Test(run_memory, no_way_to_limit_says_why_in_one_line)
{
    v2_tree("cpu pids\n", "");
    const char *argv[] = {MMVEC_CLI, "run", "-m", "300M", "--", "/bin/true", NULL};
    struct out *r = run(argv, fixture_env("/usr/bin:/bin"));
    cr_assert_eq(code(r), 1, "exit %d, stderr: %s", code(r), r->err);
    cr_assert(strstr(r->err, "mmvec: cannot set a memory limit here: the memory controller is "
                             "not available") && strstr(r->err, "systemd is not the init system"),
              "%s", r->err);
    cr_assert_eq(strchr(r->err, '\n'), r->err + strlen(r->err) - 1, "not one line: %s", r->err);
}
