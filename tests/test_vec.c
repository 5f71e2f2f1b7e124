/* Vectors: the seed's MmapVec<T> behaviours with its own examples (growth 170 -> 340 -> 680,
 * reserve rounding with i32, clone, equality, drop counting), the additions (insert, remove,
 * extend, shrink_to_fit, sort) and the error paths (NULL, overflow, unwritable directory, full
 * disk, a file replaced under the vector, no descriptor left open, 10 million pushes). */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

/* ---- per-test temp directory (each test runs in its own process) ---- */

static char dir[64];
static char mnt[128];
static mmv_namer namer;

static void setup(void)
{
    tu_make_tmpdir(dir, sizeof dir, "/tmp/mmvec-vec-XXXXXX");
    namer = mmv_namer_in_dir(dir);
}

static void teardown(void)
{
    if (mnt[0])
        umount2(mnt, MNT_DETACH);
    tu_rm_rf(dir);
}

TestSuite(vec, .init = setup, .fini = teardown);

static bool exists(const char *p)
{
    struct stat st;
    return p && lstat(p, &st) == 0;
}

static size_t file_size(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "stat %s", p);
    return (size_t)st.st_size;
}

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static int drops;
static void count_drop(void *e)
{
    (void)e;
    drops++;
}

static void ints(mmv_vec *v, int n)
{
    cr_assert_eq(mmv_vec_init(v, sizeof(int), &namer), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(mmv_vec_push(v, &i), 0);
}

static int iat(const mmv_vec *v, size_t i)
{
    int *p = mmv_vec_at(v, i);
    cr_assert_not_null(p, "index %zu out of range (len %zu)", i, mmv_vec_len(v));
    return *p;
}

/* ---- new, push, pop, the seed's README example ---- */

struct row {
    size_t id;
    uint8_t age;
};

Test(vec, new_picks_a_path_but_creates_no_file)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(struct row), &namer), 0);
    cr_assert_not_null(mmv_vec_path(&v));
    cr_assert_eq(strncmp(mmv_vec_path(&v), dir, strlen(dir)), 0);
    cr_assert(!exists(mmv_vec_path(&v)));
    cr_assert_eq(mmv_vec_len(&v), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 0);
    cr_assert_eq(mmv_vec_disk_size(&v), 0);
    cr_assert(mmv_vec_is_empty(&v));
    cr_assert_null(mmv_vec_at(&v, 0));
    cr_assert_eq(tu_count_entries(dir), 0);
    cr_assert_eq(mmv_vec_destroy(&v), 0);
}

Test(vec, readme_example)
{
    struct row r1 = {42, 18}, r2 = {894, 99}, out;
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(struct row), &namer), 0);
    cr_assert_eq(mmv_vec_push(&v, &r1), 0);
    cr_assert_eq(mmv_vec_push(&v, &r2), 0);
    cr_assert(exists(mmv_vec_path(&v)));
    struct row *p = mmv_vec_at(&v, 0);
    cr_assert_eq(p->id, 42);
    cr_assert_eq(p->age, 18);
    struct row *d = mmv_vec_data(&v);
    cr_assert_eq(d[1].id, 894);
    cr_assert(mmv_vec_pop(&v, &out));
    cr_assert_eq(out.id, 894);
    cr_assert(mmv_vec_pop(&v, &out));
    cr_assert_eq(out.age, 18);
    cr_assert(!mmv_vec_pop(&v, &out));
    char path[4096];
    strcpy(path, mmv_vec_path(&v));
    cr_assert_eq(mmv_vec_destroy(&v), 0);
    cr_assert(!exists(path), "destroy deletes the file");
    cr_assert_null(mmv_vec_path(&v));
}

