/* Vectors: a growable array in one mapped file (see include/mmvec/vec.h, docs/core.md).
 *
 * The file is [header page][elements...]. The whole file is mapped, so seg.data is the mapping
 * plus seg.offset (one page). Growing fallocates the same file bigger and mremaps: no copy.
 * No descriptor is kept: each resize reopens the path and checks it is still our file. */
#define _GNU_SOURCE
#include "mmvec/vec.h"

#include "os.h"
#include "stats_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- On-disk header (written by close_keep, checked by open) ---- */

#define HDR_MAGIC "MMVECVEC"
#define HDR_VERSION 1u
#define HDR_BYTE_ORDER 0x01020304u
#define HDR_CLOSED 1u
#define HDR_OPEN 2u
#define HDR_DATA_SUM 1u /* flags: data_sum is valid */

struct hdr {
    char magic[8];
    uint32_t version;
    uint32_t byte_order; /* native order; a file from a machine of the other one is refused */
    uint64_t elem_size;
    uint64_t len;
    uint64_t data_offset; /* where element 0 starts: the writer's page size */
    uint32_t state;       /* HDR_CLOSED after close_keep, HDR_OPEN while reopened */
    uint32_t flags;
    uint64_t data_sum;
    uint64_t header_sum; /* over every field above */
};
_Static_assert(sizeof(struct hdr) == 64, "the header layout is part of the file format");

/* A 4-lane multiply-rotate hash (xxh64-like, not xxh64): fast enough to run over the data at
 * close and open (several GB/s), strong enough to catch corruption. Not cryptographic. */
