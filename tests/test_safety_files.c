/* What mmvec may and may not touch: files that are not its own, the directory it was told to
 * use, the descriptors and the configuration of the program it runs in.
 *
 *   - the reaper (at a start under the preload, and `mmvec clean`) removes only what mmvec made:
 *     a user's Cargo.lock, yarn.lock, a folder next to a same-named *.lock, a stale *.lock.tmp,
 *     a symlink, *.seg files of the user's all stay exactly as they were;
 *   - a relative MMVEC_DIR keeps naming the folder it named at start, after a chdir;
 *   - the default directory (no MMVEC_DIR, XDG_CACHE_HOME, HOME) is per user;
 *   - the MMVEC_STATS table never lands in a file of the program's (its fd reused);
 *   - the lock file does not take the program's lowest free descriptor;
 *   - the private jemalloc does not read the program's MALLOC_CONF.
 *
 * Each case runs tests/helpers/safety_files in a child, mostly under LD_PRELOAD of the
 * interposer (those skip in sanitizer builds, which cannot preload). */
#define _GNU_SOURCE
#include <mmvec.h>

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define HELPER MMVEC_HELPER_DIR "/safety_files"
#define CHILD_TIMEOUT 60
#define NOBODY 65534

static char tmp[64];          /* everything a test makes, removed by teardown */
static char made[4][PATH_MAX]; /* directories made outside tmp (the default dir), removed too: */
static char made_top[4][PATH_MAX]; /* rmdir from made[i] up to made_top[i], each while empty */
static int nmade;
static pid_t holder;          /* a child still running, killed by teardown after a failure */
static int holder_in = -1, holder_out = -1;

static void setup(void)
{
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp/mmvec-safety-XXXXXX");
}

static void teardown(void)
{
    if (holder > 0) {
        kill(holder, SIGKILL);
        tu_wait(holder);
        holder = 0;
    }
    if (holder_in >= 0)
        close(holder_in);
    if (holder_out >= 0)
        close(holder_out);
    holder_in = holder_out = -1;
    /* Only empty folders go: another test may use the same default directory meanwhile. */
    for (int i = 0; i < nmade; i++) {
        size_t top = strlen(made_top[i]);
        for (;;) {
            rmdir(made[i]);
            char *slash = strrchr(made[i], '/');
            if (!slash || (size_t)(slash - made[i]) < top)
                break;
            *slash = '\0';
        }
    }
    nmade = 0;
    tu_rm_rf(tmp);
    tmp[0] = '\0';
}

TestSuite(safety_files, .init = setup, .fini = teardown, .timeout = 180);

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                      "preloaded into an uninstrumented child");
#endif
}

static char *in_tmp(const char *name) { return tu_path_in(tmp, name); }

/* ---- children ------------------------------------------------------------------------------ */

struct spec {
    const char *const *argv;
    const char *const *extra; /* "NAME=value" entries added to the environment */
    const char *const *drop;  /* "NAME=" prefixes removed from it */
    bool preload;             /* LD_PRELOAD=the interposer */
    const char *cwd;          /* NULL: tmp */
    bool as_nobody;           /* setuid(65534) before exec (root only) */
};

/* Our environment without LD_PRELOAD, MMVEC_*, MALLOC_CONF and s->drop, plus s->extra. */
static char **child_env(const struct spec *s)
{
    static char preload[PATH_MAX + 16];
    size_t n;
    char **env = tu_child_env(24, &n, "MALLOC_CONF=");
    for (const char *const *d = s->drop; d && *d; d++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (strncmp(env[i], *d, strlen(*d)))
                env[k++] = env[i];
        for (size_t i = k; i < n; i++)
            env[i] = NULL;
        n = k;
    }
    if (s->preload) {
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB);
        env[n++] = preload;
    }
    size_t added = 1; /* room for 24: the preload and up to 22 more, then the NULL */
    for (const char *const *x = s->extra; x && *x; x++, added++) {
        cr_assert_lt(added, 24, "too many variables for the child");
        env[n++] = (char *)*x;
    }
    return env;
}

/* Starts the child with nothing open but 0, 1, 2: stdin from a pipe (*in_fd) or /dev/null,
 * stdout to a pipe (*out_fd) or to `out`, stderr to `err`. */