Test(vec, growth_of_24_byte_rows_is_170_340_680)
{
    struct r24 {
        uint64_t a, b, c;
    } x = {0};
    _Static_assert(sizeof x == 24, "24-byte rows");
    cr_assert_eq(mmv_vec_page_capacity(24), page() / 24);
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof x, &namer), 0);
    size_t per = page() / 24, caps[8], ncaps = 0;
    char first_path[4096] = "";
    ino_t ino = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        x.a = i;
        cr_assert_eq(mmv_vec_push(&v, &x), 0);
        if (i == 0) {
            struct stat st;
            strcpy(first_path, mmv_vec_path(&v));
            stat(first_path, &st);
            ino = st.st_ino;
        }
        if (ncaps == 0 || caps[ncaps - 1] != mmv_vec_capacity(&v))
            caps[ncaps++] = mmv_vec_capacity(&v);
    }
    /* The seed with 4 KiB pages: 170 -> 340 -> 680 (-> 1360). */
    size_t want[] = {per, 2 * per, 4 * per, 8 * per};
    cr_assert_eq(ncaps, 4);
    cr_assert_arr_eq(caps, want, sizeof want);
    if (page() == 4096)
        cr_assert_eq(caps[2], 680);
    /* Same file all along (grown in place, no copy into a new file). */
    struct stat st;
    cr_assert_eq(stat(mmv_vec_path(&v), &st), 0);
    cr_assert_eq(st.st_ino, ino);
    cr_assert_str_eq(mmv_vec_path(&v), first_path);
    cr_assert_eq(tu_count_entries(dir), 1);
    cr_assert_eq(mmv_vec_disk_size(&v), page() + 8 * per * 24);
    cr_assert_eq(file_size(first_path), mmv_vec_disk_size(&v));
    for (size_t i = 0; i < 1000; i++)
        cr_assert_eq(((struct r24 *)mmv_vec_at(&v, i))->a, i);
    mmv_vec_destroy(&v);
}

Test(vec, reserve_rounds_to_whole_pages_as_the_seed_with_i32)
{
    if (page() != 4096)
        TU_SKIP(teardown, "the seed's numbers assume 4 KiB pages");
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int32_t), &namer), 0);
    cr_assert_eq(mmv_vec_reserve(&v, 50), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 1024);
    mmv_vec_destroy(&v);

    /* full 100 + reserve(50) -> 1024 (4096 bytes of elements) */
    cr_assert_eq(mmv_vec_init_capacity(&v, sizeof(int32_t), 100, &namer), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 100);
    for (int32_t i = 0; i < 100; i++)
        cr_assert_eq(mmv_vec_push_within_capacity(&v, &i), 0);
    cr_assert_eq(mmv_vec_reserve(&v, 50), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 1024);
    cr_assert_eq(mmv_vec_disk_size(&v), 4096 + 4096);
    cr_assert_eq(mmv_vec_reserve(&v, 900), 0); /* enough room: no change */
    cr_assert_eq(mmv_vec_capacity(&v), 1024);

    for (int32_t i = 100; i < 1024; i++)
        cr_assert_eq(mmv_vec_push_within_capacity(&v, &i), 0);
    cr_assert_eq(mmv_vec_reserve(&v, 1024), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 2048);
    for (int32_t i = 1024; i < 2048; i++)
        cr_assert_eq(mmv_vec_push_within_capacity(&v, &i), 0);
    cr_assert_eq(mmv_vec_reserve(&v, 1), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 3072);
    for (size_t i = 0; i < 2048; i++)
        cr_assert_eq(iat(&v, i), (int)i);
    mmv_vec_destroy(&v);
}

Test(vec, with_capacity_creates_the_file_at_once)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init_capacity(&v, sizeof(int), 10, &namer), 0);
    cr_assert(exists(mmv_vec_path(&v)));
    cr_assert_eq(mmv_vec_capacity(&v), 10);
    cr_assert_eq(file_size(mmv_vec_path(&v)), page() + 40);
    struct stat st;
    stat(mmv_vec_path(&v), &st);
    cr_assert_eq(st.st_mode & 07777, 0600);
    mmv_vec_destroy(&v);
    cr_assert_eq(mmv_vec_init_capacity(&v, sizeof(int), 0, &namer), 0);
    cr_assert(!exists(mmv_vec_path(&v)));
    mmv_vec_destroy(&v);
    cr_assert_eq(tu_count_entries(dir), 0);
}

