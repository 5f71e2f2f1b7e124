/* Safety of blocks across fork, thread cancellation, signals and failures (regressions):
 *
 *   - a grandchild (and deeper) reads its parent's last writes, not the file of the first
 *     process; nobody's writes reach its ancestors;
 *   - fork isolation (MMVEC_FORK=private) never silently turns into sharing when the child
 *     cannot reopen a block's file: MMVEC_DIR removed, or relative after a chdir;
 *   - a thread cancelled inside malloc does not leave the allocator locked;
 *   - a parent's shrink then failed grow (RLIMIT_FSIZE) does not cut the file a fork child
 *     maps (SIGBUS there);
 *   - with files unusable, a block realloc'd in small steps is not copied at every step;
 *   - free keeps errno;
 *   - an impossible request is ENOMEM, silent, and leaves segment files working;
 *   - fallocate interrupted by a signal (EINTR) is retried, not a fallback to RAM.
 *
 * White-box: the library is linked statically and called in-process (mmv_*), with the
 * variables set before the first call (each Criterion test is a process of its own); the
 * *_preloaded cases run tests/helpers/safety_fork under LD_PRELOAD of the interposer with plain
 * malloc/free (skipped in sanitizer builds, which cannot preload). Children report through
 * their exit code and leave with _exit. Hangs are caught by alarm(20) in the child. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#endif

#include "util.h"

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)
#define SIZE (4 * M)
#define HELPER MMVEC_HELPER_DIR "/safety_fork"

static char tmp[64];     /* everything a test makes: removed by teardown */
static char segdir[128]; /* MMVEC_DIR, <tmp>/seg */
static int saved_stderr = -1;

static void setup(void)
{
    static const char *const vars[] = {"MMVEC_THRESHOLD", "MMVEC_DIR", "MMVEC_STRICT",
                                       "MMVEC_UNLINK", "MMVEC_DISABLE", "MMVEC_STATS",
                                       "MMVEC_LOG", "MMVEC_FORK", "MMVEC_CACHE",
                                       "MMVEC_CACHE_DECAY_MS", "MMVEC_RESERVE", "MMVEC_ADVICE",
                                       "MMVEC_WRITEBACK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp/mmvec-sfork-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tmp);
    setenv("MMVEC_DIR", segdir, 1);
    setenv("MMVEC_THRESHOLD", "64K", 1);
}

static void teardown(void)
{
    /* Safe to run twice (TU_SKIP runs it before skipping). */
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
    if (chdir("/") != 0) { /* a test may have left us in tmp */
    }
    tu_rm_rf(tmp);
}

TestSuite(safety_fork, .init = setup, .fini = teardown, .timeout = 300);

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                      "preloaded into an uninstrumented child");
#endif
}

/* ---- tools ---------------------------------------------------------------------------------- */

enum {
    CHILD_OK = 0,
    CHILD_BAD_INHERITED = 10, /* + level: did not read what its parent left */
    CHILD_SAW_CHILD = 20,     /* + level: read its own child's writes */
    CHILD_KILLED = 30,        /* + level: that descendant was killed by a signal */
    CHILD_SAW_PARENT = 40,    /* the parent's writes after the fork showed in the child */
    CHILD_SYNC,               /* pipe trouble (the parent died?) */
    CHILD_FORK,
    CHILD_JOIN_HUNG,          /* pthread_join of the cancelled thread: no return in 20 s */
    CHILD_ALLOC_HUNG,         /* the 4 MiB allocation after the cancel: no return in 20 s */
    CHILD_NOT_CANCELLED,
    CHILD_NO_BLOCK,           /* a 4 MiB allocation failed or is no segment block */
    CHILD_FELL_BACK,          /* a large request fell back to RAM */
    CHILD_NOT_INJECTED,       /* the seccomp trap never saw a fallocate */
    CHILD_NO_SECCOMP,         /* the seccomp filter could not be installed */
    CHILD_BAD_DATA,
    CHILD_TORN,               /* the copy mixes more than one moment of the parent's writes */
};

