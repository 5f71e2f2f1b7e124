/* Persistence: close_keep + open round trips, and every way a reopen can be refused (wrong
 * element size, truncated, foreign, corrupt, busy), each with its own code and the file left
 * byte for byte as it was. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char dir[64];
static mmv_namer namer;

static void setup(void)
{
    tu_make_tmpdir(dir, sizeof dir, "/tmp/mmvec-persist-XXXXXX");
    namer = mmv_namer_in_dir(dir);
}

static void teardown(void)
{
    tu_rm_rf(dir);
}

TestSuite(persist, .init = setup, .fini = teardown);

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Whole file contents (malloc'd), for "never modified" checks. */
static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "open %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void poke(const char *p, size_t off, const void *bytes, size_t n)
{
    int fd = open(p, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* A kept file of n ints 0..n-1; its path is written to path. */
static void kept(char *path, int n, unsigned flags)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(mmv_vec_push(&v, &i), 0);
    strcpy(path, mmv_vec_path(&v));
    cr_assert_eq(mmv_vec_close_keep_flags(&v, flags), 0);
    cr_assert_null(v.path);
}

/* Reopen must fail with `want` and leave the file exactly as it was. */
static void refused(const char *path, size_t elem_size, int want)
{
    size_t n0, n1;
    char *before = slurp(path, &n0);
    mmv_vec v;
    int rc = mmv_vec_open(path, elem_size, &v);
    cr_assert_eq(rc, want, "open: got %d (%s), want %d (%s)", rc, mmv_strerror(rc), want,
                 mmv_strerror(want));
    cr_assert_null(v.path);
    cr_assert_null(v.seg.data);
    char *after = slurp(path, &n1);
    cr_assert_eq(n0, n1, "the file's size changed");
    cr_assert(memcmp(before, after, n0) == 0, "the file's bytes changed");
    free(before);
    free(after);
}

/* ---- round trips ---- */

Test(persist, close_keep_then_open_restores_len_and_contents)
{
    char path[4096];
    kept(path, 1000, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((size_t)st.st_size, page() + 4000, "cut to header + len * elem_size");
    mmv_vec v;
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
    cr_assert_eq(mmv_vec_len(&v), 1000);
    cr_assert_eq(mmv_vec_elem_size(&v), sizeof(int));
    size_t per = mmv_vec_page_capacity(sizeof(int));
    cr_assert_eq(mmv_vec_capacity(&v), (1000 + per - 1) / per * per);
    for (size_t i = 0; i < 1000; i++)
        cr_assert_eq(*(int *)mmv_vec_at(&v, i), (int)i);
    cr_assert_str_eq(mmv_vec_path(&v), path);
    for (int i = 1000; i < 5000; i++) /* grows the reopened file */
        cr_assert_eq(mmv_vec_push(&v, &i), 0);
    cr_assert_eq(mmv_vec_close_keep(&v), 0);
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
    cr_assert_eq(mmv_vec_len(&v), 5000);
    cr_assert_eq(*(int *)mmv_vec_at(&v, 4999), 4999);
    cr_assert_eq(mmv_vec_destroy(&v), 0);
    cr_assert_neq(access(path, F_OK), 0, "destroy deletes a reopened file too");
}

Test(persist, a_vector_without_file_is_kept_empty)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 24, &namer), 0);
    char path[4096];
    strcpy(path, mmv_vec_path(&v));
    cr_assert_eq(mmv_vec_close_keep(&v), 0);
    cr_assert_eq(access(path, F_OK), 0);
    cr_assert_eq(mmv_vec_open(path, 24, &v), 0);
    cr_assert_eq(mmv_vec_len(&v), 0);
    char row[24] = "hello";
    cr_assert_eq(mmv_vec_push(&v, row), 0);
    cr_assert_str_eq(mmv_vec_at(&v, 0), "hello");
    mmv_vec_destroy(&v);
}

Test(persist, empty_after_clear_and_without_data_checksum)
{
    char path[4096];
    kept(path, 0, 0);
    kept(path, 300, MMV_KEEP_NO_DATA_CHECKSUM);
    mmv_vec v;
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
    cr_assert_eq(mmv_vec_len(&v), 300);
    mmv_vec_clear(&v);
    cr_assert_eq(mmv_vec_close_keep(&v), 0);
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
    cr_assert(mmv_vec_is_empty(&v));
    mmv_vec_destroy(&v);
    cr_assert_eq(mmv_vec_close_keep_flags(&v, 0), -EINVAL); /* destroyed */
}