static pid_t spawn(const struct spec *s, const char *out, const char *err, int *in_fd, int *out_fd)
{
    char **env = child_env(s);
    int pin[2] = {-1, -1}, pout[2] = {-1, -1};
    cr_assert(!in_fd || pipe2(pin, O_CLOEXEC) == 0);
    cr_assert(!out_fd || pipe2(pout, O_CLOEXEC) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (chdir(s->cwd ? s->cwd : tmp) < 0)
            _exit(126);
        if (in_fd)
            dup2(pin[0], 0);
        else
            tu_redirect("/dev/null", 0, O_RDONLY);
        if (out_fd)
            dup2(pout[1], 1);
        else
            tu_redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(err, 2, O_WRONLY | O_CREAT | O_TRUNC);
        close_range(3, ~0u, 0); /* the program starts with 0, 1, 2 and nothing else */
        if (s->as_nobody && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0))
            _exit(125);
        alarm(CHILD_TIMEOUT); /* survives exec: a hung program dies instead of the suite */
        execve(s->argv[0], (char *const *)s->argv, env);
        _exit(127);
    }
    free(env);
    if (in_fd) {
        close(pin[0]);
        *in_fd = pin[1];
    }
    if (out_fd) {
        close(pout[1]);
        *out_fd = pout[0];
    }
    return pid;
}

struct out {
    int status;
    char out[8192], err[8192];
};

static struct out run(const struct spec *s)
{
    static struct out r;
    char out[128], err[128];
    snprintf(out, sizeof out, "%s/child.out", tmp);
    snprintf(err, sizeof err, "%s/child.err", tmp);
    r.status = tu_wait(spawn(s, out, err, NULL, NULL));
    snprintf(r.out, sizeof r.out, "%s", tu_slurp(out));
    snprintf(r.err, sizeof r.err, "%s", tu_slurp(err));
    unlink(out);
    unlink(err);
    return r;
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void expect_exit0(const struct out *r, const char *what)
{
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
              "%s: exit %d\nstdout: %s\nstderr: %s", what, exit_code(r->status), r->out, r->err);
}

/* ---- foreign entries in MMVEC_DIR ---------------------------------------------------------- */

/* What a user (or another program) keeps in the directory: none of it is mmvec's. */
static const char *const foreign_names[] = {
    "Cargo.lock",   "yarn.lock",          "poetry.lock",        "Cargo",
    "Cargo/config.toml", "link.lock",     "123-deadbeef",       "123-deadbeef/x.seg",
    "123-deadbeef.lock", "old.lock.tmp",  "a.seg",
};
#define NFOREIGN (sizeof foreign_names / sizeof *foreign_names)

struct entry {
    mode_t type;
    off_t size;
    struct timespec mtime;
    char data[512]; /* a file's content, a symlink's target */
    int nchildren;  /* a directory's entries */
};

static struct entry foreign[NFOREIGN];

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void set_mtime(const char *path, time_t ago)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= ago;
    ts[1] = ts[0];
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0, "utimensat %s: %s", path,
                 strerror(errno));
}

static void read_entry(const char *dir, const char *name, struct entry *e, bool *exists)
{
    const char *path = tu_path_in(dir, name);
    struct stat st;
    memset(e, 0, sizeof *e);
    *exists = lstat(path, &st) == 0;
    if (!*exists)
        return;
    e->type = st.st_mode & S_IFMT;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(path, e->data, sizeof e->data - 1);
        e->data[n > 0 ? n : 0] = '\0';
    } else if (S_ISREG(st.st_mode)) {
        snprintf(e->data, sizeof e->data, "%s", tu_slurp(path));
    } else if (S_ISDIR(st.st_mode)) {
        e->nchildren = tu_count_entries(path);
    }
}

/* Makes dir (0700) and puts the foreign entries in it; records them. */
static void make_foreign(const char *dir)
{
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s: %s", dir, strerror(errno));
    char p[PATH_MAX];
#define AT(name) (snprintf(p, sizeof p, "%s/%s", dir, name), p)
    write_file(AT("Cargo.lock"), "# This file is automatically @generated by Cargo.\n"
                                 "version = 3\n\n[[package]]\nname = \"mine\"\n");
    write_file(AT("yarn.lock"), "# THIS IS AN AUTOGENERATED FILE.\n# yarn lockfile v1\n");
    write_file(AT("poetry.lock"), "[metadata]\nlock-version = \"2.0\"\n");
    cr_assert_eq(mkdir(AT("Cargo"), 0755), 0);
    write_file(AT("Cargo/config.toml"), "[build]\njobs = 2\n");
    cr_assert_eq(symlink("/etc/hostname", AT("link.lock")), 0);
    cr_assert_eq(mkdir(AT("123-deadbeef"), 0700), 0);
    write_file(AT("123-deadbeef/x.seg"), "the user's own x.seg, not mmvec's\n");
    write_file(AT("123-deadbeef.lock"), ""); /* empty, as a lock file of mmvec's once was */
    write_file(AT("old.lock.tmp"), "stale, but not mmvec's\n");
    write_file(AT("a.seg"), "the user's own a.seg\n");
    /* Old entries look like a dead process's: they must stay all the same. */
    static const char *const three_days[] = {"Cargo.lock", "yarn.lock", "poetry.lock",
                                             "Cargo/config.toml", "link.lock",
                                             "123-deadbeef/x.seg", "123-deadbeef.lock", "a.seg",
                                             "Cargo", "123-deadbeef"};
    for (size_t i = 0; i < sizeof three_days / sizeof *three_days; i++)
        set_mtime(AT(three_days[i]), 3 * 86400);
    set_mtime(AT("old.lock.tmp"), 2 * 3600);
#undef AT
    for (size_t i = 0; i < NFOREIGN; i++) {
        bool exists;
        read_entry(dir, foreign_names[i], &foreign[i], &exists);
        cr_assert(exists, "%s was not made", foreign_names[i]);
    }
}

