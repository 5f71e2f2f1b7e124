/* Fault injection for the allocator (issue 5) and its failure rules (issue 3): a segment that
 * cannot be made never crashes the program; the request falls back to RAM (jemalloc), counted
 * and warned once, or fails with ENOMEM under MMVEC_STRICT=1.
 *
 * Faults: MMVEC_DIR under/at a regular file, a symlink, another user's directory; a full tmpfs;
 * few file descriptors; the directory removed or made read-only while running;
 * vm.max_map_count; kill -9 of processes holding blocks; bad MMVEC_* values. Tests that need
 * root (mount, chown, immutable flag) skip with the reason otherwise. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)

static char tmp[64];
static char segdir[128];
static char mnt[128];       /* a tmpfs mounted by the test, detached in teardown */
static char shm[64];        /* a second directory, in /dev/shm, for the many-files tests */
static char immutable[4096]; /* a folder made immutable by the test, cleared in teardown */
static int saved_stderr = -1;
static void *eaten;         /* memory maps used up by a test, given back in teardown */
static size_t eaten_len;

static void setup(void)
{
    static const char *const vars[] = {"MMVEC_THRESHOLD", "MMVEC_DIR", "MMVEC_STRICT",
                                       "MMVEC_UNLINK", "MMVEC_DISABLE", "MMVEC_STATS",
                                       "MMVEC_LOG", "MMVEC_FORK", "MMVEC_CACHE",
                                       "MMVEC_CACHE_DECAY_MS", "MMVEC_RESERVE", "MMVEC_ADVICE",
                                       "MMVEC_WRITEBACK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp/mmvec-afault-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tmp);
    setenv("MMVEC_DIR", segdir, 1);
    setenv("MMVEC_THRESHOLD", "64K", 1);
}

static void set_flags(const char *path, int on)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int flags = 0;
    if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    if (fd >= 0)
        close(fd);
}

static void teardown(void)
{
    /* Each step is undone once: TU_SKIP runs this before skipping. */
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
    if (eaten)
        munmap(eaten, eaten_len); /* else nothing below could open a directory */
    eaten = NULL;
    if (immutable[0])
        set_flags(immutable, 0);
    immutable[0] = '\0';
    if (mnt[0])
        umount2(mnt, MNT_DETACH);
    mnt[0] = '\0';
    tu_rm_rf(tmp);
    tu_rm_rf(shm);
}

TestSuite(faults, .init = setup, .fini = teardown);

/* ---- tools ---- */

static bool intact(const void *p, size_t n, unsigned seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != tu_pat(seed, i))
            return false;
    return true;
}

static mmv_stats stats(void)
{
    mmv_stats s;
    cr_assert_eq(mmv_stats_get(&s), 0);
    return s;
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Lines of text that contain `needle` (all lines for NULL). */
static int lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!needle || memmem(line, len, needle, strlen(needle)))
            n++;
        line += len + (end ? 1 : 0);
    }
    return n;
}

