/* Where large blocks live under MMVEC_PLACEMENT=auto (the default), and how they move:
 *
 *   - against a limit of the user's own (MMVEC_MEMORY_LIMIT=512M, usage = RssAnon): blocks are
 *     RAM (mmv_block_path -ENODATA, no folder on disk) while usage + the block stays at or below
 *     the mark (MMVEC_RAM_HIGH, 60% by default), files (a path that exists, of the block's
 *     size) after; MMVEC_RAM_HIGH=25% moves the switch earlier, MMVEC_RAM_HIGH=200M caps RAM;
 *     MMVEC_PLACEMENT=file makes every block a file from the first;
 *   - a heap that fits (no limit) writes nothing to disk and makes no folder;
 *   - spill: RAM blocks move into files when the small heap grows past the mark and the slack
 *     (the private jemalloc's mmap hook), single-threaded and with a second thread writing the
 *     blocks meanwhile (memset and read(2) from a pipe; no write may be lost), and in realloc
 *     (a RAM block grown past the mark becomes a file in that call);
 *   - a full disk: blocks that cannot move stay in RAM, intact, and the failure is counted;
 *   - freed RAM blocks (kept in the cache for reuse) are given back when memory gets tight;
 *   - fork after a spill and under pressure, in each MMVEC_FORK mode (a grandchild too);
 *   - mmv_malloc_file is a file even when memory is plentiful;
 *   - a real memory cgroup (v1, root): late pressure (the small heap outgrows the limit after
 *     the blocks were placed in RAM), alone and with a writer thread, and killed without mmvec's
 *     moves (the control); freed RAM blocks, then late pressure; 2 GiB of blocks in 512 MiB;
 *   - python3 under the preload: the right answer, and blocks moved into files under a limit.
 *
 * Black-box: each case runs tests/helpers/placement (or python3) under LD_PRELOAD of the
 * interposer with MMVEC_THRESHOLD=1M and a fresh MMVEC_DIR, and reads the "key=value" lines it
 * prints; the helper checks contents itself and exits non-zero when anything read back wrong.
 * Every child gets MMVEC_PLACEMENT=auto unless the case sets it (the caller's is dropped).
 * Cases that need root, a cgroup or userfaultfd skip loudly, with the reason, without them. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "wprotect.h"

#define MiB (1024ull * 1024ull)
#define HELPER MMVEC_HELPER_DIR "/placement"
#define PYTHON "/usr/bin/python3"
#define TMPFS_MAGIC_NUMBER 0x01021994
#define CHILD_TIMEOUT 100

static void teardown(void);

static char tdir[256];   /* everything a case makes; removed by teardown */
static char segdir[300]; /* MMVEC_DIR of the next run (fresh for each run) */
static char cgroup[600]; /* the memory cgroup a case made, "" when none */
static char mnt[300];    /* a tmpfs a case mounted, "" when none */
static char mnt2[300];   /* ... and a second one */
static int nruns;

/* ---- set-up ---------------------------------------------------------------------------------- */

static bool on_tmpfs(const char *dir)
{
    struct statfs fs;
    return statfs(dir, &fs) == 0 && (unsigned long)fs.f_type == TMPFS_MAGIC_NUMBER;
}

/* Block files must go to a disk: in a tmpfs they would be RAM, and a cgroup would be charged. */
static void setup(void)
{
    const char *base = on_tmpfs("/tmp") && !on_tmpfs("/var/tmp") ? "/var/tmp" : "/tmp";
    char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "%s/mmvec-place-XXXXXX", base);
    tu_make_tmpdir(tdir, sizeof tdir, tmpl);
    nruns = 0;
}

static void teardown(void)
{
    tu_remove_memcg(cgroup);
    if (*mnt)
        umount2(mnt, MNT_DETACH);
    if (*mnt2)
        umount2(mnt2, MNT_DETACH);
    mnt[0] = mnt2[0] = '\0';
    tu_rm_rf(tdir);
    tdir[0] = segdir[0] = '\0';
}

TestSuite(placement, .init = setup, .fini = teardown, .timeout = 120);

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                      "preloaded into an uninstrumented child");
#endif
}

/* ---- running the helper ---------------------------------------------------------------------- */

struct run {
    int status;
    char out[1 << 16];
    char err[1 << 16];
};

static struct run last; /* the last run's outcome */
static bool as_nobody;   /* run the next child as uid/gid 65534 (root only) */

/* Runs argv under the preload with MMVEC_DIR a fresh folder (left in segdir), MMVEC_THRESHOLD=1M,
 * MMVEC_PLACEMENT=auto unless `extra` sets it, and the "NAME=value" strings of extra (NULL-ended);
 * in `cg` (a memory cgroup folder, joined before exec) when not NULL. */
static struct run *run_in(const char *const *argv, const char *const *extra, const char *cg)
{
    const char *dir = NULL; /* extra may name MMVEC_DIR itself */
    for (size_t i = 0; extra && extra[i]; i++)
        if (!strncmp(extra[i], "MMVEC_DIR=", 10))
            dir = extra[i] + 10;
    if (dir) {
        snprintf(segdir, sizeof segdir, "%s", dir);
    } else {
        snprintf(segdir, sizeof segdir, "%s/seg%d", tdir, nruns++);
        cr_assert_eq(mkdir(segdir, 0700), 0, "mkdir %s: %s", segdir, strerror(errno));
    }
    size_t n;
    char **env = tu_child_env(32, &n, "MMVEC_PLACEMENT=");
    /* python3 from a pyenv must not read the caller's PYTHON* settings either */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], "PYTHON", 6))
            env[kept++] = env[i];
    for (size_t i = kept; i < n; i++)
        env[i] = NULL;
    n = kept;
    size_t room = n + 28; /* 32 slots after what tu_child_env kept, one for the NULL */
    char *own[2] = {NULL, NULL};
    cr_assert(asprintf(&own[0], "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB) > 0);
    cr_assert(asprintf(&own[1], "MMVEC_DIR=%s", segdir) > 0);
    env[n++] = own[0];
    if (!dir)
        env[n++] = own[1];
    env[n++] = "MMVEC_THRESHOLD=1M";
    bool placement = false;
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert_lt(n, room);
        placement |= !strncmp(extra[i], "MMVEC_PLACEMENT=", 16);
        env[n++] = (char *)extra[i];
    }
    if (!placement)
        env[n++] = "MMVEC_PLACEMENT=auto";
    env[n] = NULL;
    char *outp = tu_path_in(tdir, "out"), *errp = tu_path_in(tdir, "err");
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (cg) {
            char text[32];
            snprintf(text, sizeof text, "%ld", (long)getpid());
            if (tu_write_text(cg, "cgroup.procs", text) < 0)
                _exit(125);
        }
        tu_redirect(NULL, 0, O_RDONLY);
        tu_redirect(outp, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(errp, 2, O_WRONLY | O_CREAT | O_TRUNC);
        if (as_nobody && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
            _exit(124);
        alarm(CHILD_TIMEOUT); /* survives exec: a hang ends as SIGALRM */
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    last.status = tu_wait(pid);
    free(env);
    free(own[0]);
    free(own[1]);
    snprintf(last.out, sizeof last.out, "%s", tu_slurp(outp));
    snprintf(last.err, sizeof last.err, "%s", tu_slurp(errp));
    cr_assert(!WIFEXITED(last.status) || WEXITSTATUS(last.status) != 125, "could not join %s",
              cg ? cg : "");
    return &last;
}

static struct run *run(const char *const *argv, const char *const *extra)
{
    return run_in(argv, extra, NULL);
}

/* The run ended with exit 0 (the helper's own checks held); else its output says why. */
static void expect_ok(const struct run *r, const char *what)
{
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
              "%s: %s %d\n--- stderr:\n%.3000s\n--- stdout:\n%.3000s", what,
              WIFEXITED(r->status) ? "exit" : "killed by signal",
              WIFEXITED(r->status) ? WEXITSTATUS(r->status) : WTERMSIG(r->status), r->err,
              r->out);
}

/* The value of "key=" in the output (a line of its own), in one of 8 rotating buffers; the
 * case fails when it is missing. */
static const char *kv(const struct run *r, const char *key)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    size_t n = strlen(key);
    for (const char *p = r->out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, n) && p[n] == '=') {
            size_t len = strcspn(p + n + 1, "\n");
            snprintf(b, sizeof bufs[0], "%.*s", (int)len, p + n + 1);
            return b;
        }
    cr_assert_fail("no \"%s=\" in the helper's output:\n%.3000s\n--- stderr:\n%.2000s", key,
                   r->out, r->err);
    return "";
}