Test(vec, push_within_capacity_refuses_when_full)
{
    mmv_vec v;
    int x = 5;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    cr_assert_eq(mmv_vec_push_within_capacity(&v, &x), -ENOSPC);
    mmv_vec_destroy(&v);
    cr_assert_eq(mmv_vec_init_capacity(&v, sizeof(int), 2, &namer), 0);
    cr_assert_eq(mmv_vec_push_within_capacity(&v, &x), 0);
    cr_assert_eq(mmv_vec_push_within_capacity(&v, &x), 0);
    cr_assert_eq(mmv_vec_push_within_capacity(&v, &x), -ENOSPC);
    cr_assert_eq(mmv_vec_len(&v), 2);
    cr_assert_eq(mmv_vec_push(&v, &x), 0); /* push grows */
    cr_assert_eq(mmv_vec_len(&v), 3);
    mmv_vec_destroy(&v);
}

Test(vec, assignment_through_the_data_pointer)
{
    mmv_vec v;
    ints(&v, 10);
    int *d = mmv_vec_data(&v);
    d[3] = 333;
    *(int *)mmv_vec_at(&v, 4) = 444;
    cr_assert_eq(iat(&v, 3), 333);
    cr_assert_eq(iat(&v, 4), 444);
    cr_assert_null(mmv_vec_at(&v, 10));
    mmv_vec_destroy(&v);
}

/* ---- truncate, clear, clear function (the seed's Drop tests) ---- */