static int drops;
static void count_drop(void *e)
{
    (void)e;
    drops++;
}

Test(persist, the_clear_function_is_not_called_on_kept_elements)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    mmv_vec_set_clear_fn(&v, count_drop);
    for (int i = 0; i < 10; i++)
        mmv_vec_push(&v, &i);
    char path[4096];
    strcpy(path, mmv_vec_path(&v));
    cr_assert_eq(mmv_vec_close_keep(&v), 0);
    cr_assert_eq(drops, 0, "kept elements live on");
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
    mmv_vec_set_clear_fn(&v, count_drop);
    mmv_vec_destroy(&v);
    cr_assert_eq(drops, 10);
}

Test(persist, a_million_elements_round_trip)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(uint64_t), &namer), 0);
    for (uint64_t i = 0; i < 1000000; i++)
        mmv_vec_push(&v, &i);
    char path[4096];
    strcpy(path, mmv_vec_path(&v));
    cr_assert_eq(mmv_vec_close_keep(&v), 0);
    cr_assert_eq(mmv_vec_open(path, sizeof(uint64_t), &v), 0);
    const uint64_t *d = mmv_vec_data(&v);
    for (uint64_t i = 0; i < 1000000; i++)
        if (d[i] != i)
            cr_assert_fail("element %llu", (unsigned long long)i);
    mmv_vec_destroy(&v);
}

Test(persist, relative_paths_survive_a_change_of_directory)
{
    char path[4096];
    kept(path, 10, 0);
    cr_assert_eq(chdir(dir), 0);
    mmv_vec v;
    cr_assert_eq(mmv_vec_open(strrchr(path, '/') + 1, sizeof(int), &v), 0);
    cr_assert_eq(chdir("/"), 0);
    for (int i = 10; i < 10000; i++) /* grows: reopens the file by its absolute path */
        cr_assert_eq(mmv_vec_push(&v, &i), 0);
    cr_assert_str_eq(mmv_vec_path(&v), path);
    mmv_vec_destroy(&v);
}

Test(persist, no_descriptor_left_open_and_stats_balanced)
{
    char path[4096];
    mmv_stats s0, s1;
    mmv_stats_get(&s0);
    int fds = 0;
    for (int k = 0; k < 2; k++) {
        kept(path, 5000, 0);
        mmv_vec v;
        cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
        cr_assert_eq(mmv_vec_close_keep(&v), 0);
        refused(path, 8, -EINVAL);
        unlink(path);
        int n = 0;
        for (int fd = 0; fd < 1024; fd++)
            n += fcntl(fd, F_GETFD) != -1;
        if (k == 0)
            fds = n;
        cr_assert_eq(n, fds);
    }
    mmv_stats_get(&s1);
    cr_assert_eq(s1.active_segments, s0.active_segments);
    cr_assert_eq(s1.bytes_mapped, s0.bytes_mapped);
}

/* ---- refusals ---- */

Test(persist, wrong_element_size_is_einval)
{
    char path[4096];
    kept(path, 100, 0);
    refused(path, 8, -EINVAL);
    refused(path, 2, -EINVAL);
    refused(path, 0, -EINVAL);
}

Test(persist, truncated_file_is_enodata)
{
    char path[4096];
    kept(path, 100, 0);
    cr_assert_eq(truncate(path, (off_t)(page() + 399)), 0);
    refused(path, sizeof(int), -ENODATA);
    cr_assert_eq(truncate(path, (off_t)page()), 0);
    refused(path, sizeof(int), -ENODATA);
}

Test(persist, foreign_files_are_eproto)
{
    char path[256];
    snprintf(path, sizeof path, "%s/foreign", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    refused(path, 4, -EPROTO); /* empty */
    f = fopen(path, "w");
    fputs("not a vector", f);
    fclose(f);
    refused(path, 4, -EPROTO); /* too short for a header */
    f = fopen(path, "w");
    for (int i = 0; i < 10000; i++)
        fputc(i * 31, f);
    fclose(f);
    refused(path, 4, -EPROTO); /* no magic */
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    mmv_vec v;
    cr_assert_eq(mmv_vec_open(fifo, 4, &v), -EPROTO);
    cr_assert_neq(mmv_vec_open(dir, 4, &v), 0); /* a directory */
}

Test(persist, a_plain_segment_file_is_foreign)
{
    char path[256];
    snprintf(path, sizeof path, "%s/plain.seg", dir);
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, path, sizeof(int), 5000), 0);
    for (int i = 0; i < 5000; i++)
        mmv_segment_push_within_capacity(&s, &i);
    mmv_segment_close(&s);
    refused(path, sizeof(int), -EPROTO);
}

