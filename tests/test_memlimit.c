/* memlimit (src/base/memlimit.h): the memory the process may use and its usage, read from
 * fixture trees built here in a temp directory (`root` prefixes /proc and /sys):
 * no cgroup (host MemTotal/MemAvailable); cgroup v1 and v2 limits in the leaf, on an ancestor,
 * nested (the least headroom wins), v2 memory.high; usage without droppable page cache;
 * container views (cgroup namespace, Docker without one, a path the mount does not show, no
 * mount); hybrid machines; the user's limit on RssAnon; a cgroup limit above MemTotal; garbage.
 * The tests under `bugs` show defects found while writing these (see each one's comment). */
#define _GNU_SOURCE
#include "memlimit.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* What cgroup v1 writes in memory.limit_in_bytes for "no limit" (LONG_MAX rounded to pages). */
#define V1_UNLIMITED "9223372036854771712"

static char root[64];
static struct mmvi_memsrc src;
static struct mmvi_memview view;

static void setup(void)
{
    tu_make_tmpdir(root, sizeof root, "/tmp/mmvec-memlimit-XXXXXX");
}

static void teardown(void)
{
    tu_rm_rf(root);
}

/* ---- building fixture trees ---------------------------------------------------------------- */

/* mkdir -p <root><rel> */
static void mkdirs(const char *rel)
{
    char path[2048];
    int n = snprintf(path, sizeof path, "%s%s", root, rel);
    cr_assert(n > 0 && (size_t)n < sizeof path, "path too long: %s", rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

/* Writes `len` bytes to <root><rel>, making its folders. */
static void put_bytes(const char *rel, const void *data, size_t len)
{
    char dir[2048], path[2048];
    snprintf(dir, sizeof dir, "%s", rel);
    char *slash = strrchr(dir, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    if (dir[0])
        mkdirs(dir);
    snprintf(path, sizeof path, "%s%s", root, rel);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* printf into <root><rel> (a file; its folders are made). */
__attribute__((format(printf, 2, 3))) static void put(const char *rel, const char *fmt, ...)
{
    static char text[65536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof text);
    put_bytes(rel, text, (size_t)n);
}

/* "<a><b>" in one of 16 rotating buffers. */
static const char *cat(const char *a, const char *b)
{
    static char bufs[16][1024];
    static int next;
    char tmp[sizeof bufs[0]], *s = bufs[next++ % 16];
    snprintf(tmp, sizeof tmp, "%s%s", a, b); /* a or b may be an earlier result */
    memcpy(s, tmp, sizeof tmp);
    return s;
}

/* /proc/meminfo as the kernel writes it (kB), with the lines around the two that count. */
static void meminfo(uint64_t total_kb, uint64_t avail_kb)
{
    put("/proc/meminfo",
        "MemTotal:       %8llu kB\n"
        "MemFree:         1234567 kB\n"
        "MemAvailable:   %8llu kB\n"
        "Buffers:          102400 kB\n"
        "Cached:          2097152 kB\n"
        "SwapCached:            0 kB\n"
        "Active:          3145728 kB\n"
        "Inactive:        1048576 kB\n"
        "Active(anon):    1048576 kB\n"
        "Inactive(anon):        0 kB\n"
        "Active(file):    2097152 kB\n"
        "Inactive(file):  1048576 kB\n"
        "SwapTotal:             0 kB\n"
        "SwapFree:              0 kB\n"
        "Dirty:               128 kB\n"
        "Writeback:             0 kB\n"
        "AnonPages:       1048576 kB\n"
        "Shmem:             65536 kB\n"
        "CommitLimit:     4194304 kB\n"
        "Committed_AS:    3145728 kB\n"
        "HugePages_Total:       0\n"
        "Hugepagesize:       2048 kB\n",
        (unsigned long long)total_kb, (unsigned long long)avail_kb);
}

/* The host used in most tests: 8 GiB, 6 GiB available (2 GiB used, 6 GiB of headroom). */
#define HOST_TOTAL (8 * GiB)
#define HOST_USED (2 * GiB)
static void host8g(void)
{
    meminfo(HOST_TOTAL / KiB, (HOST_TOTAL - HOST_USED) / KiB);
}

/* /proc/self/status with RssAnon (kB) among its neighbours. */
static void status(uint64_t rss_anon_kb)
{
    put("/proc/self/status",
        "Name:\ttest_memlimit\n"
        "Umask:\t0022\n"
        "State:\tR (running)\n"
        "Tgid:\t4242\n"
        "Pid:\t4242\n"
        "PPid:\t1\n"
        "VmPeak:\t 9000000 kB\n"
        "VmSize:\t 8000000 kB\n"
        "VmHWM:\t 7000000 kB\n"
        "VmRSS:\t 6000000 kB\n"
        "RssAnon:\t%8llu kB\n"
        "RssFile:\t  300000 kB\n"
        "RssShmem:\t    1000 kB\n"
        "VmData:\t 5000000 kB\n"
        "Threads:\t1\n"
        "Cpus_allowed:\t3\n"
        "Mems_allowed:\t00000000,00000001\n",
        (unsigned long long)rss_anon_kb);
}

/* /proc/self/cgroup of a v1 (or hybrid) machine, the memory controller in `memory_path`. */
static void cgroup_v1(const char *memory_path)
{
    put("/proc/self/cgroup",
        "12:pids:/user.slice/user-1000.slice\n"
        "11:cpu,cpuacct:/user.slice\n"
        "10:blkio:/user.slice\n"
        "9:devices:/user.slice\n"
        "8:net_cls,net_prio:/\n"
        "7:freezer:/\n"
        "6:memory:%s\n"
        "5:cpuset:/\n"
        "1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n",
        memory_path);
}

/* The mounts before the cgroup ones on any machine. */
#define MI_BASE                                                                                \
    "22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"            \
    "23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw\n"            \
    "24 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4008096k,mode=755\n" \
    "28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"

/* A v1 machine: tmpfs at /sys/fs/cgroup, the controllers under it; memory's mount root given. */
static void mountinfo_v1(const char *memory_root)
{
    put("/proc/self/mountinfo",
        MI_BASE
        "31 22 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - "
        "cgroup2 cgroup2 rw,nsdelegate\n"
        "33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - "
        "cgroup cgroup rw,xattr,name=systemd\n"
        "34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - "
        "cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 %s /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - "
        "cgroup cgroup rw,memory\n"
        "36 31 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - "
        "cgroup cgroup rw,pids\n"
        "37 22 0:7 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:18 - "
        "debugfs debugfs rw\n",
        memory_root);
}

/* A v2 machine: cgroup2 at /sys/fs/cgroup with the mount root given. */
static void mountinfo_v2(const char *mount_root)
{
    put("/proc/self/mountinfo",
        MI_BASE
        "30 22 0:26 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - "
        "securityfs securityfs rw\n"
        "31 22 0:27 %s /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - "
        "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
        "32 22 0:28 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - "
        "pstore pstore rw\n",
        mount_root);
}

#define V1MNT "/sys/fs/cgroup/memory"
#define V2MNT "/sys/fs/cgroup"

/* A v1 memory cgroup folder (under <root>): limit (a string, NULL: no file), usage, and the
 * hierarchical page-cache figures of memory.stat (total_*). The local figures (without the
 * total_ prefix) are decoys that must not be used when the total_ ones are there. */
static void v1_dir(const char *dir, const char *limit, uint64_t usage, uint64_t active_file,
                   uint64_t inactive_file, uint64_t dirty, uint64_t writeback)
{
    mkdirs(dir);
    if (limit)
        put(cat(dir, "/memory.limit_in_bytes"), "%s\n", limit);
    put(cat(dir, "/memory.usage_in_bytes"), "%llu\n", (unsigned long long)usage);
    put(cat(dir, "/memory.stat"),
        "cache 111\nrss 222\nrss_huge 0\nshmem 0\nmapped_file 333\n"
        "dirty 7\nwriteback 9\npgpgin 1000\npgpgout 900\npgfault 5000\npgmajfault 3\n"
        "inactive_anon 4096\nactive_anon 8192\ninactive_file 11\nactive_file 13\n"
        "unevictable 0\nhierarchical_memory_limit 9223372036854771712\n"
        "total_cache 555\ntotal_rss 666\ntotal_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 0\n"
        "total_dirty %llu\ntotal_writeback %llu\ntotal_pgpgin 2000\ntotal_pgpgout 1900\n"
        "total_inactive_anon 4096\ntotal_active_anon 8192\n"
        "total_inactive_file %llu\ntotal_active_file %llu\ntotal_unevictable 0\n",
        (unsigned long long)dirty, (unsigned long long)writeback,
        (unsigned long long)inactive_file, (unsigned long long)active_file);
}

/* A v2 memory cgroup folder: memory.max and memory.high (strings, NULL: no file), memory.current
 * and memory.stat's file figures (with the other keys around them, some sharing their words). */
static void v2_dir(const char *dir, const char *max, const char *high, uint64_t current,
                   uint64_t active_file, uint64_t inactive_file, uint64_t file_dirty,
                   uint64_t file_writeback)
{
    mkdirs(dir);
    if (max)
        put(cat(dir, "/memory.max"), "%s\n", max);
    if (high)
        put(cat(dir, "/memory.high"), "%s\n", high);
    put(cat(dir, "/memory.current"), "%llu\n", (unsigned long long)current);
    put(cat(dir, "/memory.stat"),
        "anon 123456\nfile 999999999\nkernel 4096\nkernel_stack 16384\npagetables 8192\n"
        "sec_pagetables 0\npercpu 0\nsock 0\nvmalloc 0\nshmem 77\nzswap 0\nzswapped 0\n"
        "file_mapped 5555\nfile_dirty %llu\nfile_writeback %llu\nswapcached 0\n"
        "anon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon 100\nactive_anon 200\n"
        "inactive_file %llu\nactive_file %llu\nunevictable 0\nslab_reclaimable 300\n"
        "slab_unreclaimable 400\nslab 700\nworkingset_refault_anon 0\n"
        "workingset_refault_file 17\npgfault 1\npgmajfault 2\n",
        (unsigned long long)file_dirty, (unsigned long long)file_writeback,
        (unsigned long long)inactive_file, (unsigned long long)active_file);
}

/* A number as a string (for limit files), in one of 16 rotating buffers. */
static const char *num(uint64_t v)
{
    static char bufs[16][32];
    static int next;
    char *s = bufs[next++ % 16];
    snprintf(s, sizeof bufs[0], "%llu", (unsigned long long)v);
    return s;
}

/* One memory cgroup folder of a fixture tree, as v1_dir or v2_dir makes it: its path under
 * <root>, its limit files (strings, NULL: no file; `max` is v1's memory.limit_in_bytes, `high`
 * v2's memory.high, never set in v1), its usage (v1 memory.usage_in_bytes, v2 memory.current)
 * and the page-cache figures of its memory.stat, 0 unless given. Tests list them as
 * {V1MNT "/a", num(1 * GiB), .usage = 300 * MiB} in V1_DIRS, V2_DIRS, V1_TREE or V2_TREE. */
struct cg {
    const char *dir, *max, *high;
    uint64_t usage, active, inactive, dirty, writeback;
};

/* The folders of list c, up to its {0}, made by v1_dir or v2_dir. */
static void v1_dirs(const struct cg *c)
{
    for (; c->dir; c++) {
        cr_assert_null(c->high, "%s: memory.high is v2's", c->dir);
        v1_dir(c->dir, c->max, c->usage, c->active, c->inactive, c->dirty, c->writeback);
    }
}

static void v2_dirs(const struct cg *c)
{
    for (; c->dir; c++)
        v2_dir(c->dir, c->max, c->high, c->usage, c->active, c->inactive, c->dirty, c->writeback);
}

/* The machine of most tests: the 8 GiB host, the process in memory cgroup `path` of a v1 one
 * (cgroup_v1, mountinfo_v1 with mount root /) or of a v2 one ("0::<path>", mountinfo_v2 with
 * mount root /). */
static void v1_machine(const char *path)
{
    host8g();
    cgroup_v1(path);
    mountinfo_v1("/");
}

static void v2_machine(const char *path)
{
    host8g();
    put("/proc/self/cgroup", "0::%s\n", path);
    mountinfo_v2("/");
}

/* V1_DIRS({dir, max, ...}, ...) makes the folders given; V1_TREE(path, {...}, ...) makes
 * v1_machine(path) first. Likewise for v2. */
#define V1_DIRS(...) v1_dirs((const struct cg[]){__VA_ARGS__, {0}})
#define V2_DIRS(...) v2_dirs((const struct cg[]){__VA_ARGS__, {0}})
#define V1_TREE(path, ...) (v1_machine(path), V1_DIRS(__VA_ARGS__))
#define V2_TREE(path, ...) (v2_machine(path), V2_DIRS(__VA_ARGS__))

/* mmvi_memsrc_open on the fixture, then mmvi_memview_read: the view (rc must be 0). */
static void read_view(uint64_t user_limit)
{
    mmvi_memsrc_open(&src, root);
    int rc = mmvi_memview_read(&src, user_limit, &view);
    cr_assert_eq(rc, 0, "mmvi_memview_read: %d", rc);
}

static const char *source_str(int s)
{
    static const char *names[] = {"HOST", "CGROUP_V1", "CGROUP_V2", "USER"};
    return s >= 0 && s < 4 ? names[s] : "?";
}

#define EXPECT_VIEW(lim, use, src_, lvl, hi)                                                    \
    do {                                                                                      \
        cr_expect_eq(view.limit, (uint64_t)(lim), "limit: expected %llu, got %llu",           \
                     (unsigned long long)(lim), (unsigned long long)view.limit);              \
        cr_expect_eq(view.usage, (uint64_t)(use), "usage: expected %llu, got %llu",           \
                     (unsigned long long)(use), (unsigned long long)view.usage);              \
        cr_expect_eq(view.source, (src_), "source: expected %s, got %s", source_str(src_),    \
                     source_str(view.source));                                                \
        cr_expect_eq(view.level, (lvl), "level: expected %d, got %d", (lvl), view.level);     \
        cr_expect_eq(view.high, (hi), "high: expected %d, got %d", (hi), view.high);          \
    } while (0)

#define EXPECT_HOST() EXPECT_VIEW(HOST_TOTAL, HOST_USED, MMVI_MEM_HOST, 0, 0)

/* src.dir[i] is <root><rel> */
#define EXPECT_DIR(i, rel)                                                                    \
    cr_expect_str_eq(src.dir[i], cat(root, rel), "dir[%d]", (i))

/* ---- 1. no cgroup: the host's figures ------------------------------------------------------ */

TestSuite(host, .init = setup, .fini = teardown);

Test(host, no_proc_self_cgroup_gives_memtotal_and_memavailable)
{
    host8g();
    /* A tight cgroup on disk, but nothing says the process is in it. */
    mountinfo_v2("/");
    V2_DIRS({V2MNT "/user.slice/x", num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    cr_expect_eq(src.levels, 0);
    EXPECT_VIEW(8 * GiB, 2 * GiB, MMVI_MEM_HOST, 0, 0);
    cr_expect_str_eq(mmvi_mem_source_name(&view), "MemTotal");
}

Test(host, exact_kilobytes)
{
    meminfo(16333000, 12000001); /* not round: usage is (total - available) * 1024 exactly */
    read_view(0);
    EXPECT_VIEW(16333000ull * 1024, (16333000ull - 12000001) * 1024, MMVI_MEM_HOST, 0, 0);
}

Test(host, nothing_readable_is_enoent_and_no_limit)
{
    mmvi_memsrc_open(&src, root);
    cr_expect_eq(src.version, 0);
    int rc = mmvi_memview_read(&src, 0, &view);
    cr_expect_eq(rc, -ENOENT);
    EXPECT_VIEW(UINT64_MAX, 0, MMVI_MEM_HOST, 0, 0);
}

Test(host, no_meminfo_but_a_cgroup_is_enoent_with_the_cgroup_limit)
{
    put("/proc/self/cgroup", "0::/x\n");
    mountinfo_v2("/");
    V2_DIRS({V2MNT "/x", num(1 * GiB), "max", .usage = 300 * MiB});
    mmvi_memsrc_open(&src, root);
    cr_expect_eq(mmvi_memview_read(&src, 0, &view), -ENOENT);
    EXPECT_VIEW(1 * GiB, 300 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

/* ---- 2, 3. cgroup v1 ------------------------------------------------------------------------ */

TestSuite(v1, .init = setup, .fini = teardown);

Test(v1, leaf_limit)
{
    V1_TREE("/a/b", {V1MNT, .usage = 3 * GiB}, /* the root cgroup has no limit file */
            {V1MNT "/a", V1_UNLIMITED, .usage = 1 * GiB},
            {V1MNT "/a/b", num(512 * MiB), .usage = 300 * MiB, .active = 50 * MiB,
             .inactive = 30 * MiB, .dirty = 10 * MiB, .writeback = 2 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 1);
    cr_assert_eq(src.levels, 3);
    EXPECT_DIR(0, V1MNT "/a/b");
    EXPECT_DIR(1, V1MNT "/a");
    EXPECT_DIR(2, V1MNT);
    /* 300 MiB - (50 + 30) MiB of file pages + (10 + 2) MiB of them dirty or under writeback */
    EXPECT_VIEW(512 * MiB, 232 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
    cr_expect_str_eq(mmvi_mem_source_name(&view), "cgroup v1 memory.limit_in_bytes");
}

Test(v1, flat_memory_stat_without_total_keys)
{
    /* use_hierarchy off / old kernels: only the local keys; they are the ones used then. */
    v1_machine("/a");
    mkdirs(V1MNT "/a");
    put(V1MNT "/a/memory.limit_in_bytes", "%llu\n", 700 * MiB);
    put(V1MNT "/a/memory.usage_in_bytes", "%llu\n", 600 * MiB);
    put(V1MNT "/a/memory.stat",
        "cache 1\nrss 2\ndirty %llu\nwriteback %llu\ninactive_anon 3\nactive_anon 4\n"
        "inactive_file %llu\nactive_file %llu\nunevictable 0\n",
        4 * MiB, 1 * MiB, 100 * MiB, 200 * MiB);
    read_view(0);
    cr_assert_eq(src.levels, 2);
    EXPECT_VIEW(700 * MiB, (600 - 300 + 5) * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(v1, limit_on_an_ancestor_only)
{
    V1_TREE("/a/b", {V1MNT, .usage = 3 * GiB},
            {V1MNT "/a", num(1 * GiB), .usage = 900 * MiB, .active = 100 * MiB,
             .inactive = 200 * MiB, .dirty = 40 * MiB, .writeback = 10 * MiB},
            {V1MNT "/a/b", V1_UNLIMITED, .usage = 500 * MiB, .active = 1 * MiB,
             .inactive = 1 * MiB});
    read_view(0);
    cr_assert_eq(src.levels, 3);
    /* the ancestor's own usage: 900 - 300 + 50 */
    EXPECT_VIEW(1 * GiB, 650 * MiB, MMVI_MEM_CGROUP_V1, 1, 0);
}

Test(v1, limit_on_the_mount_point)
{
    V1_TREE("/a/b", {V1MNT, num(2 * GiB), .usage = 1 * GiB},
            {V1MNT "/a", V1_UNLIMITED, .usage = 700 * MiB},
            {V1MNT "/a/b", V1_UNLIMITED, .usage = 500 * MiB});
    read_view(0);
    EXPECT_VIEW(2 * GiB, 1 * GiB, MMVI_MEM_CGROUP_V1, 2, 0);
}

Test(v1, nested_limits_the_leaf_has_least_headroom)
{
    V1_TREE("/a/b", {V1MNT, num(4 * GiB), .usage = 2 * GiB},  /* room 2 GiB */
            {V1MNT "/a", num(2 * GiB), .usage = 1 * GiB},        /* room 1 GiB */
            {V1MNT "/a/b", num(1 * GiB), .usage = 800 * MiB});   /* room 224 MiB */
    read_view(0);
    EXPECT_VIEW(1 * GiB, 800 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(v1, nested_limits_headroom_not_the_smallest_limit_wins)
{
    V1_TREE("/a/b", {V1MNT, num(6 * GiB), .usage = 3 * GiB},  /* room 3 GiB */
            {V1MNT "/a", num(4 * GiB), .usage = 3968 * MiB},     /* room 128 MiB */
            {V1MNT "/a/b", num(1 * GiB), .usage = 600 * MiB});   /* room 424 MiB, smallest limit */
    read_view(0);
    EXPECT_VIEW(4 * GiB, 3968 * MiB, MMVI_MEM_CGROUP_V1, 1, 0);
}

Test(v1, nested_limits_the_mount_point_has_least_headroom)
{
    v1_machine("/a/b");
    /* 3070 MiB - 22 MiB of page cache = 3048 MiB used of 3072: room 24 MiB */
    V1_DIRS({V1MNT, num(3 * GiB), .usage = 3070 * MiB, .active = 2 * MiB, .inactive = 20 * MiB},
            {V1MNT "/a", num(4 * GiB), .usage = 2 * GiB},       /* room 2 GiB */
            {V1MNT "/a/b", num(1 * GiB), .usage = 100 * MiB});  /* room 924 MiB */
    read_view(0);
    EXPECT_VIEW(3 * GiB, 3048 * MiB, MMVI_MEM_CGROUP_V1, 2, 0);
}

Test(v1, unlimited_everywhere_gives_the_host)
{
    V1_TREE("/a/b", {V1MNT, .usage = 3 * GiB}, {V1MNT "/a", V1_UNLIMITED, .usage = 1 * GiB},
            {V1MNT "/a/b", V1_UNLIMITED, .usage = 500 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 1);
    EXPECT_HOST();
}

Test(v1, memory_comounted_with_other_controllers)
{
    host8g();
    put("/proc/self/cgroup", "3:cpuset:/\n2:cpu,memory,pids:/job/7\n1:name=systemd:/\n");
    put("/proc/self/mountinfo",
        MI_BASE "40 22 0:40 / /cg/cpuset rw - cgroup cgroup rw,cpuset\n"
                "41 22 0:41 / /cg/cpu+mem rw,relatime - cgroup none rw,cpu,memory,pids\n");
    V1_DIRS({"/cg/cpu+mem/job/7", num(256 * MiB), .usage = 100 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 1);
    cr_assert_eq(src.levels, 3);
    EXPECT_DIR(0, "/cg/cpu+mem/job/7");
    EXPECT_DIR(2, "/cg/cpu+mem");
    EXPECT_VIEW(256 * MiB, 100 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(v1, page_cache_above_usage_clamps_to_zero)
{
    V1_TREE("/a", {V1MNT "/a", num(1 * GiB), .usage = 100 * MiB, .active = 150 * MiB,
                   .inactive = 50 * MiB});
    read_view(0);
    EXPECT_VIEW(1 * GiB, 0, MMVI_MEM_CGROUP_V1, 0, 0);
}

/* ---- 4. cgroup v2 --------------------------------------------------------------------------- */

TestSuite(v2, .init = setup, .fini = teardown);

/* The root cgroup of v2 has no memory.max/memory.high, only memory.stat (and no memory.current
 * before 6.x): a folder with memory.stat only. */
static void v2_root(void)
{
    mkdirs(V2MNT);
    put(V2MNT "/memory.stat", "anon 1\nfile 2\nactive_file 1\ninactive_file 1\n");
}

/* The tree of most tests here: the process in /user.slice/x, v2_root, and the folders given
 * (those of /user.slice and /user.slice/x); OPEN_SLICE is a /user.slice without limits. */
#define SLICE_TREE(...) (v2_machine("/user.slice/x"), v2_root(), V2_DIRS(__VA_ARGS__))
#define OPEN_SLICE {V2MNT "/user.slice", "max", "max", .usage = 3 * GiB}

Test(v2, leaf_memory_max)
{
    SLICE_TREE(OPEN_SLICE, {V2MNT "/user.slice/x", num(512 * MiB), "max", .usage = 400 * MiB,
                            .active = 60 * MiB, .inactive = 40 * MiB, .dirty = 8 * MiB,
                            .writeback = 4 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 2);
    cr_assert_eq(src.levels, 3);
    EXPECT_DIR(0, V2MNT "/user.slice/x");
    EXPECT_DIR(1, V2MNT "/user.slice");
    EXPECT_DIR(2, V2MNT);
    /* 400 - (60 + 40) + (8 + 4) */
    EXPECT_VIEW(512 * MiB, 312 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
    cr_expect_str_eq(mmvi_mem_source_name(&view), "cgroup v2 memory.max");
}

Test(v2, memory_max_on_an_ancestor)
{
    SLICE_TREE({V2MNT "/user.slice", num(2 * GiB), "max", .usage = 1500 * MiB,
                .active = 100 * MiB, .inactive = 100 * MiB},
               {V2MNT "/user.slice/x", "max", "max", .usage = 400 * MiB});
    read_view(0);
    EXPECT_VIEW(2 * GiB, 1300 * MiB, MMVI_MEM_CGROUP_V2, 1, 0);
}

Test(v2, memory_high_below_memory_max)
{
    SLICE_TREE(OPEN_SLICE,
               {V2MNT "/user.slice/x", num(1 * GiB), num(768 * MiB), .usage = 500 * MiB});
    read_view(0);
    EXPECT_VIEW(768 * MiB, 500 * MiB, MMVI_MEM_CGROUP_V2, 0, 1);
    cr_expect_str_eq(mmvi_mem_source_name(&view), "cgroup v2 memory.high");
}

Test(v2, memory_high_alone)
{
    SLICE_TREE(OPEN_SLICE, {V2MNT "/user.slice/x", "max", num(600 * MiB), .usage = 500 * MiB});
    read_view(0);
    EXPECT_VIEW(600 * MiB, 500 * MiB, MMVI_MEM_CGROUP_V2, 0, 1);
}

Test(v2, memory_high_equal_to_memory_max_is_max)
{
    V2_TREE("/x", {V2MNT "/x", num(1 * GiB), num(1 * GiB), .usage = 500 * MiB});
    read_view(0);
    EXPECT_VIEW(1 * GiB, 500 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(v2, memory_high_on_the_parent_below_the_leafs_max)
{
    SLICE_TREE({V2MNT "/user.slice", "max", num(1 * GiB), .usage = 900 * MiB},   /* room 124 */
               {V2MNT "/user.slice/x", num(2 * GiB), "max", .usage = 800 * MiB}); /* room 1248 */
    read_view(0);
    EXPECT_VIEW(1 * GiB, 900 * MiB, MMVI_MEM_CGROUP_V2, 1, 1);
}

Test(v2, max_everywhere_means_no_limit)
{
    SLICE_TREE(OPEN_SLICE, {V2MNT "/user.slice/x", "max", "max", .usage = 400 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 2);
    EXPECT_HOST();
}

Test(v2, dirty_and_writeback_count_as_used)
{
    v2_machine("/x");
    /* all file pages dirty or under writeback: nothing can be dropped */
    V2_DIRS({V2MNT "/x", num(1 * GiB), "max", .usage = 700 * MiB, .active = 100 * MiB,
             .inactive = 100 * MiB, .dirty = 150 * MiB, .writeback = 50 * MiB});
    read_view(0);
    EXPECT_VIEW(1 * GiB, 700 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(v2, no_memory_stat_counts_all_of_current)
{
    v2_machine("/x");
    mkdirs(V2MNT "/x");
    put(V2MNT "/x/memory.max", "%llu\n", 1 * GiB);
    put(V2MNT "/x/memory.current", "%llu\n", 321 * MiB);
    read_view(0);
    EXPECT_VIEW(1 * GiB, 321 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(v2, no_memory_current_counts_zero)
{
    v2_machine("/x");
    mkdirs(V2MNT "/x");
    put(V2MNT "/x/memory.max", "%llu\n", 1 * GiB);
    put(V2MNT "/x/memory.stat", "active_file 5\ninactive_file 5\n");
    read_view(0);
    EXPECT_VIEW(1 * GiB, 0, MMVI_MEM_CGROUP_V2, 0, 0);
}

/* ---- 5. container views --------------------------------------------------------------------- */

TestSuite(container, .init = setup, .fini = teardown);

Test(container, v2_cgroup_namespace_limit_on_the_mount_point)
{
    host8g();
    put("/proc/self/cgroup", "0::/\n");
    put("/proc/self/mountinfo",
        "612 540 0:68 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/l/A:/l/B,"
        "upperdir=/u,workdir=/w\n"
        "613 612 0:70 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        "614 612 0:71 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n"
        "617 612 0:73 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
        "618 617 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,"
        "nsdelegate,memory_recursiveprot\n");
    V2_DIRS({V2MNT, num(512 * MiB), "max", .usage = 200 * MiB, .active = 10 * MiB,
             .inactive = 20 * MiB, .dirty = 1 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 2);
    cr_assert_eq(src.levels, 1);
    EXPECT_DIR(0, V2MNT);
    EXPECT_VIEW(512 * MiB, 171 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(container, v2_cgroup_namespace_in_a_child_cgroup)
{
    V2_TREE("/init", {V2MNT, num(512 * MiB), "max", .usage = 200 * MiB},
            {V2MNT "/init", "max", "max", .usage = 150 * MiB});
    read_view(0);
    cr_assert_eq(src.levels, 2);
    EXPECT_VIEW(512 * MiB, 200 * MiB, MMVI_MEM_CGROUP_V2, 1, 0);
}

Test(container, v1_docker_without_namespace)
{
    host8g();
    put("/proc/self/cgroup",
        "12:pids:/docker/abc\n11:memory:/docker/abc\n10:cpu,cpuacct:/docker/abc\n"
        "1:name=systemd:/docker/abc\n0::/system.slice/containerd.service\n");
    put("/proc/self/mountinfo",
        "700 650 0:90 / / rw,relatime - overlay overlay rw,lowerdir=/l/A,upperdir=/u,workdir=/w\n"
        "701 700 0:93 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        "705 700 0:95 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
        "706 705 0:96 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755\n"
        "707 706 0:31 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime "
        "master:12 - cgroup cpu,cpuacct rw,cpu,cpuacct\n"
        "708 706 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime "
        "master:13 - cgroup memory rw,memory\n"
        "709 706 0:33 /docker/abc /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime "
        "master:14 - cgroup pids rw,pids\n");
    V1_DIRS({V1MNT, num(1 * GiB), .usage = 600 * MiB, .active = 100 * MiB, .inactive = 100 * MiB,
             .dirty = 20 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 1);
    cr_assert_eq(src.levels, 1);
    EXPECT_DIR(0, V1MNT);
    EXPECT_VIEW(1 * GiB, 420 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(container, v1_docker_without_namespace_in_a_child_cgroup)
{
    host8g();
    cgroup_v1("/docker/abc/worker");
    mountinfo_v1("/docker/abc");
    V1_DIRS({V1MNT, num(1 * GiB), .usage = 600 * MiB},
            {V1MNT "/worker", V1_UNLIMITED, .usage = 500 * MiB});
    read_view(0);
    cr_assert_eq(src.levels, 2);
    EXPECT_DIR(0, V1MNT "/worker");
    EXPECT_VIEW(1 * GiB, 600 * MiB, MMVI_MEM_CGROUP_V1, 1, 0);
}

Test(container, v2_docker_without_namespace)
{
    host8g();
    put("/proc/self/cgroup", "0::/system.slice/docker-abc.scope\n");
    mountinfo_v2("/system.slice/docker-abc.scope");
    V2_DIRS({V2MNT, num(768 * MiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_assert_eq(src.levels, 1);
    EXPECT_VIEW(768 * MiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(container, mount_root_is_only_a_prefix_of_the_name)
{
    /* mount root /docker/abc does not contain /docker/abcdef: not stripped; that path is not
     * under the mount, so the mount point is used */
    host8g();
    cgroup_v1("/docker/abcdef");
    mountinfo_v1("/docker/abc");
    V1_DIRS({V1MNT, num(1 * GiB), .usage = 600 * MiB});
    read_view(0);
    cr_assert_eq(src.levels, 1);
    EXPECT_DIR(0, V1MNT);
    EXPECT_VIEW(1 * GiB, 600 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(container, path_the_mount_does_not_show_falls_back_to_the_mount_point)
{
    V1_TREE("/kubepods/burstable/pod1/x", {V1MNT, num(2 * GiB), .usage = 700 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 1);
    cr_assert_eq(src.levels, 1);
    EXPECT_DIR(0, V1MNT);
    EXPECT_VIEW(2 * GiB, 700 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(container, v2_path_the_mount_does_not_show_falls_back_to_the_mount_point)
{
    V2_TREE("/kubepods/x", {V2MNT, num(2 * GiB), "max", .usage = 700 * MiB});
    read_view(0);
    cr_assert_eq(src.levels, 1);
    EXPECT_VIEW(2 * GiB, 700 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(container, v1_not_mounted_gives_the_host)
{
    host8g();
    cgroup_v1("/docker/abc");
    put("/proc/self/mountinfo",
        MI_BASE "31 22 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
                "34 31 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
    V1_DIRS({V1MNT "/docker/abc", num(256 * MiB), .usage = 100 * MiB},
            {V1MNT, num(256 * MiB), .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    cr_expect_eq(src.levels, 0);
    EXPECT_HOST();
}

Test(container, v2_not_mounted_gives_the_host)
{
    host8g();
    put("/proc/self/cgroup", "0::/\n");
    put("/proc/self/mountinfo", MI_BASE);
    V2_DIRS({V2MNT, num(256 * MiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    EXPECT_HOST();
}

Test(container, no_mountinfo_gives_the_host)
{
    host8g();
    put("/proc/self/cgroup", "0::/\n");
    V2_DIRS({V2MNT, num(256 * MiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    EXPECT_HOST();
}

Test(container, mounted_but_the_folder_is_missing_gives_the_host)
{
    v2_machine("/x");
    read_view(0);
    cr_expect_eq(src.version, 0);
    EXPECT_HOST();
}

/* ---- 6. hybrid machines --------------------------------------------------------------------- */

TestSuite(hybrid, .init = setup, .fini = teardown);

/* v1 memory controller in /a, unified hierarchy (at /sys/fs/cgroup/unified) with a tighter
 * memory.max in /a: the v1 controller is the one that limits. */
static void hybrid_tree(void)
{
    host8g();
    mountinfo_v1("/");
    V1_DIRS({V1MNT "/a", num(1 * GiB), .usage = 300 * MiB});
    V2_DIRS({"/sys/fs/cgroup/unified/a", num(256 * MiB), "max", .usage = 100 * MiB});
}

Test(hybrid, v1_wins)
{
    hybrid_tree();
    put("/proc/self/cgroup", "4:memory:/a\n1:name=systemd:/a\n0::/a\n");
    read_view(0);
    cr_assert_eq(src.version, 1);
    EXPECT_DIR(0, V1MNT "/a");
    EXPECT_VIEW(1 * GiB, 300 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(hybrid, v1_wins_when_listed_after_the_v2_line)
{
    hybrid_tree();
    put("/proc/self/cgroup", "0::/a\n1:name=systemd:/a\n4:memory:/a\n");
    read_view(0);
    cr_assert_eq(src.version, 1);
    EXPECT_VIEW(1 * GiB, 300 * MiB, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(hybrid, v2_line_without_a_v1_memory_line_is_v2)
{
    /* v1 hierarchies for other controllers only: the memory controller is on v2 */
    host8g();
    put("/proc/self/cgroup", "3:cpuset:/\n2:cpu,cpuacct:/a\n1:name=systemd:/a\n0::/a\n");
    mountinfo_v2("/");
    V2_DIRS({V2MNT "/a", num(256 * MiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 2);
    EXPECT_VIEW(256 * MiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

/* ---- 7. the user's limit -------------------------------------------------------------------- */

TestSuite(user, .init = setup, .fini = teardown);

static void user_tree(void)
{
    V2_TREE("/x", {V2MNT "/x", num(1 * GiB), "max", .usage = 200 * MiB}); /* room 824 MiB */
}

Test(user, user_limit_with_least_headroom_wins)
{
    user_tree();
    status(400 * 1024); /* RssAnon 400 MiB of 512 MiB: room 112 MiB */
    read_view(512 * MiB);
    EXPECT_VIEW(512 * MiB, 400 * MiB, MMVI_MEM_USER, 0, 0);
    cr_expect_str_eq(mmvi_mem_source_name(&view), "MMVEC_MEMORY_LIMIT");
}

Test(user, cgroup_with_less_headroom_beats_the_user_limit)
{
    user_tree();
    status(10 * 1024); /* room 1014 MiB of a 1 GiB user limit */
    read_view(1 * GiB);
    EXPECT_VIEW(1 * GiB, 200 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(user, user_limit_against_the_host_alone)
{
    host8g();
    status(3 * 1024 * 1024); /* 3 GiB of a 4 GiB limit: room 1 GiB < the host's 6 GiB */
    read_view(4 * GiB);
    EXPECT_VIEW(4 * GiB, 3 * GiB, MMVI_MEM_USER, 0, 0);
}

Test(user, zero_is_no_user_limit)
{
    user_tree();
    status(900 * 1024);
    read_view(0);
    EXPECT_VIEW(1 * GiB, 200 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(user, rss_anon_above_the_user_limit_is_no_headroom)
{
    user_tree();
    status(600 * 1024);
    read_view(512 * MiB);
    EXPECT_VIEW(512 * MiB, 600 * MiB, MMVI_MEM_USER, 0, 0);
}

Test(user, no_status_ignores_the_user_limit)
{
    user_tree();
    read_view(1 * MiB);
    EXPECT_VIEW(1 * GiB, 200 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

/* ---- 8. a cgroup limit above MemTotal -------------------------------------------------------- */

TestSuite(memtotal, .init = setup, .fini = teardown);

Test(memtotal, v1_limit_above_memtotal_is_the_host)
{
    V1_TREE("/a", {V1MNT "/a", num(32 * GiB), .usage = 1 * GiB});
    read_view(0);
    cr_expect_eq(src.version, 1);
    EXPECT_HOST();
}

Test(memtotal, v2_max_above_memtotal_is_the_host)
{
    V2_TREE("/x", {V2MNT "/x", num(16 * GiB), num(12 * GiB), .usage = 2 * GiB});
    read_view(0);
    EXPECT_HOST();
}

Test(memtotal, equal_headroom_keeps_the_host)
{
    /* room 6 GiB, as the host's */
    V2_TREE("/x", {V2MNT "/x", num(7 * GiB), "max", .usage = 1 * GiB});
    read_view(0);
    EXPECT_HOST();
}

/* ---- 9. garbage ----------------------------------------------------------------------------- */

TestSuite(garbage, .init = setup, .fini = teardown);

Test(garbage, limit_files_that_are_not_numbers_are_no_limit)
{
    /* the one real limit is the mount point's: room 2 GiB */
    V1_TREE("/a/b/c/d", {V1MNT, num(3 * GiB), .usage = 1 * GiB},
            {V1MNT "/a", "garbage", .usage = 100 * MiB}, {V1MNT "/a/b", "-1", .usage = 100 * MiB},
            {V1MNT "/a/b/c", "99999999999999999999999999", .usage = 100 * MiB},
            {V1MNT "/a/b/c/d", .usage = 100 * MiB});
    put(V1MNT "/a/b/c/d/memory.limit_in_bytes", "%s", ""); /* empty */
    read_view(0);
    cr_assert_eq(src.levels, 5);
    EXPECT_VIEW(3 * GiB, 1 * GiB, MMVI_MEM_CGROUP_V1, 4, 0);
}

Test(garbage, binary_limit_files_are_no_limit)
{
    V2_TREE("/a/b", {V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB},
            {V2MNT "/a/b", .usage = 50 * MiB});
    static const unsigned char bin[] = {0xff, 0xfe, 0x00, 0x31, 0x32, 0x80, 0x0a};
    put_bytes(V2MNT "/a/b/memory.max", bin, sizeof bin);
    put_bytes(V2MNT "/a/b/memory.high", "\0\0\0\0", 4);
    read_view(0);
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 1, 0);
}

Test(garbage, a_folder_in_place_of_a_file_is_ignored)
{
    V2_TREE("/a/b", {V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB},
            {V2MNT "/a/b", .usage = 50 * MiB});
    mkdirs(V2MNT "/a/b/memory.max"); /* read() gives EISDIR */
    cr_assert_eq(unlink(cat(root, V2MNT "/a/memory.stat")), 0);
    mkdirs(V2MNT "/a/memory.stat");
    read_view(0);
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 1, 0);
}

Test(garbage, usage_that_is_not_a_number_counts_zero)
{
    V1_TREE("/a", {V1MNT "/a", num(1 * GiB), .usage = 0, .active = 10 * MiB});
    put(V1MNT "/a/memory.usage_in_bytes", "n/a\n");
    read_view(0);
    EXPECT_VIEW(1 * GiB, 0, MMVI_MEM_CGROUP_V1, 0, 0);
}

Test(garbage, memory_stat_garbage_removes_nothing)
{
    V2_TREE("/a", {V2MNT "/a", num(1 * GiB), "max", .usage = 300 * MiB});
    put(V2MNT "/a/memory.stat",
        "active_file lots\ninactive_file\nfile_dirty x\nactive_file_x 5\n"
        "\xff\xfe\x01 inactive_file 99999\nxinactive_file 1000\n");
    read_view(0);
    EXPECT_VIEW(1 * GiB, 300 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(garbage, binary_memory_stat_removes_nothing)
{
    V2_TREE("/a", {V2MNT "/a", num(1 * GiB), "max", .usage = 300 * MiB});
    unsigned char bin[6000];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 131 + 7);
    put_bytes(V2MNT "/a/memory.stat", bin, sizeof bin);
    read_view(0);
    cr_expect_eq(view.limit, 1 * GiB);
    cr_expect_leq(view.usage, 300 * MiB);
    cr_expect_eq(view.source, MMVI_MEM_CGROUP_V2);
}

Test(garbage, memory_stat_larger_than_the_buffer)
{
    /* 20 kB of keys before the ones that count: they are beyond what is read, so nothing is
     * subtracted (and nothing overflows) */
    V2_TREE("/a", {V2MNT "/a", num(1 * GiB), "max", .usage = 300 * MiB});
    static char big[32768];
    size_t n = 0;
    for (int i = 0; n < 20000; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "some_key_%d %d\n", i, i);
    n += (size_t)snprintf(big + n, sizeof big - n, "active_file %llu\n", 100 * MiB);
    put_bytes(V2MNT "/a/memory.stat", big, n);
    read_view(0);
    EXPECT_VIEW(1 * GiB, 300 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(garbage, meminfo_without_numbers_is_no_host_limit)
{
    put("/proc/meminfo", "MemTotal: lots kB\nMemAvailable: some kB\n");
    read_view(0);
    EXPECT_VIEW(UINT64_MAX, 0, MMVI_MEM_HOST, 0, 0);
}

Test(garbage, empty_and_binary_meminfo)
{
    put("/proc/meminfo", "%s", "");
    read_view(0);
    EXPECT_VIEW(UINT64_MAX, 0, MMVI_MEM_HOST, 0, 0);
    put_bytes("/proc/meminfo", "\x01\x02MemTotal\x00 5 kB", 16);
    read_view(0);
    EXPECT_VIEW(UINT64_MAX, 0, MMVI_MEM_HOST, 0, 0);
}

Test(garbage, meminfo_keys_that_only_look_alike)
{
    put("/proc/meminfo", "XMemTotal: 100 kB\nMemTotalX: 200 kB\nMemTotal: 1000 kB\n"
                         "MemAvailable: 400 kB\n");
    read_view(0);
    EXPECT_VIEW(1000 * KiB, 600 * KiB, MMVI_MEM_HOST, 0, 0);
}

Test(garbage, proc_self_cgroup_garbage_gives_the_host)
{
    static const char *const texts[] = {
        "", "\n\n\n", "no colons at all\n", "one:colon\n", ":::\n", "0:\n", "memory\n",
        "4:memory\n0:", "4:memoryx:/a\n4:xmemory:/a\n4:name=memory:/a\n", "1:0::/a\n",
        "\xff\xfe\x00\x01",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        teardown();
        setup();
        host8g();
        put_bytes("/proc/self/cgroup", texts[i], strlen(texts[i]));
        mountinfo_v1("/");
        V1_DIRS({V1MNT, num(1 * GiB), .usage = 100 * MiB},
                {V1MNT "/a", num(1 * GiB), .usage = 100 * MiB});
        read_view(0);
        cr_expect_eq(src.version, 0, "text %zu: version %d", i, src.version);
        EXPECT_HOST();
    }
}

Test(garbage, cgroup_path_longer_than_the_buffers)
{
    host8g();
    char path[2100] = "";
    for (int i = 0; i < 100; i++)
        strcat(path, "/abcdefghijklmnopqrs"); /* 2000 characters */
    put("/proc/self/cgroup", "0::%s\n", path);
    mountinfo_v2("/");
    V2_DIRS({V2MNT, num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    EXPECT_HOST();
}

Test(garbage, deep_cgroup_folder_whose_name_is_too_long_for_dir)
{
    /* the path fits the cgroup buffer and the folder exists, but <root><mount><path> does not
     * fit in dir[]: no cgroup */
    host8g();
    char path[600] = "";
    for (int i = 0; i < 20; i++)
        strcat(path, "/abcdefghijklmnopqrstuvw"); /* 20 levels of 24 = 480 characters */
    put("/proc/self/cgroup", "0::%s\n", path);
    mountinfo_v2("/");
    V2_DIRS({cat(V2MNT, path), num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    EXPECT_HOST();
}

Test(garbage, more_levels_than_kept)
{
    /* 20 levels: the 16 nearest the process are kept (MMVI_MEM_LEVELS), no crash */
    host8g();
    char path[200] = "";
    for (int i = 0; i < 20; i++)
        strcat(path, "/l");
    put("/proc/self/cgroup", "0::%s\n", path);
    mountinfo_v2("/");
    V2_DIRS({cat(V2MNT, path), num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 2);
    cr_expect_leq(src.levels, MMVI_MEM_LEVELS);
    EXPECT_DIR(0, cat(V2MNT, path));
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(garbage, mountinfo_garbage_lines_before_the_real_one)
{
    host8g();
    put("/proc/self/cgroup", "0::/a\n");
    put("/proc/self/mountinfo",
        "\n"
        "short line\n"
        "1 2 3 /bogus /sys/fs/cgroup/bogus opts no dash cgroup2 cgroup2 rw\n"
        "1 2 3 /root /mnt opts - cgroup2x cgroup2 rw\n"
        "1 2 3 / /sys/fs/cgroup/tmp rw - tmpfs cgroup2 rw\n"
        "1 2 3 / /sys/fs/cgroup/v1 rw - cgroup cgroup rw,cpu\n"
        "\xff\xfe\x01\x02 - \x03\n"
        "31 22 0:27 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n");
    V2_DIRS({V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_assert_eq(src.version, 2);
    EXPECT_DIR(0, V2MNT "/a");
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

Test(garbage, mountinfo_garbage_only_gives_the_host)
{
    host8g();
    put("/proc/self/cgroup", "0::/a\n");
    static const unsigned char bin[] = {0x20, 0x2d, 0x20, 0xff, 0x00, 0x63, 0x67, 0x0a};
    put_bytes("/proc/self/mountinfo", bin, sizeof bin);
    V2_DIRS({V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 0);
    EXPECT_HOST();
}

Test(garbage, status_without_rss_anon_counts_zero)
{
    host8g();
    put("/proc/self/status", "Name:\tx\nVmRSS:\t 5000000 kB\nRssAnonX:\t 999999 kB\n");
    read_view(1 * GiB);
    EXPECT_VIEW(1 * GiB, 0, MMVI_MEM_USER, 0, 0); /* room 1 GiB < the host's 6 GiB */
}

Test(garbage, root_that_does_not_exist)
{
    tu_rm_rf(root);
    snprintf(root, sizeof root, "/nonexistent/mmvec-memlimit");
    mmvi_memsrc_open(&src, root);
    cr_expect_eq(src.version, 0);
    cr_expect_eq(mmvi_memview_read(&src, 1 * GiB, &view), -ENOENT);
    EXPECT_VIEW(UINT64_MAX, 0, MMVI_MEM_HOST, 0, 0);
    root[0] = '\0'; /* nothing for teardown */
}

/* ---- bugs: each test below fails on the code it was written against -------------------------- */

TestSuite(bugs, .init = setup, .fini = teardown);

/* Bug: /proc/self/mountinfo is a seq_file: one read() returns at most about a page (4 KiB on
 * x86-64; measured: 4054 of 6163 bytes in a namespace with 80 extra mounts), however large the
 * buffer. mmvi_memsrc_open reads it with one read() (mmvi_os_read_file), so when the cgroup
 * mount comes after the first page (a long overlay root line with many layers, many mounts),
 * no cgroup is found and only the host's figures count. Here the fixture is a FIFO fed in two
 * writes: the second only once the first has been read, as the kernel does. */
static pid_t feeder;

static void kill_feeder(void)
{
    if (feeder > 0) {
        kill(feeder, SIGKILL);
        waitpid(feeder, NULL, 0);
        feeder = 0;
    }
}

Test(bugs, mountinfo_delivered_in_several_reads)
{
    host8g();
    put("/proc/self/cgroup", "0::/a\n");
    V2_DIRS({V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB});
    /* about 4000 bytes of whole lines (a seq_file read ends on a record), then the cgroup2 one */
    static char first[4096], rest[512];
    size_t n1 = 0;
    for (int i = 0; n1 < 3900; i++)
        n1 += (size_t)snprintf(first + n1, sizeof first - n1,
                               "%d 28 0:%d / /srv/volume-%03d rw,relatime shared:%d - tmpfs "
                               "tmpfs rw,size=1024k\n",
                               100 + i, 100 + i, i, 100 + i);
    cr_assert_lt(n1, 4096);
    size_t n2 = (size_t)snprintf(rest, sizeof rest,
                                 "31 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime "
                                 "shared:9 - cgroup2 cgroup2 rw,nsdelegate\n");
    char path[256];
    snprintf(path, sizeof path, "%s/proc/self/mountinfo", root);
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
    feeder = fork();
    cr_assert_geq(feeder, 0);
    if (feeder == 0) {
        signal(SIGPIPE, SIG_DFL);
        int fd = open(path, O_WRONLY);
        if (fd < 0 || write(fd, first, n1) != (ssize_t)n1)
            _exit(1);
        for (int waited = 0, left = 1; left > 0 && waited < 10000; waited++) {
            if (ioctl(fd, FIONREAD, &left) != 0)
                _exit(1);
            if (left > 0)
                usleep(1000);
        }
        if (write(fd, rest, n2) != (ssize_t)n2)
            _exit(1);
        close(fd);
        _exit(0);
    }
    mmvi_memsrc_open(&src, root);
    kill_feeder();
    cr_expect_eq(src.version, 2, "the cgroup2 mount after the first read was not found");
    mmvi_memview_read(&src, 0, &view);
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

/* Bug: stat_value parses with strtoull, which accepts a minus sign and negates: a negative
 * figure in memory.stat is not ignored as garbage but wraps around. memory.current 300 MiB,
 * active_file 50 MiB, inactive_file "-104857600": expected usage 250 MiB (the garbage figure
 * ignored); got 0 (the cache wraps to nearly 2^64 and is all "droppable"). */
Test(bugs, negative_memory_stat_figure_is_garbage)
{
    V2_TREE("/a", {V2MNT "/a", num(1 * GiB), "max", .usage = 300 * MiB, .active = 50 * MiB});
    put(V2MNT "/a/memory.stat", "anon 1\nfile_dirty 0\nfile_writeback 0\n"
                                "inactive_file -104857600\nactive_file %llu\n",
        50 * MiB);
    read_view(0);
    EXPECT_VIEW(1 * GiB, 250 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}

/* Bug: read_number only checks the first character: "4096abc" in memory.max is read as a
 * 4096-byte limit (all headroom gone) instead of garbage, i.e. no limit. Expected the parent's
 * 1 GiB (level 1); got limit 4096 at level 0. */
Test(bugs, number_with_trailing_garbage_is_garbage)
{
    V2_TREE("/a/b", {V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB},
                    {V2MNT "/a/b", "4096abc", "max", .usage = 50 * MiB});
    read_view(0);
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 1, 0);
}

/* Bug: stat_value skips one character after "key:" besides the colon (p + k + 1 + 1), which
 * strtoull would skip anyway if it were blank, but which is the first digit when the number
 * follows the colon directly. "MemTotal:8388608 kB" is read as 388608 kB. (The kernel always
 * writes blanks there, so this only matters for other writers of such files.) */
Test(bugs, key_colon_number_without_blank)
{
    put("/proc/meminfo", "MemTotal:8388608 kB\nMemAvailable:6291456 kB\n");
    read_view(0);
    EXPECT_VIEW(8 * GiB, 2 * GiB, MMVI_MEM_HOST, 0, 0);
}

/* Bug: cgroup_mount reads the root and mount point fields with sscanf("%511s %511s"): a field
 * longer than 511 characters is cut (the rest of it is swallowed by the next %*s), and the line
 * still matches; as the first matching line is taken and no other is tried, the real cgroup2
 * mount after it is ignored. A cgroup2 mount at a 600-character path, then the one at
 * /sys/fs/cgroup: expected the cgroup's 1 GiB limit (v2); got the host's figures (version 0). */
Test(bugs, mountinfo_line_with_a_field_too_long_is_skipped)
{
    host8g();
    put("/proc/self/cgroup", "0::/a\n");
    char longpath[602];
    longpath[0] = '/';
    memset(longpath + 1, 'x', 600);
    longpath[601] = '\0';
    put("/proc/self/mountinfo",
        MI_BASE "40 22 0:40 / %s rw,relatime - cgroup2 cgroup2 rw\n"
                "31 22 0:27 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n",
        longpath);
    V2_DIRS({V2MNT "/a", num(1 * GiB), "max", .usage = 100 * MiB});
    read_view(0);
    cr_expect_eq(src.version, 2);
    EXPECT_VIEW(1 * GiB, 100 * MiB, MMVI_MEM_CGROUP_V2, 0, 0);
}