static const char *type_name(mode_t t)
{
    return t == S_IFREG ? "file" : t == S_IFDIR ? "directory" : t == S_IFLNK ? "symlink" : "other";
}

/* Every foreign entry exactly as recorded: type, size, mtime, content, link target. */
static void check_foreign(const char *dir, const char *step)
{
    for (size_t i = 0; i < NFOREIGN; i++) {
        const char *name = foreign_names[i];
        const struct entry *was = &foreign[i];
        struct entry now;
        bool exists;
        read_entry(dir, name, &now, &exists);
        cr_assert(exists, "%s: the foreign %s %s/%s was removed", step, type_name(was->type), dir,
                  name);
        cr_assert_eq(now.type, was->type, "%s: %s was a %s, is now a %s", step, name,
                     type_name(was->type), type_name(now.type));
        cr_assert(now.mtime.tv_sec == was->mtime.tv_sec && now.mtime.tv_nsec == was->mtime.tv_nsec,
                  "%s: the mtime of %s changed (%lld.%09ld -> %lld.%09ld)", step, name,
                  (long long)was->mtime.tv_sec, was->mtime.tv_nsec, (long long)now.mtime.tv_sec,
                  now.mtime.tv_nsec);
        if (was->type != S_IFDIR)
            cr_assert_eq(now.size, was->size, "%s: %s changed size (%lld -> %lld)", step, name,
                         (long long)was->size, (long long)now.size);
        cr_assert_str_eq(now.data, was->data, "%s: the %s of %s changed", step,
                         was->type == S_IFLNK ? "target" : "content", name);
        cr_assert_eq(now.nchildren, was->nchildren, "%s: the folder %s held %d entries, now %d",
                     step, name, was->nchildren, now.nchildren);
    }
}

static char seg_dir_[256];
static int seg_count_;
static char seg_first_[PATH_MAX];

static int count_own_seg(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    size_t n = strlen(path);
    if (flag != FTW_F || n < 4 || strcmp(path + n - 4, ".seg"))
        return 0;
    for (size_t i = 0; i < NFOREIGN; i++)
        if (!strcmp(path, tu_path_in(seg_dir_, foreign_names[i])))
            return 0;
    if (!seg_count_++)
        snprintf(seg_first_, sizeof seg_first_, "%s", path);
    return 0;
}

/* *.seg files anywhere under dir but the foreign ones: mmvec's. */
static int own_segs(const char *dir)
{
    snprintf(seg_dir_, sizeof seg_dir_, "%s", dir);
    seg_count_ = 0;
    seg_first_[0] = '\0';
    nftw(dir, count_own_seg, 16, FTW_PHYS);
    return seg_count_;
}

/* The helper `cmd` under the preload with MMVEC_DIR=dir. */
static struct out run_preloaded(const char *cmd, const char *dir)
{
    char dirvar[PATH_MAX + 16];
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", dir);
    const char *argv[] = {HELPER, cmd, NULL};
    const char *extra[] = {dirvar, "MMVEC_THRESHOLD=64K", NULL};
    struct spec s = {.argv = argv, .extra = extra, .preload = true};
    return run(&s);
}

static struct out run_clean(const char *dir)
{
    const char *argv[] = {MMVEC_CLI, "clean", dir, NULL};
    struct spec s = {.argv = argv};
    return run(&s);
}

static void normal_run_step(const char *dir)
{
    struct out r = run_preloaded("run", dir);
    expect_exit0(&r, "preloaded malloc/free");
    cr_assert_str_eq(r.out, "owned=1\n", "the 4 MiB block was not a segment block; stderr: %s",
                     r.err);
    check_foreign(dir, "after a preloaded program's normal run");
    cr_assert_eq(own_segs(dir), 0, "a normal exit leaves %s", seg_first_);
}

Test(safety_files, reaper_keeps_foreign_entries_on_a_normal_run)
{
    skip_unless_preloadable();
    const char *dir = in_tmp("seg");
    char d[128];
    snprintf(d, sizeof d, "%s", dir); /* tu_path_in's buffers rotate */
    make_foreign(d);
    normal_run_step(d);
}