Test(vec, truncate_truncate_first_clear)
{
    mmv_vec v;
    ints(&v, 10);
    cr_assert_eq(mmv_vec_truncate(&v, 20), 0);
    cr_assert_eq(mmv_vec_len(&v), 10);
    cr_assert_eq(mmv_vec_truncate(&v, 8), 0);
    cr_assert_eq(mmv_vec_truncate_first(&v, 3), 0);
    cr_assert_eq(mmv_vec_len(&v), 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(iat(&v, i), (int)i + 3);
    cr_assert_eq(mmv_vec_truncate_first(&v, 9), 0);
    cr_assert(mmv_vec_is_empty(&v));
    cr_assert_eq(mmv_vec_clear(&v), 0);
    cr_assert_eq(mmv_vec_clear(&v), 0);
    cr_assert(exists(mmv_vec_path(&v)));
    mmv_vec_destroy(&v);
}

Test(vec, clear_function_counts_like_the_seed_drop_tests)
{
    mmv_vec v;
    ints(&v, 10);
    cr_assert_eq(mmv_vec_set_clear_fn(&v, count_drop), 0);
    int out;
    cr_assert(mmv_vec_pop(&v, &out)); /* handed out: not destroyed */
    cr_assert_eq(drops, 0);
    mmv_vec_truncate(&v, 7);
    cr_assert_eq(drops, 2);
    mmv_vec_truncate_first(&v, 2);
    cr_assert_eq(drops, 4);
    mmv_vec_remove(&v, 0, &out); /* handed out */
    cr_assert_eq(drops, 4);
    mmv_vec_remove(&v, 0, NULL); /* destroyed */
    cr_assert_eq(drops, 5);
    mmv_vec_swap_remove(&v, 0, NULL);
    cr_assert_eq(drops, 6);
    cr_assert_eq(mmv_vec_len(&v), 2);
    for (int i = 0; i < 3; i++)
        mmv_vec_push(&v, &i);
    mmv_vec_clear(&v);
    cr_assert_eq(drops, 11);
    for (int i = 0; i < 5; i++)
        mmv_vec_push(&v, &i);
    mmv_vec_destroy(&v);
    cr_assert_eq(drops, 16);
}

/* ---- clone, from array, equality ---- */

Test(vec, clone_gets_a_new_file_and_diverges)
{
    mmv_vec a, b;
    ints(&a, 1000);
    cr_assert_eq(mmv_vec_clone(&b, &a), 0);
    cr_assert_str_neq(mmv_vec_path(&a), mmv_vec_path(&b));
    cr_assert(exists(mmv_vec_path(&b)));
    cr_assert_eq(mmv_vec_capacity(&b), mmv_vec_capacity(&a));
    cr_assert(mmv_vec_equal(&a, &b));
    cr_assert_eq(tu_count_entries(dir), 2);
    int x = -1;
    mmv_vec_push(&b, &x);
    *(int *)mmv_vec_at(&a, 0) = 77;
    cr_assert(!mmv_vec_equal(&a, &b));
    cr_assert_eq(iat(&b, 0), 0);
    cr_assert_eq(mmv_vec_len(&a), 1000);
    cr_assert_eq(mmv_vec_len(&b), 1001);
    mmv_vec_destroy(&a);
    cr_assert_eq(iat(&b, 999), 999);
    mmv_vec_destroy(&b);
    cr_assert_eq(tu_count_entries(dir), 0);
}

Test(vec, clone_of_empty_has_no_file)
{
    mmv_vec a, b;
    cr_assert_eq(mmv_vec_init(&a, sizeof(int), &namer), 0);
    cr_assert_eq(mmv_vec_clone(&b, &a), 0);
    cr_assert(mmv_vec_is_empty(&b));
    cr_assert(!exists(mmv_vec_path(&b)));
    cr_assert(mmv_vec_equal(&a, &b));
    cr_assert_eq(mmv_vec_clone(&a, &a), -EINVAL);
    mmv_vec_destroy(&a);
    mmv_vec_destroy(&b);
}

Test(vec, from_array_and_equality)
{
    int arr[] = {3, 1, 4, 1, 5, 9, 2, 6}, other[] = {3, 1, 4, 1, 5, 9, 6, 2};
    mmv_vec a, b, c, e;
    cr_assert_eq(mmv_vec_from_array(&a, sizeof(int), arr, 8, &namer), 0);
    cr_assert_eq(mmv_vec_from_array(&b, sizeof(int), arr, 8, &namer), 0);
    cr_assert_eq(mmv_vec_from_array(&c, sizeof(int), other, 8, &namer), 0);
    cr_assert_eq(mmv_vec_from_array(&e, sizeof(int), NULL, 0, &namer), 0);
    cr_assert_arr_eq(mmv_vec_data(&a), arr, sizeof arr);
    cr_assert_eq(mmv_vec_capacity(&a), mmv_vec_page_capacity(sizeof(int)));
    cr_assert(mmv_vec_equal(&a, &b));
    cr_assert(!mmv_vec_equal(&a, &c), "same elements, other order");
    cr_assert(!mmv_vec_equal(&a, &e));
    mmv_vec_pop(&b, NULL);
    cr_assert(!mmv_vec_equal(&a, &b), "other length");
    cr_assert(mmv_vec_equal(NULL, NULL));
    cr_assert(!mmv_vec_equal(&a, NULL));
    mmv_vec_destroy(&e);
    cr_assert_eq(mmv_vec_from_array(&e, sizeof(int), NULL, 3, &namer), -EINVAL);
    cr_assert_null(e.path);
    mmv_vec_destroy(&a);
    mmv_vec_destroy(&b);
    mmv_vec_destroy(&c);
    cr_assert_eq(tu_count_entries(dir), 0);
}

Test(vec, equality_needs_the_same_element_size)
{
    mmv_vec a, b;
    cr_assert_eq(mmv_vec_init(&a, 4, &namer), 0);
    cr_assert_eq(mmv_vec_init(&b, 8, &namer), 0);
    cr_assert(!mmv_vec_equal(&a, &b));
    mmv_vec_destroy(&a);
    mmv_vec_destroy(&b);
}

/* ---- beyond the seed ---- */

Test(vec, insert_remove_swap_remove)
{
    mmv_vec v;
    ints(&v, 5); /* 0 1 2 3 4 */
    int x = 100, out = 0;
    cr_assert_eq(mmv_vec_insert(&v, 0, &x), 0);   /* 100 0 1 2 3 4 */
    x = 200;
    cr_assert_eq(mmv_vec_insert(&v, 3, &x), 0);   /* 100 0 1 200 2 3 4 */
    x = 300;
    cr_assert_eq(mmv_vec_insert(&v, 7, &x), 0);   /* ... 4 300 */
    cr_assert_eq(mmv_vec_insert(&v, 9, &x), -ERANGE);
    int want1[] = {100, 0, 1, 200, 2, 3, 4, 300};
    cr_assert_arr_eq(mmv_vec_data(&v), want1, sizeof want1);
    cr_assert_eq(mmv_vec_remove(&v, 3, &out), 0);
    cr_assert_eq(out, 200);
    cr_assert_eq(mmv_vec_swap_remove(&v, 0, &out), 0); /* 300 0 1 2 3 4 */
    cr_assert_eq(out, 100);
    int want2[] = {300, 0, 1, 2, 3, 4};
    cr_assert_arr_eq(mmv_vec_data(&v), want2, sizeof want2);
    cr_assert_eq(mmv_vec_swap_remove(&v, 5, &out), 0); /* the last one */
    cr_assert_eq(out, 4);
    cr_assert_eq(mmv_vec_remove(&v, 5, &out), -ERANGE);
    cr_assert_eq(mmv_vec_swap_remove(&v, 5, &out), -ERANGE);
    cr_assert_eq(mmv_vec_len(&v), 5);
    mmv_vec_destroy(&v);
}

Test(vec, insert_and_push_of_an_own_element_survive_growth)
{
    mmv_vec v;
    size_t per = mmv_vec_page_capacity(sizeof(int));
    ints(&v, (int)per); /* full */
    cr_assert_eq(mmv_vec_push(&v, mmv_vec_at(&v, 5)), 0); /* grows (may move) */
    cr_assert_eq(iat(&v, per), 5);
    while (mmv_vec_len(&v) < mmv_vec_capacity(&v))
        mmv_vec_push(&v, mmv_vec_at(&v, 0));
    cr_assert_eq(mmv_vec_insert(&v, 1, mmv_vec_at(&v, 7)), 0); /* full again */
    cr_assert_eq(iat(&v, 1), 7);
    cr_assert_eq(iat(&v, 8), 7);
    cr_assert_eq(mmv_vec_insert(&v, 2, mmv_vec_at(&v, 9)), 0); /* source moves with the gap */
    cr_assert_eq(iat(&v, 2), 8);
    mmv_vec_destroy(&v);
}

Test(vec, extend_from_array_and_from_itself)
{
    mmv_vec v;
    int arr[] = {7, 8, 9};
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    cr_assert_eq(mmv_vec_extend(&v, arr, 3), 0);
    cr_assert_eq(mmv_vec_extend(&v, NULL, 0), 0);
    cr_assert_eq(mmv_vec_extend(&v, NULL, 1), -EINVAL);
    for (int i = 0; i < 12; i++) /* doubles each time: forces growth while reading itself */
        cr_assert_eq(mmv_vec_extend(&v, mmv_vec_data(&v), mmv_vec_len(&v)), 0);
    cr_assert_eq(mmv_vec_len(&v), 3u << 12);
    for (size_t i = 0; i < mmv_vec_len(&v); i++)
        cr_assert_eq(iat(&v, i), arr[i % 3]);
    mmv_vec_destroy(&v);
}

Test(vec, shrink_to_fit_shrinks_the_file)
{
    mmv_vec v;
    ints(&v, 5000);
    cr_assert_gt(mmv_vec_capacity(&v), 5000);
    mmv_vec_truncate(&v, 1000);
    cr_assert_eq(mmv_vec_shrink_to_fit(&v), 0);
    cr_assert_eq(mmv_vec_capacity(&v), 1000);
    cr_assert_eq(file_size(mmv_vec_path(&v)), page() + 4000);
    cr_assert_eq(mmv_vec_disk_size(&v), page() + 4000);
    cr_assert_eq(iat(&v, 999), 999);
    int x = 1;
    cr_assert_eq(mmv_vec_push(&v, &x), 0);
    cr_assert_eq(iat(&v, 1000), 1);
    mmv_vec_clear(&v);
    cr_assert_eq(mmv_vec_shrink_to_fit(&v), 0); /* empty: back to no file */
    cr_assert_eq(mmv_vec_capacity(&v), 0);
    cr_assert(!exists(mmv_vec_path(&v)));
    cr_assert_eq(mmv_vec_push(&v, &x), 0); /* and it can live again */
    cr_assert(exists(mmv_vec_path(&v)));
    mmv_vec_destroy(&v);
    cr_assert_eq(tu_count_entries(dir), 0);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

Test(vec, sort_with_a_comparator)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    for (int i = 0; i < 10000; i++) {
        int x = (i * 7919) % 10007;
        mmv_vec_push(&v, &x);
    }
    cr_assert_eq(mmv_vec_sort(&v, cmp_int), 0);
    for (size_t i = 1; i < mmv_vec_len(&v); i++)
        cr_assert_leq(iat(&v, i - 1), iat(&v, i));
    cr_assert_eq(mmv_vec_sort(&v, NULL), -EINVAL);
    mmv_vec_destroy(&v);
}

Test(vec, prefetch_helpers)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    mmv_vec_prefetch_all(&v); /* no file: no-op */
    mmv_vec_prefetch_at(&v, 0);
    mmv_vec_destroy(&v);
    ints(&v, 10000);
    mmv_vec_prefetch_all(&v);
    mmv_vec_prefetch_at(&v, 9999);
    mmv_vec_prefetch_at(&v, 10000);
    mmv_vec_prefetch_all(NULL);
    mmv_vec_prefetch_at(NULL, 1);
    cr_assert_eq(iat(&v, 9999), 9999);
    mmv_vec_destroy(&v);
}

