/* A process for tests/test_live.c (the live figures page: mmvec ps, stats, top, --record), run
 * under LD_PRELOAD of libmmvec_preload with a private MMVEC_LIVE_DIR and MMVEC_DIR. Large blocks
 * are plain malloc/realloc (RAM while memory is plentiful with MMVEC_PLACEMENT=auto), or
 * mmv_malloc_file (always a file); mmv_stats_get resolves to the preload's copy.
 *
 *   live_holder hold RAM_COUNT FILE_COUNT MIB
 *       RAM_COUNT blocks by malloc and FILE_COUNT by mmv_malloc_file, MIB MiB each, every byte
 *       written; prints "ready <pid>", then obeys the lines it reads on stdin until EOF:
 *         fork MIB   forks a child that closes stdin, mallocs and writes a block of MIB MiB,
 *                    and waits for its parent's EOF; the parent prints "child <pid> ram=R
 *                    file=F" (the child's own mmv_stats_get figures after its malloc)
 *         grow MIB   reallocs the first block to MIB MiB, prints "grown"
 *         free       frees every block, prints "freed"
 *         exec R F M execs itself (same pid) as "hold R F M", stdin and stdout kept
 *         quick      _exit(0) at once: no exit handler runs, nothing is freed
 *       At EOF: frees what is left (checking the contents), waits for a child, exits 0 (1: a
 *       block lost its contents or the child failed).
 *   live_holder churn MS MIB CODE
 *       for MS milliseconds: one block of MIB MiB held throughout, and another of MIB MiB
 *       malloc'ed, written and freed every 20 ms; prints "done" and exits with CODE.
 *
 * Exit 2 on bad usage, 3 when a block cannot be had, 4 on the alarm (a hang). */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "live_holder: alarm (a hang?)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(4);
}

static unsigned char pat(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 131u + i * 7u + (i >> 12));
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pat(seed, i);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(seed, i))
            return 0;
    return 1;
}

static long number(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s && !*end && !errno && v >= 0 ? v : -1;
}

static void say(const char *fmt, long a, long b, long c)
{
    printf(fmt, a, b, c);
    fflush(stdout);
}

struct blocks {
    unsigned char **p;
    size_t *size;
    long n;
};

static int free_all(struct blocks *b)
{
    int ok = 1;
    for (long i = 0; i < b->n; i++) {
        if (b->p[i]) {
            ok &= intact(b->p[i], b->size[i], (unsigned)i);
            free(b->p[i]); /* the preload's free: also for mmv_malloc_file's blocks */
            b->p[i] = NULL;
        }
    }
    return ok;
}

/* The child of "fork": its own block, its own figures, then waits for the parent's word. */
static void child(int report, int wait_fd, size_t size)
{
    close(STDIN_FILENO);
    unsigned char *p = malloc(size);
    if (!p)
        _exit(3);
    fill(p, size, 77);
    mmv_stats s;
    mmv_stats_get(&s);
    long line[3] = {(long)getpid(), (long)s.ram_blocks_live, (long)s.file_blocks_live};
    ssize_t w = write(report, line, sizeof line);
    close(report);
    char c;
    while (read(wait_fd, &c, 1) > 0) {
    }
    int ok = w == (ssize_t)sizeof line && intact(p, size, 77);
    free(p);
    exit(ok ? 0 : 1);
}

static char *argv0;