Test(safety_files, reaper_keeps_foreign_entries_after_crash_reap_and_clean)
{
    skip_unless_preloadable();
    char d[128];
    snprintf(d, sizeof d, "%s", in_tmp("seg"));
    make_foreign(d);
    normal_run_step(d);

    /* A crash leaves its files behind... */
    struct out r = run_preloaded("crash", d);
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL,
              "the crashing helper: exit %d, stderr: %s", exit_code(r.status), r.err);
    cr_assert(!strncmp(r.out, "owned=1\npath ", 13), "crash helper said: %s / %s", r.out, r.err);
    char crashed[PATH_MAX];
    size_t clen = strcspn(r.out + 13, "\n");
    cr_assert_lt(clen, sizeof crashed);
    memcpy(crashed, r.out + 13, clen);
    crashed[clen] = '\0';
    struct stat st;
    cr_assert_eq(lstat(crashed, &st), 0, "kill -9 leaves the block's file %s", crashed);
    check_foreign(d, "after a preloaded program was killed");

    /* ... the next start reaps them ... */
    r = run_preloaded("run", d);
    expect_exit0(&r, "preloaded start after the crash");
    check_foreign(d, "after the next preloaded start reaped the dead process");

    /* ... and so does mmvec clean. */
    r = run_clean(d);
    expect_exit0(&r, "mmvec clean");
    check_foreign(d, "after mmvec clean");
    cr_assert_eq(own_segs(d), 0, "mmvec's file %s is still there after the reap and clean",
                 seg_first_);
    cr_assert_neq(lstat(crashed, &st), 0, "the dead process's file %s was not removed", crashed);
}

/* No preload here: runs in sanitizer builds too. */
Test(safety_files, clean_keeps_foreign_entries)
{
    char d[128];
    snprintf(d, sizeof d, "%s", in_tmp("seg"));
    make_foreign(d);
    struct out r = run_clean(d);
    expect_exit0(&r, "mmvec clean DIR");
    check_foreign(d, "after mmvec clean DIR");

    char dirvar[PATH_MAX + 16];
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", d);
    const char *argv[] = {MMVEC_CLI, "clean", NULL};
    const char *extra[] = {dirvar, NULL};
    struct spec s = {.argv = argv, .extra = extra};
    r = run(&s);
    expect_exit0(&r, "mmvec clean (MMVEC_DIR)");
    check_foreign(d, "after mmvec clean with MMVEC_DIR");

    uint64_t files = 99, bytes = 99;
    cr_assert_eq(mmv_clean(d, &files, &bytes), 0);
    check_foreign(d, "after mmv_clean()");
    cr_assert(files == 0 && bytes == 0, "mmv_clean removed %llu files (%llu bytes) of nobody's",
              (unsigned long long)files, (unsigned long long)bytes);
}

/* ---- a relative MMVEC_DIR ------------------------------------------------------------------ */

/* The value after "key " on a line of text, into buf ("" when missing). */
static const char *line_value(const char *text, const char *key, char *buf, size_t size)
{
    size_t k = strlen(key);
    buf[0] = '\0';
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, key, k) && p[k] == ' ') {
            size_t len = strcspn(p + k + 1, "\n");
            snprintf(buf, size, "%.*s", (int)len, p + k + 1);
            break;
        }
    }
    return buf;
}

static void relative_dir(bool preloaded)
{
    char start_dir[128], other[128], segs[160];
    snprintf(start_dir, sizeof start_dir, "%s", in_tmp("start"));
    snprintf(other, sizeof other, "%s", in_tmp("elsewhere"));
    cr_assert_eq(mkdir(start_dir, 0700), 0);
    cr_assert_eq(mkdir(other, 0700), 0);
    snprintf(segs, sizeof segs, "%s/segs", start_dir);

    const char *argv[] = {HELPER, "reldir", other, preloaded ? NULL : "mmv", NULL};
    const char *extra[] = {"MMVEC_DIR=segs", "MMVEC_THRESHOLD=64K", NULL};
    struct spec s = {.argv = argv, .extra = extra, .preload = preloaded, .cwd = start_dir};
    char err[PATH_MAX];
    snprintf(err, sizeof err, "%s", in_tmp("reldir.err"));
    holder = spawn(&s, NULL, err, &holder_in, &holder_out);

    char text[8192] = "";
    size_t len = 0;
    FILE *f = fdopen(holder_out, "r");
    cr_assert_not_null(f);
    holder_out = -1;
    for (char line[4200]; fgets(line, sizeof line, f) && strcmp(line, "ready\n");) {
        size_t k = strlen(line);
        if (len + k < sizeof text) {
            memcpy(text + len, line, k + 1);
            len += k;
        }
    }
    fclose(f);
    cr_assert(strstr(text, "data "), "the helper did not get ready: %s / %s", text,
              tu_slurp(err));

    char v[PATH_MAX], a[PATH_MAX], b[PATH_MAX], want[PATH_MAX], real[PATH_MAX];
    cr_assert_str_eq(line_value(text, "owned", v, sizeof v), "a=1 b=1",
                     "with MMVEC_DIR=segs, both blocks must be segment blocks in %s, after "
                     "the chdir to %s too: %s / %s", segs, other, text,
                     tu_slurp(err));
    line_value(text, "a", a, sizeof a);
    line_value(text, "b", b, sizeof b);
    cr_assert(a[0] == '/', "the first block's path is not absolute: \"%s\"", a);
    cr_assert(b[0] == '/', "the second block's path is not absolute: \"%s\"", b);
    cr_assert_not_null(realpath(segs, want), "%s (MMVEC_DIR=segs in %s) missing", segs, start_dir);
    size_t n = strlen(want);
    const char *paths[] = {a, b};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        cr_assert(stat(paths[i], &st) == 0 && S_ISREG(st.st_mode), "block file %s missing",
                  paths[i]);
        cr_assert(realpath(paths[i], real) && !strncmp(real, want, n) && real[n] == '/',
                  "block file %s is not inside %s", paths[i], want);
    }
    cr_assert_str_eq(line_value(text, "file a", v, sizeof v), "ok",
                     "the 64 MiB block's file does not hold its data: %s", text);
    cr_assert_str_eq(line_value(text, "file b", v, sizeof v), "ok",
                     "the second block's file does not hold its data: %s", text);
    cr_assert_str_eq(line_value(text, "data", v, sizeof v), "ok", "%s", text);
    struct stat st;
    cr_assert(lstat(tu_path_in(other, "segs"), &st) < 0 && errno == ENOENT,
              "%s/segs was made in the second working directory", other);
    cr_assert_eq(tu_count_entries(other), 0, "something was made in %s", other);

    close(holder_in);
    holder_in = -1;
    int status = tu_wait(holder);
    holder = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reldir helper: exit %d, %s",
              exit_code(status), tu_slurp(err));
    cr_assert_eq(tu_count_segs(want), 0, "files left in %s after exit", want);
}

