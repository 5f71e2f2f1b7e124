/* Segments: a fixed-capacity array of elements in one memory-mapped file (the seed's Segment<T>).
 *
 * Elements have a runtime size (elem_size bytes, never 0). A segment is opened at a path with a
 * capacity; the file is created 0600 (or an existing file is reused), sized to
 * capacity * elem_size with fallocate (so a full disk is -ENOSPC at open, never a SIGBUS on a
 * later write) and mapped shared read-write. No file descriptor stays open. Closing unmaps; the
 * file stays on disk (deleting it is the caller's business, or use a vector).
 *
 * The struct is transparent so that inline code can reach the elements without a call, but its
 * fields are READ-ONLY for users: change them only through the functions below.
 * A zero-initialised struct is a harmless empty segment whose calls return -EINVAL (no elem_size).
 */
#ifndef MMVEC_SEGMENT_H
#define MMVEC_SEGMENT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called for each element a segment or vector destroys (truncate, truncate_first, clear,
 * close/destroy), as GLib's g_array_set_clear_func. Not called for elements handed back to the
 * caller (pop, remove with an out buffer) nor for elements moved elsewhere (extend_from). */
typedef void (*mmv_clear_fn)(void *elem);

typedef struct mmv_segment {
    void *data;            /* element 0; NULL for a null segment */
    size_t len;            /* elements in use */
    size_t capacity;       /* elements the mapping holds */
    size_t elem_size;      /* bytes per element, > 0 */
    size_t offset;         /* file bytes before element 0 (0 here; a vector keeps a header page) */
    mmv_clear_fn clear_fn; /* optional, see mmv_segment_set_clear_fn */
} mmv_segment;

/* A null segment: no file, no mapping, capacity 0. -EINVAL for NULL or elem_size 0. */
MMV_API int mmv_segment_null(mmv_segment *s, size_t elem_size);

/* Opens `path` read-write with room for `capacity` elements (len 0). The file is created 0600
 * when missing (an existing regular file is resized to capacity * elem_size, its bytes kept).
 * capacity 0 gives the null segment and creates NO file.
 * Errors: -EINVAL (NULL, elem_size 0), -EOVERFLOW (capacity * elem_size too big), -ENOSPC (disk
 * full), any open/fallocate/mmap errno. On error *s is a null segment and no file was created. */
MMV_API int mmv_segment_open(mmv_segment *s, const char *path, size_t elem_size, size_t capacity);

/* Unmaps (after calling the clear function on the elements); the file stays. *s becomes a null
 * segment of the same elem_size. Returns 0, -EINVAL, or munmap's errno. */
MMV_API int mmv_segment_close(mmv_segment *s);

/* Sets the per-element clear function (NULL: none). */
MMV_API int mmv_segment_set_clear_fn(mmv_segment *s, mmv_clear_fn fn);

/* Copies one element (elem_size bytes at elem) to the end. -ENOSPC when full, -EINVAL for NULL. */
MMV_API int mmv_segment_push_within_capacity(mmv_segment *s, const void *elem);

/* Removes the last element, copying it to out (when out is not NULL). false when empty. */
MMV_API bool mmv_segment_pop(mmv_segment *s, void *out);

/* Keeps the first n elements (n >= len: nothing happens). */
MMV_API int mmv_segment_truncate(mmv_segment *s, size_t n);

/* Removes the first k elements and moves the rest to the front (k >= len: empties). */
MMV_API int mmv_segment_truncate_first(mmv_segment *s, size_t k);

/* Removes every element (idempotent). */
MMV_API int mmv_segment_clear(mmv_segment *s);

/* Moves every element of `other` to the end of s; other becomes empty.
 * -ENOSPC ("segment too small") when they do not fit (nothing moves), -EINVAL for NULL, the same
 * segment twice, or different element sizes. */
MMV_API int mmv_segment_extend_from(mmv_segment *s, mmv_segment *other);

/* MADV_WILLNEED over the used part / over the page holding element i. Out of range, NULL or null
 * segment: nothing happens. */
MMV_API void mmv_segment_prefetch_all(const mmv_segment *s);
MMV_API void mmv_segment_prefetch_at(const mmv_segment *s, size_t i);

/* Accessors (NULL-safe). */
static inline size_t mmv_segment_len(const mmv_segment *s) { return s ? s->len : 0; }
static inline size_t mmv_segment_capacity(const mmv_segment *s) { return s ? s->capacity : 0; }
static inline bool mmv_segment_is_empty(const mmv_segment *s) { return !s || s->len == 0; }
static inline void *mmv_segment_data(const mmv_segment *s) { return s ? s->data : NULL; }
/* The file's size: capacity * elem_size (the seed's disk_size), plus `offset` for a vector's
 * header page; 0 for a null segment. */
static inline size_t mmv_segment_disk_size(const mmv_segment *s)
{
    return s && s->data ? s->offset + s->capacity * s->elem_size : 0;
}
/* Element i, or NULL when i >= len. */
static inline void *mmv_segment_at(const mmv_segment *s, size_t i)
{
    return s && i < s->len ? (char *)s->data + i * s->elem_size : NULL;
}

#ifdef __cplusplus
}
#endif

#endif
