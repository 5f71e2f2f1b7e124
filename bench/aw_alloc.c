/* alloc_workloads: the allocator backends.
 *
 *  libc     whatever malloc the process has: glibc, or the library in LD_PRELOAD (jemalloc,
 *           mimalloc, tcmalloc, mmvec's interposer).
 *  memkind  memkind's file-backed PMEM kind (memkind_create_pmem on a directory; its jemalloc
 *           arenas live in a temporary file there). A program must be changed to use it.
 *  naive    one file per block, as the Rust seed does: open + ftruncate + mmap(MAP_SHARED) per
 *           allocation, munmap + unlink on free, ftruncate + mremap on realloc. It is the
 *           baseline a file-backed heap must beat by a wide margin.
 */
#define _GNU_SOURCE
#include "aw.h"

#include <errno.h>
#include <fcntl.h>
#include <memkind.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- libc ---------------------------------------------------------------------------------- */

static const struct aw_alloc libc_alloc = {"libc", malloc, calloc, realloc, free};

/* ---- memkind PMEM kind --------------------------------------------------------------------- */

static memkind_t mk_kind;

static void *mk_malloc(size_t n)
{
    return memkind_malloc(mk_kind, n);
}

static void *mk_calloc(size_t n, size_t size)
{
    return memkind_calloc(mk_kind, n, size);
}

static void *mk_realloc(void *p, size_t n)
{
    return memkind_realloc(mk_kind, p, n);
}

static void mk_free(void *p)
{
    memkind_free(mk_kind, p);
}

static const struct aw_alloc memkind_alloc = {"memkind", mk_malloc, mk_calloc, mk_realloc, mk_free};

static int mk_init(const char *dir)
{
    /* max_size 0: limited only by the file system, like the other file-backed contenders. */
    int err = memkind_create_pmem(dir, 0, &mk_kind);
    if (err) {
        char msg[256];
        memkind_error_message(err, msg, sizeof msg);
        fprintf(stderr, "alloc_workloads: memkind_create_pmem(%s): %s\n", dir, msg);
        return -EIO;
    }
    return 0;
}

/* ---- naive: one file per block ------------------------------------------------------------- */

/* Live blocks: pointer -> (file id, mapped length). Open addressing with backward-shift
 * deletion; a static table so that the bookkeeping never calls malloc. */
#define NV_BITS 17
#define NV_CAP (1u << NV_BITS)
#define NV_MASK (NV_CAP - 1)

struct nv_entry {
    uintptr_t key;
    uint64_t id;
    size_t len;
};

static struct nv_entry nv_tab[NV_CAP];
static size_t nv_count;
static pthread_mutex_t nv_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t nv_next_id;
static char nv_dir[512];
static int nv_pid;

static size_t nv_home(uintptr_t key)
{
    return (size_t)(((uint64_t)key >> 12) * 0x9E3779B97F4A7C15ull >> (64 - NV_BITS));
}

static size_t nv_find(uintptr_t key)
{
    size_t i = nv_home(key);
    while (nv_tab[i].key && nv_tab[i].key != key)
        i = (i + 1) & NV_MASK;
    return i;
}

static int nv_insert(void *p, uint64_t id, size_t len)
{
    pthread_mutex_lock(&nv_lock);
    int rc = -ENOMEM;
    /* Keep the table at most 3/4 full so probes stay short. */
    if (nv_count < NV_CAP / 4 * 3) {
        size_t i = nv_find((uintptr_t)p);
        nv_tab[i] = (struct nv_entry){(uintptr_t)p, id, len};
        nv_count++;
        rc = 0;
    }
    pthread_mutex_unlock(&nv_lock);
    return rc;
}

/* True when home h lies cyclically in (i, j]: the entry at j must then stay where it is. */
static int nv_stays(size_t h, size_t i, size_t j)
{
    return i <= j ? (h > i && h <= j) : (h > i || h <= j);
}

static void nv_delete_at(size_t i)
{
    for (size_t j = (i + 1) & NV_MASK; nv_tab[j].key; j = (j + 1) & NV_MASK) {
        if (nv_stays(nv_home(nv_tab[j].key), i, j))
            continue;
        nv_tab[i] = nv_tab[j];
        i = j;
    }
    nv_tab[i].key = 0;
    nv_count--;
}