Test(safety_files, relative_dir_keeps_its_folder_after_chdir_preloaded)
{
    skip_unless_preloadable();
    relative_dir(true);
}

/* Through mmv_* in a plain (not preloaded) program: runs in sanitizer builds too. */
Test(safety_files, relative_dir_keeps_its_folder_after_chdir_mmv_api)
{
    relative_dir(false);
}

/* ---- the default directory ----------------------------------------------------------------- */

/* Parents under which a default directory may be made, and the names they held before. */
static const char *const watched[] = {"/var/tmp", "/tmp", "/dev/shm", "/run/user"};
#define NWATCHED (sizeof watched / sizeof *watched)
static char *before[NWATCHED][4096];
static int nbefore[NWATCHED];

static void snapshot_watched(void)
{
    for (size_t w = 0; w < NWATCHED; w++) {
        nbefore[w] = 0;
        DIR *d = opendir(watched[w]);
        for (struct dirent *e; d && (e = readdir(d)) && nbefore[w] < 4096;)
            before[w][nbefore[w]++] = strdup(e->d_name);
        if (d)
            closedir(d);
    }
}

/* When the test made `path` (or the folder it is in) in a watched parent, teardown removes it. */
static void forget_what_we_made(const char *path)
{
    for (size_t w = 0; w < NWATCHED; w++) {
        size_t n = strlen(watched[w]);
        if (strncmp(path, watched[w], n) || path[n] != '/')
            continue;
        char name[NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(path + n + 1, "/"), path + n + 1);
        bool was = false;
        for (int i = 0; i < nbefore[w]; i++)
            was = was || !strcmp(before[w][i], name);
        if (!was && name[0] && nmade < 4) {
            snprintf(made_top[nmade], sizeof made_top[0], "%s/%s", watched[w], name);
            snprintf(made[nmade++], sizeof made[0], "%s", path);
        }
    }
}

static void free_snapshot(void)
{
    for (size_t w = 0; w < NWATCHED; w++)
        for (int i = 0; i < nbefore[w]; i++)
            free(before[w][i]);
    memset(nbefore, 0, sizeof nbefore);
}

/* The decimal uid as a whole number somewhere in path ("/var/tmp/mmvec-1000" has 1000). */
static bool names_uid(const char *path, uid_t uid)
{
    char num[16];
    snprintf(num, sizeof num, "%u", (unsigned)uid);
    size_t k = strlen(num);
    for (const char *p = path; (p = strstr(p, num)); p++)
        if ((p == path || p[-1] < '0' || p[-1] > '9') && (p[k] < '0' || p[k] > '9'))
            return true;
    return false;
}