#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t mix(uint64_t acc, uint64_t in) { return rotl(acc + in * P2, 31) * P1; }
static uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t hash_bytes(const void *data, size_t n)
{
    const unsigned char *b = data;
    uint64_t a0 = P1 + P2, a1 = P2, a2 = 0, a3 = -P1, h = (uint64_t)n * P3;
    for (; n >= 32; b += 32, n -= 32) {
        a0 = mix(a0, load64(b));
        a1 = mix(a1, load64(b + 8));
        a2 = mix(a2, load64(b + 16));
        a3 = mix(a3, load64(b + 24));
    }
    h += rotl(a0, 1) + rotl(a1, 7) + rotl(a2, 12) + rotl(a3, 18);
    for (; n >= 8; b += 8, n -= 8)
        h = rotl(h ^ mix(0, load64(b)), 27) * P1 + P4;
    for (; n > 0; b++, n--)
        h = rotl(h ^ (*b * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

static uint64_t header_sum(const struct hdr *h)
{
    return hash_bytes(h, offsetof(struct hdr, header_sum));
}

/* ---- Sizes ---- */

size_t mmv_vec_page_capacity(size_t elem_size)
{
    if (elem_size == 0)
        return 0;
    size_t n = mmvi_page_size() / elem_size;
    return n > 0 ? n : 1;
}

/* offset + cap * elem_size, or 0 when it overflows (or is too big to map). */
static size_t file_bytes(size_t offset, size_t cap, size_t elem_size)
{
    if (cap > (SIZE_MAX - offset) / elem_size)
        return 0;
    size_t n = offset + cap * elem_size;
    return n <= (size_t)INT64_MAX && mmvi_page_round(n) != 0 ? n : 0;
}

static bool vec_ok(const mmv_vec *v)
{
    return v && v->seg.elem_size > 0 && v->path;
}

static char *elem(const mmv_vec *v, size_t i)
{
    return (char *)v->seg.data + i * v->seg.elem_size;
}

/* Does p point into this vector's mapping (so that growing may move it)? Compared as integers:
 * p may belong to any object. */
static bool inside(const mmv_vec *v, const void *p)
{
    uintptr_t c = (uintptr_t)p, d = (uintptr_t)v->seg.data;
    return d && c >= d && c - d < v->seg.capacity * v->seg.elem_size;
}

/* ---- Mapping: create, resize, drop ---- */

static int create_file(mmv_vec *v, size_t cap)
{
    size_t off = mmvi_page_size();
    size_t bytes = file_bytes(off, cap, v->seg.elem_size);
    if (bytes == 0)
        return -EOVERFLOW;
    mmvi_file_info fi = {0};
    void *p = NULL;
    int rc = mmvi_os_map_file(v->path, 1, bytes, &fi, &p);
    if (rc < 0)
        return rc;
    v->dev = fi.dev;
    v->ino = fi.ino;
    v->seg.offset = off;
    v->seg.data = (char *)p + off;
    v->seg.capacity = cap;
    mmvi_stat_mapped(1, (int64_t)bytes);
    return 0;
}

/* Capacity becomes cap (> 0) in the same file: fallocate/ftruncate + mremap, never a copy. */
static int set_capacity(mmv_vec *v, size_t cap)
{
    if (!v->seg.data)
        return create_file(v, cap);
    size_t off = v->seg.offset, es = v->seg.elem_size;
    size_t old = off + v->seg.capacity * es, bytes = file_bytes(off, cap, es);
    if (bytes == 0)
        return -EOVERFLOW;
    mmvi_file_info id = {.dev = v->dev, .ino = v->ino};
    void *p = NULL;
    int rc = mmvi_os_resize_mapped(v->path, &id, (char *)v->seg.data - off, old, bytes, &p);
    if (rc < 0)
        return rc;
    v->seg.data = (char *)p + off;
    v->seg.capacity = cap;
    mmvi_stat_mapped(0, (int64_t)bytes - (int64_t)old);
    return 0;
}

/* Unmaps without calling the clear function (the elements are kept, moved or already gone). */
static int unmap(mmv_vec *v)
{
    mmv_clear_fn fn = v->seg.clear_fn;
    v->seg.clear_fn = NULL;
    int rc = mmv_segment_close(&v->seg);
    v->seg.clear_fn = fn;
    return rc;
}

/* Deletes our file, and only ours (see mmvi_os_unlink_own). */
static int unlink_own(const mmv_vec *v)
{
    mmvi_file_info id = {.dev = v->dev, .ino = v->ino};
    return mmvi_os_unlink_own(v->path, &id);
}

/* ---- Life cycle ---- */

static int init_path(mmv_vec *v)
{
    char buf[4096];
    int rc = mmv_namer_next(&v->namer, buf, sizeof buf);
    if (rc < 0)
        return rc;
    v->path = strdup(buf);
    return v->path ? 0 : -ENOMEM;
}

int mmv_vec_init(mmv_vec *v, size_t elem_size, const mmv_namer *namer)
{
    if (!v)
        return -EINVAL;
    *v = (mmv_vec){.namer = namer ? *namer : mmv_namer_default()};
    int rc = mmv_segment_null(&v->seg, elem_size);
    if (rc == 0)
        rc = init_path(v);
    if (rc < 0)
        *v = (mmv_vec){0};
    return rc;
}

int mmv_vec_init_capacity(mmv_vec *v, size_t elem_size, size_t capacity, const mmv_namer *namer)
{
    int rc = mmv_vec_init(v, elem_size, namer);
    if (rc < 0 || capacity == 0)
        return rc;
    rc = set_capacity(v, capacity);
    if (rc < 0)
        mmv_vec_destroy(v);
    return rc;
}

int mmv_vec_from_array(mmv_vec *v, size_t elem_size, const void *arr, size_t n,
                       const mmv_namer *namer)
{
    if (n > 0 && !arr) {
        if (v)
            *v = (mmv_vec){0};
        return -EINVAL;
    }
    int rc = mmv_vec_init(v, elem_size, namer);
    if (rc < 0)
        return rc;
    rc = mmv_vec_extend(v, arr, n);
    if (rc < 0)
        mmv_vec_destroy(v);
    return rc;
}

int mmv_vec_clone(mmv_vec *dst, const mmv_vec *src)
{
    if (!dst || !vec_ok(src) || dst == src)
        return -EINVAL;
    int rc = mmv_vec_init(dst, src->seg.elem_size, &src->namer);
    if (rc < 0 || src->seg.len == 0)
        return rc; /* the seed: an empty clone has no file */
    rc = set_capacity(dst, src->seg.capacity);
    if (rc < 0) {
        mmv_vec_destroy(dst);
        return rc;
    }
    memcpy(dst->seg.data, src->seg.data, src->seg.len * src->seg.elem_size);
    dst->seg.len = src->seg.len;
    return 0;
}

int mmv_vec_destroy(mmv_vec *v)
{
    if (!vec_ok(v))
        return -EINVAL;
    bool had_file = v->seg.data != NULL;
    int rc = mmv_segment_close(&v->seg); /* calls the clear function */
    int rc2 = had_file ? unlink_own(v) : 0;
    free(v->path);
    *v = (mmv_vec){0};
    return rc < 0 ? rc : rc2;
}

int mmv_vec_set_clear_fn(mmv_vec *v, mmv_clear_fn fn)
{
    return vec_ok(v) ? mmv_segment_set_clear_fn(&v->seg, fn) : -EINVAL;
}

int mmv_vec_set_namer(mmv_vec *v, const mmv_namer *namer)
{
    if (!vec_ok(v))
        return -EINVAL;
    v->namer = namer ? *namer : mmv_namer_default();
    return 0;
}

/* ---- Growth ---- */

int mmv_vec_reserve(mmv_vec *v, size_t additional)
{
    if (!vec_ok(v))
        return -EINVAL;
    size_t len = v->seg.len, cap = v->seg.capacity;
    if (additional <= cap - len)
        return 0;
    if (additional > SIZE_MAX - len)
        return -EOVERFLOW;
    /* The seed rounds the new capacity up to whole pages worth of elements. */
    size_t per = mmv_vec_page_capacity(v->seg.elem_size), need = len + additional;
    size_t rounded = need / per * per;
    if (rounded < need && (rounded += per) < need)
        return -EOVERFLOW;
    return set_capacity(v, rounded);
}

/* Room for one more, as the seed's push: max(len, one page worth) more when full. */
static int grow_for_push(mmv_vec *v)
{
    if (v->seg.len < v->seg.capacity)
        return 0;
    size_t per = mmv_vec_page_capacity(v->seg.elem_size);
    return mmv_vec_reserve(v, v->seg.len > per ? v->seg.len : per);
}

int mmv_vec_push(mmv_vec *v, const void *e)
{
    if (!vec_ok(v) || !e)
        return -EINVAL;
    if (v->seg.len >= v->seg.capacity) {
        /* e may point into our mapping, which growing may move: keep its offset. */
        bool alias = inside(v, e);
        size_t at = alias ? (size_t)((const char *)e - (char *)v->seg.data) : 0;
        int rc = grow_for_push(v);
        if (rc < 0)
            return rc;
        if (alias)
            e = (char *)v->seg.data + at;
    }
    memmove(elem(v, v->seg.len), e, v->seg.elem_size);
    v->seg.len++;
    return 0;
}

int mmv_vec_push_within_capacity(mmv_vec *v, const void *e)
{
    return vec_ok(v) ? mmv_segment_push_within_capacity(&v->seg, e) : -EINVAL;
}

bool mmv_vec_pop(mmv_vec *v, void *out)
{
    return vec_ok(v) && mmv_segment_pop(&v->seg, out);
}

int mmv_vec_extend(mmv_vec *v, const void *arr, size_t n)
{
    if (!vec_ok(v) || (n > 0 && !arr))
        return -EINVAL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / v->seg.elem_size)
        return -EOVERFLOW;
    bool alias = inside(v, arr);
    size_t at = alias ? (size_t)((const char *)arr - (char *)v->seg.data) : 0;
    int rc = mmv_vec_reserve(v, n);
    if (rc < 0)
        return rc;
    if (alias)
        arr = (char *)v->seg.data + at;
    memmove(elem(v, v->seg.len), arr, n * v->seg.elem_size);
    v->seg.len += n;
    return 0;
}

/* ---- Removal and reordering ---- */

int mmv_vec_truncate(mmv_vec *v, size_t n)
{
    return vec_ok(v) ? mmv_segment_truncate(&v->seg, n) : -EINVAL;
}

int mmv_vec_truncate_first(mmv_vec *v, size_t k)
{
    return vec_ok(v) ? mmv_segment_truncate_first(&v->seg, k) : -EINVAL;
}

int mmv_vec_clear(mmv_vec *v)
{
    return vec_ok(v) ? mmv_segment_clear(&v->seg) : -EINVAL;
}

/* Opens a gap at i (len grows by one); the caller fills it. */
static void open_gap(mmv_vec *v, size_t i)
{
    memmove(elem(v, i + 1), elem(v, i), (v->seg.len - i) * v->seg.elem_size);
    v->seg.len++;
}

int mmv_vec_insert(mmv_vec *v, size_t i, const void *e)
{
    if (!vec_ok(v) || !e)
        return -EINVAL;
    if (i > v->seg.len)
        return -ERANGE;
    if (i == v->seg.len)
        return mmv_vec_push(v, e);
    /* e may live in the part that moves (or the mapping may move): take a private copy. */
    void *copy = NULL;
    if (inside(v, e)) {
        copy = malloc(v->seg.elem_size);
        if (!copy)
            return -ENOMEM;
        e = memcpy(copy, e, v->seg.elem_size);
    }
    int rc = grow_for_push(v);
    if (rc == 0) {
        open_gap(v, i);
        memcpy(elem(v, i), e, v->seg.elem_size);
    }
    free(copy);
    return rc;
}

/* Hands element i to the caller (out) or destroys it (clear function). */
static void take(mmv_vec *v, size_t i, void *out)
{
    if (out)
        memcpy(out, elem(v, i), v->seg.elem_size);
    else if (v->seg.clear_fn)
        v->seg.clear_fn(elem(v, i));
}

int mmv_vec_remove(mmv_vec *v, size_t i, void *out)
{
    if (!vec_ok(v))
        return -EINVAL;
    if (i >= v->seg.len)
        return -ERANGE;
    take(v, i, out);
    memmove(elem(v, i), elem(v, i + 1), (v->seg.len - i - 1) * v->seg.elem_size);
    v->seg.len--;
    return 0;
}

int mmv_vec_swap_remove(mmv_vec *v, size_t i, void *out)
{
    if (!vec_ok(v))
        return -EINVAL;
    if (i >= v->seg.len)
        return -ERANGE;
    take(v, i, out);
    size_t last = v->seg.len - 1;
    if (i != last)
        memcpy(elem(v, i), elem(v, last), v->seg.elem_size);
    v->seg.len--;
    return 0;
}

int mmv_vec_sort(mmv_vec *v, int (*cmp)(const void *, const void *))
{
    if (!vec_ok(v) || !cmp)
        return -EINVAL;
    if (v->seg.len > 1)
        qsort(v->seg.data, v->seg.len, v->seg.elem_size, cmp);
    return 0;
}

int mmv_vec_shrink_to_fit(mmv_vec *v)
{
    if (!vec_ok(v))
        return -EINVAL;
    if (v->seg.len == v->seg.capacity)
        return 0;
    if (v->seg.len > 0)
        return set_capacity(v, v->seg.len);
    /* Empty: back to new(), no file. */
    int rc = unmap(v);
    int rc2 = unlink_own(v);
    return rc < 0 ? rc : rc2;
}

/* ---- Queries ---- */

bool mmv_vec_equal(const mmv_vec *a, const mmv_vec *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->seg.elem_size != b->seg.elem_size || a->seg.len != b->seg.len)
        return false;
    return a->seg.len == 0 ||
           memcmp(a->seg.data, b->seg.data, a->seg.len * a->seg.elem_size) == 0;
}

void mmv_vec_prefetch_all(const mmv_vec *v)
{
    if (v)
        mmv_segment_prefetch_all(&v->seg);
}

void mmv_vec_prefetch_at(const mmv_vec *v, size_t i)
{
    if (v)
        mmv_segment_prefetch_at(&v->seg, i);
}

/* ---- Persistence ---- */

static void fill_header(struct hdr *h, const mmv_vec *v, size_t off, uint32_t state,
                        unsigned flags)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, HDR_MAGIC, 8);
    h->version = HDR_VERSION;
    h->byte_order = HDR_BYTE_ORDER;
    h->elem_size = v->seg.elem_size;
    h->len = v->seg.len;
    h->data_offset = off;
    h->state = state;
    if (!(flags & MMV_KEEP_NO_DATA_CHECKSUM) && v->seg.len > 0) {
        h->flags = HDR_DATA_SUM;
        h->data_sum = hash_bytes(v->seg.data, v->seg.len * v->seg.elem_size);
    }
    h->header_sum = header_sum(h);
}

