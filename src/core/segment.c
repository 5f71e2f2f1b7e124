/* Segments: fixed-capacity arrays of elements in one mapped file (see include/mmvec/segment.h).
 * The element operations here are shared with the vector, which owns a segment and manages its
 * mapping itself (it keeps a header page in front of the elements). */
#define _GNU_SOURCE
#include "mmvec/segment.h"

#include "os.h"
#include "stats_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static char *elem(const mmv_segment *s, size_t i)
{
    return (char *)s->data + i * s->elem_size;
}

/* A usable handle: non-NULL with an element size (a zeroed struct has none). */
static bool ok(const mmv_segment *s)
{
    return s && s->elem_size > 0;
}

/* Calls the clear function on elements [from, to). */
static void clear_range(mmv_segment *s, size_t from, size_t to)
{
    if (!s->clear_fn)
        return;
    for (size_t i = from; i < to; i++)
        s->clear_fn(elem(s, i));
}

int mmv_segment_null(mmv_segment *s, size_t elem_size)
{
    if (!s || elem_size == 0)
        return -EINVAL;
    *s = (mmv_segment){.elem_size = elem_size};
    return 0;
}

int mmv_segment_open(mmv_segment *s, const char *path, size_t elem_size, size_t capacity)
{
    int rc = mmv_segment_null(s, elem_size);
    if (rc < 0 || capacity == 0)
        return rc; /* capacity 0: the seed's null segment, no file */
    if (!path)
        return -EINVAL;
    if (capacity > SIZE_MAX / elem_size || mmvi_page_round(capacity * elem_size) == 0)
        return -EOVERFLOW;
    size_t bytes = capacity * elem_size;
    void *p = NULL;
    rc = mmvi_os_map_file(path, 1, bytes, NULL, &p);
    if (rc == -EEXIST) /* the seed opens an existing file too */
        rc = mmvi_os_map_file(path, 0, bytes, NULL, &p);
    if (rc < 0)
        return rc;
    s->data = p;
    s->capacity = capacity;
    mmvi_stat_mapped(1, (int64_t)bytes);
    return 0;
}

int mmv_segment_close(mmv_segment *s)
{
    if (!ok(s))
        return -EINVAL;
    clear_range(s, 0, s->len);
    int rc = 0;
    if (s->data) {
        size_t bytes = s->offset + s->capacity * s->elem_size;
        rc = mmvi_os_unmap((char *)s->data - s->offset, bytes);
        mmvi_stat_mapped(-1, -(int64_t)bytes);
    }
    mmv_clear_fn fn = s->clear_fn;
    *s = (mmv_segment){.elem_size = s->elem_size, .clear_fn = fn};
    return rc;
}

int mmv_segment_set_clear_fn(mmv_segment *s, mmv_clear_fn fn)
{
    if (!ok(s))
        return -EINVAL;
    s->clear_fn = fn;
    return 0;
}

int mmv_segment_push_within_capacity(mmv_segment *s, const void *e)
{
    if (!ok(s) || !e)
        return -EINVAL;
    if (s->len >= s->capacity)
        return -ENOSPC;
    memmove(elem(s, s->len), e, s->elem_size); /* e may point into the segment itself */
    s->len++;
    return 0;
}

bool mmv_segment_pop(mmv_segment *s, void *out)
{
    if (!ok(s) || s->len == 0)
        return false;
    s->len--;
    if (out)
        memmove(out, elem(s, s->len), s->elem_size);
    return true;
}

int mmv_segment_truncate(mmv_segment *s, size_t n)
{
    if (!ok(s))
        return -EINVAL;
    if (n >= s->len)
        return 0;
    /* Shrink len first so that a clear function that looks at the segment sees it consistent. */
    size_t old = s->len;
    s->len = n;
    clear_range(s, n, old);
    return 0;
}

int mmv_segment_truncate_first(mmv_segment *s, size_t k)
{
    if (!ok(s))
        return -EINVAL;
    if (k >= s->len)
        return mmv_segment_clear(s);
    clear_range(s, 0, k);
    memmove(s->data, elem(s, k), (s->len - k) * s->elem_size);
    s->len -= k;
    return 0;
}

int mmv_segment_clear(mmv_segment *s)
{
    return mmv_segment_truncate(s, 0);
}

int mmv_segment_extend_from(mmv_segment *s, mmv_segment *other)
{
    if (!ok(s) || !ok(other) || s == other || s->elem_size != other->elem_size)
        return -EINVAL;
    if (other->len > s->capacity - s->len)
        return -ENOSPC; /* the seed: "New segment is too small" */
    if (other->len > 0)
        memcpy(elem(s, s->len), other->data, other->len * s->elem_size);
    s->len += other->len;
    other->len = 0; /* moved, not destroyed: no clear function */
    return 0;
}

void mmv_segment_prefetch_all(const mmv_segment *s)
{
    if (!ok(s) || !s->data || s->len == 0)
        return;
    /* madvise wants a page-aligned start: the data start is one (mapping or header page). */
    mmvi_os_advise(s->data, s->len * s->elem_size, MADV_WILLNEED);
}

void mmv_segment_prefetch_at(const mmv_segment *s, size_t i)
{
    if (!ok(s) || !s->data || i >= s->len)
        return;
    /* From the page holding the element's first byte to its last byte (it may straddle). */
    uintptr_t start = (uintptr_t)elem(s, i);
    uintptr_t at = start & ~(uintptr_t)(mmvi_page_size() - 1);
    mmvi_os_advise((void *)at, start - at + s->elem_size, MADV_WILLNEED);
}