static unsigned long long kvu(const struct run *r, const char *key)
{
    return strtoull(kv(r, key), NULL, 10);
}

static long long kvl(const struct run *r, const char *key)
{
    return strtoll(kv(r, key), NULL, 10);
}

/* How many times c occurs in s. */
static size_t count_of(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* s is c repeated (and not empty). */
static bool all_are(const char *s, char c)
{
    return *s && count_of(s, c) == strlen(s);
}

/* No block file of the run is left (every one is deleted at free or exit). */
static void expect_no_file_left(void)
{
    cr_assert_eq(tu_count_segs(segdir), 0, "block files left behind in %s", segdir);
}

/* ---- 1. placement against a faked limit ------------------------------------------------------ */

#define PLACE_BLOCKS 10
#define PLACE_MIB 64ull

/* The mark MMVEC_RAM_HIGH=pct% gives with limit bytes (pressure.c: limit / 100 * pct). */
static unsigned long long mark_of(unsigned long long limit, unsigned pct)
{
    return limit / 100 * pct;
}

/* Runs `place` (PLACE_BLOCKS blocks of PLACE_MIB MiB) with `extra`: it exited 0 (`what` names
 * the case otherwise). */
static struct run *run_place(const char *const *extra, const char *what)
{
    static const char *const argv[] = {HELPER, "place", "10", "64", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, what);
    return r;
}

/* Runs `place` with `extra` and checks the shape: RAM blocks, then files, the switch where
 * usage + the block passes the mark. Returns how many blocks were RAM. */
static size_t expect_switch_near(const char *const *extra, unsigned pct, const char *what)
{
    struct run *r = run_place(extra, what);
    const char *pattern = kv(r, "pattern");
    size_t k = count_of(pattern, 'R');
    cr_assert_eq(strlen(pattern), PLACE_BLOCKS);
    cr_assert(k >= 1 && k < PLACE_BLOCKS && strspn(pattern, "R") == k &&
                  all_are(pattern + k, 'F'),
              "%s: expected RAM blocks, then files only; got %s (R: RAM, F: file)", what,
              pattern);
    unsigned long long limit = 512 * MiB, mark = mark_of(limit, pct), ram = k * PLACE_MIB * MiB;
    cr_assert_eq(kvu(r, "memory_limit"), limit, "%s: mmvec saw a limit of %llu, not 512 MiB",
                 what, kvu(r, "memory_limit"));
    /* At most the mark in RAM, and the first file came within a block (plus the process's own
     * 16 MiB) of it: not earlier. */
    cr_assert_leq(ram, mark, "%s: %zu blocks of 64 MiB in RAM (%llu MiB) pass the mark %llu MiB",
                  what, k, ram / MiB, mark / MiB);
    cr_assert_gt(ram + PLACE_MIB * MiB, mark - 16 * MiB,
                 "%s: files from block %zu on (%llu MiB in RAM), far below the mark %llu MiB",
                 what, k, ram / MiB, mark / MiB);
    unsigned long long anon = kvu(r, "rss_anon_before_first_file");
    cr_assert_gt(anon + PLACE_MIB * MiB, mark,
                 "%s: the first file came with RssAnon at %llu MiB, though a 64 MiB block still "
                 "fitted below the mark (%llu MiB)", what, anon / MiB, mark / MiB);
    /* Usage stayed below the mark + limit/16: nothing moved. */
    cr_assert_str_eq(kv(r, "final"), pattern, "%s: blocks moved after they were made", what);
    cr_assert_eq(kvu(r, "spills"), 0);
    cr_assert_eq(kvu(r, "blocks_ram"), k);
    cr_assert_eq(kvu(r, "blocks_file_tight"), PLACE_BLOCKS - k);
    cr_assert_eq(kvu(r, "fallbacks"), 0);
    expect_no_file_left();
    return k;
}

Test(placement, ram_until_the_mark_then_files)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=512M", NULL};
    size_t k = expect_switch_near(extra, 60, "MMVEC_MEMORY_LIMIT=512M");
    cr_assert_eq(k, 4, "with 60%% of 512 MiB (307 MiB), 4 blocks of 64 MiB fit, not %zu", k);
}

/* Blocks placed 30 ms apart and not touched yet (threads that each malloc a buffer at once):
 * usage read again shows none of them, and placement must still count them. Found by the
 * 8-thread out-of-core benchmark, OOM-killed when each of 8 threads' 512 MiB blocks went to
 * RAM in a 1 GiB group. Limit 512 MiB, mark 60%: at most 4 of 64 MiB fit beside the helper. */
Test(placement, blocks_not_touched_yet_still_count)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "untouched", "8", "64", NULL};
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=512M", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "untouched blocks");
    const char *p = kv(r, "pattern");
    size_t rams = 0;
    for (const char *c = p; *c; c++)
        rams += *c == 'R';
    cr_assert_gt(rams, 0, "no block in RAM: %s", p);
    cr_assert_leq(rams, 4, "%zu of 8 untouched 64 MiB blocks went to RAM under a 512 MiB limit "
                  "(mark 307 MiB): %s", rams, p);
    expect_no_file_left();
}

Test(placement, ram_high_percent_moves_the_switch_earlier)
{
    skip_unless_preloadable();
    static const char *const deflt[] = {"MMVEC_MEMORY_LIMIT=512M", NULL};
    static const char *const low[] = {"MMVEC_MEMORY_LIMIT=512M", "MMVEC_RAM_HIGH=25%", NULL};
    size_t k60 = expect_switch_near(deflt, 60, "MMVEC_MEMORY_LIMIT=512M");
    size_t k25 = expect_switch_near(low, 25, "MMVEC_MEMORY_LIMIT=512M MMVEC_RAM_HIGH=25%");
    cr_assert_lt(k25, k60, "MMVEC_RAM_HIGH=25%%: %zu RAM blocks, as many as with 60%% (%zu)", k25,
                 k60);
}

/* The mark as a size: never more than 200 MiB of RAM blocks, however blocks move to get there
 * (with the slack below a block's size, blocks made past the mark move older ones). */