/* A vector that never had a file gets one holding just the header. */
static int keep_empty(mmv_vec *v, unsigned flags)
{
    size_t off = mmvi_page_size();
    struct hdr h;
    fill_header(&h, v, off, HDR_CLOSED, flags);
    int fd = -1;
    int rc = mmvi_os_create(v->path, off, &fd);
    if (rc < 0)
        return rc;
    rc = mmvi_os_pwrite_all(fd, &h, sizeof h, 0);
    if (rc < 0)
        (void)mmvi_os_unlink(v->path);
    mmvi_os_close(fd);
    return rc;
}

/* Opens our file by path for a size change, refusing a file that replaced it. */
static int open_own(const mmv_vec *v, int *fd)
{
    int rc = mmvi_os_open(v->path, fd);
    if (rc < 0)
        return rc;
    mmvi_file_info fi = {0};
    rc = mmvi_os_file_info(*fd, &fi);
    if (rc == 0 && (fi.dev != v->dev || fi.ino != v->ino))
        rc = -ESTALE;
    if (rc < 0)
        mmvi_os_close(*fd);
    return rc;
}

/* Cuts the file to header + len elements, then writes the header through the mapping. */
static int keep_mapped(mmv_vec *v, unsigned flags)
{
    size_t off = v->seg.offset, es = v->seg.elem_size;
    int fd = -1;
    int rc = open_own(v, &fd);
    if (rc < 0)
        return rc;
    /* Nothing past len is touched again, so the mapping may outlive the cut tail. */
    rc = mmvi_os_resize(fd, off + v->seg.capacity * es, off + v->seg.len * es);
    mmvi_os_close(fd);
    if (rc < 0)
        return rc;
    fill_header((struct hdr *)((char *)v->seg.data - off), v, off, HDR_CLOSED, flags);
    return 0;
}