/* mmv_default_dir in a child without MMVEC_DIR, XDG_CACHE_HOME and HOME: its path, checked. */
static void default_dir_of(bool as_nobody, char *dir, size_t size)
{
    const char *argv[] = {HELPER, "defaultdir", NULL};
    const char *drop[] = {"XDG_CACHE_HOME=", "HOME=", NULL};
    struct spec s = {.argv = argv, .drop = drop, .cwd = "/", .as_nobody = as_nobody};
    uid_t uid = as_nobody ? NOBODY : geteuid();
    snapshot_watched();
    struct out r = run(&s);
    char v[PATH_MAX];
    line_value(r.out, "dir", v, sizeof v);
    if (v[0])
        forget_what_we_made(v);
    free_snapshot();
    expect_exit0(&r, "defaultdir");
    cr_assert(v[0], "mmv_default_dir as uid %u failed: %s%s", (unsigned)uid, r.out, r.err);
    cr_assert_str_neq(v, "/var/tmp/mmvec", "uid %u: the default directory is the shared %s",
                      (unsigned)uid, v);
    cr_assert(names_uid(v, uid), "uid %u: the default directory %s is not per user",
              (unsigned)uid, v);
    struct stat st;
    cr_assert_eq(lstat(v, &st), 0, "%s was not made", v);
    cr_assert(S_ISDIR(st.st_mode) && st.st_uid == uid && (st.st_mode & 0777) == 0700,
              "%s: mode %o owner %u, wanted a 0700 directory of uid %u", v,
              (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)uid);
    snprintf(dir, size, "%s", v);
}

/* No preload: runs in sanitizer builds too. */
Test(safety_files, default_dir_is_per_user)
{
    char dir[PATH_MAX];
    default_dir_of(false, dir, sizeof dir);
}

Test(safety_files, default_dir_is_per_user_for_another_uid)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to run a program as another user (uid %d)", NOBODY);
    char mine[PATH_MAX], theirs[PATH_MAX];
    default_dir_of(true, theirs, sizeof theirs);
    default_dir_of(false, mine, sizeof mine);
    cr_assert_str_neq(mine, theirs, "uid %u and uid %d share %s", (unsigned)geteuid(), NOBODY,
                      mine);
}

/* A block made as root, then the process shuts itself off from its folder (`how`: setuid to
 * another user, the folder being root's, 0700; or chroot) and frees it: it cannot remove the file,
 * so the file gives its disk space back through the mapping (MADV_REMOVE), the data intact until
 * the free, and a one-line warning says why the name stays. Before, all 64 MiB stayed on disk
 * until mmvec next ran as root in that directory (after chroot the missing path even read as a
 * file already gone). */
static void expect_space_back_after(const char *how)
{
    char *jail = in_tmp("jail");
    cr_assert_eq(mkdir(jail, 0700), 0);
    char dirvar[PATH_MAX + 16];
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", in_tmp("seg"));
    const char *argv[] = {HELPER, "shutoff", how, jail, NULL};
    const char *extra[] = {dirvar, "MMVEC_PLACEMENT=file", NULL};
    struct spec s = {.argv = argv, .extra = extra, .preload = true};
    struct out r = run(&s);
    expect_exit0(&r, how);
    cr_assert(strstr(r.out, "intact=1\n"), "%s: the block lost its data: %s", how, r.out);
    const char *p = strstr(r.out, "path=");
    cr_assert(p, "no path printed: %s / %s", r.out, r.err);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(p + 5, "\n"), p + 5);
    struct stat st;
    if (stat(path, &st) == 0)
        cr_assert_lt((long long)st.st_blocks * 512, 1 << 20, "%s: %s still takes %lld bytes of "
                     "disk after its block was freed", how, path, (long long)st.st_blocks * 512);
    cr_assert(strstr(r.err, "cannot remove"), "%s: no warning about the file left: %s", how,
              r.err);
}

Test(safety_files, block_freed_after_setuid_gives_its_disk_space_back)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to drop to uid %d", NOBODY);
    skip_unless_preloadable();
    expect_space_back_after("setuid");
}

Test(safety_files, block_freed_after_chroot_gives_its_disk_space_back)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to chroot");
    skip_unless_preloadable();
    expect_space_back_after("chroot");
}

/* A server's worker (fork, then setuid in the child, as nginx's or Apache's are made) gets its
 * blocks in files of its own user's heap folder in the same directory: it can no longer write in
 * its parent's (root's, 0700). Before, the worker's every large block stayed in RAM, with a
 * warning that the directory was unusable. Its normal exit leaves nothing behind. */
