/* The main job: a program whose heap (2 GiB) is four times its memory limit (512 MiB) is
 * OOM-killed on its own and finishes, with every word checked, under the interposer.
 *
 * The limit is set as the README's demo sets it, by `mmvec run --memory 512M` (tools/memrun.c):
 * a memory cgroup of its own, nested in this process's (v1 or v2), or systemd-run, whatever the
 * machine offers; the tool removes what it made. Needs root (or the test skips and says why),
 * and skips with the tool's own reason where no limit can be set.
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
#define LIMIT_MIB 512
#define HEAP_MIB "2048"
#define BLOCK_MIB "64"
#define CHILD_TIMEOUT 150

extern char **environ;

static void teardown(void);

static char tdir[256];   /* outputs */
static char segdir[300]; /* MMVEC_DIR: must be on a disk, not in RAM */

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

/* ---- the run: under `mmvec run --memory`, as the README's main job --------------------------- */

/* The limit comes from `mmvec run --memory` (tools/memrun.c), the same path as the README's
 * demo: a memory cgroup of its own on v1 or v2, or systemd-run, whatever the machine offers. */

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-ooc-XXXXXX");
}

static void teardown(void)
{
    tu_rm_rf(segdir);
    tu_rm_rf(tdir);
    segdir[0] = tdir[0] = '\0';
}

/* heapfill under `mmvec run --memory 512M --stats`, with or without the interposer. Returns the
 * tool's wait status; skips when the machine offers no way to set a limit. */
static int run_heapfill(bool preload)
{
    size_t n;
    char **env = tu_child_env(16, &n, NULL);
    env[n] = NULL;
    char limit[32];
    snprintf(limit, sizeof limit, "%dM", LIMIT_MIB);
    const char *with[] = {MMVEC_CLI, "run", "--memory", limit, "--stats", "-t", "1M", "-d", segdir,
                          "--", MMVEC_HELPER_DIR "/heapfill", HEAP_MIB, BLOCK_MIB, NULL};
    const char *without[] = {MMVEC_CLI, "run", "--memory", limit, "--stats", "--without-mmvec",
                             "--", MMVEC_HELPER_DIR "/heapfill", HEAP_MIB, BLOCK_MIB, NULL};
    const char *const *argv = preload ? with : without;
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        tu_redirect("/dev/null", 0, O_RDONLY);
        tu_redirect(path_in("out"), 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(path_in("err"), 2, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(CHILD_TIMEOUT);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    int status = tu_wait(pid);
    free(env);
    const char *err = tu_slurp(path_in("err"));
    const char *no = strstr(err, "mmvec: cannot set a memory limit here");
    if (no)
        TU_SKIP(teardown, "%.300s", no);
    return status;
}

/* The group's peak, from the tool's --stats line; -1 when missing. */
static long long peak_mib(void)
{
    const char *p = strstr(tu_slurp(path_in("err")), "mmvec run: peak memory ");
    return p ? strtoll(p + strlen("mmvec run: peak memory "), NULL, 10) : -1;
}

static void prepare(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: the interposer cannot be preloaded into a child, and a "
                 "sanitizer's allocator changes what the cgroup sees");
#endif
    if (geteuid() != 0)
        TU_SKIP(teardown, "not root: mmvec run --memory needs a delegated cgroup or "
                          "systemd-run --user, which this test does not assume");
    pick_segdir();
}

TestSuite(outofcore, .init = setup, .fini = teardown, .timeout = 200);

Test(outofcore, killed_without_the_interposer)
{
    prepare();
    int status = run_heapfill(false);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const char *err = tu_slurp(path_in("err"));
    cr_assert_eq(code, 128 + SIGKILL, "2 GiB of heap in 512 MiB should be OOM-killed, got %d; "
                 "out: %s; err: %.1000s", code, tu_slurp(path_in("out")), err);
    cr_assert(strstr(err, "killed by the kernel's OOM killer"), "not the OOM killer: %s", err);
    long long peak = peak_mib();
    cr_assert(peak < 0 || peak >= LIMIT_MIB - 16, "the limit was never reached: peak %lld MiB",
              peak);
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
    long long peak = peak_mib();
    cr_assert(peak < 0 || (peak >= LIMIT_MIB - 16 && peak <= LIMIT_MIB),
              "peak %lld MiB of the %d MiB limit", peak, LIMIT_MIB);
    cr_assert(strstr(err, "0 OOM kills"), "an OOM kill in the group: %s", err);
    cr_assert_eq(tu_count_segs(segdir), 0, "segment files left behind in %s", segdir);
}
