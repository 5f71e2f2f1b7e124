/* The typed layer: MMV_VEC_DECLARE gives cast-free functions for one element type, with the
 * push/pop fast paths inline. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct row {
    size_t id;
    uint8_t age;
};

/* Two element types in one file, declared at file scope. */
MMV_VEC_DECLARE(rows, struct row);
MMV_VEC_DECLARE(u64s, uint64_t);

static char dir[64];
static mmv_namer namer;

/* The default namer is what rows_init uses: point it at this test's directory. */
static void setup(void)
{
    tu_make_tmpdir(dir, sizeof dir, "/tmp/mmvec-typed-XXXXXX");
    setenv("MMVEC_DIR", dir, 1);
    namer = mmv_namer_in_dir(dir);
}

static void teardown(void)
{
    tu_rm_rf(dir);
}

TestSuite(typed, .init = setup, .fini = teardown);

Test(typed, readme_example_without_casts)
{
    struct row r1 = {42, 18}, r2 = {894, 99}, out;
    rows v;
    cr_assert_eq(rows_init(&v), 0);
    cr_assert_eq(strncmp(rows_path(&v), dir, strlen(dir)), 0);
    cr_assert_eq(rows_push(&v, r1), 0);
    cr_assert_eq(rows_push(&v, r2), 0);
    cr_assert_eq(rows_at(&v, 0)->id, 42);
    cr_assert_eq(rows_data(&v)[1].age, 99);
    cr_assert_eq(rows_len(&v), 2);
    cr_assert_null(rows_at(&v, 2));
    cr_assert(rows_pop(&v, &out));
    cr_assert_eq(out.id, 894);
    cr_assert(rows_pop(&v, &out));
    cr_assert_eq(out.id, 42);
    cr_assert(!rows_pop(&v, &out));
    cr_assert(rows_is_empty(&v));
    cr_assert_eq(rows_destroy(&v), 0);
}

Test(typed, fast_path_and_growth_agree)
{
    u64s v;
    cr_assert_eq(u64s_init(&v), 0);
    for (uint64_t i = 0; i < 1000000; i++)
        if (u64s_push(&v, i * 3) != 0)
            cr_assert_fail("push %llu", (unsigned long long)i);
    cr_assert_eq(u64s_len(&v), 1000000);
    cr_assert_geq(u64s_capacity(&v), 1000000);
    for (uint64_t i = 0; i < 1000000; i++)
        if (u64s_data(&v)[i] != i * 3)
            cr_assert_fail("element %llu", (unsigned long long)i);
    cr_assert_eq(u64s_disk_size(&v), mmv_vec_disk_size(&v.v));
    u64s_destroy(&v);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

Test(typed, every_wrapper)
{
    uint64_t arr[] = {5, 3, 9, 1}, out = 0;
    u64s v, c;
    cr_assert_eq(u64s_from_array(&v, arr, 4, &namer), 0);
    cr_assert_eq(u64s_insert(&v, 1, 7), 0);              /* 5 7 3 9 1 */
    cr_assert_eq(u64s_remove(&v, 0, &out), 0);           /* 7 3 9 1 */
    cr_assert_eq(out, 5);
    cr_assert_eq(u64s_swap_remove(&v, 0, &out), 0);      /* 1 3 9 */
    cr_assert_eq(out, 7);
    cr_assert_eq(u64s_extend(&v, arr, 2), 0);            /* 1 3 9 5 3 */
    cr_assert_eq(u64s_sort(&v, cmp_u64), 0);             /* 1 3 3 5 9 */
    uint64_t want[] = {1, 3, 3, 5, 9};
    cr_assert_arr_eq(u64s_data(&v), want, sizeof want);
    cr_assert_eq(u64s_clone(&c, &v), 0);
    cr_assert(u64s_equal(&c, &v));
    cr_assert_eq(u64s_truncate(&c, 3), 0);
    cr_assert_eq(u64s_truncate_first(&c, 1), 0);         /* 3 3 */
    cr_assert_eq(u64s_len(&c), 2);
    cr_assert(!u64s_equal(&c, &v));
    cr_assert_eq(u64s_clear(&c), 0);
    cr_assert_eq(u64s_shrink_to_fit(&c), 0);
    cr_assert_eq(u64s_capacity(&c), 0);
    cr_assert_eq(u64s_destroy(&c), 0);
    cr_assert_eq(u64s_reserve(&v, 10000), 0);
    cr_assert_geq(u64s_capacity(&v), 10005);
    u64s_prefetch_all(&v);
    u64s_prefetch_at(&v, 2);
    cr_assert_eq(u64s_init_with(&c, 3, &namer), 0);
    cr_assert_eq(u64s_capacity(&c), 3);
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(u64s_push_within_capacity(&c, i), 0);
    cr_assert_eq(u64s_push_within_capacity(&c, 3), -ENOSPC);
    u64s_destroy(&c);
    u64s_destroy(&v);
}

static int drops;
static void count_drop(void *e)
{
    cr_assert_eq(((struct row *)e)->age, 7);
    drops++;
}

Test(typed, clear_function_and_persistence)
{
    rows v;
    cr_assert_eq(rows_init(&v), 0);
    cr_assert_eq(rows_set_clear_fn(&v, count_drop), 0);
    for (size_t i = 0; i < 100; i++)
        rows_push(&v, (struct row){i, 7});
    char path[4096];
    strcpy(path, rows_path(&v));
    cr_assert_eq(rows_close_keep(&v), 0);
    cr_assert_eq(drops, 0);
    cr_assert_eq(rows_open(&v, path), 0);
    cr_assert_eq(rows_len(&v), 100);
    cr_assert_eq(rows_at(&v, 99)->id, 99);
    u64s wrong;
    cr_assert_eq(u64s_open(&wrong, path), -EBUSY); /* still open as rows */
    rows_set_clear_fn(&v, count_drop);
    struct row r;
    rows_pop(&v, &r); /* handed out, not destroyed */
    rows_destroy(&v);
    cr_assert_eq(drops, 99);
}

Test(typed, null_and_zeroed_handles_never_crash)
{
    rows z = {0};
    struct row r = {1, 2};
    cr_assert_eq(rows_push(NULL, r), -EINVAL);
    cr_assert_eq(rows_push(&z, r), -EINVAL);
    cr_assert(!rows_pop(NULL, &r));
    cr_assert(!rows_pop(&z, &r));
    cr_assert_null(rows_at(NULL, 0));
    cr_assert_null(rows_data(NULL));
    cr_assert_eq(rows_len(NULL), 0);
    cr_assert_eq(rows_capacity(NULL), 0);
    cr_assert(rows_is_empty(NULL));
    cr_assert_null(rows_path(NULL));
    cr_assert_eq(rows_init(NULL), -EINVAL);
    cr_assert_eq(rows_destroy(NULL), -EINVAL);
    cr_assert_eq(rows_destroy(&z), -EINVAL);
    cr_assert_eq(rows_insert(NULL, 0, r), -EINVAL);
    cr_assert_eq(rows_reserve(NULL, 1), -EINVAL);
    cr_assert(rows_equal(NULL, NULL));
}