Test(persist, corrupt_header_or_data_is_ebadmsg)
{
    char path[4096];
    kept(path, 100, 0);
    uint64_t huge = 99;
    poke(path, 24, &huge, sizeof huge); /* len field: checksum no longer matches */
    refused(path, sizeof(int), -EBADMSG);

    kept(path, 100, 0);
    int bad = -5;
    poke(path, page() + 40, &bad, sizeof bad); /* one element */
    refused(path, sizeof(int), -EBADMSG);

    kept(path, 100, 0);
    poke(path, page() + 400, "extra", 5); /* longer than its header says */
    refused(path, sizeof(int), -EBADMSG);
}

Test(persist, without_data_checksum_a_data_change_is_not_detected)
{
    char path[4096];
    kept(path, 100, MMV_KEEP_NO_DATA_CHECKSUM);
    int x = -5;
    poke(path, page() + 40, &x, sizeof x);
    mmv_vec v;
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &v), 0);
    cr_assert_eq(*(int *)mmv_vec_at(&v, 10), -5);
    mmv_vec_destroy(&v);
}

Test(persist, other_version_or_byte_order_is_eprotonosupport)
{
    char path[4096];
    kept(path, 10, 0);
    uint32_t v2 = 2;
    poke(path, 8, &v2, sizeof v2); /* version */
    refused(path, sizeof(int), -EPROTONOSUPPORT);
    kept(path, 10, 0);
    uint32_t swapped = 0x04030201;
    poke(path, 12, &swapped, sizeof swapped); /* byte order mark */
    refused(path, sizeof(int), -EPROTONOSUPPORT);
}

Test(persist, an_open_file_is_ebusy_until_closed)
{
    char path[4096];
    kept(path, 10, 0);
    mmv_vec a;
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &a), 0);
    refused(path, sizeof(int), -EBUSY); /* in use (or its process died before close_keep) */
    cr_assert_eq(mmv_vec_close_keep(&a), 0);
    cr_assert_eq(mmv_vec_open(path, sizeof(int), &a), 0);
    cr_assert_eq(mmv_vec_len(&a), 10);
    mmv_vec_destroy(&a);
}

Test(persist, a_live_vector_file_is_not_reopenable)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    for (int i = 0; i < 3000; i++)
        mmv_vec_push(&v, &i);
    refused(mmv_vec_path(&v), sizeof(int), -EPROTO); /* never closed: no header yet */
    mmv_vec_destroy(&v);
}

Test(persist, bad_arguments_and_missing_files)
{
    mmv_vec v;
    char path[256];
    snprintf(path, sizeof path, "%s/missing", dir);
    cr_assert_eq(mmv_vec_open(path, 4, &v), -ENOENT);
    cr_assert_eq(mmv_vec_open(NULL, 4, &v), -EINVAL);
    cr_assert_eq(mmv_vec_open(path, 4, NULL), -EINVAL);
    cr_assert_eq(mmv_vec_close_keep(NULL), -EINVAL);
    cr_assert_eq(mmv_vec_init(&v, 4, &namer), 0);
    cr_assert_eq(mmv_vec_close_keep_flags(&v, 0x80), -EINVAL);
    mmv_vec_destroy(&v);
}

Test(persist, close_keep_failure_leaves_the_vector_usable)
{
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &namer), 0);
    for (int i = 0; i < 100; i++)
        mmv_vec_push(&v, &i);
    char moved[256];
    snprintf(moved, sizeof moved, "%s/moved", dir);
    cr_assert_eq(rename(mmv_vec_path(&v), moved), 0);
    cr_assert_eq(mmv_vec_close_keep(&v), -ENOENT);
    cr_assert_eq(mmv_vec_len(&v), 100);
    cr_assert_eq(*(int *)mmv_vec_at(&v, 99), 99);
    cr_assert_eq(rename(moved, mmv_vec_path(&v)), 0);
    cr_assert_eq(mmv_vec_close_keep(&v), 0);
}