Test(safety_files, worker_that_drops_privileges_gets_files_of_its_own)
{
    if (geteuid() != 0)
        TU_SKIP(teardown, "needs root to drop to uid %d", NOBODY);
    skip_unless_preloadable();
    /* The directory must be reachable and writable for the worker too, as /var/tmp is. */
    cr_assert_eq(chmod(tmp, 0711), 0);
    char *seg = in_tmp("seg");
    cr_assert_eq(mkdir(seg, 0700), 0);
    cr_assert_eq(chmod(seg, 01777), 0);
    char dirvar[PATH_MAX + 16];
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", seg);
    const char *argv[] = {HELPER, "forkdrop", NULL};
    const char *extra[] = {dirvar, "MMVEC_PLACEMENT=file", NULL};
    struct spec s = {.argv = argv, .extra = extra, .preload = true};
    struct out r = run(&s);
    expect_exit0(&r, "forkdrop");
    cr_assert(strstr(r.out, "child_intact=1\n"), "the worker read wrong data: %s", r.out);
    char want[64];
    snprintf(want, sizeof want, "/mmvec-heap-%d/", NOBODY);
    const char *b = strstr(r.out, "child_block=");
    cr_assert(b && strstr(b, want), "the worker's block is not in a folder of uid %d: %s / %s",
              NOBODY, r.out, r.err);
    cr_assert_null(strstr(r.err, "unusable"), "a warning about the directory: %s", r.err);
    char heap[PATH_MAX];
    snprintf(heap, sizeof heap, "%s/mmvec-heap-%d", seg, NOBODY);
    DIR *d = opendir(heap);
    cr_assert_not_null(d, "no heap folder %s", heap);
    int left = 0;
    for (struct dirent *e; (e = readdir(d));)
        left += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    cr_assert_eq(left, 0, "the worker left %d entries in %s", left, heap);
}

/* ---- descriptors ----------------------------------------------------------------------------- */

Test(safety_files, stats_table_never_goes_into_a_file_of_the_program)
{
    skip_unless_preloadable();
    char out[PATH_MAX], dirvar[PATH_MAX + 16];
    snprintf(out, sizeof out, "%s", in_tmp("program-output.txt"));
    write_file(out, "");
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", in_tmp("seg"));
    const char *argv[] = {HELPER, "statsfd", out, NULL};
    const char *extra[] = {dirvar, "MMVEC_THRESHOLD=64K", "MMVEC_STATS=1", NULL};
    struct spec s = {.argv = argv, .extra = extra, .preload = true};
    struct out r = run(&s);
    expect_exit0(&r, "statsfd");
    /* stderr may hold the table, or nothing: the program closed our copy of it */
    cr_assert_str_eq(tu_slurp(out), "ok\n",
                     "the program's output file holds more than its own \"ok\\n\":\n%s",
                     tu_slurp(out));
}

Test(safety_files, lock_file_does_not_take_a_low_descriptor)
{
    skip_unless_preloadable();
    struct out r = run_preloaded("lowfd", in_tmp("seg"));
    expect_exit0(&r, "lowfd");
    cr_assert(strstr(r.out, "owned=1\n"), "the 4 MiB block was not a segment block: %s / %s",
              r.out, r.err);
    cr_assert(strstr(r.out, "devnull=3\n"),
              "open(\"/dev/null\") after a large malloc did not get descriptor 3:\n%s", r.out);
    for (const char *p = r.out; (p = strstr(p, "lock ")); p++) {
        if (p != r.out && p[-1] != '\n')
            continue;
        int fd = atoi(p + 5);
        cr_assert_geq(fd, 10, "descriptor %d is on a lock file of mmvec's:\n%s", fd, r.out);
    }
}

/* ---- the program's malloc configuration ------------------------------------------------------ */

Test(safety_files, private_jemalloc_ignores_malloc_conf)
{
    skip_unless_preloadable();
    char dirvar[PATH_MAX + 16];
    snprintf(dirvar, sizeof dirvar, "MMVEC_DIR=%s", in_tmp("seg"));
    const char *argv[] = {HELPER, "conf", NULL};
    const char *extra[] = {dirvar, "MALLOC_CONF=bogus:1", NULL};
    struct spec s = {.argv = argv, .extra = extra, .preload = true};
    struct out r = run(&s);
    expect_exit0(&r, "conf");
    cr_assert_str_eq(r.out, "owned=1\n", "stderr: %s", r.err);
    cr_assert_str_eq(r.err, "", "MALLOC_CONF=bogus:1 made the program print on stderr:\n%s",
                     r.err);
}

/* ---- a shared filesystem: another machine's folders are never reaped ---- */

/* The 8 hex digits mmvec puts first in its folders' names: FNV-1a of the node name. */
static void host_tag(char out[9])
{
    struct utsname u;
    uint32_t h = 2166136261u;
    if (uname(&u) == 0)
        for (const char *c = u.nodename; *c; c++)
            h = (h ^ (unsigned char)*c) * 16777619u;
    snprintf(out, 9, "%08x", h);
}

/* A dead process's folder as mmvec makes it: unlocked lock, folder, one .seg file. */
static void dead_folder(const char *heap, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.lock", heap, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "%s", path);
    close(fd);
    snprintf(path, sizeof path, "%s/%s", heap, name);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/0d6e8b6c-58a1-4b1e-9f5e-7d8c2b7a0c11.seg", heap, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "%s", path);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
}