int mmv_vec_close_keep_flags(mmv_vec *v, unsigned flags)
{
    if (!vec_ok(v) || (flags & ~MMV_KEEP_NO_DATA_CHECKSUM))
        return -EINVAL;
    int rc = v->seg.data ? keep_mapped(v, flags) : keep_empty(v, flags);
    if (rc < 0)
        return rc; /* nothing changed: the vector is still usable */
    rc = unmap(v); /* the file is complete; a failed munmap is only reported */
    free(v->path);
    *v = (mmv_vec){0};
    return rc;
}

int mmv_vec_close_keep(mmv_vec *v)
{
    return mmv_vec_close_keep_flags(v, 0);
}

/* Checks a header against the file it came from; each kind of problem has its own code. */
static int check_header(const struct hdr *h, size_t elem_size, size_t file_size)
{
    if (memcmp(h->magic, HDR_MAGIC, 8) != 0)
        return -EPROTO;
    if (h->byte_order != HDR_BYTE_ORDER || h->version != HDR_VERSION)
        return -EPROTONOSUPPORT;
    if (h->header_sum != header_sum(h))
        return -EBADMSG;
    if (h->flags & ~HDR_DATA_SUM)
        return -EPROTONOSUPPORT;
    if (h->data_offset < sizeof *h || h->data_offset > ((uint64_t)1 << 30))
        return -EBADMSG;
    if (h->data_offset % mmvi_page_size() != 0)
        return -EPROTONOSUPPORT; /* written where pages have another size */
    if (h->state == HDR_OPEN)
        return -EBUSY;
    if (h->state != HDR_CLOSED || h->elem_size == 0)
        return -EBADMSG;
    if (h->elem_size != elem_size)
        return -EINVAL;
    size_t want = h->len > SIZE_MAX ? 0 : file_bytes(h->data_offset, h->len, elem_size);
    if (want == 0)
        return -EBADMSG;
    if (file_size < want)
        return -ENODATA;
    return file_size > want ? -EBADMSG : 0;
}