static const char *child_why(int code)
{
    static char buf[160];
    if (code > CHILD_BAD_INHERITED && code < CHILD_SAW_CHILD)
        snprintf(buf, sizeof buf, "level %d did not read its parent's last writes",
                 code - CHILD_BAD_INHERITED);
    else if (code >= CHILD_SAW_CHILD && code < CHILD_KILLED)
        snprintf(buf, sizeof buf, "level %d read its child's writes", code - CHILD_SAW_CHILD);
    else if (code > CHILD_KILLED && code < CHILD_SAW_PARENT)
        snprintf(buf, sizeof buf, "level %d was killed by a signal", code - CHILD_KILLED);
    else
        switch (code) {
        case CHILD_OK: return "ok";
        case CHILD_TORN: return "the child's copy mixes several moments of the parent's writes";
        case CHILD_BAD_INHERITED: return "did not read the parent's data";
        case CHILD_SAW_PARENT: return "the parent's writes after the fork showed in the child";
        case CHILD_SYNC: return "pipe trouble";
        case CHILD_FORK: return "fork or pthread_create failed";
        case CHILD_JOIN_HUNG: return "pthread_join of the cancelled thread hung for 20 s";
        case CHILD_ALLOC_HUNG: return "the 4 MiB allocation after the cancel hung for 20 s";
        case CHILD_NOT_CANCELLED: return "the thread did not end cancelled";
        case CHILD_NO_BLOCK: return "a 4 MiB allocation failed or is no segment block";
        case CHILD_FELL_BACK: return "a large request fell back to RAM (fallbacks > 0)";
        case CHILD_NOT_INJECTED: return "the seccomp trap never saw a fallocate";
        case CHILD_NO_SECCOMP: return "could not install the seccomp filter";
        case CHILD_BAD_DATA: return "a block read back wrong";
        default: snprintf(buf, sizeof buf, "unknown code %d", code);
        }
    return buf;
}

static void expect_child_ok(int status, const char *what)
{
    cr_assert(WIFEXITED(status), "%s: killed by signal %d (%s)", what,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0,
              WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "?");
    cr_assert_eq(WEXITSTATUS(status), CHILD_OK, "%s: %s", what, child_why(WEXITSTATUS(status)));
}

static bool all(const void *p, int c, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return false;
    return true;
}

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

/* A segment block of SIZE bytes, all `c`. */
static unsigned char *block(int c)
{
    unsigned char *p = mmv_malloc(SIZE);
    cr_assert_not_null(p);
    cr_assert(mmv_owns(p), "a 4 MiB block is no segment block");
    memset(p, c, SIZE);
    return p;
}

/* The first n bytes of the file at path are all c. */
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

/* Two pipes, parent and child taking turns; each side closes the other's ends, so that the
 * death of one is an EOF for the other. */
static int to_child[2] = {-1, -1}, to_parent[2] = {-1, -1};

static void pipes(void)
{
    cr_assert_eq(pipe2(to_child, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(to_parent, O_CLOEXEC), 0);
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
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (to_child[1] >= 0) {
            close(to_child[1]);
            close(to_parent[0]);
        }
        _exit(fn(arg));
    }
    if (to_child[0] >= 0) {
        close(to_child[0]);
        close(to_parent[1]);
        to_child[0] = to_parent[1] = -1;
    }
    return pid;
}

