/* Namers (the seed's SegmentBuilder): uuid-v4 names, the default directory and its order
 * ($MMVEC_DIR, $XDG_CACHE_HOME/mmvec, $HOME/.cache/mmvec, /var/tmp/mmvec-<uid>) created 0700, a
 * caller's directory (with_path), and a custom namer plugged into vectors. */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "paths.h"

static char dir[64];

/* Each test runs in its own process: the environment changes stay there. */
static void setup(void)
{
    tu_make_tmpdir(dir, sizeof dir, "/tmp/mmvec-namer-XXXXXX");
    unsetenv("MMVEC_DIR");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
}

static void teardown(void)
{
    tu_rm_rf(dir);
}

TestSuite(namer, .init = setup, .fini = teardown);

static const char *sub(const char *rel)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 256, "%s/%s", dir, rel);
    return b;
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    cr_assert_eq(lstat(p, &st), 0, "%s missing", p);
    return st.st_mode & 07777;
}

/* "<dir>/xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx.seg" */
static bool is_uuid4_path(const char *p, const char *d)
{
    size_t n = strlen(d);
    if (strncmp(p, d, n) != 0 || p[n] != '/')
        return false;
    const char *u = p + n + 1;
    if (strlen(u) != 36 + 4 || strcmp(u + 36, ".seg") != 0)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
            return false;
    }
    return u[14] == '4' && strchr("89ab", u[19]);
}

/* ---- the default directory ---- */

Test(namer, default_dir_order_mmvec_dir_first)
{
    char buf[4096];
    setenv("MMVEC_DIR", sub("m/deep"), 1);
    setenv("XDG_CACHE_HOME", sub("xdg"), 1);
    setenv("HOME", sub("home"), 1);
    cr_assert_eq(mmv_default_dir(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, sub("m/deep"));
    cr_assert_eq(mode_of(sub("m/deep")), 0700);
    cr_assert_eq(mode_of(sub("m")), 0700, "parents are created 0700 too");
}

Test(namer, default_dir_order_xdg_then_home)
{
    char buf[4096];
    setenv("XDG_CACHE_HOME", sub("xdg"), 1);
    setenv("HOME", sub("home"), 1);
    cr_assert_eq(mmv_default_dir(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, sub("xdg/mmvec"));
    cr_assert_eq(mode_of(sub("xdg/mmvec")), 0700);
    unsetenv("XDG_CACHE_HOME");
    cr_assert_eq(mmv_default_dir(buf, sizeof buf), 0);
    cr_assert_str_eq(buf, sub("home/.cache/mmvec"));
    cr_assert_eq(mode_of(sub("home/.cache/mmvec")), 0700);
}

/* A home or cache on another machine is passed over for /var/tmp (paths.c): only the
 * filesystem types are checked here, as this machine mounts no network filesystem. */
Test(namer, network_filesystems_are_not_a_default_dir)
{
    static const long network[] = {0x6969, 0xff534d42L, 0xfe534d42L, 0x517b, 0x00c36400,
                                   0x01021997, 0x65735546};
    static const long local[] = {0xef53 /* ext2-4 */, 0x58465342 /* xfs */,
                                 0x9123683e /* btrfs */, 0x01021994 /* tmpfs */,
                                 0x794c7630 /* overlayfs */};
    for (size_t i = 0; i < sizeof network / sizeof network[0]; i++)
        cr_assert(mmvi_fs_is_network(network[i]), "%#lx", network[i]);
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        cr_assert(!mmvi_fs_is_network(local[i]), "%#lx", local[i]);
}

Test(namer, default_dir_last_resort_is_var_tmp)
{
    char buf[4096];
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    cr_assert_eq(mmv_default_dir(buf, sizeof buf), 0);
    char want[64];
    snprintf(want, sizeof want, "/var/tmp/mmvec-%u", (unsigned)geteuid());
    cr_assert_str_eq(buf, want, "one per user");
    struct stat st;
    cr_assert_eq(stat(buf, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
}

Test(namer, default_dir_that_is_a_symlink_is_refused)
{
    char buf[4096];
    cr_assert_eq(mkdir(sub("real"), 0700), 0);
    cr_assert_eq(symlink(sub("real"), sub("link")), 0);
    setenv("MMVEC_DIR", sub("link"), 1);
    cr_assert_eq(mmv_default_dir(buf, sizeof buf), -EPERM);
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 8, NULL), -EPERM);
}

Test(namer, default_namer_feeds_vectors)
{
    setenv("MMVEC_DIR", sub("vecs"), 1);
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 8, NULL), 0);
    cr_assert(is_uuid4_path(mmv_vec_path(&v), sub("vecs")), "%s", mmv_vec_path(&v));
    uint64_t x = 1;
    cr_assert_eq(mmv_vec_push(&v, &x), 0);
    cr_assert_eq(mode_of(mmv_vec_path(&v)), 0600);
    cr_assert_eq(tu_count_entries(sub("vecs")), 1);
    mmv_vec_destroy(&v);
    cr_assert_eq(tu_count_entries(sub("vecs")), 0);
}