Test(safety_files, only_this_machines_dead_folders_are_reaped)
{
    char dir[256], heap[512], mine[64], theirs[64], tag[9], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/shared", tmp);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(heap, sizeof heap, "%s", tu_heap_dir(dir));
    cr_assert_eq(mkdir(heap, 0700), 0);
    host_tag(tag);
    snprintf(mine, sizeof mine, "%s-999999-0badcafe", tag);
    /* Another machine's tag: one bit flipped. */
    snprintf(theirs, sizeof theirs, "%08x-999999-0badcafe", (unsigned)strtoul(tag, NULL, 16) ^ 1u);
    dead_folder(heap, mine);
    dead_folder(heap, theirs);
    uint64_t files = 0, bytes = 0;
    cr_assert_eq(mmv_clean(dir, &files, &bytes), 0);
    cr_assert_eq(files, 1, "this machine's dead folder's file, and no other");
    snprintf(path, sizeof path, "%s/%s", heap, mine);
    cr_assert_eq(access(path, F_OK), -1, "this machine's dead folder %s is left", path);
    snprintf(path, sizeof path, "%s/%s", heap, theirs);
    cr_assert_eq(access(path, F_OK), 0, "another machine's folder %s was reaped", path);
    snprintf(path, sizeof path, "%s/%s.lock", heap, theirs);
    cr_assert_eq(access(path, F_OK), 0, "another machine's lock %s was reaped", path);
}

/* ---- a daemon: double fork, setsid, chdir("/"), every descriptor closed ---- */

/* In the daemon: its blocks are still files in the folder named at start, they grow and go at
 * exit, whatever it did to its working directory and its descriptors. Returns 0 or a step. */
static int daemon_life(unsigned char *inherited, const char *heap)
{
    if (setsid() < 0 || chdir("/") < 0)
        return 1;
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    for (int fd = 3; fd < 40; fd++) /* the program's own descriptors take every low number */
        if (open("/dev/null", O_RDONLY) < 0)
            return 2;
    for (size_t i = 0; i < 4u << 20; i++)
        if (inherited[i] != 'P')
            return 3;
    unsigned char *p = mmv_malloc(4u << 20);
    char path[4096];
    if (!p || mmv_block_path(p, path, sizeof path) != 0 || strncmp(path, heap, strlen(heap)) != 0)
        return 4;
    memset(p, 'D', 4u << 20);
    p = mmv_realloc(p, 64u << 20);
    if (!p || p[0] != 'D' || p[(4u << 20) - 1] != 'D' || !mmv_owns(p))
        return 5;
    struct stat st;
    if (mmv_block_path(p, path, sizeof path) != 0 || stat(path, &st) != 0 ||
        (size_t)st.st_size < (64u << 20))
        return 6;
    return 0; /* exit(): the exit handler removes its files, folder and lock */
}

Test(safety_files, daemon_after_setsid_chdir_and_closefrom_keeps_its_files_in_place)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/seg", tmp);
    setenv("MMVEC_DIR", dir, 1);
    setenv("MMVEC_THRESHOLD", "64K", 1);
    unsigned char *p = mmv_malloc(4u << 20);
    cr_assert(p && mmv_owns(p));
    memset(p, 'P', 4u << 20);
    char heap[4200];
    snprintf(heap, sizeof heap, "%s/", tu_heap_dir(dir));
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        pid_t d = fork(); /* the daemon is a grandchild, its parent gone at once */
        if (d != 0)
            _exit(d < 0 ? 100 : 0);
        int rc = daemon_life(p, heap);
        char out[300], text[8];
        snprintf(out, sizeof out, "%s/daemon.rc", tmp); /* its only way to report */
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int n = snprintf(text, sizeof text, "%d\n", rc);
        if (fd < 0 || write(fd, text, (size_t)n) != n)
            _exit(101);
        close(fd);
        exit(rc);
    }
    cr_assert_eq(tu_wait(child), 0);
    /* The daemon is nobody's child of ours: wait for its report, then for its folder to go. */
    const char *rcfile = tu_path_in(tmp, "daemon.rc");
    for (int i = 0; i < 1000 && !strchr(tu_slurp(rcfile), '\n'); i++)
        usleep(20000);
    int entries = -1;
    for (int i = 0; i < 400 && entries != 2; i++) { /* ours: folder + lock */
        usleep(20000);
        entries = tu_count_entries(tu_heap_dir(dir));
    }
    cr_assert_eq(entries, 2, "the daemon left %d entries beside ours in %s", entries - 2,
                 tu_heap_dir(dir));
    const char *rc = tu_slurp(rcfile);
    cr_assert_str_eq(rc, "0\n", "the daemon failed at step %s (see daemon_life)", rc);
    cr_assert_eq(tu_count_segs(dir), 1, "only our block's file is left");
    for (size_t i = 0; i < 4u << 20; i++)
        cr_assert_eq(p[i], 'P', "the daemon's writes reached us at byte %zu", i);
    mmv_free(p);
}