/* Sends this process's stderr to <tmp>/stderr.txt until captured() gives it back. */
static void capture_stderr(void)
{
    int fd = open(tu_path_in(tmp, "stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static const char *captured(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    return tu_slurp(tu_path_in(tmp, "stderr.txt"));
}

/* Runs the helper under the preload with MMVEC_THRESHOLD=64K, MMVEC_DIR=segdir and `extra`
 * ("NAME=value", NULL-terminated, up to 4); stderr into <tmp>/helper.err. The wait status. */
static int run_preloaded(const char *cmd, const char *arg, const char *const *extra)
{
    static char preload[4200], dir[200];
    size_t n;
    char **env = tu_child_env(12, &n, NULL);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB);
    snprintf(dir, sizeof dir, "MMVEC_DIR=%s", segdir);
    env[n++] = preload;
    env[n++] = dir;
    env[n++] = "MMVEC_THRESHOLD=64K";
    for (int i = 0; extra && extra[i]; i++) {
        cr_assert_lt(i, 4);
        env[n++] = (char *)extra[i];
    }
    const char *argv[] = {HELPER, cmd, arg, NULL};
    char err[200];
    snprintf(err, sizeof err, "%s/helper.err", tmp);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        tu_redirect(NULL, STDOUT_FILENO, O_WRONLY);
        tu_redirect(err, STDERR_FILENO, O_WRONLY | O_CREAT | O_TRUNC);
        alarm(240); /* survives exec: a helper that hangs as a whole dies */
        execve(HELPER, (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    return tu_wait(pid);
}

static void expect_helper_ok(int status, const char *what)
{
    const char *err = tu_slurp(tu_path_in(tmp, "helper.err"));
    cr_assert(WIFEXITED(status), "%s: killed by signal %d; stderr:\n%s", what,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, err);
    cr_assert_eq(WEXITSTATUS(status), 0, "%s: exit %d; stderr:\n%s", what, WEXITSTATUS(status),
                 err);
}

/* ---- 1. grandchildren read their parent's memory ------------------------------------------- */

/* At `level` (0: the test process), the block holds the parent's last writes, 'A' + level - 1;
 * this level writes 'A' + level all over it and forks the next, down to `levels`. After a child
 * ends, its writes must not show. Returns a CHILD_* code; calls no cr_* (it runs in children). */
static int descend(unsigned char *p, int level, int levels)
{
    if (level > 0 && !all(p, 'A' + level - 1, SIZE))
        return CHILD_BAD_INHERITED + level;
    memset(p, 'A' + level, SIZE);
    if (level == levels)
        return CHILD_OK;
    pid_t pid = fork();
    if (pid < 0)
        return CHILD_FORK;
    if (pid == 0)
        _exit(descend(p, level + 1, levels));
    int status = tu_wait(pid);
    if (!WIFEXITED(status))
        return CHILD_KILLED + level + 1;
    if (WEXITSTATUS(status))
        return WEXITSTATUS(status);
    return all(p, 'A' + level, SIZE) ? CHILD_OK : CHILD_SAW_CHILD + level;
}

static void expect_descendants_see_their_parents(int levels)
{
    unsigned char *p = block('A');
    char path[4096];
    bool unlinked = getenv("MMVEC_UNLINK") != NULL; /* no file to look at */
    cr_assert_eq(mmv_block_path(p, path, sizeof path), unlinked ? -ENOENT : 0);
    int rc = descend(p, 0, levels);
    cr_assert_eq(rc, CHILD_OK, "%s (levels: 1 = child, 2 = grandchild, 3 = great-grandchild)",
                 child_why(rc));
    cr_assert(all(p, 'A', SIZE), "the descendants' writes showed in the first process");
    /* MMVEC_FORK=copy with threads running moves the block into a new file after the fork, or
     * keeps it in RAM where they cannot be stopped (a thread of this test runner blocks every
     * signal): its file is looked up again. */
    int rc2 = unlinked ? -ENOENT : mmv_block_path(p, path, sizeof path);
    cr_assert(rc2 == 0 || rc2 == -ENODATA || unlinked, "mmv_block_path: %d", rc2);
    cr_assert(rc2 != 0 || file_all(path, 'A', SIZE),
              "the descendants' writes reached the block's file");
    mmv_free(p);
}

Test(safety_fork, grandchild_reads_its_parents_writes)
{
    expect_descendants_see_their_parents(2);
}

Test(safety_fork, great_grandchild_reads_its_parents_writes)
{
    expect_descendants_see_their_parents(3);
}

Test(safety_fork, grandchild_reads_its_parents_writes_preloaded)
{
    skip_unless_preloadable();
    expect_helper_ok(run_preloaded("grandchild", "3", NULL), "safety_fork grandchild 3");
}

/* ---- 2. isolation does not silently become sharing ----------------------------------------- */

/* The child reads the parent's 'P', writes 'C' everywhere (so that every page is its own), lets
 * the parent write 'R', checks
 * it still reads its 'C', writes 'D' last and ends. */
static int child_isolated(void *arg)
{
    unsigned char *p = arg;
    if (!all(p, 'P', SIZE))
        return CHILD_BAD_INHERITED;
    memset(p, 'C', SIZE);
    if (say(to_parent[1]) < 0 || hear(to_child[0]) < 0)
        return CHILD_SYNC;
    if (!all(p, 'C', SIZE))
        return CHILD_SAW_PARENT;
    memset(p, 'D', SIZE);
    return CHILD_OK;
}

static void expect_isolated(unsigned char *p)
{
    pipes();
    pid_t pid = spawn(child_isolated, p);
    int heard = hear(to_parent[0]);
    bool clean_while_running = all(p, 'P', SIZE);
    memset(p, 'R', SIZE);
    say(to_child[1]);
    int status = tu_wait(pid);
    close(to_parent[0]);
    close(to_child[1]);
    to_parent[0] = to_child[1] = -1;
    expect_child_ok(status, "child");
    cr_assert_eq(heard, 0);
    cr_assert(clean_while_running, "the child's writes showed in the parent (first byte '%c')",
              p[0]);
    cr_assert(all(p, 'R', SIZE), "after the child ended, the parent reads its writes (first "
                                 "byte '%c', not 'R')", p[0]);
}

Test(safety_fork, private_fork_after_the_dir_was_removed_stays_isolated)
{
    unsigned char *p = block('P');
    cr_assert_eq(tu_rm_rf_checked(segdir), 0, "rm -rf %s", segdir);
    cr_assert_neq(access(segdir, F_OK), 0);
    expect_isolated(p);
    mmv_free(p);
}

Test(safety_fork, private_fork_after_chdir_with_a_relative_dir_stays_isolated)
{
    cr_assert_eq(chdir(tmp), 0);
    setenv("MMVEC_DIR", "seg", 1);
    unsigned char *p = block('P');
    cr_assert_eq(mkdir(tu_path_in(tmp, "elsewhere"), 0700), 0);
    cr_assert_eq(chdir(tu_path_in(tmp, "elsewhere")), 0);
    expect_isolated(p);
    mmv_free(p);
}

/* ---- 3. pthread_cancel inside malloc -------------------------------------------------------- */

static volatile sig_atomic_t cancel_phase; /* 1: joining, 2: allocating after */
static volatile int churn_started;

static void on_cancel_alarm(int sig)
{
    (void)sig;
    _exit(cancel_phase == 1 ? CHILD_JOIN_HUNG : CHILD_ALLOC_HUNG);
}

static void *churn(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
    __atomic_store_n(&churn_started, 1, __ATOMIC_RELEASE);
    for (;;) {
        unsigned char *p = mmv_malloc(SIZE);
        if (p)
            p[0] = p[SIZE - 1] = 1;
        mmv_free(p);
        pthread_testcancel(); /* a cancellation point of our own, whatever malloc does */
    }
    return NULL;
}

/* In a forked child: a thread churns 4 MiB blocks and is cancelled after delay_us; then this
 * thread's own 4 MiB allocation must come back, as a segment block. */
static int cancel_trial(unsigned delay_us)
{
    signal(SIGALRM, on_cancel_alarm);
    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0)
        return CHILD_FORK;
    while (!__atomic_load_n(&churn_started, __ATOMIC_ACQUIRE)) {
    }
    if (delay_us) {
        struct timespec ts = {0, (long)delay_us * 1000};
        nanosleep(&ts, NULL);
    }
    cancel_phase = 1;
    alarm(20);
    pthread_cancel(t);
    void *ret = NULL;
    pthread_join(t, &ret);
    if (ret != PTHREAD_CANCELED)
        return CHILD_NOT_CANCELLED;
    cancel_phase = 2;
    unsigned char *p = mmv_malloc(SIZE);
    if (!p || !mmv_owns(p))
        return CHILD_NO_BLOCK;
    memset(p, 7, SIZE);
    mmv_free(p);
    alarm(0);
    return CHILD_OK;
}

/* 50 trials, each in a fresh child, cancelled 0-400 us after the thread starts: the first half
 * in children of a process that never made a block (their first block sets the allocator up),
 * the second half after this process made one (their first block makes their own folder). */
Test(safety_fork, thread_cancelled_in_malloc_does_not_wedge_later_allocations)
{
    enum { TRIALS = 50 };
    for (int i = 0; i < TRIALS; i++) {
        if (i == TRIALS / 2)
            mmv_free(block('W'));
        unsigned delay = (unsigned)(i * 53) % 400;
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            _exit(cancel_trial(delay));
        int status = tu_wait(pid);
        char what[96];
        snprintf(what, sizeof what, "trial %d (cancelled %u us after it started)", i, delay);
        expect_child_ok(status, what);
    }
}

Test(safety_fork, thread_cancelled_in_malloc_does_not_wedge_later_allocations_preloaded)
{
    skip_unless_preloadable();
    expect_helper_ok(run_preloaded("cancel", "50", NULL), "safety_fork cancel 50");
}

/* ---- 4. a fork child's view survives the parent's shrink and failed grow ------------------- */

static int child_reads_8m(void *arg)
{
    unsigned char *p = arg;
    if (say(to_parent[1]) < 0 || hear(to_child[0]) < 0)
        return CHILD_SYNC;
    return intact(p, 8 * M, 4) ? CHILD_OK : CHILD_SAW_PARENT; /* SIGBUS here: the file was cut */
}

Test(safety_fork, private_child_survives_parent_shrink_then_failed_grow)
{
    unsigned char *p = mmv_malloc(8 * M);
    cr_assert(mmv_owns(p));
    tu_fill(p, 8 * M, 4);
    pipes();
    pid_t pid = spawn(child_reads_8m, p);
    cr_assert_eq(hear(to_parent[0]), 0);

    unsigned char *q = mmv_realloc(p, M);
    cr_assert_not_null(q);
    cr_assert(intact(q, M, 4));
    struct rlimit old, small = {2 * M, 0};
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    unsigned char *r = mmv_realloc(q, 32 * M); /* the file cannot grow: RAM, or NULL */
    setrlimit(RLIMIT_FSIZE, &old);
    if (r) {
        cr_assert(intact(r, M, 4), "the grown block lost its first MiB");
        q = r;
    }

    say(to_child[1]);
    int status = tu_wait(pid);
    close(to_parent[0]);
    close(to_child[1]);
    to_parent[0] = to_child[1] = -1;
    expect_child_ok(status, "the child reading its 8 MiB (SIGBUS: the parent cut the file it maps)");
    mmv_free(q);
}

/* ---- 5. no copy at every step when files are unusable --------------------------------------- */

Test(safety_fork, unusable_dir_realloc_in_small_steps_does_not_copy_each_step)
{
    int fd = open(segdir, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* MMVEC_DIR: a file */
    cr_assert_geq(fd, 0);
    close(fd);
    setenv("MMVEC_LOG", "0", 1); /* the one fallback warning is expected */
    size_t have = M;
    unsigned char *p = mmv_malloc(have);
    cr_assert_not_null(p);
    cr_assert(!mmv_owns(p), "a segment block under a MMVEC_DIR that is a regular file?");
    tu_fill(p, have, 5);
    int steps = 0;
    for (size_t size = have + 64 * K; size <= 32 * M; size += 64 * K, steps++) {
        unsigned char *q = mmv_realloc(p, size);
        cr_assert_not_null(q, "realloc to %zu", size);
        cr_assert(q[0] == tu_pat(5, 0) && q[have - 1] == tu_pat(5, have - 1),
                  "realloc to %zu lost data", size);
        for (size_t i = have; i < size; i++)
            q[i] = tu_pat(5, i);
        p = q;
        have = size;
    }
    cr_assert(intact(p, 32 * M, 5), "data lost on the way to 32 MiB");
    mmv_stats s = stats();
    cr_assert_geq(s.fallbacks, 1);
    cr_assert_leq(s.reallocs_copied, 4, "%d reallocs from 1 to 32 MiB copied the block %llu "
                                        "times", steps, (unsigned long long)s.reallocs_copied);
    mmv_free(p);
}

/* ---- 6. free keeps errno -------------------------------------------------------------------- */

#define EXPECT_FREE_KEEPS_ERRNO(p, what)                                                     \
    do {                                                                                     \
        void *p_ = (p);                                                                      \
        errno = 1234;                                                                        \
        mmv_free(p_);                                                                        \
        int e_ = errno;                                                                      \
        cr_expect_eq(e_, 1234, "free of %s changed errno to %d (%s)", what, e_, strerror(e_)); \
    } while (0)

/* Small, large into the cache, large from the cache; then, with MMVEC_DIR removed: into the
 * cache, too large for it, and evicting a cached block: the last two unlink a file that is gone. */
Test(safety_fork, free_keeps_errno)
{
    setenv("MMVEC_CACHE", "4M", 1);
    EXPECT_FREE_KEEPS_ERRNO(mmv_malloc(100), "a small block");
    EXPECT_FREE_KEEPS_ERRNO(block('a'), "a large block (kept in the cache)");
    unsigned char *cached = block('c'), *big = mmv_malloc(2 * SIZE), *last = block('l');
    cr_assert(mmv_owns(big));
    EXPECT_FREE_KEEPS_ERRNO(cached, "a large block from the cache");
    cached = block('c');
    cr_assert_eq(tu_rm_rf_checked(segdir), 0, "rm -rf %s", segdir);
    EXPECT_FREE_KEEPS_ERRNO(cached, "a 4 MiB block whose file is gone (into the cache)");
    EXPECT_FREE_KEEPS_ERRNO(big, "an 8 MiB block whose file is gone (too large for the cache)");
    EXPECT_FREE_KEEPS_ERRNO(last, "a 4 MiB block evicting a cached block whose file is gone");
    EXPECT_FREE_KEEPS_ERRNO(mmv_malloc(200), "a small block, after");
}

Test(safety_fork, free_keeps_errno_preloaded)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_CACHE=4M", NULL};
    expect_helper_ok(run_preloaded("errno", NULL, extra), "safety_fork errno");
}

/* ---- 7. an impossible request --------------------------------------------------------------- */

Test(safety_fork, impossible_request_is_a_silent_enomem)
{
    const size_t pib = (size_t)1 << 50; /* beyond the 4 TiB reservation, and beyond RAM */
    capture_stderr();
    errno = 0;
    void *huge = mmv_malloc(pib);
    int e = errno;
    unsigned char *p = mmv_malloc(SIZE);
    char path[4096];
    int path_rc = p ? mmv_block_path(p, path, sizeof path) : -1;
    bool owned = p && mmv_owns(p);
    errno = 0;
    void *again = mmv_malloc(pib);
    int e2 = errno;
    const char *err = captured();
    cr_assert_null(huge, "malloc(1 PiB) succeeded");
    cr_assert_eq(e, ENOMEM, "malloc(1 PiB): errno %d (%s), not ENOMEM", e, strerror(e));
    cr_assert_null(again);
    cr_assert_eq(e2, ENOMEM);
    cr_assert_str_empty(err, "malloc(1 PiB) printed:\n%s", err);
    cr_assert_not_null(p);
    cr_assert(owned, "after malloc(1 PiB), a 4 MiB block is no segment block");
    cr_assert_eq(path_rc, 0, "after malloc(1 PiB), a 4 MiB block has no file");
    mmv_stats s = stats();
    cr_assert_eq(s.fallbacks, 0, "malloc(1 PiB) counted %llu fallback(s) to RAM",
                 (unsigned long long)s.fallbacks);
    memset(p, 1, SIZE);
    mmv_free(p);
}

/* ---- 8. fallocate interrupted by a signal --------------------------------------------------- */

static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
    (void)sig;
    ticks++;
}

/* The real thing: a handler without SA_RESTART and a timer every 100 us while 200 blocks of
 * 64 MiB are made on /tmp (a disk here) and freed. Whether fallocate returns EINTR depends on
 * the kernel and the filesystem; where it does, none of it may turn into a fallback. */
Test(safety_fork, fallocate_interrupted_by_a_timer_signal_is_retried)
{
    setenv("MMVEC_CACHE", "0", 1); /* each block a new file, a new fallocate */
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGALRM, &sa, &old_sa), 0);
    struct itimerval every = {{0, 100}, {0, 100}}, off = {{0, 0}, {0, 0}};
    cr_assert_eq(setitimer(ITIMER_REAL, &every, NULL), 0);
    int owned = 0;
    for (int i = 0; i < 200; i++) {
        unsigned char *p = mmv_malloc(64 * M);
        if (!p)
            break;
        owned += mmv_owns(p);
        p[0] = p[64 * M - 1] = (unsigned char)i;
        mmv_free(p);
    }
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    mmv_stats s = stats();
    cr_log_info("200 blocks of 64 MiB under a 100 us timer: %ld signals, %llu fallocate "
                "failures, %llu fallbacks", (long)ticks,
                (unsigned long long)s.fallocate_failed, (unsigned long long)s.fallbacks);
    cr_assert_gt(ticks, 0, "the timer never fired");
    cr_assert_eq(s.fallbacks, 0, "%llu of 200 blocks fell back to RAM under a timer signal "
                 "(%llu failed fallocates)", (unsigned long long)s.fallbacks,
                 (unsigned long long)s.fallocate_failed);
    cr_assert_eq(owned, 200);
}

