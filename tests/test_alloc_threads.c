/* Threads (issue 3): 8 threads mix small and large malloc/calloc/realloc/posix_memalign/free,
 * hand blocks to each other, and check every block's contents before it is freed or
 * reallocated.
 *
 * The workload is the helper program alloc_threads (tests/helpers/alloc_threads.c), so that the
 * very same code also runs in a ThreadSanitizer build, where Criterion cannot start (its
 * inheritable arena collides with TSan's shadow memory, Criterion issue #274). There, run
 * <build>/tests/helpers/alloc_threads all  with MMVEC_THRESHOLD=64K and MMVEC_DIR set. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static char tmp[64];
static char segdir[128];

static void setup(void)
{
    static const char *const vars[] = {"MMVEC_STRICT", "MMVEC_UNLINK", "MMVEC_DISABLE",
                                       "MMVEC_STATS", "MMVEC_LOG", "MMVEC_FORK", "MMVEC_CACHE",
                                       "MMVEC_CACHE_DECAY_MS", "MMVEC_RESERVE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp/mmvec-athr-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tmp);
    setenv("MMVEC_DIR", segdir, 1);
    setenv("MMVEC_THRESHOLD", "64K", 1);
}

static void teardown(void)
{
    tu_rm_rf(tmp);
}

TestSuite(threads, .init = setup, .fini = teardown);

/* Runs the workload `mode` in the helper; it must exit 0, and leave no block file behind. */
static void workload(const char *mode)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(out[1], STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        execl(MMVEC_HELPER_DIR "/alloc_threads", "alloc_threads", mode, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char text[16384];
    tu_read_fd(out[0], text, sizeof text);
    close(out[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_log_info("%s", text);
    cr_assert(WIFEXITED(status), "killed by signal %d:\n%s", WTERMSIG(status), text);
    cr_assert_eq(WEXITSTATUS(status), 0, "exit %d:\n%s", WEXITSTATUS(status), text);
    cr_assert_not_null(strstr(text, " 0 failures"), "%s", text);
    /* The helper exited: its folder and every file in it are gone too. */
    struct stat st;
    cr_assert(stat(segdir, &st) == 0, "no segment was ever made");
    uint64_t files = 0;
    cr_assert_eq(mmv_clean(segdir, &files, NULL), 0);
    cr_assert_eq(files, 0, "%llu files left behind", (unsigned long long)files);
}

Test(threads, eight_threads_mixed_sizes_no_corruption)
{
    workload("mixed");
}

/* Only segment blocks, so that the allocator lock, the cache and the registry are contended. */
Test(threads, eight_threads_large_only_no_corruption)
{
    workload("large");
}

Test(threads, concurrent_first_calls)
{
    workload("first");
}