/* Maps the checked file and verifies its data; nothing is written yet. */
static int map_checked(int fd, const struct hdr *h, size_t file_size, void **base)
{
    int rc = mmvi_os_map(fd, 0, file_size, NULL, 0, base);
    if (rc < 0)
        return rc;
    const char *data = (const char *)*base + h->data_offset;
    if ((h->flags & HDR_DATA_SUM) && hash_bytes(data, h->len * h->elem_size) != h->data_sum) {
        (void)mmvi_os_unmap(*base, file_size);
        return -EBADMSG;
    }
    return 0;
}

/* Grows the checked file to cap elements (on failure it keeps its size), marks it open. */
static int reopen_grow(int fd, const struct hdr *h, size_t file_size, size_t cap, void **base)
{
    size_t bytes = file_bytes(h->data_offset, cap, h->elem_size);
    if (bytes == 0)
        return -EOVERFLOW;
    void *p = *base;
    int rc = bytes == file_size ? 0 : mmvi_os_resize_fd_mapped(fd, p, file_size, bytes, &p);
    if (rc < 0)
        return rc;
    struct hdr *live = p;
    live->state = HDR_OPEN; /* a crash from now on leaves a file that open refuses (-EBUSY) */
    live->header_sum = header_sum(live);
    *base = p;
    return 0;
}