/* The same, made certain: a seccomp filter traps every fallocate (SIGSYS), and the trap answers
 * every other one with EINTR, doing the real call for the next (marked in its unused fifth
 * argument, which the filter lets through). Files are made and grown: none may fall back. */
#if defined(__x86_64__)
#define PASS_MARK 0x4d4d5645u
static volatile sig_atomic_t injected, passed;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
    (void)sig, (void)si;
    greg_t *r = ((ucontext_t *)ctx)->uc_mcontext.gregs;
    int saved = errno;
    if (injected == passed) {
        injected++;
        r[REG_RAX] = -EINTR;
    } else {
        long rc = syscall(SYS_fallocate, r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10],
                          (long)PASS_MARK);
        r[REG_RAX] = rc < 0 ? -errno : rc;
        passed++;
    }
    errno = saved;
}

static int install_eintr_trap(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fallocate, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PASS_MARK, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof *f), f};
    if (sigaction(SIGSYS, &sa, NULL) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -1;
    return 0;
}

static int eintr_child(void *arg)
{
    (void)arg;
    if (install_eintr_trap() < 0)
        return CHILD_NO_SECCOMP;
    for (int i = 0; i < 20; i++) {
        unsigned char *p = mmv_malloc(SIZE);
        if (!p)
            return CHILD_NO_BLOCK;
        if (!mmv_owns(p))
            return CHILD_FELL_BACK;
        p[0] = p[SIZE - 1] = 1;
        mmv_free(p);
    }
    unsigned char *p = mmv_malloc(M);
    if (!p)
        return CHILD_NO_BLOCK;
    if (!mmv_owns(p))
        return CHILD_FELL_BACK;
    tu_fill(p, M, 8);
    for (size_t size = 2 * M; size <= 32 * M; size *= 2) {
        unsigned char *q = mmv_realloc(p, size);
        if (!q)
            return CHILD_NO_BLOCK;
        p = q;
        if (!mmv_owns(p))
            return CHILD_FELL_BACK;
    }
    if (!intact(p, M, 8))
        return CHILD_BAD_DATA;
    mmv_free(p);
    mmv_stats s;
    mmv_stats_get(&s);
    if (s.fallbacks)
        return CHILD_FELL_BACK;
    return injected > 0 ? CHILD_OK : CHILD_NOT_INJECTED;
}
#endif

