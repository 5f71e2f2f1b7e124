/* Allocates large blocks, checks their contents, and reports where they live.
 *
 *   bigblocks COUNT SIZE [hold]          (SIZE in bytes, or with a K/M suffix)
 *
 * Prints "blocks=N owned=K files=F" where owned counts segment blocks (mmv_owns) and files
 * those whose file exists. With "hold" it then prints "ready" and waits, blocks alive, until
 * SIGTERM or SIGINT (then frees everything and exits 0) or SIGKILL (the crash case the
 * cleanup tests need). Without "hold" it frees the blocks and exits 0.
 * Exit 1 when a block reads back wrong or cannot be allocated, 2 for bad arguments.
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
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

static int has_file(const void *p)
{
    char path[4096];
    struct stat st;
    return mmv_block_path(p, path, sizeof path) == 0 && stat(path, &st) == 0;
}

/* Holds the blocks until told to stop; signals are blocked outside sigsuspend so none is lost. */
static void hold(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready\n");
    fflush(stdout);
    while (!stop)
        sigsuspend(&old);
}

int main(int argc, char **argv)
{
    size_t count = argc > 2 ? (size_t)strtoul(argv[1], NULL, 10) : 0;
    size_t size = argc > 2 ? parse_size(argv[2]) : 0;
    if (!count || !size || argc > 4 || (argc == 4 && strcmp(argv[3], "hold"))) {
        fprintf(stderr, "usage: bigblocks COUNT SIZE [hold]\n");
        return 2;
    }
    unsigned char **b = calloc(count, sizeof *b);
    size_t owned = 0, files = 0;
    for (size_t i = 0; b && i < count; i++) {
        if (!(b[i] = malloc(size)))
            return 1;
        memset(b[i], (int)(i & 0xff), size);
        owned += mmv_owns(b[i]);
        files += has_file(b[i]);
    }
    for (size_t i = 0; b && i < count; i++)
        if (b[i][0] != (unsigned char)i || b[i][size - 1] != (unsigned char)i)
            return 1;
    printf("blocks=%zu owned=%zu files=%zu\n", count, owned, files);
    fflush(stdout);
    if (argc == 4)
        hold();
    for (size_t i = 0; b && i < count; i++)
        free(b[i]);
    free(b);
    return b ? 0 : 1;
}
