/* Fork, thread-cancellation and errno safety of the interposer, run by tests/test_safety_fork.c
 * under LD_PRELOAD of libmmvec_preload (with MMVEC_THRESHOLD=64K and MMVEC_DIR set), so every
 * block below is a plain malloc() of 4 MiB turned into a segment block.
 *
 *   safety_fork grandchild LEVELS  the process writes 'A' into a block and forks; each
 *                                  descendant must read its parent's last writes ('A' + its
 *                                  level - 1), writes its own letter and forks the next, LEVELS
 *                                  deep; no one's writes reach its ancestors.
 *   safety_fork cancel TRIALS      per trial, a forked child runs a thread looping
 *                                  malloc/free that it cancels at a varying moment; then the
 *                                  child's own malloc of 4 MiB must not hang (alarm: 20 s).
 *   safety_fork errno              free keeps errno: small, large, cached, and large ones whose
 *                                  files were removed (MMVEC_DIR rm -rf'd; MMVEC_CACHE=4M).
 *   safety_fork instant FORKS      (MMVEC_FORK=copy) a thread rewrites a 64 MiB block front to
 *                                  back while the process forks FORKS times: each child must see
 *                                  one instant (one letter, or a newer one then the one before);
 *                                  after the forks the block is a file again, its data whole
 *                                  (MMVEC_FORK=private: the block is mapped shared over its
 *                                  file again, and the file holds the parent's last writes).
 *   safety_fork fold ROUNDS        (MMVEC_FORK=private, a small MMVEC_MEMORY_LIMIT) per round a
 *                                  child forks and ends, then the parent rewrites its file block:
 *                                  memory gets tight and the block folds back into its file
 *                                  (shared again, the file holding every write), ROUNDS times.
 *   safety_fork later LEVELS       (MMVEC_FORK=private) each process writes its letter into a
 *                                  file block and forks; it then rewrites the block in lower
 *                                  case and only after that lets the child (which closed
 *                                  its other descriptors, closefrom) look: the child
 *                                  must read the letter of the fork's instant, LEVELS deep;
 *                                  afterwards the top block is shared over its file again.
 *
 * Exit 0 when every check held; otherwise a line on stderr and one of the codes below.
 * Children leave with _exit. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define M ((size_t)1 << 20)
#define SIZE (4 * M)

enum {
    EXIT_USAGE = 2,
    EXIT_NO_BLOCK = 3,       /* malloc(4 MiB) failed or is no segment block */
    EXIT_FORK = 4,
    EXIT_BAD_INHERITED = 10, /* + level: a descendant did not read its parent's last writes */
    EXIT_SAW_CHILD = 20,     /* + level: a process read its child's writes */
    EXIT_CHILD_KILLED = 30,  /* + level: a descendant was killed by a signal */
    EXIT_JOIN_HUNG = 40,     /* pthread_join of the cancelled thread did not return in 20 s */
    EXIT_ALLOC_HUNG = 41,    /* the malloc after the cancel did not return in 20 s */
    EXIT_NOT_CANCELLED = 42, /* the thread did not end cancelled */
    EXIT_ERRNO = 50,         /* + check: free changed errno */
    EXIT_RM = 60,            /* could not remove MMVEC_DIR */
    EXIT_TORN = 70,          /* instant: a child's copy mixes several moments */
    EXIT_LOST = 71,          /* instant: the parent lost a write */
    EXIT_NOT_FILE = 72,      /* instant: the block did not go back into a file */
    EXIT_LATER = 80,         /* + level: later: a child read its parent's writes after the fork */
};

static int fail(int code, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "safety_fork: %s\n", buf);
    return code;
}

/* Every pointer malloc returns goes through here: stored in a volatile, it escapes, so the
 * compiler cannot drop a malloc/free pair whose memory nobody reads (gcc does, at -O1). */
static void *volatile sink;

static void *alloc(size_t n)
{
    void *p = malloc(n);
    sink = p;
    return p;
}

static bool all(const void *p, int c, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return false;
    return true;
}

static unsigned char *block(void)
{
    unsigned char *p = alloc(SIZE);
    if (p)
        p[0] = 0; /* touched: gcc sees uninitialized memory passed to mmv_owns otherwise */
    return p && mmv_owns(p) ? p : NULL;
}

/* ---- grandchild ---------------------------------------------------------------------------- */

