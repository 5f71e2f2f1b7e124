/* The main job: a program whose heap (2 GiB) is four times its memory limit (a 512 MiB memory
 * cgroup) is OOM-killed on its own and finishes, with every word checked, under the interposer.
 *
 * Needs the cgroup v1 memory controller at /sys/fs/cgroup/memory and the right to create a
 * group (root); elsewhere the tests skip and say why. Each test makes its own uniquely named
 * child of the cgroup this process is in (so the group stays inside whatever limits the caller
 * already has), moves the child process in before exec, and removes the group afterwards,
 * also when the test fails.
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
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define TMPFS_MAGIC_NUMBER 0x01021994
#define LIMIT_MIB 512ull
#define HEAP_MIB "2048"
#define BLOCK_MIB "64"
#define CHILD_TIMEOUT 150

extern char **environ;

static void teardown(void);

static char tdir[256];   /* outputs */
static char segdir[300]; /* MMVEC_DIR: must be on a disk, not in RAM */
static char cgroup[600]; /* the group this test made, "" when none */

/* ---- files ------------------------------------------------------------------------------- */

static char *path_in(const char *name) { return tu_path_in(tdir, name); }

static bool on_tmpfs(const char *dir)
{
    struct statfs fs;
    return statfs(dir, &fs) == 0 && (unsigned long)fs.f_type == TMPFS_MAGIC_NUMBER;
}

/* The segments must go to a disk: a tmpfs is RAM and would be charged to the cgroup. */
static void pick_segdir(void)
{
    static const char *const bases[] = {"/tmp", "/var/tmp"};
    for (size_t i = 0; i < 2; i++) {
        if (on_tmpfs(bases[i]))
            continue;
        snprintf(segdir, sizeof segdir, "%s/mmvec-ooc-seg-XXXXXX", bases[i]);
        cr_assert_not_null(mkdtemp(segdir), "mkdtemp: %s", strerror(errno));
        struct statvfs vfs;
        if (statvfs(segdir, &vfs) == 0 && (unsigned long long)vfs.f_bavail * vfs.f_frsize < (3ull << 30))
            TU_SKIP(teardown, "less than 3 GiB free in %s for 2 GiB of segment files", segdir);
        return;
    }
    TU_SKIP(teardown, "/tmp and /var/tmp are both tmpfs (RAM): no disk for the segment files");
}

/* ---- the cgroup -------------------------------------------------------------------------- */

/* Whether the group's peak usage reached its limit (failcnt is not reliable for that: with
 * memsw.limit_in_bytes set, some kernels count nothing in either failcnt). */
static bool reached_limit(void)
{
    long long peak = tu_memcg_number(cgroup, "memory.max_usage_in_bytes", NULL);
    return peak >= (long long)((LIMIT_MIB - 16) << 20);
}

static void make_cgroup(void)
{
    tu_make_memcg(cgroup, sizeof cgroup, "mmvec-ooc", LIMIT_MIB << 20, teardown);
}

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-ooc-XXXXXX");
}

static void teardown(void)
{
    tu_remove_memcg(cgroup);
    tu_rm_rf(segdir);
    tu_rm_rf(tdir);
    segdir[0] = tdir[0] = '\0';
}

/* ---- the run ----------------------------------------------------------------------------- */

static char **child_env(bool preload, char *own[2])
{
    size_t n;
    char **env = tu_child_env(16, &n, NULL);
    if (preload) {
        cr_assert(asprintf(&own[0], "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB) > 0);
        cr_assert(asprintf(&own[1], "MMVEC_DIR=%s", segdir) > 0);
        env[n++] = own[0];
        env[n++] = own[1];
        env[n++] = "MMVEC_THRESHOLD=1M";
        env[n++] = "MMVEC_STATS=1";
    }
    return env;
}

/* heapfill in the cgroup: the child joins it before exec, so every page it ever touches is
 * charged there. */
static int run_heapfill(bool preload)
{
    char *own[2] = {0};
    char **env = child_env(preload, own);
    const char *argv[] = {MMVEC_HELPER_DIR "/heapfill", HEAP_MIB, BLOCK_MIB, NULL};
    char pidtext[32];
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        snprintf(pidtext, sizeof pidtext, "%ld", (long)getpid());
        if (tu_write_text(cgroup, "cgroup.procs", pidtext) < 0)
            _exit(125);
        tu_redirect("/dev/null", 0, O_RDONLY);
        tu_redirect(path_in("out"), 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(path_in("err"), 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    int status = tu_wait(pid);
    free(env);
    free(own[0]);
    free(own[1]);
    cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 125, "could not join %s", cgroup);
    return status;
}

static void prepare(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: the interposer cannot be preloaded into a child, and a "
                 "sanitizer's allocator changes what the cgroup sees");
#endif
    make_cgroup();
    pick_segdir();
}

TestSuite(outofcore, .init = setup, .fini = teardown, .timeout = 200);

Test(outofcore, killed_without_the_interposer)
{
    prepare();
    int status = run_heapfill(false);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "2 GiB of heap in a 512 MiB cgroup should be OOM-killed, got %s %d; out: %s",
              WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tu_slurp(path_in("out")));
    cr_assert(reached_limit(), "the limit was never reached");
    long long kills = tu_memcg_number(cgroup, "memory.oom_control", "oom_kill");
    cr_assert(kills < 0 || kills >= 1, "killed, but not by the cgroup's OOM killer");
}

Test(outofcore, completes_with_the_interposer)
{
    prepare();
    int status = run_heapfill(true);
    const char *out = tu_slurp(path_in("out")), *err = tu_slurp(path_in("err"));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "heapfill under the interposer: %s %d\nstdout: %s\nstderr: %.2000s",
              WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out, err);
    cr_assert(strstr(out, "2048 MiB in 32 blocks of 64 MiB verified"), "stdout: %s", out);
    cr_assert(strstr(out, ", 32 blocks in files, 0 in RAM"), "not every block was a segment: %s", out);
    cr_assert(strstr(err, "mmvec stats"), "no stats table: %s", err);
    /* The limit really bit (so the heap really did not fit), yet nothing was killed. */
    cr_assert(reached_limit(), "the limit was never reached");
    long long peak = tu_memcg_number(cgroup, "memory.max_usage_in_bytes", NULL);
    cr_assert(peak > 0 && peak <= (long long)(LIMIT_MIB << 20), "peak %lld", peak);
    cr_assert_eq(tu_count_segs(segdir), 0, "segment files left behind in %s", segdir);
}
