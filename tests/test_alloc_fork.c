/* Blocks across fork (issue 3, MMVEC_FORK): private (default), copy and shared.
 *
 * Each test forks its own children; a child reports through its exit code (0: as expected, any
 * other code names the check that failed, see the CHILD_* codes) and leaves with _exit so that
 * none of Criterion's exit handlers run in it. Parent and child take turns through pipes. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)
#define G ((size_t)1 << 30)
#define SIZE (4 * M)

static char tmp[64];
static char segdir[128];

static void set_dir(const char *base)
{
    snprintf(tmp, sizeof tmp, "%s/mmvec-afork-XXXXXX", base);
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(segdir, sizeof segdir, "%s/seg", tmp);
    setenv("MMVEC_DIR", segdir, 1);
}

static void setup(void)
{
    static const char *const vars[] = {"MMVEC_STRICT", "MMVEC_UNLINK", "MMVEC_DISABLE",
                                       "MMVEC_STATS", "MMVEC_LOG", "MMVEC_FORK", "MMVEC_CACHE",
                                       "MMVEC_CACHE_DECAY_MS", "MMVEC_RESERVE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("MMVEC_THRESHOLD", "64K", 1);
    set_dir("/tmp");
}

static void teardown(void)
{
    tu_rm_rf(tmp);
}

TestSuite(fork, .init = setup, .fini = teardown);

/* ---- tools ---- */

enum {
    CHILD_OK = 0,
    CHILD_BAD_INHERITED = 10, /* the inherited block did not read as the parent left it */
    CHILD_SAW_PARENT,         /* the parent's later writes showed through */
    CHILD_NO_BLOCK,           /* could not allocate, or the block is no segment */
    CHILD_BAD_OWN,            /* its own block read back wrong */
    CHILD_SYNC,               /* pipe trouble */
    CHILD_NOT_SHARED,         /* MMVEC_FORK=shared: the parent's writes did not show */
};

static int fd_to_child[2], fd_to_parent[2];

static void pipes(void)
{
    cr_assert_eq(pipe(fd_to_child), 0);
    cr_assert_eq(pipe(fd_to_parent), 0);
}

static int say(int fd)
{
    return write(fd, "x", 1) == 1 ? 0 : -1;
}

static int hear(int fd)
{
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return n == 1 ? 0 : -1;
}