Test(placement, ram_high_size_caps_ram_blocks)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=512M", "MMVEC_RAM_HIGH=200M", NULL};
    struct run *r = run_place(extra, "MMVEC_RAM_HIGH=200M");
    const char *final = kv(r, "final");
    size_t ram = count_of(final, 'R');
    cr_assert_leq(ram * PLACE_MIB, 200, "%zu RAM blocks of 64 MiB at the end (%s), the mark is "
                  "200 MiB", ram, final);
    cr_assert_geq(ram, 2, "only %zu RAM blocks (%s) with room for 3 below 200 MiB", ram, final);
    cr_assert_leq(kvu(r, "ram_bytes_live"), 200 * MiB);
    cr_assert_eq(kvu(r, "spill_failed"), 0);
    expect_no_file_left();
}

Test(placement, file_mode_makes_files_from_the_first)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=512M", "MMVEC_PLACEMENT=file", NULL};
    struct run *r = run_place(extra, "MMVEC_PLACEMENT=file");
    cr_assert(all_are(kv(r, "pattern"), 'F'), "MMVEC_PLACEMENT=file: %s (R: RAM, F: file)",
              kv(r, "pattern"));
    cr_assert_eq(kvl(r, "first_file"), 0);
    cr_assert_eq(kvu(r, "blocks_ram"), 0);
    cr_assert_eq(kvu(r, "blocks_file_tight"), 0, "file mode counted files as 'made when tight'");
    expect_no_file_left();
}

/* ---- 2. a heap that fits --------------------------------------------------------------------- */

Test(placement, a_heap_that_fits_writes_nothing_to_disk)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "fit", "16", "16", "3", NULL};
    struct run *r = run(argv, NULL);
    unsigned long long limit = kvu(r, "memory_limit"), usage = kvu(r, "memory_usage");
    if (kvu(r, "blocks_file_tight") && usage + 512 * MiB > mark_of(limit, 60))
        TU_SKIP(teardown, "this machine has no room for 256 MiB below the mark: usage %llu MiB "
                          "of a limit of %llu MiB", usage / MiB, limit / MiB);
    expect_ok(r, "a heap of 256 MiB, no limit");
    long long io = kvl(r, "io_write_bytes");
    if (io < 0)
        TU_SKIP(teardown, "/proc/self/io is unreadable here (no task I/O accounting): cannot "
                          "tell what reached the disk");
    unsigned long long total = 16 * 16 * MiB, budget = total / 100;
    cr_assert_eq(kvu(r, "round0_ram_blocks"), 16, "not every block was RAM:\n%s", r->out);
    cr_assert_eq(kvu(r, "round1_ram_blocks"), 16, "made again: not every block was RAM:\n%s",
                 r->out);
    cr_assert_lt((unsigned long long)io, budget,
                 "256 MiB rewritten 6 times in RAM blocks wrote %lld bytes to disk", io);
    cr_assert_lt(kvu(r, "disk_write_bytes"), budget, "mmv_stats disk_write_bytes %llu",
                 kvu(r, "disk_write_bytes"));
    cr_assert_eq(kvu(r, "heap_folder"), 0, "a folder was made with no file to put in it");
    cr_assert_eq(tu_count_entries(segdir), 0, "MMVEC_DIR %s is not empty", segdir);
    cr_assert_eq(kvu(r, "blocks_file_tight") + kvu(r, "spills"), 0);
}

/* ---- 3. spill through the small heap's hook, single-threaded --------------------------------- */

/* 4 x 32 MiB RAM blocks, then 200 MiB of 4000-byte mallocs: past 60% of 256 MiB and the slack
 * (a sixteenth), the blocks must move, and every byte stay. */
Test(placement, small_heap_growth_moves_ram_blocks_to_files)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "hook", "4", "32", "200", NULL};
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=256M", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "4 RAM blocks, then 200 MiB of small mallocs");
    cr_assert_str_eq(kv(r, "before"), "RRRR", "the blocks were not RAM to begin with");
    cr_assert_gt(kvu(r, "spills"), 0, "nothing moved:\n%s", r->out);
    /* The small heap alone (200 MiB) is past the mark and its slack (170 MiB): no RAM block may
     * stay. */
    cr_assert_str_eq(kv(r, "after"), "FFFF", "RAM blocks left with the small heap at 200 MiB");
    cr_assert_eq(kvu(r, "spill_failed"), 0);
    cr_assert_eq(kvu(r, "ram_bytes_live"), 0);
    expect_no_file_left();
}

/* A full disk: a block that cannot get its file stays in RAM, whole, and the failure is
 * counted; a move that fits still happens. MMVEC_DIR is a 40 MiB tmpfs: room for one 32 MiB
 * block. */
Test(placement, a_full_disk_keeps_blocks_in_ram_intact)
{
    skip_unless_preloadable();
    if (!tu_mount_tmpfs(mnt, sizeof mnt, tdir, "size=40m,mode=0700"))
        TU_SKIP(teardown, "needs root to mount a small tmpfs (the full disk)");
    char dir[320];
    snprintf(dir, sizeof dir, "MMVEC_DIR=%s", mnt);
    static const char *const argv[] = {HELPER, "hook", "4", "32", "200", NULL};
    const char *extra[] = {"MMVEC_MEMORY_LIMIT=256M", dir, NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "4 RAM blocks, 200 MiB of small mallocs, room on disk for one block");
    const char *after = kv(r, "after");
    cr_assert_eq(count_of(after, 'F'), 1, "one 32 MiB block fits in 40 MiB: %s", after);
    cr_assert_eq(count_of(after, 'R'), 3, "%s", after);
    cr_assert_gt(kvu(r, "spill_failed"), 0, "failed moves not counted");
    cr_assert_eq(kvu(r, "fallbacks"), 0);
    cr_assert(strstr(r->err, "could not move"), "no warning about the failed move: %s", r->err);
    expect_no_file_left();
}

/* Freed RAM blocks kept for reuse (MMVEC_CACHE, 256 MiB by default) are memory the process
 * holds: when the small heap then grows past the limit they must go (glibc would have unmapped
 * them at free; with MMVEC_PLACEMENT=file they are page cache the kernel drops). 4 x 32 MiB
 * freed, then 200 MiB of small mallocs, against a limit of 256 MiB. */
Test(placement, freed_ram_blocks_are_given_back_under_pressure)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "cached", "4", "32", "200", NULL};
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=256M", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "4 RAM blocks freed, then 200 MiB of small mallocs");
    cr_assert_str_eq(kv(r, "made"), "RRRR");
    unsigned long long end = kvu(r, "rss_anon_end"), freed = kvu(r, "rss_anon_after_free");
    cr_assert_leq(end, 256 * MiB,
                  "RssAnon %llu MiB at the end, over the 256 MiB limit, with 200 MiB of live "
                  "data: the freed RAM blocks (RssAnon %llu MiB right after the frees) were "
                  "kept", end / MiB, freed / MiB);
}

/* ---- 4. spill in realloc --------------------------------------------------------------------- */

static void expect_realloc_moves(const char *mode)
{
    const char *argv[] = {HELPER, "realloc", mode, NULL};
    static const char *const extra[] = {"MMVEC_MEMORY_LIMIT=256M", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "realloc 40 -> 60 -> 160 MiB");
    cr_assert_str_eq(kv(r, "at40"), "R");
    cr_assert_str_eq(kv(r, "at60"), "R", "60 MiB fits below the mark, yet the block moved");
    cr_assert_eq(kvu(r, "spills_to60"), 0);
    cr_assert_str_eq(kv(r, "at160"), "F", "grown past the mark, the block stayed in RAM");
    cr_assert_eq(kvu(r, "spills_to160"), 1, "the block was not moved in the realloc call");
    cr_assert_eq(kvu(r, "spill_bytes_to160"), 60 * MiB, "what moved was not the 60 MiB block");
    expect_no_file_left();
}

