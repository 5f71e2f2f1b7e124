/* Segments: every behaviour of the seed's Segment<T> (docs/seed-behaviour.md) and the error
 * paths (overflow, unwritable directory, full disk, no descriptor left open). */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
static char mnt[128]; /* a tmpfs mounted by a test, unmounted in fini */

static void setup(void)
{
    tu_make_tmpdir(dir, sizeof dir, "/tmp/mmvec-seg-XXXXXX");
}

static void teardown(void)
{
    if (mnt[0])
        umount2(mnt, MNT_DETACH);
    tu_rm_rf(dir);
}

TestSuite(segment, .init = setup, .fini = teardown);

static const char *path_in(const char *name) { return tu_path_in(dir, name); }

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static int count_fds(void)
{
    return tu_count_entries("/proc/self/fd");
}

static int drops;
static void count_drop(void *e)
{
    (void)e;
    drops++;
}

/* A segment of n ints 0..n-1 in a file of the given capacity. */
static void filled(mmv_segment *s, size_t cap, int n)
{
    cr_assert_eq(mmv_segment_open(s, path_in("s.seg"), sizeof(int), cap), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(mmv_segment_push_within_capacity(s, &i), 0);
}

static int at(const mmv_segment *s, size_t i) { return *(int *)mmv_segment_at(s, i); }

/* ---- the seed's behaviours ---- */

Test(segment, null_segment_is_empty_and_harmless)
{
    mmv_segment s;
    cr_assert_eq(mmv_segment_null(&s, sizeof(int)), 0);
    cr_assert_eq(mmv_segment_len(&s), 0);
    cr_assert_eq(mmv_segment_capacity(&s), 0);
    cr_assert_eq(mmv_segment_disk_size(&s), 0);
    cr_assert_null(mmv_segment_data(&s));
    int x = 7, out = 0;
    cr_assert_eq(mmv_segment_push_within_capacity(&s, &x), -ENOSPC);
    cr_assert(!mmv_segment_pop(&s, &out));
    mmv_segment_prefetch_all(&s);
    mmv_segment_prefetch_at(&s, 0);
    cr_assert_eq(mmv_segment_clear(&s), 0);
    cr_assert_eq(mmv_segment_close(&s), 0);
}

Test(segment, zero_capacity_creates_no_file)
{
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, path_in("zero.seg"), sizeof(int), 0), 0);
    cr_assert_null(s.data);
    cr_assert(!exists(path_in("zero.seg")));
    cr_assert_eq(mmv_segment_close(&s), 0);
}

