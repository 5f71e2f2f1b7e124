/* alloc_workloads: the workloads that run in a child process: 6 out of core (a heap larger
 * than a memory cgroup's limit) and 5 an unmodified program. */
#define _GNU_SOURCE
#include "aw.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the out-of-core heap: write, then read back and checksum ------------------------------ */

static uint64_t fill_chunk(uint64_t *w, size_t words, uint64_t x)
{
    uint64_t sum = 0;
    for (size_t j = 0; j < words; j++) {
        /* An LCG step per word: cheap, and no two chunks hold the same data. */
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        w[j] = x;
        sum += x;
    }
    return sum;
}

static uint64_t sum_chunk(const uint64_t *w, size_t words)
{
    uint64_t sum = 0;
    for (size_t j = 0; j < words; j++)
        sum += w[j];
    return sum;
}

struct ooc_run {
    uint64_t total, chunk;
    const char *param;
};

static int ooc_fill(const struct aw_alloc *a, const struct ooc_run *r, uint64_t **blocks, size_t n,
                    uint64_t *sum)
{
    for (size_t i = 0; i < n; i++) {
        blocks[i] = a->malloc(r->chunk);
        if (!blocks[i]) {
            aw_fail("ooc", r->param, "malloc returned NULL at block %zu", i);
            return -ENOMEM;
        }
        *sum += fill_chunk(blocks[i], r->chunk / 8, i + 1);
    }
    return 0;
}

static int ooc_work(const struct aw_alloc *a, const struct ooc_run *r)
{
    size_t n = (size_t)(r->total / r->chunk);
    uint64_t **blocks = calloc(n, sizeof *blocks);
    uint64_t wsum = 0, rsum = 0;
    if (!blocks)
        return AW_EXIT_FAIL;
    double t0 = aw_now();
    int rc = ooc_fill(a, r, blocks, n, &wsum);
    double t1 = aw_now();
    for (size_t i = 0; rc == 0 && i < n; i++)
        rsum += sum_chunk(blocks[i], r->chunk / 8);
    double t2 = aw_now();
    for (size_t i = 0; i < n; i++)
        a->free(blocks[i]);
    double t3 = aw_now();
    free(blocks);
    if (rc)
        return AW_EXIT_FAIL;
    if (wsum != rsum) {
        aw_fail("ooc", r->param, "checksum mismatch: the heap lost data");
        return AW_EXIT_FAIL;
    }
    double bytes = (double)n * (double)r->chunk;
    aw_result("ooc", r->param, "write_GBps", bytes / (t1 - t0) / 1e9, "GB/s");
    aw_result("ooc", r->param, "read_GBps", bytes / (t2 - t1) / 1e9, "GB/s");
    aw_result("ooc", r->param, "free_s", t3 - t2, "s");
    return AW_EXIT_OK;
}

/* ---- a cgroup v1 memory group for the child ------------------------------------------------ */

/* The child group lives under this process's own memory cgroup, so that whatever accounts
 * for us keeps accounting for it. */
static int cg_make_path(char *buf, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024], *rel = NULL;
    if (!f)
        return -errno;
    while (fgets(line, sizeof line, f)) {
        char *m = strstr(line, ":memory:");
        if (m) {
            rel = m + strlen(":memory:");
            rel[strcspn(rel, "\n")] = 0;
            break;
        }
    }
    fclose(f);
    if (!rel)
        return -ENOENT;
    if (strcmp(rel, "/") == 0)
        rel = "";
    int n = snprintf(buf, size, "/sys/fs/cgroup/memory%s/mmvec-bench-%d", rel, (int)getpid());
    return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int cg_write(const char *dir, const char *file, const char *value)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, value, strlen(value));
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static long long cg_read_key(const char *dir, const char *file, const char *key)
{
    char path[1200], line[256];
    long long v = -1;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t kl = key ? strlen(key) : 0;
    while (fgets(line, sizeof line, f))
        if (!key || (strncmp(line, key, kl) == 0 && line[kl] == ' ')) {
            v = atoll(line + kl);
            break;
        }
    fclose(f);
    return v;
}