Test(placement, realloc_past_the_mark_moves_the_block_in_that_call)
{
    skip_unless_preloadable();
    expect_realloc_moves(NULL);
}

Test(placement, realloc_past_the_mark_moves_the_block_with_threads_running)
{
    skip_unless_preloadable();
    expect_realloc_moves("thread");
}

/* ---- 5. spill with a concurrent writer ------------------------------------------------------- */

/* Whether this process may hold writers off with userfaultfd (as mmvec would). */
static int wp_probe(void)
{
    int fd = mmvi_wp_open();
    if (fd >= 0)
        close(fd);
    return fd >= 0 ? 0 : fd;
}

/* How another thread is held off while blocks move: write protection (uffd), stopping it
 * (stop: userfaultfd not permitted), or not at all (none: the signal is not ours to use). */
static struct run *run_writer(const char *mode, const char *const *more)
{
    const char *argv[] = {HELPER, "hook", "4", "32", "200", mode, NULL};
    const char *extra[8] = {"MMVEC_MEMORY_LIMIT=256M"};
    for (size_t i = 0; more && more[i] && i < 6; i++)
        extra[i + 1] = more[i];
    return run(argv, extra);
}

static void expect_writer_busy(const struct run *r)
{
    cr_assert_gt(kvu(r, "writer_memsets"), 0);
    cr_assert_gt(kvu(r, "writer_reads"), 0);
    cr_assert_gt(kvu(r, "writes_while_small_grew"), 0, "the writer was idle while blocks moved");
}

static void expect_moved_with_writer(const struct run *r)
{
    cr_assert_eq(kvu(r, "spill_held_off"), 0, "moves were held off:\n%s", r->err);
    cr_assert_gt(kvu(r, "spills"), 0, "no block moved with the writer running:\n%s", r->out);
    cr_assert_eq(kvu(r, "spill_failed"), 0);
}

static void expect_no_lost_write(const char *mode)
{
    int wp = wp_probe();
    struct run *r = run_writer(mode, NULL);
    /* Exit 0: every page holds the last value written, through memset or read(2). */
    expect_ok(r, mode);
    expect_writer_busy(r);
    expect_moved_with_writer(r);
    if (wp < 0) /* then the other thread was stopped instead */
        cr_assert(strstr(r->err, "other threads are stopped"), "%s", r->err);
    expect_no_file_left();
}

/* As an unprivileged user (no userfaultfd): the other thread is stopped by a signal. */
static void skip_unless_root_can_drop(void)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to run the helper as an unprivileged user");
    char v[16] = "";
    int fd = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, v, sizeof v - 1);
        v[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    if (v[0] == '1')
        TU_SKIP(teardown, "vm.unprivileged_userfaultfd=1: an unprivileged process has "
                "userfaultfd here, so the stop by signals is not what runs");
    cr_assert_eq(chmod(tdir, 0711), 0);
}

/* The writer case run as nobody (skips unless the interposer can be preloaded and root can drop
 * to nobody), with `more` ("NAME=value", or NULL) in its environment: it exited 0 (`what` says
 * which case failed otherwise) and its writer thread was busy while the small heap grew. */
static struct run *writer_as_nobody(const char *what, const char *more)
{
    skip_unless_preloadable();
    skip_unless_root_can_drop();
    char *dir = tu_path_in(tdir, "nobody");
    static char var[400];
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(chown(dir, 65534, 65534), 0);
    snprintf(var, sizeof var, "MMVEC_DIR=%s", dir);
    const char *extra[] = {var, more, NULL};
    as_nobody = true;
    struct run *r = run_writer("writer", extra);
    as_nobody = false;
    cr_assert(!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 124, "setuid failed");
    expect_ok(r, what);
    expect_writer_busy(r);
    return r;
}

Test(placement, unprivileged_moves_stop_other_threads_and_lose_no_write)
{
    struct run *r = writer_as_nobody("writer as nobody", NULL);
    expect_moved_with_writer(r);
    cr_assert(strstr(r->err, "other threads are stopped"), "not stopped by signal: %s", r->err);
}

Test(placement, unprivileged_program_owning_sigpwr_keeps_it_and_loses_nothing)
{
    /* Nothing may move with the writer running; nothing is lost; the program keeps its signal. */
    struct run *r = writer_as_nobody("writer as nobody, SIGPWR the program's",
                                     "PLACEMENT_TAKES_SIGPWR=1");
    cr_assert_gt(kvu(r, "spill_held_off"), 0, "%s", r->err);
    cr_assert(strstr(r->err, "cannot move to files while other threads run"), "%s", r->err);
}

Test(placement, unprivileged_thread_blocking_sigpwr_makes_the_stop_give_up_safely)
{
    /* The stop times out (twice, then no more tries): nothing moved while the writer ran, no
     * hang, no write lost. */
    struct run *r = writer_as_nobody("writer blocking SIGPWR", "PLACEMENT_WRITER_BLOCKS_SIGPWR=1");
    cr_assert_eq(kvu(r, "spills"), 0, "a block moved while a thread could not be stopped");
}

Test(placement, moves_lose_no_write_of_another_thread)
{
    skip_unless_preloadable();
    expect_no_lost_write("writer");
}

Test(placement, moves_lose_no_write_to_pages_never_touched_before)
{
    skip_unless_preloadable();
    expect_no_lost_write("sparse");
}

/* ---- 6. fork after a spill, under pressure --------------------------------------------------- */

static struct run *run_fork(const char *mode)
{
    const char *argv[] = {HELPER, "fork", mode, NULL};
    char var[40];
    snprintf(var, sizeof var, "MMVEC_FORK=%s", mode);
    const char *extra[] = {"MMVEC_MEMORY_LIMIT=256M", var, NULL};
    struct run *r = run(argv, extra);
    /* Exit 0: the child (and grandchild) read their parent's data, and their own writes. */
    expect_ok(r, mode);
    return r;
}

static void expect_fork_isolated(const char *mode)
{
    struct run *r = run_fork(mode);
    const char *at_fork = kv(r, "at_fork");
    cr_assert_gt(kvu(r, "parent_spills"), 0, "%s: nothing moved before the fork", mode);
    cr_assert(strchr(at_fork, 'F'), "%s: no file block at the fork: %s", mode, at_fork);
    cr_assert(all_are(kv(r, "parent_sees"), 'P'),
              "%s: the child's writes reached the parent (P: the parent's data, C: the child's; "
              "blocks at the fork %s, R RAM, F file): %s", mode, at_fork, kv(r, "parent_sees"));
}

Test(placement, fork_private_after_a_spill)
{
    skip_unless_preloadable();
    expect_fork_isolated("private");
    cr_assert_eq(strlen(kv(&last, "level2_where")), 6, "no grandchild ran");
}

Test(placement, fork_copy_after_a_spill)
{
    skip_unless_preloadable();
    expect_fork_isolated("copy");
}

/* shared: parent and child see each other's writes, which only a file can give: every block is
 * a file in this mode, and every one shows the child's writes. */