/* Waits for the descendant at `level`: 0 when it exited 0, else its exit code or a kill's. */
static int wait_level(pid_t pid, int level)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status))
        return fail(EXIT_CHILD_KILLED + level, "level %d killed by signal %d", level,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

/* At `level` (0: this process), the block holds its parent's last writes, 'A' + level - 1. */
static int descend(unsigned char *p, int level, int levels)
{
    if (level > 0 && !all(p, 'A' + level - 1, SIZE))
        return fail(EXIT_BAD_INHERITED + level,
                    "level %d (pid %ld) does not read its parent's last writes ('%c'): first "
                    "byte '%c'",
                    level, (long)getpid(), 'A' + level - 1, p[0]);
    memset(p, 'A' + level, SIZE);
    if (level == levels)
        return 0;
    pid_t pid = fork();
    if (pid < 0)
        return fail(EXIT_FORK, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(descend(p, level + 1, levels));
    int rc = wait_level(pid, level + 1);
    if (rc)
        return rc;
    if (!all(p, 'A' + level, SIZE))
        return fail(EXIT_SAW_CHILD + level, "level %d reads its child's writes: first byte '%c'",
                    level, p[0]);
    return 0;
}

static int cmd_grandchild(int levels)
{
    unsigned char *p = block();
    if (!p)
        return fail(EXIT_NO_BLOCK, "malloc(4 MiB) is no segment block");
    int rc = descend(p, 0, levels);
    free(p);
    return rc;
}

/* ---- cancel -------------------------------------------------------------------------------- */

static volatile sig_atomic_t phase; /* 1: joining the cancelled thread, 2: allocating after */
static volatile int started;

static void on_alarm(int sig)
{
    (void)sig;
    _exit(phase == 1 ? EXIT_JOIN_HUNG : EXIT_ALLOC_HUNG);
}

static void *churn(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
    __atomic_store_n(&started, 1, __ATOMIC_RELEASE);
    for (;;) {
        unsigned char *p = alloc(SIZE);
        if (p)
            p[0] = p[SIZE - 1] = 1;
        free(p);
        pthread_testcancel(); /* a cancellation point of our own, whatever malloc does */
    }
    return NULL;
}

/* In a fresh child: cancel the churning thread after delay_us, then allocate. */
static int cancel_trial(unsigned delay_us)
{
    signal(SIGALRM, on_alarm);
    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0)
        return EXIT_FORK;
    while (!__atomic_load_n(&started, __ATOMIC_ACQUIRE)) {
    }
    if (delay_us) {
        struct timespec ts = {0, (long)delay_us * 1000};
        nanosleep(&ts, NULL);
    }
    phase = 1;
    alarm(20);
    pthread_cancel(t);
    void *ret = NULL;
    pthread_join(t, &ret);
    if (ret != PTHREAD_CANCELED)
        return EXIT_NOT_CANCELLED;
    phase = 2;
    unsigned char *p = alloc(SIZE);
    if (!p)
        return EXIT_NO_BLOCK;
    memset(p, 7, SIZE);
    if (!mmv_owns(p))
        return EXIT_NO_BLOCK;
    free(p);
    alarm(0);
    return 0;
}

static int cmd_cancel(int trials)
{
    for (int i = 0; i < trials; i++) {
        /* Each child's first block is then a fork child's (it makes its own folder). Under the
         * preload this process has one already (libstdc++'s 72 KiB emergency pool, made at
         * load time, is above the 64K threshold); the call makes it so in any case. */
        if (i == trials / 2)
            free(alloc(SIZE));
        unsigned delay = (unsigned)(i * 53) % 400;
        pid_t pid = fork();
        if (pid < 0)
            return fail(EXIT_FORK, "fork: %s", strerror(errno));
        if (pid == 0)
            _exit(cancel_trial(delay));
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code == EXIT_JOIN_HUNG)
            return fail(code, "trial %d (cancel after %u us): pthread_join hung for 20 s", i,
                        delay);
        if (code == EXIT_ALLOC_HUNG)
            return fail(code, "trial %d (cancel after %u us): malloc(4 MiB) after the cancel "
                              "hung for 20 s", i, delay);
        if (code)
            return fail(code, "trial %d (cancel after %u us): child ended with %d", i, delay,
                        code);
    }
    return 0;
}