static int cg_create(const char *dir, uint64_t limit, const char *param)
{
    char v[32];
    if (mkdir(dir, 0755) != 0) {
        aw_skip("ooc", param, "cannot create memory cgroup %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)limit);
    int rc = cg_write(dir, "memory.limit_in_bytes", v);
    if (rc) {
        aw_skip("ooc", param, "cannot set %s/memory.limit_in_bytes: %s", dir, strerror(-rc));
        rmdir(dir);
        return -1;
    }
    return 0;
}

/* rmdir of a memory group can fail for a moment while the dead child's charges drain. */
static void cg_remove(const char *dir)
{
    for (int i = 0; i < 100 && rmdir(dir) != 0 && errno == EBUSY; i++)
        usleep(50 * 1000);
}

static int ooc_child(const struct aw_alloc *a, const struct ooc_run *r, const char *dir)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    int rc = cg_write(dir, "cgroup.procs", pid);
    if (rc) {
        aw_fail("ooc", r->param, "cannot join cgroup %s: %s", dir, strerror(-rc));
        return AW_EXIT_FAIL;
    }
    return ooc_work(a, r);
}

static void ooc_report_child(int status, const char *dir, const char *param)
{
    long long ooms = cg_read_key(dir, "memory.oom_control", "oom_kill");
    long long peak = cg_read_key(dir, "memory.max_usage_in_bytes", NULL);
    if (WIFSIGNALED(status))
        aw_fail("ooc", param, "killed by signal %d (%s; cgroup oom_kill=%lld; peak %lld MiB)",
                WTERMSIG(status), strsignal(WTERMSIG(status)), ooms, peak >> 20);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        aw_info("ooc_peak_MiB", "%lld", peak >> 20);
}

static int ooc_in_cgroup(const struct aw_alloc *a, const struct ooc_run *r, uint64_t limit)
{
    char dir[1024];
    int rc = cg_make_path(dir, sizeof dir);
    if (rc) {
        aw_skip("ooc", r->param, "no cgroup v1 memory controller for this process: %s",
                strerror(-rc));
        return AW_EXIT_OK;
    }
    if (cg_create(dir, limit, r->param) != 0)
        return AW_EXIT_OK;
    fflush(stdout);
    pid_t pid = fork();
    /* exit, not _exit: the child ends as a normal program does (atexit handlers, such as an
     * allocator's cleanup, run); stdout was flushed before the fork, so nothing prints twice. */
    if (pid == 0)
        exit(ooc_child(a, r, dir));
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        status = -1;
    ooc_report_child(status, dir, r->param);
    cg_remove(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : AW_EXIT_FAIL;
}

/* ooc TOTAL CHUNK [LIMIT]: writes TOTAL bytes of heap in CHUNK blocks, then reads and checksums
 * them; with LIMIT, in a child process inside a memory cgroup of that limit. */
int aw_wl_ooc(const struct aw_alloc *a, int argc, char **argv)
{
    uint64_t total = 0, chunk = 0, limit = 0;
    if (argc < 2 || aw_parse_size(argv[0], &total) || aw_parse_size(argv[1], &chunk) || !chunk ||
        chunk % 8 || total < chunk || (argc > 2 && aw_parse_size(argv[2], &limit)))
        return AW_EXIT_USAGE;
    char param[128], s1[32], s2[32];
    if (limit)
        snprintf(param, sizeof param, "%s heap in %s cgroup", aw_size_name(total, s1, sizeof s1),
                 aw_size_name(limit, s2, sizeof s2));
    else
        snprintf(param, sizeof param, "%s heap", aw_size_name(total, s1, sizeof s1));
    struct ooc_run r = {total, chunk, param};
    return limit ? ooc_in_cgroup(a, &r, limit) : ooc_work(a, &r);
}

/* ---- 5. an unmodified program, timed from outside it --------------------------------------- */

/* exec NAME PROGRAM ARGS...: runs the program (with this process's environment, so under the
 * same LD_PRELOAD) and reports its wall time, start-up included, and its peak RSS. */
int aw_wl_exec(int argc, char **argv)
{
    if (argc < 2)
        return AW_EXIT_USAGE;
    const char *name = argv[0];
    fflush(stdout);
    double t0 = aw_now();
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) {
        aw_fail("program", name, "cannot run %s: %s", argv[1], strerror(errno));
        return AW_EXIT_FAIL;
    }
    double dt = aw_now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            aw_fail("program", name, "%s killed by signal %d (%s)", argv[1], WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        else
            aw_fail("program", name, "%s exited with %d", argv[1], WEXITSTATUS(status));
        return AW_EXIT_FAIL;
    }
    aw_result("program", name, "wall_s", dt, "s");
    aw_result("program", name, "maxrss_MiB", (double)ru.ru_maxrss / 1024.0, "MiB");
    return AW_EXIT_OK;
}
