/* Vectors: a growable array of elements in one memory-mapped file (the seed's MmapVec<T>).
 *
 * Life of a vector:
 *   mmv_vec v;
 *   mmv_vec_init(&v, sizeof(struct row), NULL);   // picks the file's path, creates no file
 *   mmv_vec_push(&v, &row);                        // the first push creates the file
 *   struct row *r = mmv_vec_at(&v, 0);
 *   mmv_vec_destroy(&v);                           // unmaps and deletes the file
 * or mmv_vec_close_keep(&v) to keep the file, and mmv_vec_open(path, elem_size, &v) later.
 *
 * Growth (as the seed): the first capacity is one page worth of elements (page size / elem_size,
 * at least 1: 512 for 8-byte elements, 170 for 24-byte ones); a push on a full vector reserves
 * max(len, one page worth) more; reserve rounds the new capacity up to a multiple of one page
 * worth of elements. The data stay in the same file: the file grows with fallocate (a full disk
 * is -ENOSPC, never a later SIGBUS) and the mapping is moved with mremap; nothing is copied.
 *
 * The file: one header page (written by mmv_vec_close_keep; see docs/core.md) followed by the
 * elements, so disk_size = page size + capacity * elem_size.
 *
 * The struct is transparent so that inline code (typed.h) can push without a call, but all its
 * fields are READ-ONLY for users. No file descriptor is kept open. A vector is not thread-safe:
 * callers serialise access to one vector (different vectors are independent).
 *
 * Errors: 0 or a negative errno. -EINVAL: NULL handle/argument or elem_size 0 ("zero sized types
 * are not supported"); -EOVERFLOW: capacity * elem_size does not fit; -ERANGE: index out of
 * range; -ENOSPC: disk full (or push_within_capacity on a full vector); others from the system.
 * A failed call leaves the vector as it was.
 */
#ifndef MMVEC_VEC_H
#define MMVEC_VEC_H

#include "common.h"
#include "namer.h"
#include "segment.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mmv_vec {
    mmv_segment seg;          /* seg.data, seg.len, seg.capacity, seg.elem_size, seg.clear_fn */
    char *path;               /* the file's path, chosen at init (the file exists once mapped) */
    mmv_namer namer;          /* where clones go */
    unsigned long long dev, ino; /* the file's identity, checked before every resize */
} mmv_vec;

/* Elements per page for this element size (at least 1); 0 for elem_size 0. */
MMV_API size_t mmv_vec_page_capacity(size_t elem_size);

/* An empty vector with no file (the seed's new()); its path is chosen now by `namer`
 * (NULL: the default namer). The namer is copied; its context must outlive the vector. */
MMV_API int mmv_vec_init(mmv_vec *v, size_t elem_size, const mmv_namer *namer);

/* Like mmv_vec_init, then creates the file with room for exactly `capacity` elements
 * (the seed's with_capacity; 0: no file). */
MMV_API int mmv_vec_init_capacity(mmv_vec *v, size_t elem_size, size_t capacity,
                                  const mmv_namer *namer);

/* A vector holding a copy of n elements of arr (capacity n rounded up to whole pages). */
MMV_API int mmv_vec_from_array(mmv_vec *v, size_t elem_size, const void *arr, size_t n,
                               const mmv_namer *namer);

/* A new vector in a new file (src's namer), with src's capacity and contents; the two are
 * independent afterwards. Cloning an empty vector gives an empty vector with no file.
 * The clone has no clear function (set one if its elements own resources). */
MMV_API int mmv_vec_clone(mmv_vec *dst, const mmv_vec *src);

/* Calls the clear function on every element, unmaps, deletes the file and frees the path.
 * Everything is released even on error; *v becomes a zeroed struct (calls on it: -EINVAL). */
MMV_API int mmv_vec_destroy(mmv_vec *v);

/* Per-vector clear function (NULL: none), see mmv_clear_fn in segment.h. */
MMV_API int mmv_vec_set_clear_fn(mmv_vec *v, mmv_clear_fn fn);

/* Replaces the namer used for clones (NULL: default). */
MMV_API int mmv_vec_set_namer(mmv_vec *v, const mmv_namer *namer);

/* Appends a copy of the element at elem (which may point into the vector itself). */
MMV_API int mmv_vec_push(mmv_vec *v, const void *elem);

/* Appends only when there is room: -ENOSPC when full, nothing changes. */
MMV_API int mmv_vec_push_within_capacity(mmv_vec *v, const void *elem);

/* Removes the last element into out (when not NULL); false when empty. */
MMV_API bool mmv_vec_pop(mmv_vec *v, void *out);

/* Makes room for at least `additional` more elements (see the growth policy above). */
MMV_API int mmv_vec_reserve(mmv_vec *v, size_t additional);