Test(vec, stats_follow_vectors)
{
    mmv_stats s0, s1, s2;
    mmv_stats_get(&s0);
    mmv_vec v;
    ints(&v, 100000);
    mmv_stats_get(&s1);
    cr_assert_eq(s1.active_segments, s0.active_segments + 1);
    cr_assert_eq(s1.bytes_mapped, s0.bytes_mapped + mmv_vec_disk_size(&v));
    cr_assert_geq(s1.bytes_mapped_peak, s1.bytes_mapped);
    mmv_vec_destroy(&v);
    mmv_stats_get(&s2);
    cr_assert_eq(s2.active_segments, s0.active_segments);
    cr_assert_eq(s2.bytes_mapped, s0.bytes_mapped);
}

Test(vec, ten_million_pushes_with_contents_checked)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(uint64_t), &namer), 0);
    const uint64_t n = 10000000;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = i * 2654435761u;
        if (mmv_vec_push(&v, &x) != 0)
            cr_assert_fail("push %llu failed", (unsigned long long)i);
    }
    cr_assert_eq(mmv_vec_len(&v), n);
    const uint64_t *d = mmv_vec_data(&v);
    for (uint64_t i = 0; i < n; i++)
        if (d[i] != i * 2654435761u)
            cr_assert_fail("element %llu is wrong", (unsigned long long)i);
    uint64_t x;
    cr_assert(mmv_vec_pop(&v, &x));
    cr_assert_eq(x, (n - 1) * 2654435761u);
    cr_assert_eq(tu_count_entries(dir), 1);
    mmv_vec_destroy(&v);
    cr_assert_eq(tu_count_entries(dir), 0);
}