/* ---- errno --------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int check_free(int check, void *p, const char *what)
{
    errno = 1234;
    free(p);
    int e = errno;
    return e == 1234 ? 0 : fail(EXIT_ERRNO + check, "free of %s changed errno to %d (%s)", what, e,
                                strerror(e));
}

static int cmd_errno(void)
{
    const char *dir = getenv("MMVEC_DIR");
    int rc = 0;
    rc = rc ? rc : check_free(0, alloc(100), "a small block");
    unsigned char *a = block();
    if (!a)
        return fail(EXIT_NO_BLOCK, "malloc(4 MiB) is no segment block");
    rc = rc ? rc : check_free(1, a, "a large block (kept in the cache)");
    unsigned char *cached = block(), *big = alloc(2 * SIZE), *last = block();
    if (big)
        big[0] = 0;
    if (!cached || !big || !mmv_owns(big) || !last)
        return fail(EXIT_NO_BLOCK, "malloc(4 or 8 MiB) is no segment block");
    rc = rc ? rc : check_free(2, cached, "a large block from the cache");
    cached = block();
    if (!cached)
        return fail(EXIT_NO_BLOCK, "malloc(4 MiB) is no segment block");
    if (!dir || nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return fail(EXIT_RM, "cannot remove MMVEC_DIR %s", dir ? dir : "(unset)");
    rc = rc ? rc : check_free(3, cached, "a 4 MiB block whose file is gone (into the cache)");
    rc = rc ? rc : check_free(4, big, "an 8 MiB block whose file is gone (not cacheable)");
    rc = rc ? rc : check_free(5, last, "a 4 MiB block evicting a cached block whose file is gone");
    rc = rc ? rc : check_free(6, alloc(200), "a small block, after");
    return rc;
}

/* ---- instant: MMVEC_FORK=copy with a writing thread ---- */

#define BIG (64 * M)

struct rewriter {
    unsigned char *p;
    volatile int stop;
    volatile unsigned rounds;
};

static void *rewrite(void *arg)
{
    struct rewriter *w = arg;
    while (!w->stop) {
        memset(w->p, 'a' + (int)(w->rounds % 26), BIG);
        w->rounds++;
    }
    return NULL;
}

/* One change at most, to the letter before: one moment of a front-to-back rewrite. */
static bool one_instant(const unsigned char *p)
{
    int changes = 0;
    for (size_t i = 1; i < BIG; i++)
        if (p[i] != p[i - 1] && (++changes > 1 || p[i] != (p[i - 1] == 'a' ? 'z' : p[i - 1] - 1)))
            return false;
    return true;
}

/* Is [p, p+n) mapped shared all along (/proc/self/maps 's'), as a file block of ours is? */
static bool mapped_shared(const void *p, size_t n)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    uintptr_t at = (uintptr_t)p, end = at + n;
    char line[512];
    bool ok = true;
    while (ok && at < end && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || hi <= at || lo >= end)
            continue;
        ok = lo <= at && perms[3] == 's';
        at = hi;
    }
    fclose(f);
    return ok && at >= end;
}

/* Does the block's file hold what its memory holds? */
static bool file_matches(const unsigned char *p, size_t n)
{
    char path[4096];
    static unsigned char buf[1 << 20];
    if (mmv_block_path(p, path, sizeof path) != 0)
        return false;
    FILE *f = fopen(path, "rb");
    bool ok = f != NULL;
    for (size_t off = 0; ok && off < n; off += sizeof buf) {
        size_t len = n - off < sizeof buf ? n - off : sizeof buf;
        ok = fread(buf, 1, len, f) == len && memcmp(buf, p + off, len) == 0;
    }
    if (f)
        fclose(f);
    return ok;
}

/* MMVEC_FORK=private: once the children are gone, the block folds back into its file (at the
 * next large request or the advisor's next round): shared again, the file up to date. */
static bool folded_back(const unsigned char *p, size_t n)
{
    for (int i = 0; i < 500; i++) { /* a second after the last fork, and a round */
        if (mapped_shared(p, n))
            return file_matches(p, n);
        usleep(10000);
    }
    return false;
}

static bool private_mode(void)
{
    const char *m = getenv("MMVEC_FORK");
    return !m || !*m || !strcmp(m, "private");
}

static int cmd_instant(int forks)
{
    struct rewriter w = {.p = malloc(BIG)};
    char path[4096] = "";
    if (w.p)
        memset(w.p, 'a', BIG);
    if (!w.p || mmv_block_path(w.p, path, sizeof path) != 0)
        return fail(EXIT_NO_BLOCK, "malloc(64 MiB) is no file block (MMVEC_PLACEMENT=file?)");
    pthread_t t;
    if (pthread_create(&t, NULL, rewrite, &w) != 0)
        return fail(EXIT_FORK, "pthread_create");
    int rc = 0;
    for (int i = 0; i < forks && !rc; i++) {
        while (w.rounds < (unsigned)i + 1)
            usleep(1000);
        pid_t pid = fork();
        if (pid == 0)
            _exit(one_instant(w.p) ? 0 : 1);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            rc = fail(EXIT_FORK, "fork %d", i);
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = fail(EXIT_TORN, "fork %d: the child's copy mixes several moments", i);
    }
    w.stop = 1;
    pthread_join(t, NULL);
    for (size_t i = 0; !rc && i < BIG; i++)
        if (w.p[i] != w.p[BIG - 1])
            rc = fail(EXIT_LOST, "the parent lost a write at byte %zu", i);
    if (!rc && mmv_block_path(w.p, path, sizeof path) != 0)
        rc = fail(EXIT_NOT_FILE, "after the forks the block stayed in RAM");
    if (!rc && private_mode() && !folded_back(w.p, BIG))
        rc = fail(EXIT_NOT_FILE, "after the forks the block is not shared over its file again, "
                  "or the file lacks the last writes");
    free(w.p);
    return rc;
}