static int hold(long ram, long files, long mib)
{
    struct blocks b = {calloc((size_t)(ram + files), sizeof *b.p),
                       calloc((size_t)(ram + files), sizeof *b.size), ram + files};
    if (!b.p || !b.size)
        return 3;
    for (long i = 0; i < b.n; i++) {
        b.size[i] = (size_t)mib * MIB;
        b.p[i] = i < ram ? malloc(b.size[i]) : mmv_malloc_file(b.size[i]);
        if (!b.p[i]) {
            fprintf(stderr, "live_holder: block %ld: %s\n", i, strerror(errno));
            return 3;
        }
        fill(b.p[i], b.size[i], (unsigned)i);
    }
    say("ready %ld\n", (long)getpid(), 0, 0);
    pid_t kid = 0;
    int to_kid = -1, ok = 1;
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "fork ", 5) && !kid) {
            long m = number(line + 5);
            int rep[2], hold_pipe[2];
            if (m <= 0 || pipe(rep) < 0 || pipe(hold_pipe) < 0)
                return 2;
            fflush(stdout);
            kid = fork();
            if (kid < 0)
                return 3;
            if (kid == 0) {
                close(rep[0]);
                close(hold_pipe[1]);
                child(rep[1], hold_pipe[0], (size_t)m * MIB);
            }
            close(rep[1]);
            close(hold_pipe[0]);
            to_kid = hold_pipe[1];
            long got[3];
            if (read(rep[0], got, sizeof got) != (ssize_t)sizeof got)
                return 3;
            close(rep[0]);
            say("child %ld ram=%ld file=%ld\n", got[0], got[1], got[2]);
        } else if (!strncmp(line, "grow ", 5) && b.n > 0 && b.p[0]) {
            long m = number(line + 5);
            size_t old = b.size[0], want = (size_t)m * MIB;
            unsigned char *q = m > 0 ? realloc(b.p[0], want) : NULL;
            if (!q)
                return 3;
            ok &= intact(q, old < want ? old : want, 0);
            b.p[0] = q;
            b.size[0] = want;
            fill(q, want, 0);
            say("grown\n", 0, 0, 0);
        } else if (!strcmp(line, "free")) {
            ok &= free_all(&b);
            say("freed\n", 0, 0, 0);
        } else if (!strncmp(line, "exec ", 5)) {
            /* the same pid, a new image, holding what it is told: "exec RAM FILE MIB" */
            char ram_s[16], file_s[16], mib_s[16];
            if (sscanf(line + 5, "%15s %15s %15s", ram_s, file_s, mib_s) != 3)
                return 2;
            fflush(stdout);
            char *args[] = {argv0, "hold", ram_s, file_s, mib_s, NULL};
            execv("/proc/self/exe", args);
            return 3;
        } else if (!strcmp(line, "quick")) {
            _exit(0);
        } else {
            fprintf(stderr, "live_holder: unknown command '%s'\n", line);
            return 2;
        }
    }
    ok &= free_all(&b);
    if (kid > 0) {
        close(to_kid);
        int st = 0;
        while (waitpid(kid, &st, 0) < 0 && errno == EINTR) {
        }
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    free(b.p);
    free(b.size);
    return ok ? 0 : 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int churn(long ms, long mib, long code)
{
    size_t size = (size_t)mib * MIB;
    unsigned char *keep = malloc(size);
    if (!keep)
        return 3;
    fill(keep, size, 1);
    double end = now_s() + (double)ms / 1000.0;
    while (now_s() < end) {
        unsigned char *p = malloc(size);
        if (!p)
            return 3;
        fill(p, size, 2);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        free(p);
    }
    int ok = intact(keep, size, 1);
    free(keep);
    say("done\n", 0, 0, 0);
    return ok ? (int)code : 1;
}

int main(int argc, char **argv)
{
    signal(SIGALRM, on_alarm);
    alarm(60);
    argv0 = argv[0];
    if (argc == 5 && !strcmp(argv[1], "hold")) {
        long ram = number(argv[2]), files = number(argv[3]), mib = number(argv[4]);
        if (ram < 0 || files < 0 || mib <= 0 || ram + files > 64)
            return 2;
        return hold(ram, files, mib);
    }
    if (argc == 5 && !strcmp(argv[1], "churn")) {
        long ms = number(argv[2]), mib = number(argv[3]), code = number(argv[4]);
        if (ms < 0 || mib <= 0 || code < 0 || code > 255)
            return 2;
        return churn(ms, mib, code);
    }
    fprintf(stderr, "usage: live_holder hold RAM_COUNT FILE_COUNT MIB | churn MS MIB CODE\n");
    return 2;
}