/* ---- errors ---- */

Test(vec, zero_sized_elements_are_refused)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 0, &namer), -EINVAL);
    cr_assert_eq(mmv_vec_init_capacity(&v, 0, 10, &namer), -EINVAL);
    cr_assert_eq(mmv_vec_from_array(&v, 0, "abc", 3, &namer), -EINVAL);
    cr_assert_eq(mmv_vec_page_capacity(0), 0);
    cr_assert_eq(tu_count_entries(dir), 0);
}

Test(vec, null_handles_never_crash)
{
    int x = 1;
    mmv_vec z = {0}; /* zeroed, or destroyed */
    mmv_vec *vs[] = {NULL, &z};
    for (int k = 0; k < 2; k++) {
        mmv_vec *v = vs[k];
        cr_assert_eq(mmv_vec_push(v, &x), -EINVAL);
        cr_assert_eq(mmv_vec_push_within_capacity(v, &x), -EINVAL);
        cr_assert(!mmv_vec_pop(v, &x));
        cr_assert_eq(mmv_vec_reserve(v, 1), -EINVAL);
        cr_assert_eq(mmv_vec_truncate(v, 0), -EINVAL);
        cr_assert_eq(mmv_vec_truncate_first(v, 0), -EINVAL);
        cr_assert_eq(mmv_vec_clear(v), -EINVAL);
        cr_assert_eq(mmv_vec_insert(v, 0, &x), -EINVAL);
        cr_assert_eq(mmv_vec_remove(v, 0, &x), -EINVAL);
        cr_assert_eq(mmv_vec_swap_remove(v, 0, &x), -EINVAL);
        cr_assert_eq(mmv_vec_extend(v, &x, 1), -EINVAL);
        cr_assert_eq(mmv_vec_shrink_to_fit(v), -EINVAL);
        cr_assert_eq(mmv_vec_sort(v, cmp_int), -EINVAL);
        cr_assert_eq(mmv_vec_destroy(v), -EINVAL);
        cr_assert_eq(mmv_vec_close_keep(v), -EINVAL);
        cr_assert_eq(mmv_vec_set_clear_fn(v, NULL), -EINVAL);
        cr_assert_eq(mmv_vec_set_namer(v, NULL), -EINVAL);
        cr_assert_eq(mmv_vec_len(v), 0);
        cr_assert_eq(mmv_vec_capacity(v), 0);
        cr_assert_eq(mmv_vec_disk_size(v), 0);
        cr_assert_null(mmv_vec_at(v, 0));
        cr_assert_null(mmv_vec_data(v));
        mmv_vec_prefetch_all(v);
        mmv_vec_prefetch_at(v, 0);
    }
    mmv_vec dst;
    cr_assert_eq(mmv_vec_clone(&dst, NULL), -EINVAL);
    cr_assert_eq(mmv_vec_clone(NULL, &z), -EINVAL);
    cr_assert_eq(mmv_vec_init(NULL, 4, &namer), -EINVAL);
    mmv_vec v;
    ints(&v, 1);
    cr_assert_eq(mmv_vec_push(&v, NULL), -EINVAL);
    cr_assert_eq(mmv_vec_insert(&v, 0, NULL), -EINVAL);
    mmv_vec_destroy(&v);
    cr_assert_eq(mmv_vec_destroy(&v), -EINVAL, "destroying twice is an error, not a crash");
}