/* Sends this process's stderr to a file until captured() reads it back. */
static void capture_stderr(void)
{
    char path[160];
    snprintf(path, sizeof path, "%s/stderr.txt", tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static const char *captured(void)
{
    static char text[8192];
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    char path[160];
    snprintf(path, sizeof path, "%s/stderr.txt", tmp);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    tu_read_fd(fd, text, sizeof text);
    close(fd);
    return text;
}

/* ---- an unusable directory ---- */

/* Large requests still get memory, from RAM: writable, reallocatable, freeable. */
static void expect_fallback(void)
{
    capture_stderr();
    unsigned char *p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = mmv_malloc(2 * M + (size_t)i * 12345);
        cr_assert_not_null(p[i]);
        cr_assert(!mmv_owns(p[i]));
        tu_fill(p[i], 2 * M, (unsigned)i);
    }
    unsigned char *z = mmv_calloc(1, 3 * M);
    cr_assert_not_null(z);
    cr_assert_eq(z[0] | z[3 * M - 1], 0);
    p[0] = mmv_realloc(p[0], 8 * M);
    cr_assert_not_null(p[0]);
    for (int i = 0; i < 3; i++) {
        cr_assert(intact(p[i], 2 * M, (unsigned)i));
        mmv_free(p[i]);
    }
    mmv_free(z);
    const char *err = captured();
    mmv_stats s = stats();
    cr_assert_geq(s.fallbacks, 4);
    cr_assert_geq(s.fallback_dir, 4);
    cr_assert_eq(s.blocks_made, 0);
    /* One cause, one line: the directory warning and the fallback warning were once two. */
    cr_assert_eq(lines_with(err, NULL), 1, "one warning line, got:\n%s", err);
    cr_assert_eq(lines_with(err, "mmvec"), 1, "%s", err);
}

/* MMVEC_STRICT=1: NULL and ENOMEM instead of RAM; small requests are unaffected. */
static void expect_strict_enomem(void)
{
    setenv("MMVEC_STRICT", "1", 1);
    capture_stderr();
    errno = 0;
    cr_assert_null(mmv_malloc(2 * M));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(mmv_calloc(2, M));
    cr_assert_eq(errno, ENOMEM);
    void *a = (void *)0x77;
    cr_assert_eq(mmv_posix_memalign(&a, 4096, 2 * M), ENOMEM);
    cr_assert_eq(a, (void *)0x77);
    void *s = mmv_malloc(1000);
    cr_assert_not_null(s);
    s = mmv_realloc(s, 2000);
    cr_assert_not_null(s);
    errno = 0;
    void *big = mmv_realloc(s, 4 * M); /* crossing up fails; s stays valid */
    cr_assert_null(big);
    cr_assert_eq(errno, ENOMEM);
    mmv_free(s);
    captured();
    cr_assert_geq(stats().fallback_dir, 3);
}

/* MMVEC_DIR = <tmp>/file/seg, where <tmp>/file is a regular file: ENOTDIR. */
static void dir_under_a_file(void)
{
    char file[160];
    snprintf(file, sizeof file, "%s/file", tmp);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(segdir, sizeof segdir, "%s/file/seg", tmp);
    setenv("MMVEC_DIR", segdir, 1);
}

Test(faults, dir_under_a_regular_file_falls_back)
{
    dir_under_a_file();
    expect_fallback();
}

Test(faults, dir_under_a_regular_file_strict_gives_enomem)
{
    dir_under_a_file();
    expect_strict_enomem();
}

Test(faults, dir_that_is_a_regular_file_falls_back)
{
    int fd = open(segdir, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    expect_fallback();
    struct stat st;
    cr_assert_eq(stat(segdir, &st), 0);
    cr_assert(S_ISREG(st.st_mode) && st.st_size == 0, "the file is left alone");
}

/* The heap folder in MMVEC_DIR is a symlink to a good directory of ours: refused all the same
 * (someone else may have made it). MMVEC_DIR itself may be a symlink: the user named it. */
static void dir_symlink(char *target, size_t size)
{
    snprintf(target, size, "%s/real", tmp);
    cr_assert_eq(mkdir(target, 0700), 0);
    cr_assert_eq(mkdir(segdir, 0700), 0);
    cr_assert_eq(symlink(target, tu_heap_dir(segdir)), 0);
}

Test(faults, dir_symlink_is_refused)
{
    char target[160];
    dir_symlink(target, sizeof target);
    expect_fallback();
    DIR *d = opendir(target);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        entries += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(entries, 0, "nothing is made through the symlink");
}

Test(faults, dir_symlink_strict_gives_enomem)
{
    char target[160];
    dir_symlink(target, sizeof target);
    expect_strict_enomem();
}

/* The heap folder belongs to another user (MMVEC_DIR itself may: /tmp is root's). */
static bool dir_of_another_user(void)
{
    if (geteuid() != 0)
        return false;
    cr_assert_eq(mkdir(segdir, 0700), 0);
    cr_assert_eq(mkdir(tu_heap_dir(segdir), 0700), 0);
    cr_assert_eq(chown(tu_heap_dir(segdir), 65534, 65534), 0);
    return true;
}

Test(faults, dir_of_another_user_is_refused)
{
    if (!dir_of_another_user())
        TU_SKIP(teardown, "needs root to chown a directory to another user (uid 65534)");
    expect_fallback();
}

Test(faults, dir_of_another_user_strict_gives_enomem)
{
    if (!dir_of_another_user())
        TU_SKIP(teardown, "needs root to chown a directory to another user (uid 65534)");
    expect_strict_enomem();
}

/* ---- the directory goes away, or turns read-only, while the program runs ---- */

Test(faults, dir_removed_while_running)
{
    setenv("MMVEC_CACHE", "0", 1);
    unsigned char *first = mmv_malloc(2 * M);
    cr_assert(mmv_owns(first));
    tu_fill(first, 2 * M, 1);
    cr_assert_eq(tu_rm_rf_checked(segdir), 0);
    cr_assert(!exists(segdir));
    capture_stderr();
    unsigned char *later[4];
    for (int i = 0; i < 4; i++) {
        later[i] = mmv_malloc(3 * M);
        cr_assert_not_null(later[i]);
        tu_fill(later[i], 3 * M, 10 + (unsigned)i);
    }
    cr_assert(intact(first, 2 * M, 1), "the mapping outlives its file");
    tu_fill(first, 2 * M, 2);
    first = mmv_realloc(first, 16 * M); /* its file is gone: the data moves to RAM */
    cr_assert_not_null(first);
    cr_assert(intact(first, 2 * M, 2));
    for (int i = 0; i < 4; i++) {
        cr_assert(intact(later[i], 3 * M, 10 + (unsigned)i));
        mmv_free(later[i]);
    }
    mmv_free(first);
    captured();
    cr_assert_geq(stats().fallbacks, 4);
}

/* Read-only, the root-proof way: the immutable attribute on this process's folder. */
Test(faults, dir_made_read_only_while_running)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to set the immutable attribute");
    unsigned char *first = mmv_malloc(2 * M);
    cr_assert(mmv_owns(first));
    tu_fill(first, 2 * M, 1);
    char path[4096];
    cr_assert_eq(mmv_block_path(first, immutable, sizeof immutable), 0);
    *strrchr(immutable, '/') = '\0';
    set_flags(immutable, 1);
    cr_assert_lt(strlen(immutable), sizeof path - 8);
    memcpy(path, immutable, strlen(immutable));
    strcpy(path + strlen(immutable), "/probe");
    int probe = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (probe >= 0) {
        close(probe);
        TU_SKIP(teardown, "the filesystem of %s has no immutable attribute", tmp);
    }
    capture_stderr();
    unsigned char *later[4];
    for (int i = 0; i < 4; i++) {
        later[i] = mmv_malloc(3 * M);
        cr_assert_not_null(later[i]);
        cr_assert(!mmv_owns(later[i]));
        tu_fill(later[i], 3 * M, 10 + (unsigned)i);
    }
    cr_assert(intact(first, 2 * M, 1));
    for (int i = 0; i < 4; i++) {
        cr_assert(intact(later[i], 3 * M, 10 + (unsigned)i));
        mmv_free(later[i]);
    }
    mmv_free(first);
    captured();
    cr_assert_geq(stats().fallback_dir, 4);
}

/* ---- a full disk ---- */

Test(faults, full_disk_falls_back_without_sigbus)
{
    if (!tu_mount_tmpfs(mnt, sizeof mnt, tmp, "size=24m,mode=0700"))
        TU_SKIP(teardown, "cannot mount a tmpfs (needs root): the full-disk case is untested");
    setenv("MMVEC_DIR", mnt, 1);
    setenv("MMVEC_THRESHOLD", "1M", 1);
    capture_stderr();
    enum { N = 48 };
    unsigned char *b[N];
    int owned = 0, ram = 0;
    for (int i = 0; i < N; i++) {
        b[i] = i % 3 ? mmv_malloc(M) : mmv_calloc(1, M);
        cr_assert_not_null(b[i], "block %d", i);
        if (i % 3 == 0)
            cr_assert_eq(b[i][0] | b[i][M / 2] | b[i][M - 1], 0);
        /* Every byte is written right away: a block whose space was not reserved would
         * SIGBUS here. */
        tu_fill(b[i], M, (unsigned)i);
        owned += mmv_owns(b[i]);
        ram += !mmv_owns(b[i]);
    }
    cr_assert_gt(owned, 5, "the tmpfs took only %d blocks", owned);
    cr_assert_gt(ram, 5, "the tmpfs never filled (%d in RAM)", ram);
    /* Growing a file-backed block on the full disk: the data moves to RAM. */
    int grow = 0;
    while (!mmv_owns(b[grow]))
        grow++;
    b[grow] = mmv_realloc(b[grow], 32 * M);
    cr_assert_not_null(b[grow]);
    tu_fill(b[grow] + M, 31 * M, 99);
    for (int i = 0; i < N; i++)
        cr_assert(intact(b[i], M, (unsigned)i), "block %d changed", i);
    cr_assert(intact(b[grow] + M, 31 * M, 99));
    for (int i = 0; i < N; i++)
        mmv_free(b[i]);
    const char *err = captured();
    mmv_stats s = stats();
    cr_assert_geq(s.fallback_space, (uint64_t)ram, "%llu", (unsigned long long)s.fallback_space);
    /* Expected: "tmpfs is RAM" and one fallback warning; never one per block. */
    cr_assert_leq(lines_with(err, NULL), 2, "%s", err);
    cr_log_info("full tmpfs: %d blocks in files, %d in RAM; stderr:\n%s", owned, ram, err);
}

/* ---- file descriptors ---- */

/* Tens of thousands of files: made in /dev/shm when it is there, where creating and removing
 * them costs no disk work (what is tested, descriptors and maps, does not depend on the
 * filesystem). The "tmpfs is RAM" warning that this earns is expected. */
static void many_files_dir(void)
{
    struct stat st;
    if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode) || access("/dev/shm", W_OK) != 0)
        return;
    strcpy(shm, "/dev/shm/mmvec-afault-XXXXXX");
    if (!mkdtemp(shm)) {
        shm[0] = '\0';
        return;
    }
    snprintf(segdir, sizeof segdir, "%s/seg", shm);
    setenv("MMVEC_DIR", segdir, 1);
}