static pid_t spawn(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

static void expect_child_ok(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child killed by signal %d",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), CHILD_OK, "child failed check %d", WEXITSTATUS(status));
}

static bool all(const void *p, int c, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return false;
    return true;
}

/* The first `n` bytes of the file at path are all `c`. */
static bool file_all(const char *path, int c, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    static unsigned char buf[64 * 1024];
    bool ok = true;
    for (size_t off = 0; ok && off < n;) {
        size_t want = n - off < sizeof buf ? n - off : sizeof buf;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        ok = got == (ssize_t)want && all(buf, c, want);
        off += want;
    }
    close(fd);
    return ok;
}

static void path_of(const void *p, char *buf)
{
    cr_assert_eq(mmv_block_path(p, buf, 4096), 0, "no file behind %p", p);
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_size;
}

/* A segment block of SIZE bytes all `c`. */
static unsigned char *block(int c)
{
    unsigned char *p = mmv_malloc(SIZE);
    cr_assert(mmv_owns(p));
    memset(p, c, SIZE);
    return p;
}

/* ---- private (default) ---- */

static int child_writes(void *arg)
{
    unsigned char *p = arg;
    if (!all(p, 'P', SIZE))
        return CHILD_BAD_INHERITED;
    memset(p, 'C', SIZE);
    return all(p, 'C', SIZE) ? CHILD_OK : CHILD_BAD_OWN;
}

Test(fork, private_child_writes_do_not_reach_the_parent)
{
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    expect_child_ok(spawn(child_writes, p));
    cr_assert(all(p, 'P', SIZE), "the child's writes showed in the parent");
    cr_assert(file_all(path, 'P', SIZE), "the child's writes reached the parent's file");
    mmv_free(p);
}

static int child_frees(void *arg)
{
    unsigned char *p = arg;
    if (!mmv_owns(p) || !all(p, 'P', SIZE))
        return CHILD_BAD_INHERITED;
    mmv_free(p);
    return CHILD_OK;
}

Test(fork, private_child_free_keeps_the_parent_file)
{
    setenv("MMVEC_CACHE", "0", 1); /* a free in the child would otherwise only cache it */
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    expect_child_ok(spawn(child_frees, p));
    cr_assert_eq(access(path, F_OK), 0, "the child's free deleted the parent's file");
    cr_assert_eq(file_size(path), (off_t)SIZE);
    cr_assert(all(p, 'P', SIZE));
    cr_assert(file_all(path, 'P', SIZE));
    mmv_free(p);
    cr_assert_neq(access(path, F_OK), 0, "the parent's own free still removes it");
}

static int child_allocates(void *arg)
{
    (void)arg;
    unsigned char *q = mmv_malloc(SIZE);
    char path[4096];
    if (!q || !mmv_owns(q) || mmv_block_path(q, path, sizeof path) != 0)
        return CHILD_NO_BLOCK;
    memset(q, 'Q', SIZE);
    size_t n = strlen(path) + 1;
    if (write(fd_to_parent[1], path, n) != (ssize_t)n)
        return CHILD_SYNC;
    if (hear(fd_to_child[0]) < 0) /* the parent looks at the file while we live */
        return CHILD_SYNC;
    int ok = all(q, 'Q', SIZE);
    mmv_free(q);
    return ok ? CHILD_OK : CHILD_BAD_OWN;
}

Test(fork, private_child_allocates_in_its_own_folder)
{
    setenv("MMVEC_CACHE", "0", 1);
    unsigned char *p = block('P');
    char mine[4096], theirs[4096] = {0};
    path_of(p, mine);
    pipes();
    pid_t pid = spawn(child_allocates, NULL);
    cr_assert_gt(read(fd_to_parent[0], theirs, sizeof theirs - 1), 0);
    /* <heap>/<host>-<pid>-<hex>/<uuid>.seg: the child's folder is named after the child. */
    char want[700];
    snprintf(want, sizeof want, "%s/", tu_heap_dir(segdir));
    size_t at = strlen(want) + 9; /* past "<host>-" */
    snprintf(want + at - 9, sizeof want - (at - 9), "%.8s-%ld-", theirs + at - 9, (long)pid);
    cr_assert_eq(strncmp(theirs, want, strlen(want)), 0, "child's block %s not under %s", theirs,
                 want);
    cr_assert(file_all(theirs, 'Q', SIZE));
    cr_assert_neq(strncmp(mine, want, strlen(want)), 0);
    say(fd_to_child[1]);
    expect_child_ok(pid);
    cr_assert(all(p, 'P', SIZE));
    cr_assert_neq(access(theirs, F_OK), 0, "the child's free removes its own file");
    mmv_free(p);
}

/* The child checks, after the parent has freed and reallocated, that its view is unchanged. */
static int child_watches(void *arg)
{
    unsigned char *p = arg;
    if (say(fd_to_parent[1]) < 0 || hear(fd_to_child[0]) < 0)
        return CHILD_SYNC;
    return all(p, 'P', SIZE) ? CHILD_OK : CHILD_SAW_PARENT;
}

Test(fork, private_block_freed_by_parent_is_not_recycled_while_the_child_lives)
{
    unsigned char *p = block('P');
    pipes();
    pid_t pid = spawn(child_watches, p);
    cr_assert_eq(hear(fd_to_parent[0]), 0);
    /* Free, allocate the same size and write, a few times over: nothing of it reaches the
     * child, which still maps p's old file. */
    mmv_free(p);
    unsigned char *q[3];
    for (int i = 0; i < 3; i++) {
        q[i] = mmv_malloc(SIZE);
        cr_assert(mmv_owns(q[i]));
        memset(q[i], 'N', SIZE);
        if (i < 2) {
            mmv_free(q[i]); /* into the cache: the next round may reuse these */
            q[i] = NULL;
        }
    }
    say(fd_to_child[1]);
    expect_child_ok(pid);
    mmv_free(q[2]);
}

static int child_takes_same_size(void *arg)
{
    (void)arg;
    unsigned char *q = mmv_malloc(SIZE);
    if (!q || !mmv_owns(q))
        return CHILD_NO_BLOCK;
    memset(q, 'C', SIZE);
    return CHILD_OK;
}

Test(fork, parent_cached_block_is_not_handed_to_the_child)
{
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    mmv_free(p); /* cached: file and mapping kept for reuse */
    expect_child_ok(spawn(child_takes_same_size, NULL));
    cr_assert(access(path, F_OK) != 0 || !file_all(path, 'C', SIZE),
              "the child wrote into the parent's cached block");
    unsigned char *q = mmv_malloc(SIZE);
    cr_assert(mmv_owns(q));
    cr_assert(!all(q, 'C', SIZE), "the child's writes came back through the parent's cache");
    mmv_free(q);
}

/* realloc shrinking a block may cut its file, but the file of a block that existed at a fork is
 * still mapped (privately) by the child. Once, a parent's shrink made the child SIGBUS on the
 * tail of its view, and a child's shrink of an inherited block cut the PARENT's file. */
static int child_reads_tail(void *arg)
{
    unsigned char *p = arg;
    if (say(fd_to_parent[1]) < 0 || hear(fd_to_child[0]) < 0)
        return CHILD_SYNC;
    return all(p, 'P', SIZE) ? CHILD_OK : CHILD_SAW_PARENT; /* SIGBUS here when the file shrank */
}

Test(fork, private_parent_shrink_keeps_the_child_view)
{
    unsigned char *p = block('P');
    pipes();
    pid_t pid = spawn(child_reads_tail, p);
    cr_assert_eq(hear(fd_to_parent[0]), 0);
    unsigned char *q = mmv_realloc(p, SIZE / 8);
    cr_assert(all(q, 'P', SIZE / 8));
    say(fd_to_child[1]);
    expect_child_ok(pid);
    mmv_free(q);
}

static int child_shrinks(void *arg)
{
    unsigned char *p = arg;
    unsigned char *q = mmv_realloc(p, SIZE / 8);
    if (!q || !all(q, 'P', SIZE / 8))
        return CHILD_BAD_INHERITED;
    mmv_free(q);
    return CHILD_OK;
}

Test(fork, private_child_shrink_keeps_the_parent_block)
{
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    expect_child_ok(spawn(child_shrinks, p));
    cr_assert_eq(file_size(path), (off_t)SIZE, "the child's realloc cut the parent's file");
    cr_assert(all(p, 'P', SIZE)); /* SIGBUS here when the file shrank */
    mmv_free(p);
}

static int child_grows(void *arg)
{
    unsigned char *p = arg;
    unsigned char *q = mmv_realloc(p, 4 * SIZE);
    if (!q || !all(q, 'P', SIZE))
        return CHILD_BAD_INHERITED;
    memset(q, 'C', 4 * SIZE);
    mmv_free(q);
    return CHILD_OK;
}

/* Once, a child growing an inherited block grew the parent's file and wrote its new part there
 * (through a shared mapping of the parent's file). */
Test(fork, private_child_grow_leaves_the_parent_file_alone)
{
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    expect_child_ok(spawn(child_grows, p));
    cr_assert_eq(file_size(path), (off_t)SIZE, "the child's realloc grew the parent's file");
    cr_assert(all(p, 'P', SIZE));
    cr_assert(file_all(path, 'P', SIZE));
    mmv_free(p);
}

Test(fork, private_with_unlink_child_writes_do_not_reach_the_parent)
{
    setenv("MMVEC_UNLINK", "1", 1);
    unsigned char *p = block('P');
    expect_child_ok(spawn(child_writes, p));
    cr_assert(all(p, 'P', SIZE));
    mmv_free(p);
}

/* A child that exits normally (exit(), so the library's exit cleanup runs in it) keeps its hands
 * off the parent's files: run in the helper, where exit() is safe. */
Test(fork, child_exit_keeps_the_parent_files)
{
    int pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        execl(MMVEC_HELPER_DIR "/alloc_child", "alloc_child", "forkexit", "4", "2M", (char *)NULL);
        _exit(127);
    }
    expect_child_ok(pid);
}