/* Keeps the first n elements / removes the first k / removes all (clear function called). */
MMV_API int mmv_vec_truncate(mmv_vec *v, size_t n);
MMV_API int mmv_vec_truncate_first(mmv_vec *v, size_t k);
MMV_API int mmv_vec_clear(mmv_vec *v);

/* Inserts a copy of elem before index i (i == len appends); -ERANGE when i > len. */
MMV_API int mmv_vec_insert(mmv_vec *v, size_t i, const void *elem);

/* Removes element i, shifting the rest down / moving the last one into its place; the element
 * is copied to out when out is not NULL (no clear function: it is handed to the caller), else
 * the clear function is called. -ERANGE when i >= len. */
MMV_API int mmv_vec_remove(mmv_vec *v, size_t i, void *out);
MMV_API int mmv_vec_swap_remove(mmv_vec *v, size_t i, void *out);

/* Appends copies of n elements of arr (arr may point into the vector itself). */
MMV_API int mmv_vec_extend(mmv_vec *v, const void *arr, size_t n);

/* Makes capacity equal to len; the file shrinks. An empty vector loses its file (as new()). */
MMV_API int mmv_vec_shrink_to_fit(mmv_vec *v);

/* Sorts with qsort and cmp (which gets pointers to two elements). */
MMV_API int mmv_vec_sort(mmv_vec *v, int (*cmp)(const void *, const void *));

/* Same element size, same length, same bytes in the same order. NULL equals only NULL. */
MMV_API bool mmv_vec_equal(const mmv_vec *a, const mmv_vec *b);

/* MADV_WILLNEED over the elements / over the page of element i (out of range: nothing). */
MMV_API void mmv_vec_prefetch_all(const mmv_vec *v);
MMV_API void mmv_vec_prefetch_at(const mmv_vec *v, size_t i);

/* ---- Persistence ---- */

/* Flags for mmv_vec_close_keep_flags. */
#define MMV_KEEP_NO_DATA_CHECKSUM 1u /* checksum only the header: no pass over the data at close
                                        and open (for vectors much larger than RAM) */

/* Closes the vector but keeps its file, with a header recording elem_size and len and a
 * checksum of both and of the data; the file is cut to header + len * elem_size. A vector that
 * never had a file gets one. The clear function is NOT called (the elements live on). On success
 * *v is released as by destroy, minus the deletion; on error the vector is unchanged and usable.
 * The data reach the page cache (any process reopening sees them); call fsync-like durability
 * yourself if power loss matters. */
MMV_API int mmv_vec_close_keep(mmv_vec *v);
MMV_API int mmv_vec_close_keep_flags(mmv_vec *v, unsigned flags);

/* Reopens a file written by close_keep, restoring len (capacity: len rounded up to whole pages).
 * Until the next close_keep the file is marked open. Clones go to the default namer.
 * Errors (the file is never modified when one is returned):
 *   -EINVAL           NULL argument, elem_size 0, or elem_size different from the file's
 *   -ENOENT, -EACCES  ... from open(2)
 *   -EPROTO           not an mmvec vector file (too short for a header, no magic, not a regular file)
 *   -EPROTONOSUPPORT  an mmvec file of another format version, byte order or page size
 *   -EBADMSG          corrupt: header or data checksum mismatch, or longer than its header says
 *   -ENODATA          truncated: shorter than its header says
 *   -EBUSY            marked open: in use, or its process ended without close_keep */
MMV_API int mmv_vec_open(const char *path, size_t elem_size, mmv_vec *v);

/* ---- Accessors (NULL-safe, inline) ---- */

static inline size_t mmv_vec_len(const mmv_vec *v) { return v ? v->seg.len : 0; }
static inline bool mmv_vec_is_empty(const mmv_vec *v) { return !v || v->seg.len == 0; }
static inline size_t mmv_vec_capacity(const mmv_vec *v) { return v ? v->seg.capacity : 0; }
static inline size_t mmv_vec_elem_size(const mmv_vec *v) { return v ? v->seg.elem_size : 0; }
static inline void *mmv_vec_data(const mmv_vec *v) { return v ? v->seg.data : NULL; }
/* The file's path (it exists once the vector has a capacity); NULL for NULL. */
static inline const char *mmv_vec_path(const mmv_vec *v) { return v ? v->path : NULL; }
/* Bytes of the file: header page + capacity * elem_size; 0 while there is no file. */
static inline size_t mmv_vec_disk_size(const mmv_vec *v)
{
    return v ? mmv_segment_disk_size(&v->seg) : 0;
}
/* Element i (the seed's get/index), or NULL when i >= len. */
static inline void *mmv_vec_at(const mmv_vec *v, size_t i)
{
    return v ? mmv_segment_at(&v->seg, i) : NULL;
}

#ifdef __cplusplus
}
#endif

#endif