static int count_fds(void)
{
    return tu_count_entries("/proc/self/fd") - 1; /* the listing's own */
}

static void many_blocks_under_fd_limit(rlim_t limit, size_t count)
{
    setenv("MMVEC_THRESHOLD", "16K", 1);
    setenv("MMVEC_CACHE", "0", 1);
    many_files_dir();
    capture_stderr();
    int before = count_fds();
    if ((rlim_t)before + 8 > limit)
        TU_SKIP(teardown, "%d descriptors already open: cannot test under ulimit -n %llu", before,
                     (unsigned long long)limit);
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = limit;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    unsigned char **b = calloc(count, sizeof *b);
    cr_assert_not_null(b);
    for (size_t i = 0; i < count; i++) {
        b[i] = mmv_malloc(16 * K);
        cr_assert_not_null(b[i]);
        cr_assert(mmv_owns(b[i]), "block %zu of %zu is no file (ulimit -n %llu)", i, count,
                  (unsigned long long)limit);
        b[i][0] = (unsigned char)i;
        b[i][16 * K - 1] = (unsigned char)(i >> 8);
    }
    int during = count_fds();
    cr_assert_leq(during, before + 4, "%d descriptors open with %zu blocks", during, count);
    char path[4096];
    struct stat st;
    for (size_t i = 0; i < count; i++) {
        cr_assert_eq(b[i][0], (unsigned char)i);
        cr_assert_eq(b[i][16 * K - 1], (unsigned char)(i >> 8));
        cr_assert_eq(mmv_block_path(b[i], path, sizeof path), 0);
        cr_assert_eq(stat(path, &st), 0, "%s", path);
    }
    mmv_stats s = stats();
    cr_assert_eq(s.blocks_live, count);
    cr_assert_eq(s.fallbacks, 0);
    for (size_t i = 0; i < count; i++)
        mmv_free(b[i]);
    free(b);
    cr_assert_eq(stats().blocks_live, 0);
    const char *err = captured();
    cr_assert_eq(lines_with(err, "cannot"), 0, "%s", err);
}