/* ---- copy ---- */

static int child_copy_checks(void *arg)
{
    unsigned char *p = arg;
    if (!all(p, 'P', SIZE))
        return CHILD_BAD_INHERITED;
    if (say(fd_to_parent[1]) < 0 || hear(fd_to_child[0]) < 0)
        return CHILD_SYNC;
    if (!all(p, 'P', SIZE)) /* the parent has written 'R' meanwhile */
        return CHILD_SAW_PARENT;
    memset(p, 'C', SIZE);
    if (say(fd_to_parent[1]) < 0 || hear(fd_to_child[0]) < 0)
        return CHILD_SYNC;
    int ok = all(p, 'C', SIZE);
    mmv_free(p); /* its own copy */
    return ok ? CHILD_OK : CHILD_BAD_OWN;
}

Test(fork, copy_isolates_both_ways)
{
    setenv("MMVEC_FORK", "copy", 1);
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    pipes();
    pid_t pid = spawn(child_copy_checks, p);
    cr_assert_eq(hear(fd_to_parent[0]), 0);
    memset(p, 'R', SIZE);
    say(fd_to_child[1]);
    cr_assert_eq(hear(fd_to_parent[0]), 0);
    cr_assert(all(p, 'R', SIZE), "the child's writes showed in the parent");
    say(fd_to_child[1]);
    expect_child_ok(pid);
    /* With threads running (this runner has one) the block moved into a new file after the
     * fork, or stayed in RAM where they cannot be stopped (fork.c): looked up again. */
    int rc = mmv_block_path(p, path, sizeof path);
    cr_assert(rc == -ENODATA || (rc == 0 && file_all(path, 'R', SIZE)), "rc %d", rc);
    mmv_free(p);
}