/* Removes p from the table; 0 and *out filled, or -ENOENT. */
static int nv_take(void *p, struct nv_entry *out)
{
    pthread_mutex_lock(&nv_lock);
    size_t i = nv_find((uintptr_t)p);
    int rc = -ENOENT;
    if (nv_tab[i].key) {
        *out = nv_tab[i];
        nv_delete_at(i);
        rc = 0;
    }
    pthread_mutex_unlock(&nv_lock);
    return rc;
}

static void nv_path(uint64_t id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/naive-%d-%llu.blk", nv_dir, nv_pid, (unsigned long long)id);
}

static size_t nv_round(size_t n)
{
    return n ? (n + AW_PAGE - 1) / AW_PAGE * AW_PAGE : AW_PAGE;
}

/* Creates and maps the file of a new block; the descriptor is closed at once, as in the seed. */
static void *nv_map_new(uint64_t id, size_t len)
{
    char path[600];
    nv_path(id, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0)
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        unlink(path);
        return NULL;
    }
    return p;
}

static void nv_free(void *p)
{
    struct nv_entry e;
    if (!p || nv_take(p, &e) != 0)
        return;
    char path[600];
    nv_path(e.id, path, sizeof path);
    munmap(p, e.len);
    unlink(path);
}

static void *nv_malloc(size_t n)
{
    if (n > (SIZE_MAX >> 1)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = nv_round(n);
    uint64_t id = atomic_fetch_add(&nv_next_id, 1);
    void *p = nv_map_new(id, len);
    if (p && nv_insert(p, id, len) != 0) {
        char path[600];
        nv_path(id, path, sizeof path);
        munmap(p, len);
        unlink(path);
        p = NULL;
    }
    if (!p)
        errno = ENOMEM;
    return p;
}

static void *nv_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    /* A new (sparse) file reads as zeros: nothing to clear. */
    return nv_malloc(total);
}

/* Resizes the file and its mapping: grow the file before the mapping, shrink it after. */
static void *nv_resize(const struct nv_entry *e, void *p, size_t len)
{
    char path[600];
    nv_path(e->id, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return MAP_FAILED;
    void *q = MAP_FAILED;
    if (len > e->len) {
        if (ftruncate(fd, (off_t)len) == 0)
            q = mremap(p, e->len, len, MREMAP_MAYMOVE);
    } else {
        q = mremap(p, e->len, len, MREMAP_MAYMOVE);
        if (q != MAP_FAILED && ftruncate(fd, (off_t)len) != 0)
            q = MAP_FAILED;
    }
    close(fd);
    return q;
}

static void *nv_realloc(void *p, size_t n)
{
    if (!p)
        return nv_malloc(n);
    if (n == 0) {
        nv_free(p);
        return NULL;
    }
    struct nv_entry e;
    if (nv_take(p, &e) != 0 || n > (SIZE_MAX >> 1)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t len = nv_round(n);
    void *q = len == e.len ? p : nv_resize(&e, p, len);
    if (q == MAP_FAILED) {
        nv_insert(p, e.id, e.len); /* the old block stays valid, as realloc requires */
        errno = ENOMEM;
        return NULL;
    }
    nv_insert(q, e.id, len);
    return q;
}

static const struct aw_alloc naive_alloc = {"naive", nv_malloc, nv_calloc, nv_realloc, nv_free};

/* ---- selection ----------------------------------------------------------------------------- */

static int mk_active;

int aw_alloc_select(const char *name, const char *dir, const struct aw_alloc **out)
{
    if (!name || !out)
        return -EINVAL;
    if (strcmp(name, "libc") == 0) {
        *out = &libc_alloc;
        return 0;
    }
    if (!dir || !*dir || strlen(dir) >= sizeof nv_dir)
        return -EINVAL;
    if (strcmp(name, "naive") == 0) {
        snprintf(nv_dir, sizeof nv_dir, "%s", dir);
        nv_pid = (int)getpid();
        *out = &naive_alloc;
        return 0;
    }
    if (strcmp(name, "memkind") == 0) {
        int rc = mk_init(dir);
        if (rc == 0) {
            mk_active = 1;
            *out = &memkind_alloc;
        }
        return rc;
    }
    return -EINVAL;
}

void aw_alloc_shutdown(void)
{
    if (mk_active)
        memkind_destroy_kind(mk_kind);
    mk_active = 0;
}