Test(vec, size_overflow_is_an_error)
{
    mmv_vec v;
    ints(&v, 3);
    cr_assert_eq(mmv_vec_reserve(&v, SIZE_MAX), -EOVERFLOW);
    cr_assert_eq(mmv_vec_reserve(&v, SIZE_MAX / 4), -EOVERFLOW);
    cr_assert_eq(mmv_vec_len(&v), 3);
    cr_assert_eq(iat(&v, 2), 2);
    mmv_vec_destroy(&v);
    cr_assert_eq(mmv_vec_init_capacity(&v, SIZE_MAX / 2, 3, &namer), -EOVERFLOW);
    cr_assert_eq(mmv_vec_init(&v, SIZE_MAX / 2, &namer), 0);
    cr_assert_eq(mmv_vec_reserve(&v, 3), -EOVERFLOW);
    mmv_vec_destroy(&v);
    cr_assert_eq(tu_count_entries(dir), 0);
}

Test(vec, directory_under_a_regular_file_fails_with_enotdir)
{
    char file[128], sub[160];
    snprintf(file, sizeof file, "%s/plain", dir);
    snprintf(sub, sizeof sub, "%s/sub", file);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    mmv_namer bad = mmv_namer_in_dir(sub);
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &bad), -ENOTDIR);
    cr_assert_null(v.path);
}

Test(vec, read_only_directory_fails_at_first_push)
{
    if (!tu_mount_tmpfs(mnt, sizeof mnt, dir, "size=1m,mode=0700,ro"))
        TU_SKIP(teardown, "needs root to mount a read-only tmpfs");
    mmv_namer ro = mmv_namer_in_dir(mnt);
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &ro), 0);
    int x = 1;
    cr_assert_eq(mmv_vec_push(&v, &x), -EROFS);
    cr_assert_eq(mmv_vec_len(&v), 0);
    cr_assert_eq(mmv_vec_destroy(&v), 0);
}