/* ---- shared ---- */

static int child_shared(void *arg)
{
    unsigned char *p = arg;
    if (say(fd_to_parent[1]) < 0 || hear(fd_to_child[0]) < 0)
        return CHILD_SYNC;
    if (!all(p, 'R', SIZE))
        return CHILD_NOT_SHARED;
    memset(p, 'C', SIZE / 2);
    return CHILD_OK;
}

Test(fork, shared_shares_both_ways)
{
    setenv("MMVEC_FORK", "shared", 1);
    setenv("MMVEC_CACHE", "0", 1);
    unsigned char *p = block('P');
    char path[4096];
    path_of(p, path);
    pipes();
    pid_t pid = spawn(child_shared, p);
    cr_assert_eq(hear(fd_to_parent[0]), 0);
    memset(p, 'R', SIZE);
    say(fd_to_child[1]);
    expect_child_ok(pid);
    cr_assert(all(p, 'C', SIZE / 2), "the child's writes are shared");
    cr_assert(all(p + SIZE / 2, 'R', SIZE / 2));
    cr_assert_eq(access(path, F_OK), 0);
    mmv_free(p);
}

/* ---- cost: fork does not copy the blocks ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A sanity bound, not a benchmark: 4 GiB copied would take well over 2 s; remapping 64
 * files privately takes milliseconds. /var/tmp is disk here (not RAM, unlike /tmp on many
 * systems), so fallocate'ing 4 GiB costs no memory. */
Test(fork, fork_exec_of_a_process_holding_4g_is_fast)
{
    teardown();
    set_dir("/var/tmp");
    enum { N = 64 };
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = mmv_malloc(64 * M);
        cr_assert(mmv_owns(b[i]), "block %d", i);
        for (size_t off = 0; off < 64 * M; off += 16 * M)
            b[i][off] = (unsigned char)i; /* mostly untouched: four pages of each */
    }
    double t0 = now_s();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    double took = now_s() - t0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_log_info("fork+exec+wait with 4 GiB in 64 blocks: %.1f ms", took * 1e3);
    cr_assert_lt(took, 2.0, "fork+exec with 4 GiB of blocks took %.3f s", took);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(b[i][16 * M], (unsigned char)i);
        mmv_free(b[i]);
    }
}

/* A program whose forked workers leave with _exit (as multiprocessing's do) runs no exit
 * handler in them: their blocks' files stay until something reaps them. The program's own exit
 * does: after it, nothing of the workers' remains. */
static void workers_that_exit_abruptly(void)
{
    char *mine = mmv_malloc(2 * M);
    memset(mine, 1, 2 * M);
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *kept = mmv_malloc(2 * M), *freed = mmv_malloc(3 * M);
            memset(kept, 2, 2 * M);
            memset(freed, 3, 3 * M);
            mmv_free(freed); /* into the worker's cache: its file stays too */
            _exit(kept[0] == 2 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            _exit(10);
    }
    /* Each worker's start reaped its dead elder siblings; the last one's files are still here. */
    exit(tu_count_segs(segdir) >= 2 ? 0 : 11);
}

Test(fork, workers_ending_with_exit_underscore_leave_nothing_after_the_program)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        workers_that_exit_abruptly();
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "program: status %d", status);
    cr_assert_eq(tu_count_segs(segdir), 0, "segment files left after the program's exit");
    cr_assert_eq(tu_count_entries(tu_heap_dir(segdir)), 0,
                 "folders or lock files left after the program's exit");
}