Test(segment, open_creates_a_0600_file_of_capacity_times_size)
{
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, path_in("a.seg"), 24, 10), 0);
    struct stat st;
    cr_assert_eq(stat(path_in("a.seg"), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_eq((size_t)st.st_size, 240);
    cr_assert_eq(mmv_segment_disk_size(&s), 240);
    cr_assert_eq(mmv_segment_capacity(&s), 10);
    cr_assert_eq(mmv_segment_len(&s), 0);
    cr_assert(mmv_segment_is_empty(&s));
    cr_assert_eq(mmv_segment_close(&s), 0);
}

Test(segment, push_within_capacity_until_full)
{
    mmv_segment s;
    filled(&s, 3, 3);
    int x = 99;
    cr_assert_eq(mmv_segment_push_within_capacity(&s, &x), -ENOSPC);
    cr_assert_eq(x, 99);
    cr_assert_eq(mmv_segment_len(&s), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(at(&s, (size_t)i), i);
    cr_assert_null(mmv_segment_at(&s, 3));
    mmv_segment_close(&s);
}

Test(segment, pop_returns_last_then_nothing)
{
    mmv_segment s;
    filled(&s, 4, 3);
    int out = -1;
    for (int want = 2; want >= 0; want--) {
        cr_assert(mmv_segment_pop(&s, &out));
        cr_assert_eq(out, want);
    }
    cr_assert(!mmv_segment_pop(&s, &out));
    cr_assert_eq(out, 0);
    mmv_segment_close(&s);
}

Test(segment, truncate_keeps_first_n_and_destroys_the_rest)
{
    mmv_segment s;
    filled(&s, 8, 5);
    mmv_segment_set_clear_fn(&s, count_drop);
    cr_assert_eq(mmv_segment_truncate(&s, 10), 0); /* n >= len: nothing */
    cr_assert_eq(mmv_segment_truncate(&s, 5), 0);
    cr_assert_eq(drops, 0);
    cr_assert_eq(mmv_segment_truncate(&s, 2), 0);
    cr_assert_eq(mmv_segment_len(&s), 2);
    cr_assert_eq(drops, 3);
    cr_assert_eq(at(&s, 1), 1);
    mmv_segment_close(&s); /* destroys the 2 left */
    cr_assert_eq(drops, 5);
}

Test(segment, truncate_first_moves_the_rest_to_the_front)
{
    mmv_segment s;
    filled(&s, 8, 5);
    mmv_segment_set_clear_fn(&s, count_drop);
    cr_assert_eq(mmv_segment_truncate_first(&s, 2), 0);
    cr_assert_eq(mmv_segment_len(&s), 3);
    cr_assert_eq(drops, 2);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(at(&s, (size_t)i), i + 2);
    cr_assert_eq(mmv_segment_truncate_first(&s, 0), 0);
    cr_assert_eq(mmv_segment_len(&s), 3);
    cr_assert_eq(mmv_segment_truncate_first(&s, 7), 0); /* k >= len empties */
    cr_assert_eq(mmv_segment_len(&s), 0);
    cr_assert_eq(drops, 5);
    mmv_segment_close(&s);
}

Test(segment, clear_is_idempotent_and_pop_does_not_destroy)
{
    mmv_segment s;
    filled(&s, 8, 4);
    mmv_segment_set_clear_fn(&s, count_drop);
    int out;
    cr_assert(mmv_segment_pop(&s, &out));
    cr_assert_eq(drops, 0);
    cr_assert_eq(mmv_segment_clear(&s), 0);
    cr_assert_eq(drops, 3);
    cr_assert_eq(mmv_segment_clear(&s), 0);
    cr_assert_eq(drops, 3);
    cr_assert_eq(mmv_segment_len(&s), 0);
    mmv_segment_close(&s);
    cr_assert_eq(drops, 3);
}

Test(segment, extend_from_moves_elements)
{
    mmv_segment a, b;
    filled(&a, 6, 2);
    cr_assert_eq(mmv_segment_open(&b, path_in("b.seg"), sizeof(int), 3), 0);
    for (int i = 10; i < 13; i++)
        mmv_segment_push_within_capacity(&b, &i);
    mmv_segment_set_clear_fn(&b, count_drop);
    cr_assert_eq(mmv_segment_extend_from(&a, &b), 0);
    cr_assert_eq(mmv_segment_len(&a), 5);
    cr_assert_eq(mmv_segment_len(&b), 0);
    cr_assert_eq(drops, 0); /* moved, not destroyed */
    int want[] = {0, 1, 10, 11, 12};
    cr_assert_arr_eq(mmv_segment_data(&a), want, sizeof want);
    mmv_segment_close(&a);
    mmv_segment_close(&b);
    cr_assert_eq(drops, 0);
}

Test(segment, extend_from_too_small_is_an_error_and_moves_nothing)
{
    /* The seed: "New segment is too small: new_len=4, capacity=3". */
    mmv_segment a, b;
    filled(&a, 3, 2);
    cr_assert_eq(mmv_segment_open(&b, path_in("b.seg"), sizeof(int), 2), 0);
    for (int i = 10; i < 12; i++)
        mmv_segment_push_within_capacity(&b, &i);
    cr_assert_eq(mmv_segment_extend_from(&a, &b), -ENOSPC);
    cr_assert_eq(mmv_segment_len(&a), 2);
    cr_assert_eq(mmv_segment_len(&b), 2);
    cr_assert_eq(at(&b, 1), 11);
    cr_assert_eq(mmv_segment_extend_from(&a, &a), -EINVAL);
    mmv_segment c;
    cr_assert_eq(mmv_segment_null(&c, sizeof(long long)), 0);
    cr_assert_eq(mmv_segment_extend_from(&a, &c), -EINVAL); /* element sizes differ */
    mmv_segment_close(&a);
    mmv_segment_close(&b);
}

Test(segment, prefetch_in_and_out_of_range)
{
    mmv_segment s;
    filled(&s, 5000, 5000);
    mmv_segment_prefetch_all(&s);
    mmv_segment_prefetch_at(&s, 0);
    mmv_segment_prefetch_at(&s, 4999);
    mmv_segment_prefetch_at(&s, 5000);
    mmv_segment_prefetch_at(&s, (size_t)-1);
    cr_assert_eq(at(&s, 4999), 4999);
    mmv_segment_prefetch_all(NULL);
    mmv_segment_prefetch_at(NULL, 0);
    mmv_segment_close(&s);
}

Test(segment, close_unmaps_and_the_file_stays_with_the_data)
{
    mmv_stats before, mid, after;
    mmv_stats_get(&before);
    mmv_segment s;
    filled(&s, 4, 4);
    mmv_stats_get(&mid);
    cr_assert_eq(mid.active_segments, before.active_segments + 1);
    cr_assert_eq(mid.bytes_mapped, before.bytes_mapped + 16);
    cr_assert_eq(mmv_segment_close(&s), 0);
    mmv_stats_get(&after);
    cr_assert_eq(after.active_segments, before.active_segments);
    cr_assert_eq(after.bytes_mapped, before.bytes_mapped);
    cr_assert_null(s.data);
    int buf[4] = {0}, want[4] = {0, 1, 2, 3};
    FILE *f = fopen(path_in("s.seg"), "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(buf, sizeof buf, 1, f), 1);
    fclose(f);
    cr_assert_arr_eq(buf, want, sizeof want);
}

Test(segment, open_reuses_an_existing_file_and_keeps_its_bytes)
{
    mmv_segment s;
    filled(&s, 4, 4);
    mmv_segment_close(&s);
    cr_assert_eq(mmv_segment_open(&s, path_in("s.seg"), sizeof(int), 8), 0);
    cr_assert_eq(mmv_segment_len(&s), 0);
    cr_assert_eq(((int *)s.data)[3], 3);
    cr_assert_eq(((int *)s.data)[7], 0);
    struct stat st;
    stat(path_in("s.seg"), &st);
    cr_assert_eq(st.st_size, 32);
    mmv_segment_close(&s);
}

/* ---- errors ---- */

Test(segment, null_handles_and_zero_element_size)
{
    mmv_segment s;
    int x = 1;
    cr_assert_eq(mmv_segment_null(NULL, 4), -EINVAL);
    cr_assert_eq(mmv_segment_null(&s, 0), -EINVAL);
    cr_assert_eq(mmv_segment_open(&s, path_in("z.seg"), 0, 10), -EINVAL);
    cr_assert(!exists(path_in("z.seg")));
    cr_assert_eq(mmv_segment_open(NULL, path_in("z.seg"), 4, 10), -EINVAL);
    cr_assert_eq(mmv_segment_open(&s, NULL, 4, 10), -EINVAL);
    cr_assert_eq(mmv_segment_push_within_capacity(NULL, &x), -EINVAL);
    cr_assert(!mmv_segment_pop(NULL, &x));
    cr_assert_eq(mmv_segment_truncate(NULL, 0), -EINVAL);
    cr_assert_eq(mmv_segment_truncate_first(NULL, 0), -EINVAL);
    cr_assert_eq(mmv_segment_clear(NULL), -EINVAL);
    cr_assert_eq(mmv_segment_extend_from(NULL, NULL), -EINVAL);
    cr_assert_eq(mmv_segment_close(NULL), -EINVAL);
    cr_assert_eq(mmv_segment_set_clear_fn(NULL, NULL), -EINVAL);
    cr_assert_eq(mmv_segment_len(NULL), 0);
    cr_assert_null(mmv_segment_at(NULL, 0));
    mmv_segment zeroed = {0};
    cr_assert_eq(mmv_segment_push_within_capacity(&zeroed, &x), -EINVAL);
    cr_assert_eq(mmv_segment_close(&zeroed), -EINVAL);
}

Test(segment, capacity_overflow_is_an_error)
{
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, path_in("o.seg"), 16, SIZE_MAX / 8), -EOVERFLOW);
    cr_assert_eq(mmv_segment_open(&s, path_in("o.seg"), SIZE_MAX, 2), -EOVERFLOW);
    cr_assert(!exists(path_in("o.seg")));
}

Test(segment, directory_that_is_a_file_fails_with_enotdir)
{
    FILE *f = fopen(path_in("plain"), "w");
    cr_assert_not_null(f);
    fclose(f);
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, path_in("plain/x.seg"), 4, 10), -ENOTDIR);
    cr_assert_eq(mmv_segment_open(&s, path_in("missing/x.seg"), 4, 10), -ENOENT);
}

