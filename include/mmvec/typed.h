/* Typed vectors: one macro declares a vector type and its functions for one element type, so
 * user code needs no casts and no sizeof.
 *
 *   struct row { size_t id; uint8_t age; };
 *   MMV_VEC_DECLARE(rows, struct row)
 *
 *   rows v;
 *   rows_init(&v);
 *   rows_push(&v, (struct row){42, 18});
 *   struct row *r = rows_at(&v, 0);        // NULL when out of range
 *   struct row last;
 *   rows_pop(&v, &last);
 *   rows_destroy(&v);
 *
 * The push and pop fast paths are inline (a store and len++, no call); the library is called
 * only to grow. Every function is a thin wrapper over the mmv_vec_* function of the same name
 * (see vec.h for semantics and errors). `name` itself is the type:
 * `typedef struct name { mmv_vec v; } name;` (v is public for the mmv_vec_* API).
 * Usable at file scope once per element type and name.
 */
#ifndef MMVEC_TYPED_H
#define MMVEC_TYPED_H

#include "vec.h"

#define MMVI_TYPED_FN static inline __attribute__((unused))

#define MMV_VEC_DECLARE(name, T)                                                                \
    typedef struct name {                                                                       \
        mmv_vec v;                                                                              \
    } name;                                                                                     \
    MMVI_TYPED_FN mmv_vec *name##_raw(name *x) { return x ? &x->v : NULL; }                     \
    MMVI_TYPED_FN const mmv_vec *name##_craw(const name *x) { return x ? &x->v : NULL; }        \
    MMVI_TYPED_FN int name##_init(name *x) { return mmv_vec_init(name##_raw(x), sizeof(T), NULL); } \
    MMVI_TYPED_FN int name##_init_with(name *x, size_t capacity, const mmv_namer *namer)        \
    {                                                                                           \
        return mmv_vec_init_capacity(name##_raw(x), sizeof(T), capacity, namer);                \
    }                                                                                           \
    MMVI_TYPED_FN int name##_from_array(name *x, const T *a, size_t n, const mmv_namer *namer)  \
    {                                                                                           \
        return mmv_vec_from_array(name##_raw(x), sizeof(T), a, n, namer);                       \
    }                                                                                           \
    MMVI_TYPED_FN int name##_open(name *x, const char *path)                                    \
    {                                                                                           \
        return mmv_vec_open(path, sizeof(T), name##_raw(x));                                    \
    }                                                                                           \
    MMVI_TYPED_FN int name##_clone(name *dst, const name *src)                                  \
    {                                                                                           \
        return mmv_vec_clone(name##_raw(dst), name##_craw(src));                                \
    }                                                                                           \
    MMVI_TYPED_FN int name##_destroy(name *x) { return mmv_vec_destroy(name##_raw(x)); }        \
    MMVI_TYPED_FN int name##_close_keep(name *x) { return mmv_vec_close_keep(name##_raw(x)); }  \
    MMVI_TYPED_FN int name##_set_clear_fn(name *x, mmv_clear_fn fn)                             \
    {                                                                                           \
        return mmv_vec_set_clear_fn(name##_raw(x), fn);                                         \
    }                                                                                           \
    /* The fast path: room left -> one store, len++; else the library grows the file. */      \
    MMVI_TYPED_FN int name##_push(name *x, T e)                                                 \
    {                                                                                           \
        if (__builtin_expect(x != NULL && x->v.seg.len < x->v.seg.capacity, 1)) {               \
            ((T *)x->v.seg.data)[x->v.seg.len++] = e;                                           \
            return 0;                                                                           \
        }                                                                                       \
        return mmv_vec_push(name##_raw(x), &e);                                                 \
    }                                                                                           \
    MMVI_TYPED_FN int name##_push_within_capacity(name *x, T e)                                 \
    {                                                                                           \
        return mmv_vec_push_within_capacity(name##_raw(x), &e);                                 \
    }                                                                                           \
    MMVI_TYPED_FN bool name##_pop(name *x, T *out)                                              \
    {                                                                                           \
        if (!x || x->v.seg.len == 0)                                                            \
            return false;                                                                       \
        x->v.seg.len--;                                                                         \
        if (out)                                                                                \
            *out = ((T *)x->v.seg.data)[x->v.seg.len];                                          \
        return true;                                                                            \
    }                                                                                           \
    MMVI_TYPED_FN T *name##_at(const name *x, size_t i)                                         \
    {                                                                                           \
        return x && i < x->v.seg.len ? (T *)x->v.seg.data + i : NULL;                           \
    }                                                                                           \
    MMVI_TYPED_FN T *name##_data(const name *x) { return x ? (T *)x->v.seg.data : NULL; }      \
    MMVI_TYPED_FN size_t name##_len(const name *x) { return x ? x->v.seg.len : 0; }             \
    MMVI_TYPED_FN size_t name##_capacity(const name *x) { return x ? x->v.seg.capacity : 0; }   \
    MMVI_TYPED_FN bool name##_is_empty(const name *x) { return !x || x->v.seg.len == 0; }       \
    MMVI_TYPED_FN const char *name##_path(const name *x) { return mmv_vec_path(name##_craw(x)); } \
    MMVI_TYPED_FN size_t name##_disk_size(const name *x)                                        \
    {                                                                                           \
        return mmv_vec_disk_size(name##_craw(x));                                               \
    }                                                                                           \
    MMVI_TYPED_FN int name##_reserve(name *x, size_t n) { return mmv_vec_reserve(name##_raw(x), n); } \
    MMVI_TYPED_FN int name##_truncate(name *x, size_t n)                                        \
    {                                                                                           \
        return mmv_vec_truncate(name##_raw(x), n);                                              \
    }                                                                                           \
    MMVI_TYPED_FN int name##_truncate_first(name *x, size_t k)                                  \
    {                                                                                           \
        return mmv_vec_truncate_first(name##_raw(x), k);                                        \
    }                                                                                           \
    MMVI_TYPED_FN int name##_clear(name *x) { return mmv_vec_clear(name##_raw(x)); }            \
    MMVI_TYPED_FN int name##_insert(name *x, size_t i, T e)                                     \
    {                                                                                           \
        return mmv_vec_insert(name##_raw(x), i, &e);                                            \
    }                                                                                           \
    MMVI_TYPED_FN int name##_remove(name *x, size_t i, T *out)                                  \
    {                                                                                           \
        return mmv_vec_remove(name##_raw(x), i, out);                                           \
    }                                                                                           \
    MMVI_TYPED_FN int name##_swap_remove(name *x, size_t i, T *out)                             \
    {                                                                                           \
        return mmv_vec_swap_remove(name##_raw(x), i, out);                                      \
    }                                                                                           \
    MMVI_TYPED_FN int name##_extend(name *x, const T *a, size_t n)                              \
    {                                                                                           \
        return mmv_vec_extend(name##_raw(x), a, n);                                             \
    }                                                                                           \
    MMVI_TYPED_FN int name##_shrink_to_fit(name *x) { return mmv_vec_shrink_to_fit(name##_raw(x)); } \
    MMVI_TYPED_FN int name##_sort(name *x, int (*cmp)(const void *, const void *))              \
    {                                                                                           \
        return mmv_vec_sort(name##_raw(x), cmp);                                                \
    }                                                                                           \
    MMVI_TYPED_FN bool name##_equal(const name *a, const name *b)                               \
    {                                                                                           \
        return mmv_vec_equal(name##_craw(a), name##_craw(b));                                   \
    }                                                                                           \
    MMVI_TYPED_FN void name##_prefetch_all(const name *x) { mmv_vec_prefetch_all(name##_craw(x)); } \
    MMVI_TYPED_FN void name##_prefetch_at(const name *x, size_t i)                              \
    {                                                                                           \
        mmv_vec_prefetch_at(name##_craw(x), i);                                                 \
    }                                                                                           \
    typedef int name##_mmvi_require_semicolon

#endif