/* ---- fold ---------------------------------------------------------------------------------- */

static int cmd_fold(int rounds)
{
    unsigned char *p = malloc(BIG);
    char path[4096];
    if (p)
        p[0] = 0;
    if (!p || mmv_block_path(p, path, sizeof path) != 0)
        return fail(EXIT_NO_BLOCK, "malloc(64 MiB) is no file block (MMVEC_PLACEMENT=file?)");
    memset(p, 'a', BIG);
    int rc = 0;
    for (int r = 1; r <= rounds && !rc; r++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(all(p, 'a' + r - 1, BIG) ? 0 : 1);
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
            rc = fail(EXIT_BAD_INHERITED + 1, "round %d: the child did not read its parent's "
                      "block", r);
        memset(p, 'a' + r, BIG); /* copied on write: tight, and no child maps the file now */
        mmv_stats s;
        if (!rc && !folded_back(p, BIG))
            rc = fail(EXIT_NOT_FILE, "round %d: the block did not fold back into its file", r);
        else if (!rc && (mmv_stats_get(&s) != 0 || s.fork_folds < (uint64_t)r))
            rc = fail(EXIT_NOT_FILE, "round %d: %llu folds counted", r,
                      (unsigned long long)s.fork_folds);
    }
    free(p);
    return rc;
}

/* ---- later --------------------------------------------------------------------------------- */

static int later(unsigned char *p, int level, int levels)
{
    memset(p, 'A' + level, BIG);
    if (level == levels)
        return 0;
    int go[2];
    if (pipe(go) < 0)
        return fail(EXIT_FORK, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return fail(EXIT_FORK, "fork: %s", strerror(errno));
    if (pid == 0) {
        char c;
        close(go[1]);
        /* As daemons do: every other descriptor closed. The hold on the parent's fork lock is a
         * mapping, not a descriptor: the parent must still see this child. */
        if (go[0] > 3)
            close_range(3, (unsigned)go[0] - 1, 0);
        close_range((unsigned)go[0] + 1, ~0u, 0);
        if (read(go[0], &c, 1) != 1)
            _exit(EXIT_FORK);
        close(go[0]);
        for (size_t i = 0; i < BIG; i++)
            if (p[i] != 'A' + level)
                _exit(fail(EXIT_LATER + level + 1, "level %d reads '%c' at byte %zu: its "
                           "parent wrote that after the fork (it had '%c')", level + 1, p[i], i,
                           'A' + level));
        _exit(later(p, level + 1, levels));
    }
    close(go[0]);
    memset(p, 'a' + level, BIG); /* after the fork: never the child's */
    if (write(go[1], "g", 1) != 1)
        return fail(EXIT_FORK, "write: %s", strerror(errno));
    close(go[1]);
    int rc = wait_level(pid, level + 1);
    if (rc)
        return rc;
    if (!all(p, 'a' + level, BIG))
        return fail(EXIT_SAW_CHILD + level, "level %d reads its child's writes", level);
    return 0;
}

static int cmd_later(int levels)
{
    unsigned char *p = malloc(BIG);
    char path[4096];
    if (p)
        p[0] = 0; /* touched: gcc sees uninitialized memory passed to mmv_block_path otherwise */
    if (!p || mmv_block_path(p, path, sizeof path) != 0)
        return fail(EXIT_NO_BLOCK, "malloc(64 MiB) is no file block (MMVEC_PLACEMENT=file?)");
    int rc = later(p, 0, levels);
    if (!rc && levels > 0 && !folded_back(p, BIG))
        rc = fail(EXIT_NOT_FILE, "the block did not go back into its file after the children");
    free(p);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "instant"))
        return cmd_instant(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "fold"))
        return cmd_fold(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "later"))
        return cmd_later(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "grandchild"))
        return cmd_grandchild(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "cancel"))
        return cmd_cancel(atoi(argv[2]));
    if (argc >= 2 && !strcmp(argv[1], "errno"))
        return cmd_errno();
    dprintf(STDERR_FILENO, "usage: safety_fork grandchild LEVELS | cancel TRIALS | errno | "
                           "instant FORKS | later LEVELS | fold ROUNDS\n");
    return EXIT_USAGE;
}