Test(placement, fork_shared_after_pressure)
{
    skip_unless_preloadable();
    struct run *r = run_fork("shared");
    const char *at_fork = kv(r, "at_fork"), *sees = kv(r, "parent_sees");
    cr_assert(all_are(sees, 'C'),
              "MMVEC_FORK=shared: the child's writes did not reach the parent in every block "
              "(P: the parent's own data, C: the child's): %s; blocks at the fork: %s (R RAM, "
              "F file), made as %s", sees, at_fork, kv(r, "made"));
    cr_assert(all_are(at_fork, 'F'), "MMVEC_FORK=shared: RAM blocks at the fork: %s", at_fork);
}

/* ---- 7. mmv_malloc_file ---------------------------------------------------------------------- */

Test(placement, malloc_file_is_a_file_with_memory_plentiful)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "file", NULL};
    struct run *r = run(argv, NULL);
    expect_ok(r, "mmv_malloc_file");
    cr_assert_str_eq(kv(r, "plain"), "R", "a plain 8 MiB malloc is not RAM: memory is tight?");
    cr_assert_str_eq(kv(r, "file_blocks"), "FFFF",
                     "mmv_malloc_file of 100 B, 64 KiB, 8 and 64 MiB (F: a file, R: RAM)");
    cr_assert_eq(kvu(r, "ram_delta"), 0);
    cr_assert_eq(kvu(r, "file_tight_delta"), 0, "mmv_malloc_file counted as 'made when tight'");
    expect_no_file_left();
}

/* ---- 8. a real memory cgroup ----------------------------------------------------------------- */

static void make_cgroup(unsigned long long limit)
{
    skip_unless_preloadable();
    tu_make_memcg(cgroup, sizeof cgroup, "mmvec-place", limit, teardown);
}

static void expect_cgroup_survived(const struct run *r, unsigned long long limit,
                                   const char *what)
{
    long long kills = tu_memcg_number(cgroup, "memory.oom_control", "oom_kill");
    cr_assert(WIFEXITED(r->status) || kills <= 0,
              "%s: killed (signal %d) with %lld OOM kill(s) in its %llu MiB cgroup\n--- stdout:\n"
              "%.2000s\n--- stderr:\n%.2000s", what, WTERMSIG(r->status), kills, limit / MiB,
              r->out, r->err);
    expect_ok(r, what);
    cr_assert_eq(kvu(r, "memory_limit"), limit, "%s: mmvec saw a limit of %llu, not the cgroup's",
                 what, kvu(r, "memory_limit"));
    cr_assert_leq(tu_memcg_number(cgroup, "memory.max_usage_in_bytes", NULL), (long long)limit);
}

/* 512 MiB placed in RAM blocks (below 60% of 1 GiB), then the small heap grows by 640 MiB:
 * without moves the group would need 1.1 GiB. */
static void late_pressure(const char *mode)
{
    unsigned long long limit = 1024 * MiB;
    make_cgroup(limit);
    const char *argv[] = {HELPER, "hook", "8", "64", "640", mode, NULL};
    struct run *r = run_in(argv, NULL, cgroup);
    expect_cgroup_survived(r, limit, mode ? "late pressure, with a writer thread"
                                          : "late pressure");
    cr_assert_str_eq(kv(r, "before"), "RRRRRRRR", "512 MiB did not start in RAM");
    cr_assert_gt(kvu(r, "spills"), 0);
    cr_assert_eq(kvu(r, "spill_failed"), 0);
    if (mode)
        cr_assert_eq(kvu(r, "spill_held_off"), 0, "moves were held off (userfaultfd?): %s",
                     r->err);
    expect_no_file_left();
}

Test(placement, cgroup_late_pressure_finishes)
{
    late_pressure(NULL);
}

Test(placement, cgroup_late_pressure_with_a_writer_thread_finishes)
{
    if (wp_probe() < 0)
        TU_SKIP(teardown, "userfaultfd write protection is not available here (%s): blocks "
                "cannot move while another thread runs", strerror(-wp_probe()));
    late_pressure("writer");
}

/* The same workload with everything in RAM (MMVEC_DISABLE=1): the group kills it. Shows that
 * the cases above finish because blocks move, not because the workload fits. */
Test(placement, cgroup_late_pressure_is_killed_without_moves)
{
    unsigned long long limit = 1024 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "hook", "8", "64", "640", NULL};
    static const char *const extra[] = {"MMVEC_DISABLE=1", NULL};
    struct run *r = run_in(argv, extra, cgroup);
    cr_assert(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGKILL,
              "1.1 GiB of heap all in RAM in a 1 GiB group should be OOM-killed, got %s %d",
              WIFEXITED(r->status) ? "exit" : "signal",
              WIFEXITED(r->status) ? WEXITSTATUS(r->status) : WTERMSIG(r->status));
}

/* 256 MiB of RAM blocks freed (kept in the cache), then the small heap grows by 800 MiB in a
 * 1 GiB group: the same program finishes with MMVEC_PLACEMENT=file (the control), so it must
 * under auto too. */
Test(placement, cgroup_freed_ram_blocks_then_late_pressure_finishes)
{
    unsigned long long limit = 1024 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "cached", "4", "64", "800", NULL};
    static const char *const file[] = {"MMVEC_PLACEMENT=file", NULL};
    struct run *r = run_in(argv, file, cgroup);
    expect_cgroup_survived(r, limit, "control: MMVEC_PLACEMENT=file");
    r = run_in(argv, NULL, cgroup);
    expect_cgroup_survived(r, limit, "4 x 64 MiB RAM blocks freed, then 800 MiB of small "
                                     "mallocs (MMVEC_PLACEMENT=auto)");
    cr_assert_str_eq(kv(r, "made"), "RRRR");
}

/* 2 GiB of blocks in a 512 MiB group: the first ones RAM, the rest files; every page checked. */
static void many_blocks(const char *mib, size_t count)
{
    unsigned long long limit = 512 * MiB;
    make_cgroup(limit);
    const char *argv[] = {HELPER, "many", "2048", mib, NULL};
    struct run *r = run_in(argv, NULL, cgroup);
    expect_cgroup_survived(r, limit, mib);
    cr_assert_eq(kvu(r, "blocks"), count);
    unsigned long long ram = kvu(r, "ram_blocks"), files = kvu(r, "file_blocks");
    cr_assert_eq(ram + files, count);
    cr_assert_gt(ram, 0, "no block in RAM, though 60%% of 512 MiB is room");
    cr_assert_gt(files, 0);
    cr_assert_leq(ram * strtoull(mib, NULL, 10) * MiB, mark_of(limit, 60) + limit / 16,
                  "%llu blocks of %s MiB in RAM in a 512 MiB group", ram, mib);
    expect_no_file_left();
}

Test(placement, cgroup_2g_in_64m_blocks_in_512m)
{
    many_blocks("64", 32);
}

Test(placement, cgroup_2g_in_1m_blocks_in_512m)
{
    many_blocks("1", 2048);
}

/* ---- 9. python3 ------------------------------------------------------------------------------ */

/* Four 32 MiB bytearrays (RAM while they fit), 200 MiB of 4000-byte objects (malloc'd: more
 * than pymalloc's 512 bytes), then a 300 MiB bytearray touched every page. */