Test(safety_fork, fallocate_eintr_is_retried)
{
#if defined(__x86_64__)
    setenv("MMVEC_CACHE", "0", 1);
    expect_child_ok(tu_wait(spawn(eintr_child, NULL)),
                    "making and growing blocks while every other fallocate gives EINTR");
#else
    TU_SKIP(teardown, "the EINTR injection (seccomp trap) is written for x86-64 only");
#endif
}

/* ---- a parent writing from another thread during the fork ---- */

struct writer {
    unsigned char *p;
    size_t size; /* 0: SIZE */
    volatile int stop;
    unsigned rounds;
};

/* Rewrites the whole block, front to back, with 'a'..'z' in turn until told to stop. */
static void *rewrite(void *arg)
{
    struct writer *w = arg;
    while (!w->stop) {
        memset(w->p, 'a' + (int)(w->rounds % 26), w->size ? w->size : SIZE);
        w->rounds++;
    }
    return NULL;
}

/* The child writes its own mark, which must never show in the parent, and reads it back. */
static int child_marks(void *arg)
{
    unsigned char *p = arg;
    memset(p, '#', SIZE);
    for (int i = 0; i < 20; i++) {
        if (!all(p, '#', SIZE))
            return CHILD_SAW_PARENT;
        usleep(1000);
    }
    return CHILD_OK;
}

