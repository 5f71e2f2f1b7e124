/* The out-of-core workload: writes, then reads back and checksums, a heap larger than memory.
 *
 *   heapfill [TOTAL_MIB [BLOCK_MIB]]        (defaults: 2048 MiB in blocks of 64 MiB)
 *
 * Each block is one malloc, filled with a pseudo-random stream seeded by its index, so the
 * result depends on nothing but the sizes. The second pass regenerates the stream, compares
 * every word and folds them into one checksum. Progress goes to stderr every 64 MiB (so a run
 * killed by the OOM killer shows how far it got); the result line goes to stdout:
 *   heapfill: 2048 MiB in 32 blocks of 64 MiB verified, checksum 0123456789abcdef, 32 blocks in files, 0 in RAM
 * Exit 0 when every word read back is the word written, 1 otherwise, 2 for bad arguments.
 */
#include "mmvec/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_MIB 64u

static uint64_t next(uint64_t *s)
{
    /* xorshift64*: fast enough that the run measures memory, not arithmetic. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void progress(const char *what, size_t done_mib, size_t block_mib)
{
    if (done_mib % PROGRESS_MIB < block_mib)
        fprintf(stderr, "heapfill: %s %zu MiB\n", what, done_mib);
}

static void fill(uint64_t *b, size_t words, size_t index)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * (index + 1);
    for (size_t i = 0; i < words; i++)
        b[i] = next(&s);
}

/* Folds the block into the checksum; returns the number of words that differ. */
static size_t verify(const uint64_t *b, size_t words, size_t index, uint64_t *sum)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * (index + 1), h = *sum;
    size_t bad = 0;
    for (size_t i = 0; i < words; i++) {
        bad += b[i] != next(&s);
        h = (h ^ b[i]) * 1099511628211ull;
    }
    *sum = h;
    return bad;
}

static int parse(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v == 0 || v > (1ull << 30))
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    size_t total = 2048, block = 64;
    if ((argc > 1 && parse(argv[1], &total) < 0) || (argc > 2 && parse(argv[2], &block) < 0) ||
        argc > 3 || block > total) {
        fprintf(stderr, "usage: heapfill [TOTAL_MIB [BLOCK_MIB]]\n");
        return 2;
    }
    size_t n = total / block, words = (block << 20) / sizeof(uint64_t), owned = 0;
    uint64_t **blocks = calloc(n, sizeof *blocks);
    if (!blocks)
        return 1;
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(words * sizeof(uint64_t));
        if (!blocks[i]) {
            fprintf(stderr, "heapfill: malloc of block %zu failed\n", i);
            return 1;
        }
        owned += mmv_owns(blocks[i]);
        fill(blocks[i], words, i);
        progress("written", (i + 1) * block, block);
    }
    uint64_t sum = 1469598103934665603ull;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += verify(blocks[i], words, i, &sum);
        progress("checked", (i + 1) * block, block);
    }
    /* Where they are at the end: in files, or still in RAM (MMVEC_PLACEMENT=auto). */
    size_t in_files = 0;
    char path[4096];
    for (size_t i = 0; i < n; i++)
        in_files += mmv_block_path(blocks[i], path, sizeof path) == 0;
    for (size_t i = 0; i < n; i++)
        free(blocks[i]);
    free(blocks);
    printf("heapfill: %zu MiB in %zu blocks of %zu MiB %s, checksum %016llx, %zu blocks in files, "
           "%zu in RAM\n", n * block, n, block, bad ? "CORRUPTED" : "verified",
           (unsigned long long)sum, in_files, owned - in_files);
    if (bad)
        fprintf(stderr, "heapfill: %zu words differ from what was written\n", bad);
    return bad ? 1 : 0;
}