static const char script[] =
    "blocks = [bytearray(32 << 20) for _ in range(4)]\n"
    "for i, b in enumerate(blocks):\n"
    "    b[::4096] = bytes([i + 1]) * len(b[::4096])\n"
    "small = [bytes([i % 251]) * 4000 for i in range(50000)]\n"
    "big = bytearray(300 << 20)\n"
    "big[::4096] = b'x' * len(big[::4096])\n"
    "print(sum(big[::4096]), [sum(b[::4096]) for b in blocks], sum(s[0] + s[-1] for s in small))\n";

/* 120 * 76800 pages; 8192 pages per block times 1..4; 2 * sum(i % 251). */
static const char answer[] = "9216000 [8192, 16384, 24576, 32768] 12489800\n";

/* A number after `label` in the stats table on stderr, or -1. */
static long long stat_line(const struct run *r, const char *label)
{
    const char *p = strstr(r->err, label);
    return p ? strtoll(p + strlen(label), NULL, 10) : -1;
}

static struct run *run_python(const char *const *extra)
{
    skip_unless_preloadable();
    if (access(PYTHON, X_OK) < 0)
        TU_SKIP(teardown, PYTHON " is not installed");
    FILE *f = fopen(tu_path_in(tdir, "work.py"), "w");
    cr_assert_not_null(f);
    fputs(script, f);
    cr_assert_eq(fclose(f), 0);
    const char *argv[] = {PYTHON, tu_path_in(tdir, "work.py"), NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "python3 under the preload");
    cr_assert_str_eq(r->out, answer, "python3 under the preload printed a wrong answer");
    cr_assert(strstr(r->err, "mmvec stats"), "no stats table: %s", r->err);
    return r;
}

Test(placement, python_that_fits_keeps_blocks_in_ram)
{
    static const char *const extra[] = {"MMVEC_STATS=1", NULL};
    struct run *r = run_python(extra);
    cr_assert_geq(stat_line(r, "blocks in RAM"), 5, "stats:\n%s", r->err);
    cr_assert_eq(stat_line(r, "moved to files"), 0, "stats:\n%s", r->err);
    cr_assert_eq(stat_line(r, "made as files when tight"), 0, "stats:\n%s", r->err);
    cr_assert_eq(tu_count_entries(segdir), 0, "a heap that fits made a folder in %s", segdir);
}

Test(placement, python_under_a_limit_moves_blocks_to_files)
{
    static const char *const extra[] = {"MMVEC_STATS=1", "MMVEC_MEMORY_LIMIT=256M", NULL};
    struct run *r = run_python(extra);
    cr_assert_gt(stat_line(r, "moved to files"), 0, "stats:\n%s", r->err);
    cr_assert_gt(stat_line(r, "made as files when tight"), 0, "the 300 MiB bytearray is RAM in "
                 "a 256 MiB limit; stats:\n%s", r->err);
    expect_no_file_left();
}

/* ---- 9. read-around of a file block under random access (issue 12) ------------------------- */

/* 2000 random reads of a 256 MiB block in a 64 MiB group, with the kernel's read-around alone
 * (MMVEC_ADVICE=normal) and with mmvec's advisor (auto). The kernel reads read_ahead_kb around
 * each miss until 100 more misses than hits; on a disk with a large read_ahead_kb that is
 * hundreds of MiB read to use a few pages, and in some runs it never stops (bench/README.md).
 * The advisor must cut it to a fraction. Where the kernel alone wastes little (a small
 * read_ahead_kb), there is nothing to show: the case says so and skips. */
Test(placement, cgroup_random_reads_do_not_read_around)
{
    unsigned long long limit = 64 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "readaround", "256", "2000", NULL};
    static const char *const normal[] = {"MMVEC_ADVICE=normal", NULL};
    struct run *r = run_in(argv, normal, cgroup);
    expect_cgroup_survived(r, limit, "random reads, kernel read-around");
    unsigned long long kernel = kvu(r, "random_read_bytes");
    cr_assert_eq(kvu(r, "readaround_off"), 0, "MMVEC_ADVICE=normal: the advisor ran");
    expect_no_file_left();
    if (kernel < 800 * MiB)
        TU_SKIP(teardown, "the kernel's read-around alone read only %llu MiB for 2000 random "
                "reads (a small read_ahead_kb?): no waste to cut here", kernel / MiB);
    r = run_in(argv, NULL, cgroup);
    expect_cgroup_survived(r, limit, "random reads, advisor");
    unsigned long long advised = kvu(r, "random_read_bytes");
    cr_assert_gt(kvu(r, "readaround_off"), 0, "the advisor never turned read-around off "
                 "(read %llu MiB; the kernel alone %llu MiB)", advised / MiB, kernel / MiB);
    cr_assert_lt(advised, kernel / 2, "with the advisor %llu MiB read, the kernel alone %llu MiB",
                 advised / MiB, kernel / MiB);
    expect_no_file_left();
}

/* Out of core, a block filled and read in order has the pages behind its front written back and
 * dropped by the advisor, every word still right: with MMVEC_BEHIND=on behind every pass, with
 * write (the default) behind the fill only, the block being larger than the limit; off, nothing
 * is; and a block that fits in RAM is left alone. */
Test(placement, cgroup_fill_and_scan_push_pages_behind_the_front)
{
    skip_unless_preloadable();
    unsigned long long limit = 64 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "sequential", "512", "2", NULL};
    static const char *const on[] = {"MMVEC_BEHIND=on", NULL};
    struct run *r = run_in(argv, on, cgroup);
    expect_cgroup_survived(r, limit, "fill and scans, MMVEC_BEHIND=on");
    cr_assert_str_eq(kv(r, "file"), "1", "the 512 MiB block is not a file in 64 MiB");
    cr_assert_gt(kvu(r, "behind_written"), 64 * MiB, "nothing written back behind the front");
    cr_assert_gt(kvu(r, "behind_dropped"), 0, "nothing dropped behind the front");
    expect_no_file_left();
    r = run_in(argv, NULL, cgroup);
    expect_cgroup_survived(r, limit, "fill and scans, MMVEC_BEHIND=write (the default)");
    cr_assert_gt(kvu(r, "behind_written"), 64 * MiB, "write: nothing written back early");
    cr_assert_gt(kvu(r, "behind_dropped"), 64 * MiB, "write: a block of 8 times the limit, and "
                 "only %llu MiB dropped behind its fronts", kvu(r, "behind_dropped") / MiB);
    /* ... behind the fill only: the two scans' clean pages are left to the kernel (dropping
     * them too counted 0.8-1.4 GiB here, the fill alone 0.45-0.5) */
    cr_assert_lt(kvu(r, "behind_dropped"), 768 * MiB, "write: %llu MiB dropped, the scans' "
                 "pages too", kvu(r, "behind_dropped") / MiB);
    expect_no_file_left();
    static const char *const off[] = {"MMVEC_BEHIND=off", NULL};
    r = run_in(argv, off, cgroup);
    expect_cgroup_survived(r, limit, "fill and scans, MMVEC_BEHIND=off");
    cr_assert_eq(kvu(r, "behind_written") + kvu(r, "behind_dropped"), 0);
    expect_no_file_left();
    static const char *const fits_argv[] = {HELPER, "sequential", "64", "2", NULL};
    r = run(fits_argv, on);
    expect_ok(r, "a block that fits");
    cr_assert_str_eq(kv(r, "file"), "0", "a 64 MiB block with memory plentiful is not in RAM");
    cr_assert_eq(kvu(r, "behind_written") + kvu(r, "behind_dropped"), 0);
}