/* Every mode but shared, with a second thread rewriting the block through every fork: the
 * child's writes never reach the parent, and the child's own writes stay its own. */
static void expect_no_sharing_with_a_writer(const char *mode)
{
    setenv("MMVEC_FORK", mode, 1);
    struct writer w = {.p = block('a')};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, rewrite, &w), 0);
    for (int i = 0; i < 20; i++) {
        pid_t pid = spawn(child_marks, w.p);
        expect_child_ok(tu_wait(pid), mode);
    }
    w.stop = 1;
    pthread_join(t, NULL);
    for (size_t i = 0; i < SIZE; i++)
        cr_assert(w.p[i] >= 'a' && w.p[i] <= 'z', "MMVEC_FORK=%s: the child's '%c' reached the "
                  "parent at byte %zu", mode, w.p[i], i);
    cr_assert_gt(w.rounds, 0);
    mmv_free(w.p);
}

Test(safety_fork, private_fork_with_a_writing_thread_never_shares)
{
    expect_no_sharing_with_a_writer("private");
}

Test(safety_fork, copy_fork_with_a_writing_thread_never_shares)
{
    expect_no_sharing_with_a_writer("copy");
}

Test(safety_fork, private_unlink_fork_with_a_writing_thread_never_shares)
{
    setenv("MMVEC_UNLINK", "1", 1);
    expect_no_sharing_with_a_writer("private");
}