Test(faults, twenty_thousand_blocks_under_ulimit_n_256)
{
    many_blocks_under_fd_limit(256, 20000);
}

Test(faults, blocks_under_ulimit_n_32)
{
    many_blocks_under_fd_limit(32, 2000);
}

/* ---- vm.max_map_count ---- */

static long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 0;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* Makes 4 KiB blocks into b (at most cap) until `enough` of them came from RAM, marking each
 * block's ends; counts file blocks and RAM blocks. Returns how many it made. */
static size_t fill_4k_blocks(unsigned char **b, size_t cap, size_t enough, size_t *owned,
                             size_t *ram)
{
    size_t n = 0;
    while (n < cap && *ram < enough) {
        b[n] = mmv_malloc(4 * K);
        cr_assert_not_null(b[n], "allocation %zu failed", n);
        b[n][0] = (unsigned char)n;
        b[n][4 * K - 1] = (unsigned char)(n >> 8);
        *owned += mmv_owns(b[n]);
        *ram += !mmv_owns(b[n]);
        n++;
    }
    return n;
}

Test(faults, max_map_count_falls_back_then_recovers)
{
    long maps = max_map_count();
    if (maps <= 0 || maps > 300000)
        TU_SKIP(teardown, "vm.max_map_count is %ld: too many blocks to reach it in a test", maps);
    setenv("MMVEC_THRESHOLD", "4K", 1);
    setenv("MMVEC_CACHE", "0", 1);
    many_files_dir();
    /* Each block takes at least one map; allocate until well past where the limit must stop
     * files (or the kernel refuses), then a little more. */
    size_t cap = (size_t)maps + 4000, n = 0, owned = 0, ram = 0;
    unsigned char **b = calloc(cap, sizeof *b);
    cr_assert_not_null(b);
    capture_stderr();
    n = fill_4k_blocks(b, cap, 2000, &owned, &ram);
    cr_assert_gt(ram, 0, "%zu blocks, all files, and no limit reached", n);
    cr_assert_gt(owned, 10000, "only %zu files before the limit", owned);
    mmv_stats s = stats();
    cr_assert_gt(s.fallback_maps, 0);
    /* Free 5000 file-backed blocks: the next requests are files again. */
    size_t freed = 0;
    for (size_t i = 0; i < n && freed < 5000; i++)
        if (b[i] && mmv_owns(b[i])) {
            mmv_free(b[i]);
            b[i] = NULL;
            freed++;
        }
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = mmv_malloc(4 * K);
        cr_assert(mmv_owns(p), "request %d after freeing is still not a file", i);
        mmv_free(p);
    }
    for (size_t i = 0; i < n; i++)
        if (b[i]) {
            cr_assert_eq(b[i][0], (unsigned char)i);
            cr_assert_eq(b[i][4 * K - 1], (unsigned char)(i >> 8));
            mmv_free(b[i]);
        }
    free(b);
    captured();
    cr_log_info("max_map_count %ld: %zu blocks in files, then %zu in RAM", maps, owned, ram);
}