Test(segment, read_only_filesystem_fails_with_erofs)
{
    if (!tu_mount_tmpfs(mnt, sizeof mnt, dir, "size=1m,mode=0700,ro"))
        TU_SKIP(teardown, "needs root to mount a read-only tmpfs");
    char p[256];
    snprintf(p, sizeof p, "%s/x.seg", mnt);
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, p, 4, 10), -EROFS);
}

Test(segment, unprivileged_user_cannot_write_the_directory)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to drop privileges to uid 65534 in a child");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        mmv_segment s;
        int rc = mmv_segment_open(&s, path_in("x.seg"), 4, 10); /* dir is 0700 root */
        _exit(rc == -EACCES ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "open as uid 65534 did not fail with -EACCES");
    cr_assert(!exists(path_in("x.seg")));
}

Test(segment, full_disk_is_enospc_at_open_not_sigbus)
{
    if (!tu_mount_tmpfs(mnt, sizeof mnt, dir, "size=1m,mode=0700"))
        TU_SKIP(teardown, "needs root to mount a 1 MiB tmpfs");
    char p[256];
    snprintf(p, sizeof p, "%s/big.seg", mnt);
    mmv_segment s;
    cr_assert_eq(mmv_segment_open(&s, p, 4096, 512), -ENOSPC); /* 2 MiB */
    cr_assert(!exists(p));
    /* What fits can be written everywhere without a SIGBUS. */
    cr_assert_eq(mmv_segment_open(&s, p, 4096, 200), 0);
    memset(s.data, 0xab, 200 * 4096);
    cr_assert_eq(mmv_segment_close(&s), 0);
}

Test(segment, no_descriptor_left_open)
{
    int before = count_fds();
    mmv_segment s;
    filled(&s, 100, 100);
    cr_assert_eq(count_fds(), before);
    mmv_segment_close(&s);
    cr_assert_eq(mmv_segment_open(&s, path_in("plain/x.seg"), 4, 1), -ENOENT);
    cr_assert_eq(count_fds(), before);
}
