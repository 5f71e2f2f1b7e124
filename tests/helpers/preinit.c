/* malloc before any constructor has run: a .preinit_array function (it runs before every
 * shared library's constructors, the interposer's and jemalloc's included) allocates a large
 * and a small block, writes them, and keeps them; main then checks and frees them. Run under
 * the preload with a threshold below LARGE. Prints "preinit ok" and exits 0 when all held. */
#include <mmvec.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LARGE (4u << 20)

static char *large, *small;
static int owned_early;

static void early(void)
{
    large = malloc(LARGE);
    small = malloc(64);
    if (large && small) {
        memset(large, 0x5a, LARGE);
        memset(small, 0xa5, 64);
    }
}

__attribute__((section(".preinit_array"), used)) static void (*const run_early)(void) = early;

int main(void)
{
    owned_early = large && mmv_owns(large);
    if (!large || !small || !owned_early) {
        printf("preinit: large %p small %p owned %d\n", (void *)large, (void *)small, owned_early);
        return 1;
    }
    for (size_t i = 0; i < LARGE; i += 4096)
        if ((unsigned char)large[i] != 0x5a)
            return 2;
    if ((unsigned char)small[63] != 0xa5)
        return 3;
    free(large);
    free(small);
    puts("preinit ok");
    return 0;
}