/* ---- MMVEC_FORK=copy is one instant, as fork's own copy is ---- */

#define BIG (64 * M)

/* At one instant a front-to-back rewrite leaves the block as one letter, or a newer letter up
 * to some byte and the letter before it from there on: one change at most, to the letter that
 * comes before. More is a copy made over several moments. */
static int child_sees_one_instant(void *arg)
{
    const unsigned char *p = arg;
    int changes = 0;
    for (size_t i = 1; i < BIG; i++)
        if (p[i] != p[i - 1]) {
            int older = p[i - 1] == 'a' ? 'z' : p[i - 1] - 1;
            if (++changes > 1 || p[i] != older)
                return CHILD_TORN;
        }
    return CHILD_OK;
}

/* A thread rewrites a 64 MiB file block front to back while the process forks: each child must
 * see one instant, and the parent lose no write. */
static void expect_one_instant_with_a_writer(const char *mode)
{
    setenv("MMVEC_FORK", mode, 1);
    struct writer w = {.p = mmv_malloc(BIG), .size = BIG};
    cr_assert_not_null(w.p);
    memset(w.p, 'a', BIG);
    char path[4096];
    cr_assert_eq(mmv_block_path(w.p, path, sizeof path), 0, "the 64 MiB block is not a file");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, rewrite, &w), 0);
    for (int i = 0; i < 6; i++) {
        while (w.rounds < (unsigned)i + 1) /* the writer is rewriting at the fork */
            usleep(1000);
        pid_t pid = spawn(child_sees_one_instant, w.p);
        expect_child_ok(tu_wait(pid), mode);
    }
    w.stop = 1;
    pthread_join(t, NULL);
    unsigned char last = w.p[BIG - 1];
    for (size_t i = 0; i < BIG; i++)
        cr_assert(w.p[i] == last, "the parent's block lost a write at byte %zu", i);
    /* Back in a file where the other threads could be stopped for the move (the preloaded
     * case); here a thread of the test runner blocks SIGPWR, so the block may stay in RAM
     * (copy) or copy-on-write over its file (private), its data right. */
    mmv_free(w.p);
}

/* The case: with a second thread rewriting a 64 MiB block, every child saw several
 * values (the copy took longer than a rewrite). The files are frozen for the copy now. */
Test(safety_fork, copy_fork_with_a_writing_thread_is_one_instant)
{
    expect_one_instant_with_a_writer("copy");
}

/* The default mode: the child mapped the parent's file again after the fork, so it saw the
 * writer's progress (several moments) and, on pages it had not read yet, the parent's writes
 * after the fork. The parent's blocks are frozen at the fork now. */
Test(safety_fork, private_fork_with_a_writing_thread_is_one_instant)
{
    expect_one_instant_with_a_writer("private");
}

/* The child only reads: every page it has not written must still show what the parent had at
 * the fork, after the parent rewrote the whole block. */
static int child_reads_after_parent_wrote(void *arg)
{
    unsigned char *p = arg;
    if (say(to_parent[1]) < 0 || hear(to_child[0]) < 0)
        return CHILD_SYNC;
    return all(p, 'P', SIZE) ? CHILD_OK : CHILD_SAW_PARENT;
}

Test(safety_fork, private_child_never_sees_its_parents_later_writes)
{
    unsigned char *p = block('P');
    pipes();
    pid_t pid = spawn(child_reads_after_parent_wrote, p);
    cr_assert_eq(hear(to_parent[0]), 0);
    memset(p, 'L', SIZE); /* after the fork: the child must not see it */
    say(to_child[1]);
    expect_child_ok(tu_wait(pid), "a child that read after its parent wrote");
    cr_assert(all(p, 'L', SIZE), "the parent lost its own writes");
    mmv_free(p);
}