/* Out of core, a block rewritten at random pages and then scanned: the advisor drops the chunks
 * ahead of the scan's front that those pages leave cached here and there (so that the kernel can
 * read them in large folios, src/heap/advise.c), and every rewritten word is still right (a
 * dirty page is written back, never dropped); with MMVEC_BEHIND=off nothing is cleared. */
Test(placement, cgroup_scan_after_random_writes_clears_the_way_ahead)
{
    skip_unless_preloadable();
    unsigned long long limit = 64 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "scatter", "512", "8000", NULL};
    /* Up to three runs, every word checked in each: the advisor's rounds need a CPU, which the
     * suite's other tests (CPython's) may take from it for a whole run. */
    unsigned long long cleared = 0;
    for (int attempt = 0; attempt < 3 && !cleared; attempt++) {
        struct run *r = run_in(argv, NULL, cgroup);
        expect_cgroup_survived(r, limit, "scattered rewrites, then a scan");
        cr_assert_str_eq(kv(r, "file"), "1", "the 512 MiB block is not a file in 64 MiB");
        expect_no_file_left();
        cleared = kvu(r, "ahead_cleared");
    }
    cr_assert_gt(cleared, 0, "nothing cleared ahead of the scan's front in three runs");
    struct run *r;
    static const char *const off[] = {"MMVEC_BEHIND=off", NULL};
    r = run_in(argv, off, cgroup);
    expect_cgroup_survived(r, limit, "scattered rewrites, then a scan, MMVEC_BEHIND=off");
    cr_assert_eq(kvu(r, "ahead_cleared"), 0, "off: the advisor cleared ahead");
    expect_no_file_left();
}

/* Blocks made, grown, cut and freed in one thread while another forks children one after the
 * other: none inherits a descriptor of mmvec's into the blocks' folder. Each of those steps
 * opens the block's file without the heap lock; the previous code left it to 7-603 children in
 * each of five runs (of 850-10000 forks), and a child holding it keeps the file's disk space
 * after we unlink it, for as long as it lives (fds.c). */
Test(placement, forks_while_blocks_change_inherit_no_descriptor)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "churn-fork", "64", "30", NULL};
    static const char *const file[] = {"MMVEC_PLACEMENT=file", NULL};
    struct run *r = run(argv, file);
    expect_ok(r, "blocks made, grown, cut and freed while another thread forks");
    cr_assert_gt(kvu(r, "forks"), 100, "only %llu forks", kvu(r, "forks"));
    cr_assert_eq(kvu(r, "leaky_children"), 0, "%llu of %llu fork children inherited a "
                 "descriptor into the blocks' folder", kvu(r, "leaky_children"), kvu(r, "forks"));
    expect_no_file_left();
}

/* The same scan while another thread forks children one after the other: none inherits a
 * descriptor of mmvec's into the block's folder. The advisor drops the chunks it cleared ahead
 * of the front through the block's file after the heap lock; a fork landing there used to leave
 * the child that descriptor (1-37 children of about 2000 in each of four runs of the previous
 * code), and a daemon's child holding it keeps an unlinked file's disk space while it lives.
 * MMVEC_FORK=shared: the parent's blocks stay its files, the advisor at work on them. */
Test(placement, cgroup_forks_during_a_scan_inherit_no_descriptor)
{
    skip_unless_preloadable();
    unsigned long long limit = 64 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "scatter-fork", "512", "40000", NULL};
    static const char *const shared[] = {"MMVEC_FORK=shared", NULL};
    /* Up to three runs, every one checked: the advisor's rounds need a CPU, and with the
     * suite's other tests busy on both (CPython's) a run may clear nothing, so fork across no
     * drop. */
    unsigned long long cleared = 0;
    for (int attempt = 0; attempt < 3 && !cleared; attempt++) {
        struct run *r = run_in(argv, shared, cgroup);
        expect_cgroup_survived(r, limit, "scattered rewrites, then a scan, forking meanwhile");
        cr_assert_gt(kvu(r, "forks"), 100, "only %llu forks during the scan", kvu(r, "forks"));
        cr_assert_eq(kvu(r, "leaky_children"), 0, "%llu of %llu fork children inherited a "
                     "descriptor into the block's folder", kvu(r, "leaky_children"),
                     kvu(r, "forks"));
        expect_no_file_left();
        cleared = kvu(r, "ahead_cleared");
    }
    cr_assert_gt(cleared, 0, "nothing cleared ahead of the front in three runs: no drop to "
                 "fork across");
}

/* Out of core, the default fork mode with a child that lives while the parent rewrites its whole
 * heap: the child reads the fork's instant, and the parent's writes, kept in RAM while the child
 * maps the old files, move into new files as memory gets tight instead of filling the group
 * (768 MiB rewritten in 256 MiB). Every block a file (MMVEC_PLACEMENT=file): RAM blocks at the
 * fork are the kernel's copy-on-write, which doubles them while the child lives, as glibc's
 * heap would be; with 60% of the group in RAM blocks that cannot fit (docs/interposer.md). */
Test(placement, cgroup_private_fork_with_a_living_child_moves_frozen_blocks)
{
    skip_unless_preloadable();
    unsigned long long limit = 256 * MiB;
    make_cgroup(limit);
    static const char *const argv[] = {HELPER, "forklive", "768", NULL};
    static const char *const files[] = {"MMVEC_PLACEMENT=file", NULL};
    struct run *r = run_in(argv, files, cgroup);
    expect_cgroup_survived(r, limit, "a parent rewriting 768 MiB while its fork child lives");
    cr_assert_str_eq(kv(r, "child_exit"), "0", "the child did not read the fork's instant "
                     "(exit %s: 1 = it saw the parent's later writes)", kv(r, "child_exit"));
    cr_assert_gt(kvu(r, "fork_thaws"), 0, "no frozen block moved into a new file");
    expect_no_file_left();
}

/* ---- 10. the disk budget and the free-space reserve (issue 10) ------------------------------- */

static size_t count_in(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static size_t lines_with(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

Test(placement, max_disk_keeps_blocks_past_it_in_ram)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "budget", "4", "32", NULL};
    static const char *const extra[] = {"MMVEC_PLACEMENT=file", "MMVEC_MAX_DISK=64M", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "disk budget");
    cr_assert_str_eq(kv(r, "pattern"), "FFJJ", "4 x 32 MiB with MMVEC_MAX_DISK=64M (F file, "
                     "J RAM): stderr %s", r->err);
    cr_assert_eq(kvu(r, "disk_refused"), 2);
    cr_assert_eq(lines_with(r->err, "MMVEC_MAX_DISK"), 1, "not one warning: %s", r->err);
    cr_assert_eq(lines_with(r->err, "mmvec: warning"), 1, "more than one warning: %s", r->err);
    expect_no_file_left();
}

Test(placement, max_disk_strict_returns_null)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "budget", "3", "32", NULL};
    static const char *const extra[] = {"MMVEC_PLACEMENT=file", "MMVEC_MAX_DISK=40M",
                                        "MMVEC_STRICT=1", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "disk budget, strict");
    cr_assert_str_eq(kv(r, "pattern"), "FNN");
    expect_no_file_left();
}

/* Freed blocks in the cache hold their files: when the budget refuses a new file, they go first
 * (alloc.c, give_back_cached_files), and the new block is a file after all. */