/* Uses up about `n` of this process's memory maps (one PROT_READ page every other page of a
 * PROT_NONE region: each is a map of its own). Returns the region for munmap. */
static void *eat_maps(size_t n, size_t *len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = n + 2;
    *len = 2 * pages * page;
    char *p = mmap(NULL, *len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    for (size_t i = 0; i < pages / 2; i++)
        if (mprotect(p + (2 * i + 1) * page, page, PROT_READ) != 0)
            break;
    return p;
}

/* The kernel refuses maps before the allocator's own estimate of the limit says stop: mmap
 * fails with ENOMEM in the middle of making a block. */
Test(faults, kernel_map_limit_falls_back_then_recovers)
{
    long maps = max_map_count();
    if (maps <= 30000 || maps > 300000)
        TU_SKIP(teardown, "vm.max_map_count is %ld: not the range this test is made for", maps);
    setenv("MMVEC_THRESHOLD", "4K", 1);
    setenv("MMVEC_CACHE", "0", 1);
    many_files_dir();
    mmv_free(mmv_malloc(4 * K)); /* the large path is set up before the maps run out */
    /* jemalloc gets room for the fallbacks now: once the maps are gone, nothing could grow
     * it, and what is tested is the block path's refusal, not an empty heap. */
    enum { WARM = 12000 };
    void **warm = calloc(WARM, sizeof *warm);
    cr_assert_not_null(warm);
    for (int i = 0; i < WARM; i++)
        warm[i] = mmv_malloc(4 * K - 64);
    for (int i = 0; i < WARM; i++)
        mmv_free(warm[i]);
    free(warm);
    eaten = eat_maps((size_t)maps - 16000, &eaten_len);
    size_t cap = 40000, n = 0, owned = 0, ram = 0;
    unsigned char **b = calloc(cap, sizeof *b);
    cr_assert_not_null(b);
    capture_stderr();
    n = fill_4k_blocks(b, cap, 1000, &owned, &ram);
    cr_assert_gt(ram, 0, "%zu blocks, all files: the kernel never refused", n);
    cr_assert_gt(owned, 1000);
    cr_assert_gt(stats().fallbacks, 0);
    munmap(eaten, eaten_len);
    eaten = NULL;
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = mmv_malloc(4 * K);
        cr_assert(mmv_owns(p), "request %d after the maps came back is still not a file", i);
        mmv_free(p);
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(b[i][0], (unsigned char)i);
        cr_assert_eq(b[i][4 * K - 1], (unsigned char)(i >> 8));
        mmv_free(b[i]);
    }
    free(b);
    const char *err = captured();
    cr_log_info("kernel map limit: %zu blocks in files, then %zu in RAM; stderr:\n%s", owned,
                ram, err);
}

