/* What a move of RAM blocks into files costs another thread (issue 9): a writer thread writes
 * random bytes of three 64 MiB blocks without pause and records its longest gap, while the main
 * thread allocates 200 MB of small objects, which pushes the blocks into files. Run:
 *   gcc -O2 -pthread -o pause pause.c
 *   MMVEC_MEMORY_LIMIT=384M MMVEC_STATS=1 LD_PRELOAD=build/libmmvec_preload.so ./pause
 *   (as root: userfaultfd; as nobody, e.g. setpriv --reuid=65534 --regid=65534
 *   --clear-groups, with a writable MMVEC_DIR: the threads are stopped by signal) */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define BLK (64u << 20)
static char *blocks[3];
static volatile int stop;
static uint64_t maxgap, writes;
static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec; }
static void *writer(void *a) {
    (void)a; uint64_t x = 88172645463325252ull, last = now_ns();
    while (!stop) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        blocks[x % 3][(x >> 8) % BLK] = (char)x;
        uint64_t t = now_ns(); if (t - last > maxgap) maxgap = t - last; last = t; writes++;
    }
    return NULL;
}
int main(void) {
    for (int i = 0; i < 3; i++) { blocks[i] = malloc(BLK); memset(blocks[i], i, BLK); }
    pthread_t th; pthread_create(&th, NULL, writer, NULL);
    struct timespec d = {0, 50 * 1000 * 1000}; nanosleep(&d, NULL);
    uint64_t before = maxgap;
    for (int i = 0; i < 50000; i++) memset(malloc(4000), 1, 4000); /* 200 MB of small objects */
    nanosleep(&d, NULL);
    stop = 1; pthread_join(th, NULL);
    printf("writer: %llu writes, longest gap before the moves %.2f ms, overall %.2f ms\n",
           (unsigned long long)writes, before / 1e6, maxgap / 1e6);
    return 0;
}