Test(vec, unprivileged_user_cannot_create_the_file)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to drop privileges to uid 65534 in a child");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        mmv_vec v;
        int x = 1, rc = mmv_vec_init(&v, sizeof(int), &namer); /* dir is 0700 root */
        if (rc == 0)
            rc = mmv_vec_push(&v, &x);
        _exit(rc == -EACCES ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "the child did not get -EACCES");
    cr_assert_eq(tu_count_entries(dir), 0);
}

Test(vec, full_disk_is_enospc_at_growth_and_never_sigbus)
{
    if (!tu_mount_tmpfs(mnt, sizeof mnt, dir, "size=1m,mode=0700"))
        TU_SKIP(teardown, "needs root to mount a 1 MiB tmpfs");
    mmv_namer small = mmv_namer_in_dir(mnt);
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(uint64_t), &small), 0);
    int rc = 0;
    uint64_t i = 0;
    for (; rc == 0 && i < 1000000; i++)
        rc = mmv_vec_push(&v, &i);
    cr_assert_eq(rc, -ENOSPC, "a 1 MiB disk must fill up: %s", mmv_strerror(rc));
    size_t len = mmv_vec_len(&v);
    cr_assert_eq(len, i - 1);
    cr_assert_gt(len, 1000);
    /* Everything within capacity is writable: the space was reserved. */
    while (mmv_vec_len(&v) < mmv_vec_capacity(&v))
        cr_assert_eq(mmv_vec_push_within_capacity(&v, &i), 0);
    for (size_t k = 0; k < len; k++)
        cr_assert_eq(*(uint64_t *)mmv_vec_at(&v, k), k);
    cr_assert_eq(mmv_vec_reserve(&v, 1000000), -ENOSPC);
    mmv_vec w; /* a second vector cannot even start */
    cr_assert_eq(mmv_vec_init_capacity(&w, 4096, 300, &small), -ENOSPC);
    cr_assert_eq(mmv_vec_destroy(&v), 0);
    cr_assert_eq(tu_count_entries(mnt), 0);
}

Test(vec, a_replaced_file_is_not_grown)
{
    mmv_vec v;
    size_t per = mmv_vec_page_capacity(sizeof(int));
    ints(&v, (int)per);
    char other[128];
    snprintf(other, sizeof other, "%s/other", dir);
    FILE *f = fopen(other, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(rename(other, mmv_vec_path(&v)), 0);
    int x = 1;
    cr_assert_eq(mmv_vec_push(&v, &x), -ESTALE);
    cr_assert_eq(file_size(mmv_vec_path(&v)), 0, "the stranger's file was not touched");
    cr_assert_eq(iat(&v, per - 1), (int)per - 1);
    unlink(mmv_vec_path(&v));
    cr_assert_eq(mmv_vec_push(&v, &x), -ENOENT);
    cr_assert_eq(mmv_vec_len(&v), per);
    cr_assert_eq(mmv_vec_destroy(&v), 0, "the file is gone already: fine");
}

Test(vec, destroy_never_deletes_a_file_that_replaced_ours)
{
    mmv_vec v;
    ints(&v, 10);
    char other[128], path[4096];
    snprintf(other, sizeof other, "%s/other", dir);
    strcpy(path, mmv_vec_path(&v));
    FILE *f = fopen(other, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(rename(other, path), 0);
    cr_assert_eq(mmv_vec_destroy(&v), -ESTALE);
    cr_assert(exists(path));
    cr_assert_null(v.path, "released anyway");
}

Test(vec, no_descriptor_left_open)
{
    int before = tu_count_entries("/proc/self/fd");
    mmv_vec v, c;
    ints(&v, 100000); /* many growths */
    cr_assert_eq(mmv_vec_clone(&c, &v), 0);
    mmv_vec_truncate(&v, 10);
    mmv_vec_shrink_to_fit(&v);
    cr_assert_eq(tu_count_entries("/proc/self/fd"), before);
    mmv_vec_destroy(&v);
    mmv_vec_destroy(&c);
    cr_assert_eq(tu_count_entries("/proc/self/fd"), before);
}