/* The same preloaded, as users run it: each child one instant, and the block back in a file
 * after each fork (the writer is stopped for each chunk of the move). */
Test(safety_fork, copy_fork_with_a_writing_thread_is_one_instant_preloaded)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_FORK=copy", "MMVEC_PLACEMENT=file", NULL};
    expect_helper_ok(run_preloaded("instant", "6", extra), "safety_fork instant 6");
}

/* The same for the default mode, and with each process rewriting its block after forking, three
 * deep: children read the fork's instant, and once they are gone the block is folded back
 * (mapped shared over its file again, the file holding the parent's last writes). */
/* A memory limit of 32 MiB makes the parent's 64 MiB of writes after a fork tight: the frozen
 * block must then go back into a file, shared. */
Test(safety_fork, private_fork_with_a_writing_thread_is_one_instant_preloaded)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_FORK=private", "MMVEC_PLACEMENT=file",
                                        "MMVEC_MEMORY_LIMIT=32M", NULL};
    expect_helper_ok(run_preloaded("instant", "6", extra), "safety_fork instant 6");
}

Test(safety_fork, private_children_never_see_later_writes_three_deep_preloaded)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_PLACEMENT=file", "MMVEC_MEMORY_LIMIT=32M", NULL};
    expect_helper_ok(run_preloaded("later", "3", extra), "safety_fork later 3");
}

/* Children gone, memory tight: the frozen block folds back into its own file, each round. */
Test(safety_fork, private_fork_block_folds_back_once_children_are_gone_preloaded)
{
    skip_unless_preloadable();
    static const char *const extra[] = {"MMVEC_PLACEMENT=file", "MMVEC_MEMORY_LIMIT=32M", NULL};
    expect_helper_ok(run_preloaded("fold", "3", extra), "safety_fork fold 3");
}

/* realloc owns its block: frozen at a fork whose child is gone, it goes back into its file and
 * grows in place, not by a copy. */
Test(safety_fork, private_fork_realloc_after_the_child_grows_in_place)
{
    unsigned char *p = block('P');
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(all(p, 'P', SIZE) ? CHILD_OK : CHILD_BAD_INHERITED);
    expect_child_ok(tu_wait(pid), "child");
    memset(p, 'Q', SIZE / 2); /* copied on write: only in the parent's private pages */
    uint64_t copied = stats().reallocs_copied;
    unsigned char *q = mmv_realloc(p, 2 * SIZE);
    cr_assert_not_null(q);
    cr_assert_eq(stats().reallocs_copied, copied, "the block was copied to grow");
    cr_assert(all(q, 'Q', SIZE / 2) && all(q + SIZE / 2, 'P', SIZE / 2), "data lost");
    char path[4096];
    cr_assert_eq(mmv_block_path(q, path, sizeof path), 0);
    cr_assert(file_all(path, 'Q', SIZE / 2), "the file lacks the writes made after the fork");
    mmv_free(q);
}

/* ---- many blocks: fork+exec works, and a fork child sees every block ---- */

#define MANY 2000
#define MANY_SIZE (64 * K) /* at the threshold: each block is a file and a 1 MiB granule */

static unsigned char *many[MANY];

static int child_reads_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < MANY; i++)
        if (!intact(many[i], MANY_SIZE, (unsigned)i))
            return CHILD_BAD_INHERITED;
    for (int i = 0; i < MANY; i += 97)
        memset(many[i], 0, MANY_SIZE);
    return CHILD_OK;
}

static void expect_many_blocks_fork(void)
{
    for (int i = 0; i < MANY; i++) {
        many[i] = mmv_malloc(MANY_SIZE);
        cr_assert(many[i] && mmv_owns(many[i]), "block %d", i);
        tu_fill(many[i], MANY_SIZE, (unsigned)i);
    }
    for (int round = 0; round < 5; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int status = tu_wait(pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork+exec: %#x", status);
    }
    expect_child_ok(tu_wait(spawn(child_reads_many, NULL)), "child of 2000 blocks");
    for (int i = 0; i < MANY; i++) {
        cr_assert(intact(many[i], MANY_SIZE, (unsigned)i), "block %d changed by the child", i);
        mmv_free(many[i]);
    }
}

Test(safety_fork, two_thousand_blocks_fork_exec_and_fork_private)
{
    expect_many_blocks_fork();
}

Test(safety_fork, two_thousand_blocks_fork_copy)
{
    setenv("MMVEC_FORK", "copy", 1);
    expect_many_blocks_fork();
}

/* ---- depth with the other modes ---- */

Test(safety_fork, grandchild_reads_its_parents_writes_copy)
{
    setenv("MMVEC_FORK", "copy", 1);
    expect_descendants_see_their_parents(3);
}

Test(safety_fork, grandchild_reads_its_parents_writes_private_unlink)
{
    setenv("MMVEC_UNLINK", "1", 1);
    expect_descendants_see_their_parents(3);
}
