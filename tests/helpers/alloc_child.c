/* A separate process for the allocator tests (test_alloc*.c): things a test cannot do in its own
 * process, such as exiting normally (the exit-time cleanup and the MMVEC_STATS table run then),
 * or being killed with SIGKILL in the middle of its work. Options come from the environment.
 *
 *   alloc_child hold COUNT SIZE   makes COUNT blocks of SIZE bytes (mmv_malloc), fills them,
 *                                 prints "path <file>" for each, then "ready", and waits for
 *                                 SIGTERM: then checks and frees them and exits (0, 1 corrupt)
 *   alloc_child leave COUNT SIZE  makes and fills the blocks, prints their paths, and exits
 *                                 without freeing them (exit must remove the files itself)
 *   alloc_child forkexit COUNT SIZE  makes and fills the blocks, forks a child that writes to
 *                                 and frees half of them and leaves with exit(0) (the library's
 *                                 exit cleanup runs in it), then checks that its own blocks and
 *                                 their files are intact (0) or not (1)
 *   alloc_child churn SIZE        mallocs/reallocs/frees blocks of up to SIZE bytes forever,
 *                                 checking contents (exit 1 on corruption); prints "ready" once
 *                                 the first block is made. For kill -9 at random moments.
 * SIZE is bytes or K/M. Exit 2 on bad arguments, 3 when a block cannot be had.
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    return *s && !*end ? (size_t)v : 0;
}

/* The byte expected at offset i of a block filled with `seed`: varies with i so that a block
 * shifted or swapped with another is caught, not only one overwritten. */
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

/* Makes count filled blocks and prints their files; exits 3 when one cannot be had. */
static unsigned char **make_blocks(size_t count, size_t size)
{
    unsigned char **b = calloc(count, sizeof *b);
    if (!b)
        exit(3);
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        if (!(b[i] = mmv_malloc(size)))
            exit(3);
        fill(b[i], size, (unsigned)i);
        if (mmv_block_path(b[i], path, sizeof path) == 0)
            printf("path %s\n", path);
        else
            printf("nofile %p\n", (void *)b[i]);
    }
    fflush(stdout);
    return b;
}

static int hold(size_t count, size_t size)
{
    /* Blocked outside sigsuspend, so a SIGTERM sent right after "ready" is never lost. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    signal(SIGTERM, on_term);
    unsigned char **b = make_blocks(count, size);
    printf("ready\n");
    fflush(stdout);
    while (!stop)
        sigsuspend(&old);
    int ok = 1;
    for (size_t i = 0; i < count; i++) {
        ok &= intact(b[i], size, (unsigned)i);
        mmv_free(b[i]);
    }
    free(b);
    return ok ? 0 : 1;
}

/* A child that exits normally must not take the parent's files with it. */
static int fork_exit(size_t count, size_t size)
{
    unsigned char **b = make_blocks(count, size);
    pid_t pid = fork();
    if (pid < 0)
        return 3;
    if (pid == 0) {
        for (size_t i = 0; i < count; i++) {
            memset(b[i], 0xEE, size);
            if (i % 2)
                mmv_free(b[i]);
        }
        exit(0);
    }
    int status, ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status);
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        struct stat st;
        ok &= intact(b[i], size, (unsigned)i);
        ok &= mmv_block_path(b[i], path, sizeof path) == 0 && stat(path, &st) == 0 &&
              (size_t)st.st_size >= size;
        mmv_free(b[i]);
    }
    free(b);
    return ok ? 0 : 1;
}

/* A heavy run: 16 slots, each op frees, reallocs or makes a block, checking what it drops. */
static int churn(size_t max)
{
    enum { SLOTS = 16 };
    unsigned char *p[SLOTS] = {0};
    size_t n[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    unsigned r = (unsigned)getpid();
    for (unsigned long op = 0;; op++) {
        r = r * 1103515245u + 12345u;
        size_t i = (r >> 8) % SLOTS, size = 4096 + (size_t)(r >> 4) % max;
        if (p[i] && !intact(p[i], n[i], seed[i]))
            return 1;
        if (p[i] && (r & 3) == 0) {
            mmv_free(p[i]);
            p[i] = NULL;
            continue;
        }
        unsigned char *q = p[i] ? mmv_realloc(p[i], size) : mmv_malloc(size);
        if (!q)
            return 3;
        if (p[i] && !intact(q, n[i] < size ? n[i] : size, seed[i]))
            return 1;
        p[i] = q, n[i] = size, seed[i] = (unsigned)op;
        fill(q, size, seed[i]);
        if (op == 0) {
            printf("ready\n");
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "churn") == 0 && argc == 3 && parse_size(argv[2]))
        return churn(parse_size(argv[2]));
    size_t count = argc == 4 ? (size_t)strtoul(argv[2], NULL, 10) : 0;
    size_t size = argc == 4 ? parse_size(argv[3]) : 0;
    if (count && size && strcmp(mode, "hold") == 0)
        return hold(count, size);
    if (count && size && strcmp(mode, "forkexit") == 0)
        return fork_exit(count, size);
    if (count && size && strcmp(mode, "leave") == 0) {
        /* Only the list goes: the blocks stay live at exit on purpose, so that the library's
         * exit cleanup must remove their files. */
        free(make_blocks(count, size));
        return 0;
    }
    fprintf(stderr, "usage: alloc_child hold|leave|forkexit COUNT SIZE | churn SIZE\n");
    return 2;
}
