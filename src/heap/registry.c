/* The reserved range, its granule bitmap and its owner table. */
#define _GNU_SOURCE
#include "registry.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define RESERVE_ALIGN ((size_t)1 << 30) /* so that alignments up to 1 GiB are cheap to find */


static struct mmvi_block **owners; /* one per granule */
static uint64_t *used;             /* bitmap: granule taken */
static size_t ngranules;
static size_t cursor;              /* next-fit: where the last search ended */

static void *anon(size_t len, int prot)
{
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Reserves `bytes` aligned to RESERVE_ALIGN, or as much as the address-space limit allows. */
static uintptr_t reserve(size_t *bytes)
{
    for (size_t want = *bytes; want >= RESERVE_ALIGN; want /= 2) {
        char *p = anon(want + RESERVE_ALIGN, PROT_NONE);
        if (!p)
            continue;
        uintptr_t base = ((uintptr_t)p + RESERVE_ALIGN - 1) & ~(RESERVE_ALIGN - 1);
        size_t head = base - (uintptr_t)p;
        if (head)
            munmap(p, head);
        munmap((char *)base + want, RESERVE_ALIGN - head);
        *bytes = want;
        return base;
    }
    return 0;
}

int mmvi_registry_init(size_t bytes)
{
    if (mmvi_route.reserve_size)
        return 0;
    bytes &= ~(RESERVE_ALIGN - 1);
    if (bytes < RESERVE_ALIGN)
        bytes = RESERVE_ALIGN;
    uintptr_t base = reserve(&bytes);
    if (!base)
        return -ENOMEM;
    size_t n = bytes >> MMVI_GRANULE_SHIFT;
    owners = anon(n * sizeof *owners, PROT_READ | PROT_WRITE);
    used = anon(n / 8 + 8, PROT_READ | PROT_WRITE);
    if (!owners || !used) {
        munmap((void *)base, bytes);
        return -ENOMEM;
    }
    ngranules = n;
    __atomic_store_n(&mmvi_route.reserve_base, base, __ATOMIC_RELAXED);
    /* Published last: once the size is non-zero, the range check may say "mine". */
    __atomic_store_n(&mmvi_route.reserve_size, bytes, __ATOMIC_RELEASE);
    return 0;
}

static size_t granule_of(uintptr_t addr)
{
    return (addr - mmvi_route.reserve_base) >> MMVI_GRANULE_SHIFT;
}

struct mmvi_block *mmvi_registry_owner(const void *p)
{
    if (!mmvi_in_reserve(p))
        return NULL;
    return __atomic_load_n(&owners[granule_of((uintptr_t)p)], __ATOMIC_ACQUIRE);
}

void mmvi_registry_set(uintptr_t addr, size_t span, struct mmvi_block *b)
{
    size_t g = granule_of(addr), n = span >> MMVI_GRANULE_SHIFT;
    for (size_t i = 0; i < n; i++)
        __atomic_store_n(&owners[g + i], b, __ATOMIC_RELEASE);
}

static int bit(size_t i) { return (used[i / 64] >> (i % 64)) & 1; }

static void mark(size_t g, size_t n, int on)
{
    for (size_t i = g; i < g + n; i++) {
        if (on)
            used[i / 64] |= (uint64_t)1 << (i % 64);
        else
            used[i / 64] &= ~((uint64_t)1 << (i % 64));
    }
}

/* Length of the free run starting at i, looking at most `want` granules ahead. */
static size_t free_run(size_t i, size_t want, size_t end)
{
    size_t j = i;
    while (j < end && j - i < want) {
        if (j % 64 == 0 && used[j / 64] == 0 && j + 64 <= end) {
            j += 64;
            continue;
        }
        if (bit(j))
            break;
        j++;
    }
    return j - i;
}

/* First-fit search of n free granules in [from, end), each start a multiple of step. */
static size_t search(size_t from, size_t end, size_t n, size_t step)
{
    size_t i = (from + step - 1) / step * step;
    while (i + n <= end) {
        if (i % 64 == 0 && used[i / 64] == ~(uint64_t)0) {
            i += 64 > step ? 64 : step;
            continue;
        }
        size_t run = free_run(i, n, end);
        if (run >= n)
            return i;
        /* Skip past the used granule that ended the run, to the next aligned start. */
        i = (i + run + 1 + step - 1) / step * step;
    }
    return SIZE_MAX;
}

uintptr_t mmvi_space_take(size_t span, size_t align)
{
    size_t n = span >> MMVI_GRANULE_SHIFT;
    if (n == 0 || n > ngranules || align > mmvi_route.reserve_size)
        return 0;
    /* The base is aligned to RESERVE_ALIGN and granules to MMVI_GRANULE, so an alignment is a
     * stride in granules (alignments beyond RESERVE_ALIGN are handled by the same arithmetic,
     * relative to the base, which then must itself be aligned: we check the address). */
    size_t step = align > MMVI_GRANULE ? align >> MMVI_GRANULE_SHIFT : 1;
    size_t g = search(cursor, ngranules, n, step);
    if (g == SIZE_MAX)
        g = search(0, ngranules, n, step);
    if (g == SIZE_MAX)
        return 0;
    uintptr_t addr = mmvi_route.reserve_base + (g << MMVI_GRANULE_SHIFT);
    if (addr & (align - 1))
        return 0; /* an alignment larger than the reserve's own */
    mark(g, n, 1);
    cursor = g + n;
    return addr;
}

int mmvi_space_extend(uintptr_t addr, size_t span, size_t new_span)
{
    size_t g = granule_of(addr) + (span >> MMVI_GRANULE_SHIFT);
    size_t n = (new_span - span) >> MMVI_GRANULE_SHIFT;
    if (g + n > ngranules || free_run(g, n, ngranules) < n)
        return -ENOMEM;
    mark(g, n, 1);
    return 0;
}

void mmvi_space_give(uintptr_t addr, size_t span)
{
    mark(granule_of(addr), span >> MMVI_GRANULE_SHIFT, 0);
}

int mmvi_space_unmap(uintptr_t addr, size_t len)
{
    void *p = mmap((void *)addr, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return p == MAP_FAILED ? -errno : 0;
}

int mmvi_space_refill(uintptr_t addr, size_t len)
{
    void *p = mmap((void *)addr, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == (void *)addr)
        return 0;
    if (p != MAP_FAILED)
        munmap(p, len); /* an old kernel that took the flag as a hint */
    return 1;
}

void mmvi_space_lose(uintptr_t addr, size_t span)
{
    mmvi_registry_set(addr, span, MMVI_LOST);
    mark(granule_of(addr), span >> MMVI_GRANULE_SHIFT, 1);
}