/* Validates, maps and grows the file behind fd into v (whose path is set). */
static int reopen_fd(mmv_vec *v, int fd, size_t elem_size)
{
    mmvi_file_info fi = {0};
    struct hdr h;
    int rc = mmvi_os_file_info(fd, &fi);
    if (rc < 0)
        return rc;
    if (!fi.regular || fi.size < sizeof h)
        return -EPROTO;
    rc = mmvi_os_pread_all(fd, &h, sizeof h, 0);
    if (rc == 0)
        rc = check_header(&h, elem_size, fi.size);
    void *base = NULL;
    if (rc == 0)
        rc = map_checked(fd, &h, fi.size, &base);
    if (rc < 0)
        return rc;
    size_t per = mmv_vec_page_capacity(elem_size);
    size_t cap = h.len <= per ? per : (h.len + per - 1) / per * per;
    rc = cap < h.len ? -EOVERFLOW : reopen_grow(fd, &h, fi.size, cap, &base);
    if (rc < 0) {
        (void)mmvi_os_unmap(base, fi.size);
        return rc;
    }
    size_t bytes = h.data_offset + cap * elem_size;
    v->seg.data = (char *)base + h.data_offset;
    v->seg.offset = h.data_offset;
    v->seg.len = h.len;
    v->seg.capacity = cap;
    v->dev = fi.dev;
    v->ino = fi.ino;
    mmvi_stat_mapped(1, (int64_t)bytes);
    return 0;
}

int mmv_vec_open(const char *path, size_t elem_size, mmv_vec *v)
{
    if (!v)
        return -EINVAL;
    *v = (mmv_vec){.namer = mmv_namer_default()};
    if (!path || elem_size == 0)
        return -EINVAL;
    mmv_segment_null(&v->seg, elem_size);
    /* The absolute path: resizes reopen it, whatever the caller's working directory becomes. */
    v->path = realpath(path, NULL);
    if (!v->path)
        return errno == ENOMEM ? -ENOMEM : -errno;
    int fd = -1;
    int rc = mmvi_os_open(v->path, &fd);
    if (rc == 0) {
        rc = reopen_fd(v, fd, elem_size);
        mmvi_os_close(fd);
    }
    if (rc < 0) {
        free(v->path);
        *v = (mmv_vec){0};
    }
    return rc;
}
