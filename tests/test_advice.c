/* Read-ahead advice of blocks (MMVEC_ADVICE): with the default `auto`, a calloc'd block is
 * advised MADV_RANDOM (a sparse first touch then costs no read-around) while memory is
 * plentiful, and goes back to normal advice as soon as block memory passes a quarter of what the
 * process may use, before anything could be evicted and re-read page by page. The advice is read
 * back from /proc/self/smaps ("rr" in VmFlags). */
#define _GNU_SOURCE
#include "util.h"

#include <mmvec.h>

#include <time.h>

#define M ((size_t)1 << 20)
#define MEMCG_ROOT "/sys/fs/cgroup/memory"

static char tmp[64], segdir[128];
static char cgroup[700]; /* a memory cgroup this test made and moved itself into, or "" */
static char parent_cg[600];

static void setup(void)
{
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp/mmvec-advice-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tmp);
    static const char *const vars[] = {"MMVEC_THRESHOLD", "MMVEC_ADVICE", "MMVEC_WRITEBACK",
                                       "MMVEC_DISABLE", "MMVEC_UNLINK", "MMVEC_CACHE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("MMVEC_DIR", segdir, 1);
    setenv("MMVEC_THRESHOLD", "1M", 1);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t w = write(fd, text, strlen(text));
        (void)w;
        close(fd);
    }
}

static void teardown(void)
{
    if (cgroup[0]) { /* back to where we came from, then the group can go */
        char path[700], pid[32];
        snprintf(path, sizeof path, "%s/cgroup.procs", parent_cg);
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        write_file(path, pid);
        rmdir(cgroup);
        cgroup[0] = '\0';
    }
    tu_rm_rf(tmp);
}

TestSuite(advice, .init = setup, .fini = teardown);

/* Is the mapping that starts at p advised MADV_RANDOM? */
static bool random_advice(const void *p)
{
    char start[32];
    snprintf(start, sizeof start, "%lx-", (unsigned long)(uintptr_t)p);
    static char smaps[4 << 20]; /* smaps is long: a whole process's mappings */
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    tu_read_fd(fd, smaps, sizeof smaps);
    close(fd);
    const char *at = strstr(smaps, start);
    while (at && at != smaps && at[-1] != '\n')
        at = strstr(at + 1, start);
    cr_assert_not_null(at, "no mapping at %p in /proc/self/smaps", p);
    const char *flags = strstr(at, "VmFlags:");
    cr_assert_not_null(flags);
    size_t n = strcspn(flags, "\n");
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), flags);
    return strstr(line, " rr") != NULL;
}

Test(advice, auto_makes_calloc_blocks_random_and_leaves_malloc_ones_normal)
{
    char *c = mmv_calloc(1, 8 * M), *m = mmv_malloc(8 * M);
    cr_assert(mmv_owns(c) && mmv_owns(m));
    cr_assert(random_advice(c), "a calloc'd block is advised random while memory is plentiful");
    cr_assert(!random_advice(m), "a malloc'd block keeps normal advice");
    cr_assert_eq(c[8 * M - 1], 0);
    mmv_free(c);
    mmv_free(m);
}

Test(advice, normal_and_random_apply_to_every_block)
{
    setenv("MMVEC_ADVICE", "normal", 1);
    char *c = mmv_calloc(1, 8 * M);
    cr_assert(!random_advice(c));
    mmv_free(c);
}

Test(advice, random_applies_to_malloc_blocks_too)
{
    setenv("MMVEC_ADVICE", "random", 1);
    char *m = mmv_malloc(8 * M);
    cr_assert(random_advice(m));
    mmv_free(m);
}

Test(advice, a_freed_block_goes_back_to_normal_before_reuse)
{
    char *c = mmv_calloc(1, 8 * M);
    cr_assert(random_advice(c));
    mmv_free(c);
    char *m = mmv_malloc(8 * M); /* the same block, from the cache */
    mmv_stats s;
    mmv_stats_get(&s);
    cr_assert_eq(s.cache_hits, 1);
    cr_assert(!random_advice(m));
    mmv_free(m);
}

/* Moves this test process into a new memory cgroup limited to limit_mib. */
static void enter_memcg(unsigned limit_mib)
{
    if (geteuid() != 0 || access(MEMCG_ROOT "/memory.limit_in_bytes", F_OK) < 0)
        TU_SKIP(teardown, "needs root and the cgroup v1 memory controller at " MEMCG_ROOT);
    const char *self = tu_slurp("/proc/self/cgroup"), *p = strstr(self, ":memory:");
    if (!p)
        TU_SKIP(teardown, "this process is in no v1 memory cgroup");
    p += strlen(":memory:");
    snprintf(parent_cg, sizeof parent_cg, "%s%.*s", MEMCG_ROOT, (int)strcspn(p, "\n"), p);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(cgroup, sizeof cgroup, "%s/mmvec-advice-%ld-%ld", parent_cg, (long)getpid(),
             ts.tv_nsec);
    if (mkdir(cgroup, 0755) < 0) {
        cgroup[0] = '\0';
        TU_SKIP(teardown, "cannot create a memory cgroup under %s: %s", parent_cg,
                strerror(errno));
    }
    char path[800], text[32];
    snprintf(path, sizeof path, "%s/memory.limit_in_bytes", cgroup);
    snprintf(text, sizeof text, "%u", limit_mib << 20);
    write_file(path, text);
    snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
    snprintf(text, sizeof text, "%ld", (long)getpid());
    write_file(path, text);
}

Test(advice, all_blocks_go_back_to_normal_when_memory_gets_tight)
{
    /* A 256 MiB limit puts the mark at 64 MiB of live blocks. */
    enter_memcg(256);
    char *a = mmv_calloc(1, 8 * M), *b = mmv_calloc(1, 8 * M);
    cr_assert(random_advice(a) && random_advice(b), "below the mark: random");
    char *big = mmv_calloc(1, 64 * M); /* passes the mark */
    cr_assert_not_null(big);
    cr_assert(!random_advice(a) && !random_advice(b) && !random_advice(big),
              "past the mark, every block is back to normal advice");
    mmv_free(a);
    mmv_free(b);
    mmv_free(big);
}