/* ---- bad MMVEC_* values: one warning each, the default in force ---- */

/* In a child: set var=val, make and free a large block, report the threshold on stdout. */
static size_t child_with(const char *var, const char *val, char *err, size_t errsize)
{
    int o[2], e[2];
    cr_assert_eq(pipe(o), 0);
    cr_assert_eq(pipe(e), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(e[1], STDERR_FILENO);
        if (var)
            setenv(var, val, 1);
        size_t t = mmv_threshold();
        mmv_free(mmv_malloc(2 * M));
        ssize_t w = write(o[1], &t, sizeof t);
        _exit(w == sizeof t ? 0 : 1);
    }
    close(o[1]);
    close(e[1]);
    size_t t = 0;
    cr_assert_eq(read(o[0], &t, sizeof t), (ssize_t)sizeof t);
    tu_read_fd(e[0], err, errsize);
    close(o[0]);
    close(e[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s=%s: status %#x", var, val,
              status);
    return t;
}

Test(faults, bad_values_warn_once_and_keep_the_default)
{
    unsetenv("MMVEC_THRESHOLD");
    char err[4096];
    size_t def = child_with(NULL, NULL, err, sizeof err);
    cr_assert_eq(lines_with(err, NULL), 0, "a clean run prints nothing: %s", err);
    static const char *const bad[][2] = {
        {"MMVEC_THRESHOLD", "abc"}, {"MMVEC_THRESHOLD", "0"},
        {"MMVEC_THRESHOLD", "12Q"}, {"MMVEC_THRESHOLD", "64M:1M"},
        {"MMVEC_THRESHOLD", "-5"}, {"MMVEC_THRESHOLD", "99999999999999999999999"},
        {"MMVEC_THRESHOLD", "1:"}, {"MMVEC_THRESHOLD", ""},
        {"MMVEC_LOG", "7"}, {"MMVEC_LOG", "-1"}, {"MMVEC_LOG", "two"}, {"MMVEC_LOG", "12"},
        {"MMVEC_FORK", "sideways"}, {"MMVEC_FORK", ""}, {"MMVEC_FORK", "copyy"},
        {"MMVEC_CACHE", "lots"}, {"MMVEC_CACHE", "-1"}, {"MMVEC_CACHE", "1X"},
        {"MMVEC_STRICT", "maybe"}, {"MMVEC_UNLINK", "2"}, {"MMVEC_DISABLE", "perhaps"},
        {"MMVEC_STATS", "x"}, {"MMVEC_CACHE_DECAY_MS", "soon"}, {"MMVEC_RESERVE", "1K"},
        {"MMVEC_ADVICE", "sideways"}, {"MMVEC_WRITEBACK", "sometimes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t t = child_with(bad[i][0], bad[i][1], err, sizeof err);
        cr_expect_eq(lines_with(err, bad[i][0]), 1, "%s=\"%s\": one warning naming it, got:\n%s",
                     bad[i][0], bad[i][1], err);
        cr_expect_eq(lines_with(err, NULL), 1, "%s=\"%s\": nothing else, got:\n%s", bad[i][0],
                     bad[i][1], err);
        cr_expect_eq(t, def, "%s=\"%s\": threshold %zu, default %zu", bad[i][0], bad[i][1], t,
                     def);
    }
}

static int child_bad_cache(void)
{
    setenv("MMVEC_CACHE", "lots", 1);
    mmv_free(mmv_malloc(2 * M));
    void *p = mmv_malloc(2 * M);
    mmv_stats s;
    mmv_stats_get(&s);
    mmv_free(p);
    return s.cache_hits == 1 ? 0 : 1; /* the default cache is on */
}

static int child_bad_log(void)
{
    setenv("MMVEC_LOG", "9", 1);
    int fd = open(segdir, O_WRONLY | O_CREAT, 0600); /* a file: the directory is unusable */
    close(fd);
    mmv_free(mmv_malloc(2 * M));
    return 0;
}

/* MMVEC_FORK=bad: private, the default: the child's writes stay in the child, and no copy of
 * the block is made at the fork. */
static int child_bad_fork(void)
{
    setenv("MMVEC_FORK", "sideways", 1);
    unsigned char *p = mmv_malloc(2 * M);
    memset(p, 'P', 2 * M);
    pid_t pid = fork();
    if (pid == 0) {
        memset(p, 'C', 2 * M);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (p[0] != 'P' || p[2 * M - 1] != 'P')
        return 1; /* shared */
    int folders = 0;
    DIR *d = opendir(tu_heap_dir(segdir));
    for (struct dirent *e; d && (e = readdir(d));)
        folders += e->d_type == DT_DIR && e->d_name[0] != '.';
    closedir(d);
    return folders == 1 ? 0 : 2; /* copy made the child a folder of its own */
}

static int run_child(int (*fn)(void), char *err, size_t errsize)
{
    int e[2];
    cr_assert_eq(pipe(e), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(e[1], STDERR_FILENO);
        _exit(fn());
    }
    close(e[1]);
    tu_read_fd(e[0], err, errsize);
    close(e[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(faults, bad_cache_value_keeps_the_default_cache)
{
    char err[4096];
    cr_assert_eq(run_child(child_bad_cache, err, sizeof err), 0, "no cache hit: %s", err);
    cr_assert_eq(lines_with(err, "MMVEC_CACHE"), 1, "%s", err);
}

Test(faults, bad_log_value_keeps_warnings_on)
{
    char err[4096];
    cr_assert_eq(run_child(child_bad_log, err, sizeof err), 0);
    cr_assert_eq(lines_with(err, "MMVEC_LOG"), 1, "%s", err);
    cr_assert_geq(lines_with(err, NULL), 2, "level 1: the directory warning shows: %s", err);
}

Test(faults, bad_fork_value_keeps_private)
{
    char err[4096];
    int rc = run_child(child_bad_fork, err, sizeof err);
    cr_assert_neq(rc, 1, "the child's writes reached the parent (shared): %s", err);
    cr_assert_neq(rc, 2, "the child got a copy at fork (copy mode): %s", err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(lines_with(err, "MMVEC_FORK"), 1, "%s", err);
}

/* ---- crash cleanup ---- */

struct helper {
    pid_t pid;
    FILE *out;
    char paths[8][4096];
    int npaths;
};

/* Starts alloc_child with args; for "hold" waits until it holds its blocks. */
static void start(struct helper *h, const char *a1, const char *a2, const char *a3)
{
    int o[2];
    cr_assert_eq(pipe(o), 0);
    h->pid = fork();
    cr_assert_geq(h->pid, 0);
    if (h->pid == 0) {
        dup2(o[1], STDOUT_FILENO);
        close(o[0]);
        close(o[1]);
        execl(MMVEC_HELPER_DIR "/alloc_child", "alloc_child", a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    close(o[1]);
    h->out = fdopen(o[0], "r");
    h->npaths = 0;
    char line[4200];
    while (fgets(line, sizeof line, h->out)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "ready") == 0)
            return;
        if (strncmp(line, "path ", 5) == 0 && h->npaths < 8 && strlen(line + 5) < 4096)
            strcpy(h->paths[h->npaths++], line + 5);
    }
    cr_assert_fail("helper %s %s exited before it was ready", a1, a2);
}

static void kill9(struct helper *h)
{
    kill(h->pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(h->pid, &status, 0), h->pid);
    fclose(h->out);
    /* Killed, not dead of its own (1: corrupt block, 3: no block). */
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "helper status %#x", status);
}

static void stop(struct helper *h)
{
    kill(h->pid, SIGTERM);
    int status;
    cr_assert_eq(waitpid(h->pid, &status, 0), h->pid);
    fclose(h->out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the live helper's blocks changed (status %#x)", status);
}

static void expect_files(const struct helper *h, bool there)
{
    cr_assert_gt(h->npaths, 0);
    for (int i = 0; i < h->npaths; i++) {
        cr_assert_eq(exists(h->paths[i]), there, "%s %s", h->paths[i],
                     there ? "was removed" : "is left");
        char folder[4096];
        snprintf(folder, sizeof folder, "%s", h->paths[i]);
        *strrchr(folder, '/') = '\0';
        cr_assert_eq(exists(folder), there, "folder %s", folder);
        strcat(folder, ".lock");
        cr_assert_eq(exists(folder), there, "lock %s", folder);
    }
}

/* Every entry of the segment directory belongs to one of the processes `pids`. */
static void expect_only(const pid_t *pids, int n)
{
    DIR *d = opendir(tu_heap_dir(segdir));
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        long pid = strtol(e->d_name + 9, NULL, 10); /* <host>-<pid>-<random> */
        bool known = false;
        for (int i = 0; i < n; i++)
            known |= pid == pids[i];
        cr_assert(known, "%s/%s belongs to a dead process", segdir, e->d_name);
    }
    closedir(d);
}

Test(faults, kill9_files_reaped_at_start_and_by_clean_live_ones_kept)
{
    struct helper live, dead;
    start(&live, "hold", "3", "1M");
    start(&dead, "hold", "3", "1M");
    expect_files(&live, true);
    expect_files(&dead, true);
    kill9(&dead);
    expect_files(&dead, true); /* nobody has looked yet */
    /* A fresh start in the directory: our first block reaps the dead, not the living. */
    void *p = mmv_malloc(2 * M);
    cr_assert(mmv_owns(p));
    expect_files(&dead, false);
    expect_files(&live, true);
    cr_assert_geq(stats().files_reaped, 3);
    /* mmv_clean (what `mmvec clean` runs) does the same, any time. */
    start(&dead, "hold", "2", "1M");
    kill9(&dead);
    uint64_t files = 0, bytes = 0;
    cr_assert_eq(mmv_clean(segdir, &files, &bytes), 0);
    cr_assert_eq(files, 2);
    cr_assert_geq(bytes, 2 * M);
    expect_files(&dead, false);
    expect_files(&live, true);
    cr_assert(mmv_owns(p), "our own block survives our clean");
    char mine[4096];
    cr_assert_eq(mmv_block_path(p, mine, sizeof mine), 0);
    cr_assert(exists(mine));
    pid_t pids[] = {live.pid, getpid()};
    expect_only(pids, 2);
    stop(&live);
    expect_files(&live, false); /* an orderly exit removes its own */
    mmv_free(p);
}

Test(faults, kill9_at_random_moments_of_a_heavy_run)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    cr_log_info("random seed %u", seed);
    struct helper live, churn;
    start(&live, "hold", "2", "1M");
    for (int round = 0; round < 8; round++) {
        start(&churn, "churn", "3M", NULL);
        usleep((useconds_t)(rand() % 150000));
        kill9(&churn);
        if (round == 3) {
            uint64_t files = 0;
            cr_assert_eq(mmv_clean(segdir, &files, NULL), 0);
            pid_t pids[] = {live.pid};
            expect_only(pids, 1);
        }
    }
    /* A fresh start reaps what the later rounds left. */
    void *p = mmv_malloc(2 * M);
    cr_assert(mmv_owns(p));
    pid_t pids[] = {live.pid, getpid()};
    expect_only(pids, 2);
    expect_files(&live, true);
    stop(&live);
    mmv_free(p);
}