/* ---- names ---- */

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

Test(namer, uuid_v4_names_are_unique)
{
    mmv_namer n = mmv_namer_in_dir(dir);
    static char seen[2000][128];
    for (int i = 0; i < 2000; i++) {
        cr_assert_eq(mmv_namer_next(&n, seen[i], sizeof seen[i]), 0);
        cr_assert(is_uuid4_path(seen[i], dir), "%s", seen[i]);
    }
    qsort(seen, 2000, sizeof seen[0], cmp_str);
    for (int i = 1; i < 2000; i++)
        cr_assert_str_neq(seen[i - 1], seen[i]);
}

Test(namer, small_buffer_is_enametoolong)
{
    mmv_namer n = mmv_namer_in_dir(dir);
    char small[16];
    cr_assert_eq(mmv_namer_next(&n, small, sizeof small), -ENAMETOOLONG);
    cr_assert_eq(mmv_namer_next(&n, NULL, 10), -EINVAL);
}

Test(namer, with_path_creates_the_directory)
{
    mmv_namer n = mmv_namer_in_dir(sub("a/b/c"));
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 4, &n), 0);
    cr_assert_eq(mode_of(sub("a/b/c")), 0700);
    cr_assert(is_uuid4_path(mmv_vec_path(&v), sub("a/b/c")));
    mmv_vec_destroy(&v);
}

/* ---- a custom namer (the seed's test_custom_segment_builder) ---- */

struct counting {
    const char *dir;
    int calls;
};

static int counting_next(void *ctx, char *buf, size_t size)
{
    struct counting *c = ctx;
    int n = snprintf(buf, size, "%s/custom-%03d.seg", c->dir, c->calls++);
    return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

Test(namer, custom_namer_directory_count_goes_up_by_one_and_back)
{
    cr_assert_eq(mkdir(sub("custom"), 0700), 0);
    struct counting c = {sub("custom"), 0};
    mmv_namer n = {counting_next, &c};
    int before = tu_count_entries(sub("custom"));
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, sizeof(int), &n), 0);
    cr_assert_eq(c.calls, 1);
    cr_assert_str_eq(mmv_vec_path(&v), sub("custom/custom-000.seg"));
    cr_assert_eq(tu_count_entries(sub("custom")), before, "new() creates no file");
    for (int i = 0; i < 5000; i++)
        mmv_vec_push(&v, &i);
    cr_assert_eq(tu_count_entries(sub("custom")), before + 1);
    mmv_vec w;
    cr_assert_eq(mmv_vec_clone(&w, &v), 0); /* clones use the same namer */
    cr_assert_str_eq(mmv_vec_path(&w), sub("custom/custom-001.seg"));
    cr_assert_eq(tu_count_entries(sub("custom")), before + 2);
    mmv_vec_destroy(&w);
    mmv_vec_destroy(&v);
    cr_assert_eq(tu_count_entries(sub("custom")), before);
}

static int failing_next(void *ctx, char *buf, size_t size)
{
    (void)ctx, (void)buf, (void)size;
    return -EMFILE;
}

Test(namer, a_failing_namer_fails_init)
{
    mmv_namer n = {failing_next, NULL};
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 4, &n), -EMFILE);
    cr_assert_null(v.path);
}

Test(namer, a_namer_path_that_exists_is_not_overwritten)
{
    FILE *f = fopen(sub("custom-000.seg"), "w");
    fputs("precious", f);
    fclose(f);
    struct counting c = {dir, 0};
    mmv_namer n = {counting_next, &c};
    mmv_vec v;
    cr_assert_eq(mmv_vec_init(&v, 4, &n), 0);
    int x = 1;
    cr_assert_eq(mmv_vec_push(&v, &x), -EEXIST);
    mmv_vec_destroy(&v);
    char buf[16] = "";
    f = fopen(sub("custom-000.seg"), "r");
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "precious");
}