Test(placement, max_disk_takes_room_back_from_freed_blocks)
{
    skip_unless_preloadable();
    static const char *const argv[] = {HELPER, "budget-reuse", "32", "48", NULL};
    static const char *const extra[] = {"MMVEC_PLACEMENT=file", "MMVEC_MAX_DISK=80M", NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "disk budget after frees");
    cr_assert_str_eq(kv(r, "last"), "F", "48 MiB after freeing 2 x 32 MiB under an 80 MiB budget "
                     "(F file, J RAM); stderr %s", r->err);
    expect_no_file_left();
}

/* A 256 MiB tmpfs (root): the reserve is what must stay free on it. */
Test(placement, disk_reserve_keeps_the_filesystem_from_filling)
{
    skip_unless_preloadable();
    if (!tu_mount_tmpfs(mnt, sizeof mnt, tdir, "size=256m,mode=0700"))
        TU_SKIP(teardown, "needs root to mount a small tmpfs (a filesystem to fill)");
    char dir[400];
    snprintf(dir, sizeof dir, "MMVEC_DIR=%s", mnt);
    static const char *const argv[] = {HELPER, "budget", "8", "32", NULL};
    const char *reserve[] = {"MMVEC_PLACEMENT=file", dir, "MMVEC_DISK_RESERVE=100M", NULL};
    struct run *r = run(argv, reserve);
    expect_ok(r, "reserve of 100 MiB on 256 MiB");
    const char *p = kv(r, "pattern");
    cr_assert_eq(count_in(p, 'F'), 4, "256 MiB with 100 MiB kept free holds 4 x 32 MiB: %s", p);
    cr_assert_eq(count_in(p, 'J'), 4, "%s", p);
    cr_assert(strstr(r->err, "MMVEC_DISK_RESERVE"), "no word of the reserve: %s", r->err);
    /* The default: 5%, at least 1 GiB or 10% of the filesystem: 25.6 MiB here. */
    const char *dflt[] = {"MMVEC_PLACEMENT=file", dir, NULL};
    r = run(argv, dflt);
    expect_ok(r, "default reserve on 256 MiB");
    p = kv(r, "pattern");
    cr_assert_eq(count_in(p, 'F'), 7, "the default reserve (10%% of 256 MiB) leaves room for 7 "
                 "x 32 MiB: %s; stderr %s", p, r->err);
    expect_no_file_left();
}

/* ---- several directories (MMVEC_DIR=A:B) ------------------------------------------------------ */

/* How many of the blocks of "dirs=" are in directory c ('0', '1'). */
static int in_dir(const struct run *r, char c)
{
    int n = 0;
    for (const char *p = kv(r, "dirs"); *p; p++)
        n += *p == c;
    return n;
}

static char *subdir(const char *base, const char *name)
{
    char *p = tu_path_in(base, name);
    cr_assert(mkdir(p, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
    return p;
}

/* Two directories on one filesystem have as much room each: blocks take turns. */
Test(placement, several_dirs_take_turns)
{
    skip_unless_preloadable();
    char dirs[700], var[720];
    snprintf(dirs, sizeof dirs, "%s:%s", subdir(tdir, "a"), subdir(tdir, "b"));
    snprintf(var, sizeof var, "MMVEC_DIR=%s", dirs);
    static const char *const argv[] = {HELPER, "budget", "8", "4", NULL};
    const char *extra[] = {"MMVEC_PLACEMENT=file", var, NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "two directories");
    cr_assert_str_eq(kv(r, "pattern"), "FFFFFFFF", "stderr %s", r->err);
    cr_assert(in_dir(r, '0') >= 3 && in_dir(r, '1') >= 3,
              "8 blocks over two directories with the same room: %s (0: the first, 1: the "
              "second)", kv(r, "dirs"));
    cr_assert_eq(tu_count_segs(tdir), 0, "block files left behind in %s", tdir);
}

/* The directory with the most room comes first; one that cannot take a file (here a tmpfs out
 * of inodes, with room to spare) passes it to the next, silently, and nothing falls back to RAM. */
Test(placement, several_dirs_a_full_one_passes_blocks_on)
{
    skip_unless_preloadable();
    char *a = subdir(tdir, "x"), *b = subdir(tdir, "y");
    /* nr_inodes=4: the root, the heap folder, the lock and the process folder; no file. */
    if (!tu_mount_tmpfs(mnt, sizeof mnt, a, "size=256m,nr_inodes=4,mode=0700") ||
        !tu_mount_tmpfs(mnt2, sizeof mnt2, b, "size=64m,mode=0700"))
        TU_SKIP(teardown, "needs root to mount two small tmpfs");
    char var[720];
    snprintf(var, sizeof var, "MMVEC_DIR=%s:%s", mnt, mnt2);
    static const char *const argv[] = {HELPER, "budget", "4", "8", NULL};
    const char *extra[] = {"MMVEC_PLACEMENT=file", "MMVEC_LOG=1", var, NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "a full directory and one with room");
    cr_assert_str_eq(kv(r, "pattern"), "FFFF", "stderr %s", r->err);
    cr_assert_str_eq(kv(r, "dirs"), "1111", "the first directory has no inode left");
    cr_assert_eq(lines_with(r->err, "mmvec: warning"), lines_with(r->err, "(tmpfs)"),
                 "a warning other than the tmpfs one: %s", r->err);
}

/* A directory that cannot be used at all is said once and passed over. */
Test(placement, several_dirs_an_unusable_one_is_passed_over)
{
    skip_unless_preloadable();
    char var[720];
    snprintf(var, sizeof var, "MMVEC_DIR=/proc/mmvec-none/x:%s", subdir(tdir, "b"));
    static const char *const argv[] = {HELPER, "budget", "4", "4", NULL};
    const char *extra[] = {"MMVEC_PLACEMENT=file", var, NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "an unusable directory and a good one");
    cr_assert_str_eq(kv(r, "pattern"), "FFFF", "stderr %s", r->err);
    cr_assert_str_eq(kv(r, "dirs"), "1111");
    cr_assert_eq(lines_with(r->err, "/proc/mmvec-none/x"), 1, "not one warning: %s", r->err);
    cr_assert_eq(lines_with(r->err, "mmvec: warning"), 1, "stderr %s", r->err);
}

/* Fork at any depth with the blocks over two directories: each child its own memory. */
Test(placement, several_dirs_fork_private)
{
    skip_unless_preloadable();
    char var[720];
    snprintf(var, sizeof var, "MMVEC_DIR=%s:%s", subdir(tdir, "a"), subdir(tdir, "b"));
    const char *argv[] = {HELPER, "fork", "private", NULL};
    const char *extra[] = {"MMVEC_MEMORY_LIMIT=256M", "MMVEC_FORK=private", var, NULL};
    struct run *r = run(argv, extra);
    expect_ok(r, "fork over two directories");
    cr_assert(strchr(kv(r, "at_fork"), 'F'), "no file block at the fork: %s", kv(r, "at_fork"));
    cr_assert(all_are(kv(r, "parent_sees"), 'P'), "the child's writes reached the parent: %s",
              kv(r, "parent_sees"));
    cr_assert_eq(strlen(kv(r, "level2_where")), 6, "no grandchild ran");
    cr_assert_eq(tu_count_segs(tdir), 0, "block files left behind in %s", tdir);
}
